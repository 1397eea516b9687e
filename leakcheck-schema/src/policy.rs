//! The grammar of policies: what one kind of finding does to its test (`untracked_tasks`,
//! `zombies`, `lost_panics`), the same words in the attribute, `leakcheck.toml` and the
//! environment.
//!
//! ```
//! use leakcheck_schema::policy::{Policy, ZOMBIES};
//!
//! assert_eq!(Policy::parse(" fail ", ZOMBIES), Some(Policy::Fail));
//! assert_eq!(Policy::expected(ZOMBIES), r#""warn", "fail" or "off""#);
//! ```

/// What one kind of finding does to the test it belongs to: task counts leakcheck cannot
/// tell apart (`untracked_tasks`), zombies (`zombies`), lost panics (`lost_panics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// It fails the test, with the report.
    Fail,
    /// It is reported (straight to stderr, past the test harness's capture) and the test
    /// passes.
    Warn,
    /// It is not reported.
    Off,
}

/// What `untracked_tasks` accepts, the default first: no rule can match such counts, so a
/// team on stable tokio whose suite has a known long-lived task needs `warn`.
pub const UNTRACKED_TASKS: &[Policy] = &[Policy::Fail, Policy::Warn];
/// What `zombies` accepts, the default first.
pub const ZOMBIES: &[Policy] = &[Policy::Warn, Policy::Fail, Policy::Off];
/// What `lost_panics` accepts, the default first.
pub const LOST_PANICS: &[Policy] = &[Policy::Fail, Policy::Warn, Policy::Off];

impl Policy {
    /// The word, as settings write it: `fail`, `warn`, `off`.
    pub fn word(self) -> &'static str {
        match self {
            Policy::Fail => "fail",
            Policy::Warn => "warn",
            Policy::Off => "off",
        }
    }

    /// `value` (trimmed), if it names one of `accepted`.
    pub fn parse(value: &str, accepted: &[Policy]) -> Option<Policy> {
        accepted
            .iter()
            .copied()
            .find(|policy| policy.word() == value.trim())
    }

    /// `"fail" or "warn"`: what `accepted` reads as, for an error message.
    pub fn expected(accepted: &[Policy]) -> String {
        let words: Vec<String> = accepted
            .iter()
            .map(|policy| format!("\"{}\"", policy.word()))
            .collect();
        match words.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_takes_its_own_words() {
        assert_eq!(Policy::parse("off", UNTRACKED_TASKS), None);
        assert_eq!(Policy::parse("warn", UNTRACKED_TASKS), Some(Policy::Warn));
        assert_eq!(Policy::parse("off", LOST_PANICS), Some(Policy::Off));
        assert_eq!(Policy::parse("loud", ZOMBIES), None);
        assert_eq!(Policy::expected(UNTRACKED_TASKS), r#""fail" or "warn""#);
    }
}
