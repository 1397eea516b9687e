//! Ignore rules, applied to what a check found alive. Name and id rules are cheap and run
//! first; spawn rules need function names and top rules a thread's current stack, so they
//! run only on what is left. The process-wide pools of the default allowlist are `pools`.

pub(crate) mod pools;

use crate::config::Settings;
use crate::config::allowlist::SINGLETONS;
use crate::frames::Frame;

pub(crate) struct Rules<'a> {
    options: &'a Settings,
}

impl<'a> Rules<'a> {
    pub(crate) fn new(options: &'a Settings) -> Self {
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
        !self.options.ignore_spawns.is_empty() || self.options.uses_default_allowlist()
    }

    /// Whether a spawn rule names a `file:line` (or a file), which only the debug info
    /// tells: function names do not.
    pub(crate) fn has_line_rules(&self) -> bool {
        self.options
            .ignore_spawns
            .iter()
            .any(|rule| rule.contains(".rs") || rule.contains(':') && !rule.contains("::"))
    }

    /// Whether the default allowlist (singletons and pools) applies.
    pub(crate) fn uses_default_allowlist(&self) -> bool {
        self.options.uses_default_allowlist()
    }

    /// Whether a spawn backtrace (all frames, not only the user's) matches an `ignore_spawn`
    /// or is a singleton of the default allowlist.
    pub(crate) fn ignores_spawn(&self, frames: &[Frame]) -> bool {
        let rule = self.options.ignore_spawns.iter().map(String::as_str);
        let singletons = SINGLETONS
            .iter()
            .filter(|_| self.options.uses_default_allowlist())
            .flat_map(|singleton| singleton.spawned_in.iter().copied());
        rule.chain(singletons)
            .any(|needle| frames.iter().any(|frame| frame_matches(frame, needle)))
    }

    /// Whether an `ignore_process` glob matches a child's program file name or its whole
    /// command line.
    pub(crate) fn ignores_process(&self, program: &str, command: &str) -> bool {
        self.options
            .ignore_processes
            .iter()
            .any(|rule| rule.matches_process(program, command))
    }

    pub(crate) fn has_top_rules(&self) -> bool {
        !self.options.ignore_tops.is_empty()
    }

    /// Whether the top of a thread's current stack (its frames down to the first of the
    /// user's) has a function that an `ignore_top` names.
    pub(crate) fn ignores_top(&self, top: &[Frame]) -> bool {
        self.options.ignore_tops.iter().any(|needle| {
            top.iter().any(|frame| {
                frame
                    .function()
                    .is_some_and(|function| function.contains(needle.as_str()))
            })
        })
    }

    /// Whether an `ignore_panic` accepts a lost panic: by a frame of its thread's spawn
    /// backtrace (all frames), or by the panic's location.
    pub(crate) fn ignores_panic(&self, spawn: &[Frame], location: Option<&str>) -> bool {
        self.options.ignore_panics.iter().any(|needle| {
            location.is_some_and(|location| in_location(location, needle))
                || spawn.iter().any(|frame| frame_matches(frame, needle))
        })
    }

    pub(crate) fn has_panic_rules(&self) -> bool {
        !self.options.ignore_panics.is_empty()
    }
}

fn frame_matches(frame: &Frame, needle: &str) -> bool {
    frame
        .function()
        .is_some_and(|function| function.contains(needle))
        || frame
            .location()
            .is_some_and(|location| in_location(&location, needle))
}

/// Whether `needle` is part of a `file:line:column`, where a needle that ends in a digit
/// ends its number: `tests/x.rs:12` is in `tests/x.rs:12:9`, not in `tests/x.rs:120:9`.
fn in_location(location: &str, needle: &str) -> bool {
    if !needle.ends_with(|c: char| c.is_ascii_digit()) {
        return location.contains(needle);
    }
    location
        .match_indices(needle)
        .any(|(at, _)| !location[at + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakcheck_schema::rules::RuleKind;

    /// Settings as the builder makes them: rules through the one grammar.
    #[derive(Default)]
    struct Options(Settings);

    impl Options {
        fn new() -> Options {
            Options::default()
        }
        fn rule(mut self, kind: RuleKind, text: &str) -> Options {
            self.0.add_rule(kind.parse(text).unwrap());
            self
        }
        fn ignore_thread(self, text: &str) -> Options {
            self.rule(RuleKind::Thread, text)
        }
        fn ignore_spawn(self, text: &str) -> Options {
            self.rule(RuleKind::Spawn, text)
        }
        fn ignore_top(self, text: &str) -> Options {
            self.rule(RuleKind::Top, text)
        }
        fn default_allowlist(mut self, on: bool) -> Options {
            self.0.default_allowlist = Some(on);
            self
        }
    }

    fn rules(options: &Options) -> Rules<'_> {
        Rules::new(&options.0)
    }

    #[test]
    fn thread_names_match_globs() {
        let options = Options::new()
            .ignore_thread("pool-*")
            .ignore_thread("exact");
        let rules = rules(&options);
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
        assert!(rules(&by_path).ignores_spawn(&frames));
        let by_file = Options::new().ignore_spawn("telemetry.rs:12");
        assert!(rules(&by_file).ignores_spawn(&frames));
        let other = Options::new().ignore_spawn("metrics");
        assert!(!rules(&other).ignores_spawn(&frames));
    }

    #[test]
    fn singletons_are_ignored_unless_switched_off() {
        let frames = [Frame::new(
            Some("rayon_core::registry::set_global_registry".into()),
            None,
            None,
            None,
        )];
        assert!(rules(&Options::new()).ignores_spawn(&frames));
        let off = Options::new().default_allowlist(false);
        assert!(!rules(&off).ignores_spawn(&frames));
    }

    #[test]
    fn the_reference_lists_every_singleton_and_pool() {
        let readme = include_str!("../../docs/reference.md");
        let crates = SINGLETONS.iter().map(|singleton| singleton.krate).chain(
            crate::config::allowlist::POOLS
                .iter()
                .map(|pool| pool.krate),
        );
        for krate in crates {
            let row = format!("| `{krate}` |");
            assert!(readme.contains(&row), "the reference has no row {row}");
        }
    }

    #[test]
    fn process_rules_match_the_program_s_name_or_the_command_line() {
        let options = Options::new()
            .rule(RuleKind::Process, "sleep")
            .rule(RuleKind::Process, "sh -c *");
        let rules = rules(&options);
        assert!(rules.ignores_process("/usr/bin/sleep", "/usr/bin/sleep 600"));
        assert!(rules.ignores_process("/bin/sh", "sh -c 'sleep 1'"));
        assert!(!rules.ignores_process("/bin/sh", "sh script.sh"));
        assert!(!rules.ignores_process("sleepy", "sleepy"));
    }

    #[test]
    fn top_rules_match_a_function_of_the_top() {
        let top = [
            Frame::new(Some("std::thread::sleep".into()), None, None, None),
            Frame::new(Some("my_crate::pool::park".into()), None, None, None),
        ];
        let options = Options::new().ignore_top("my_crate::pool::park");
        assert!(rules(&options).ignores_top(&top));
        let other = Options::new().ignore_top("my_crate::reaper");
        assert!(!rules(&other).ignores_top(&top));
    }

    #[test]
    fn panic_rules_match_the_spawn_path_or_where_it_panicked_and_nothing_else() {
        let spawn = [
            Frame::new(Some("std::thread::Builder::spawn".into()), None, None, None),
            Frame::new(
                Some("threadpool::spawn_in_pool".into()),
                Some("src/lib.rs".into()),
                Some(760),
                Some(5),
            ),
        ];
        let by_site = Options::new().rule(RuleKind::Panic, "threadpool::spawn_in_pool");
        assert!(rules(&by_site).ignores_panic(&spawn, None));
        assert!(!rules(&by_site).ignores_panic(&[], Some("tests/jobs.rs:12:9")));
        // Nor does it decide the site's threads.
        assert!(!rules(&by_site).ignores_spawn(&spawn));
        let by_line = Options::new().rule(RuleKind::Panic, "tests/jobs.rs:12");
        assert!(rules(&by_line).ignores_panic(&[], Some("tests/jobs.rs:12:9")));
        assert!(!rules(&by_line).ignores_panic(&spawn, Some("tests/jobs.rs:13:9")));
        // A line is a whole number: 12 is not the start of 120.
        assert!(!rules(&by_line).ignores_panic(&[], Some("tests/jobs.rs:120:9")));
        // Thread and spawn rules accept no panic.
        let threads = Options::new()
            .ignore_thread("*")
            .ignore_spawn("threadpool::spawn_in_pool");
        assert!(!rules(&threads).ignores_panic(&spawn, Some("tests/jobs.rs:12:9")));
    }
}
