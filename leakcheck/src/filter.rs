//! Ignore rules, applied to what a check found alive. Name and id rules are cheap and run
//! first; spawn rules need symbols and run only on what is left.

use crate::config::Options;
use crate::report::Frame;

pub(crate) struct Rules<'a> {
    options: &'a Options,
}

impl<'a> Rules<'a> {
    pub(crate) fn new(options: &'a Options) -> Self {
        Rules { options }
    }

    /// Whether a thread is ignored by name (its full name, or the kernel's when the thread
    /// never named itself through the hook) or because it was alive at `ignore_current()`.
    pub(crate) fn ignores_thread(&self, tid: Option<i32>, name: &str) -> bool {
        let current = self.options.ignore_current.as_ref();
        if tid.is_some_and(|tid| current.is_some_and(|alive| alive.contains(&tid))) {
            return true;
        }
        self.options
            .ignore_threads
            .iter()
            .any(|pattern| pattern.matches(name))
    }

    pub(crate) fn has_spawn_rules(&self) -> bool {
        !self.options.ignore_spawns.is_empty()
    }

    /// Whether a spawn backtrace (all frames, not only the user's) matches an `ignore_spawn`.
    pub(crate) fn ignores_spawn(&self, frames: &[Frame]) -> bool {
        self.options.ignore_spawns.iter().any(|needle| {
            frames.iter().any(|frame| {
                frame
                    .function()
                    .is_some_and(|function| function.contains(needle.as_str()))
                    || frame
                        .location()
                        .is_some_and(|location| location.contains(needle.as_str()))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_match_globs() {
        let options = Options::new()
            .ignore_thread("pool-*")
            .ignore_thread("exact");
        let rules = Rules::new(&options);
        assert!(rules.ignores_thread(Some(1), "pool-worker-3"));
        assert!(rules.ignores_thread(None, "exact"));
        assert!(!rules.ignores_thread(Some(1), "exactly"));
        assert!(!rules.ignores_thread(Some(1), "my-pool-1"));
    }

    #[test]
    fn spawn_rules_match_function_or_location() {
        let frames = [Frame::new(
            Some("my_crate::telemetry::start".into()),
            Some("src/telemetry.rs".into()),
            Some(12),
            Some(5),
        )];
        let by_path = Options::new().ignore_spawn("telemetry::start");
        assert!(Rules::new(&by_path).ignores_spawn(&frames));
        let by_file = Options::new().ignore_spawn("telemetry.rs:12");
        assert!(Rules::new(&by_file).ignores_spawn(&frames));
        let other = Options::new().ignore_spawn("metrics");
        assert!(!Rules::new(&other).ignores_spawn(&frames));
    }
}
