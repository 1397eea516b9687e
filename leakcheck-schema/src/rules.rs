//! The one grammar of leakcheck's ignore rules, shared by the three places a rule is written:
//! the `#[leakcheck::test(..)]` attribute (checked at compile time, the error pointing at
//! the argument), `leakcheck::Options` (checked when the rule is added) and `leakcheck.toml`
//! (checked when the file is read, the error naming its line).
//!
//! ```
//! use leakcheck_schema::rules::RuleKind;
//!
//! assert!(RuleKind::Thread.parse("pool-*").is_ok());
//! let error = RuleKind::Spawn.parse("").unwrap_err();
//! assert!(error.to_string().contains("an empty rule would match everything"));
//! ```

use std::fmt;

/// Which kind of ignore rule a string is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `ignore_thread`: a glob over a thread's full name.
    Thread,
    /// `ignore_spawn`: part of a function path or `file:line` on the spawn path.
    Spawn,
    /// `ignore_top`: part of a function path at the top of a thread's current stack.
    Top,
}

/// A rule, checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// A thread-name glob.
    Thread(glob::Pattern),
    /// A spawn-path substring, never empty.
    Spawn(String),
    /// A current-stack substring, never empty.
    Top(String),
}

impl RuleKind {
    /// The argument, method and `leakcheck.toml` key that take this kind of rule.
    pub fn key(self) -> &'static str {
        match self {
            RuleKind::Thread => "ignore_thread",
            RuleKind::Spawn => "ignore_spawn",
            RuleKind::Top => "ignore_top",
        }
    }

    /// What a rule of this kind looks like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            RuleKind::Thread => "a glob over the thread's name, such as \"pool-*\"",
            RuleKind::Spawn => {
                "part of a function path or file:line, such as \"my_crate::telemetry::start\""
            }
            RuleKind::Top => "part of a function path, such as \"my_crate::pool::park\"",
        }
    }

    /// Checks `text` as a rule of this kind.
    ///
    /// ```
    /// use leakcheck_schema::rules::{Rule, RuleKind};
    ///
    /// assert_eq!(
    ///     RuleKind::Top.parse("my_crate::pool::park"),
    ///     Ok(Rule::Top("my_crate::pool::park".into()))
    /// );
    /// assert!(RuleKind::Thread.parse("[").is_err());
    /// ```
    pub fn parse(self, text: &str) -> Result<Rule, RuleError> {
        let error = |problem: String| RuleError {
            kind: self,
            problem,
        };
        match self {
            RuleKind::Thread => glob::Pattern::new(text)
                .map(Rule::Thread)
                .map_err(|glob| error(format!("{text:?} is not a glob ({glob})"))),
            // A substring rule that is empty, or only blanks, is contained in every path.
            RuleKind::Spawn | RuleKind::Top if text.trim().is_empty() => {
                Err(error("an empty rule would match everything".to_owned()))
            }
            RuleKind::Spawn => Ok(Rule::Spawn(text.to_owned())),
            RuleKind::Top => Ok(Rule::Top(text.to_owned())),
        }
    }
}

/// Why a string is not a rule of its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    kind: RuleKind,
    problem: String,
}

impl RuleError {
    /// The kind of rule that was asked for.
    pub fn kind(&self) -> RuleKind {
        self.kind
    }
}

/// `` `ignore_top`: an empty rule would match everything: expected part of a function
/// path, such as "my_crate::pool::park" ``.
impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: {}: expected {}",
            self.kind.key(),
            self.problem,
            self.kind.expected()
        )
    }
}

impl std::error::Error for RuleError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_substrings_are_rules() {
        assert!(matches!(
            RuleKind::Thread.parse("metrics-*"),
            Ok(Rule::Thread(_))
        ));
        assert_eq!(
            RuleKind::Spawn.parse("src/lib.rs:12"),
            Ok(Rule::Spawn("src/lib.rs:12".into()))
        );
    }

    #[test]
    fn empty_substrings_and_bad_globs_are_refused_with_what_was_expected() {
        for kind in [RuleKind::Spawn, RuleKind::Top] {
            for empty in ["", "  "] {
                let error = kind.parse(empty).unwrap_err();
                assert_eq!(error.kind(), kind);
                let text = error.to_string();
                assert!(
                    text.starts_with(&format!("`{}`: an empty rule", kind.key())),
                    "{text}"
                );
                assert!(text.contains("expected part of a function path"), "{text}");
            }
        }
        let text = RuleKind::Thread.parse("[").unwrap_err().to_string();
        assert!(
            text.starts_with("`ignore_thread`: \"[\" is not a glob ("),
            "{text}"
        );
        assert!(text.ends_with("expected a glob over the thread's name, such as \"pool-*\""));
    }
}
