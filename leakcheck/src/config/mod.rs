//! What a check runs with: a test's settings (from the attribute or [`Options`]), the
//! shared `leakcheck.toml` and the environment, merged in one place: [`effective`]. Reads
//! the environment and the file, nothing else: the public builder that fills [`Settings`]
//! lives in `options`.
//!
//! [`Options`]: crate::Options

pub(crate) mod allowlist;
mod env;
mod file;

pub use env::Policy;
#[cfg(lc_process_hook)]
pub(crate) use env::SPAWNED_BY_VAR;
#[cfg(lc_process_hook)]
pub(crate) use env::mark_children_before_main;
#[cfg(any(lc_thread_hook, tokio_unstable))]
pub(crate) use env::mode_before_main;
pub(crate) use env::{Mode, REPORT_VAR, TASK_BACKTRACE_VAR, environment, mode};
pub(crate) use file::remember_manifest_dir;
pub(crate) use leakcheck_schema::policy::{LOST_PANICS, UNTRACKED_TASKS, ZOMBIES};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leakcheck_schema::rules::Rule;

/// How long a check waits for threads and tasks to finish before calling them leaks.
///
/// Close to goleak's: long enough for a thread that is shutting down, short enough that a
/// leaky test fails fast. A clean test never waits: the first look already finds nothing.
///
/// ```
/// assert_eq!(leakcheck::DEFAULT_GRACE, std::time::Duration::from_millis(500));
/// ```
pub const DEFAULT_GRACE: Duration = Duration::from_millis(500);

/// Whether leakcheck was preloaded into a binary that does not link it (`cargo leakcheck`'s
/// runner), rather than linked: its std is then not the test's, so the test's panic hook and
/// thread handles are out of its reach.
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Notes that leakcheck runs preloaded (`preload::install`, before `main`).
#[cfg(unix)]
pub(crate) fn set_preloaded() {
    PRELOADED.store(true, Ordering::Relaxed);
}

/// Whether leakcheck runs preloaded into a binary that does not link it.
pub(crate) fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

/// How long to wait and what to ignore: what `Options` builds and `leakcheck.toml` holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) grace: Option<Duration>,
    pub(crate) ignore_threads: Vec<glob::Pattern>,
    pub(crate) ignore_spawns: Vec<String>,
    pub(crate) ignore_tops: Vec<String>,
    /// `ignore_process` rules (kept as rules: the rule knows what of a process it matches).
    pub(crate) ignore_processes: Vec<Rule>,
    /// `ignore_panic` substrings: lost panics they accept (and nothing else).
    pub(crate) ignore_panics: Vec<String>,
    /// Threads alive when `Options::ignore_current` was called.
    pub(crate) ignore_current: Option<Arc<BTreeSet<i32>>>,
    pub(crate) default_allowlist: Option<bool>,
    /// What task counts that cannot be told apart do: fail (the default) or warn.
    pub(crate) untracked_tasks: Option<Policy>,
    /// What a child that exited and was never waited for does: warn (the default), fail
    /// or off.
    pub(crate) zombies: Option<Policy>,
    /// What a panic nobody observed in a thread of the test does: fail (the default), warn
    /// or off.
    pub(crate) lost_panics: Option<Policy>,
    /// Whether leaked child processes are ended after the report (off by default).
    pub(crate) kill_processes: Option<bool>,
    /// How long a test body may run before the process ends with a report of what it runs
    /// (off when `None`).
    pub(crate) timeout: Option<Duration>,
    /// The part of the grace period spent before the check began (by a test's runtime
    /// shutdown, which waits for `spawn_blocking` work): the check waits for the rest.
    pub(crate) grace_spent: Duration,
}

impl Settings {
    /// Adds a rule checked by the one grammar (`leakcheck_schema::rules`).
    pub(crate) fn add_rule(&mut self, rule: Rule) {
        match rule {
            Rule::Thread(pattern) => self.ignore_threads.push(pattern),
            Rule::Spawn(substring) => self.ignore_spawns.push(substring),
            Rule::Top(substring) => self.ignore_tops.push(substring),
            rule @ Rule::Process(_) => self.ignore_processes.push(rule),
            Rule::Panic(substring) => self.ignore_panics.push(substring),
            // The grammar makes no other kind this version applies.
            _ => {}
        }
    }

    /// The grace period: the one set, else [`DEFAULT_GRACE`].
    pub(crate) fn grace_period(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }

    /// What a check waits: the grace period, less what was spent before it began.
    pub(crate) fn remaining_grace(&self) -> Duration {
        self.grace_period().saturating_sub(self.grace_spent)
    }

    /// What task counts leakcheck cannot tell apart do.
    pub(crate) fn untracked_tasks(&self) -> Policy {
        self.untracked_tasks.unwrap_or(Policy::Fail)
    }

    /// What zombies do.
    pub(crate) fn zombies(&self) -> Policy {
        self.zombies.unwrap_or(Policy::Warn)
    }

    /// What lost panics do.
    pub(crate) fn lost_panics(&self) -> Policy {
        self.lost_panics.unwrap_or(Policy::Fail)
    }

    /// Whether leaked processes are ended after the report.
    pub(crate) fn kills_processes(&self) -> bool {
        self.kill_processes.unwrap_or(false)
    }

    /// Whether rules of the ecosystem allowlist apply.
    pub(crate) fn uses_default_allowlist(&self) -> bool {
        self.default_allowlist.unwrap_or(true)
    }

    /// `self`, with the rules of `shared` added, and each of `shared`'s settings where `self`
    /// set none.
    fn merged_with(mut self, shared: &Settings) -> Settings {
        self.ignore_threads
            .extend(shared.ignore_threads.iter().cloned());
        self.ignore_spawns
            .extend(shared.ignore_spawns.iter().cloned());
        self.ignore_tops.extend(shared.ignore_tops.iter().cloned());
        self.ignore_processes
            .extend(shared.ignore_processes.iter().cloned());
        self.ignore_panics
            .extend(shared.ignore_panics.iter().cloned());
        self.grace = self.grace.or(shared.grace);
        self.default_allowlist = self.default_allowlist.or(shared.default_allowlist);
        self.timeout = self.timeout.or(shared.timeout);
        self.untracked_tasks = self.untracked_tasks.or(shared.untracked_tasks);
        self.zombies = self.zombies.or(shared.zombies);
        self.lost_panics = self.lost_panics.or(shared.lost_panics);
        self.kill_processes = self.kill_processes.or(shared.kill_processes);
        self
    }
}

/// What a check runs with: `settings` (the test's own) over the environment's settings
/// (`LEAKCHECK_GRACE`, ...), over the shared file, over the defaults; rules add up from
/// all. `None` under `LEAKCHECK=off`, the global switch, when nothing is checked. An error
/// is a bad variable or file, said in full.
pub(crate) fn effective(settings: &Settings) -> Result<Option<Settings>, &'static str> {
    let environment = environment()?;
    if environment.mode == Mode::Off {
        return Ok(None);
    }
    let shared = file::shared(environment.config_file.as_deref())?;
    let from_environment = Settings {
        grace: environment.grace,
        timeout: environment.timeout,
        untracked_tasks: environment.untracked_tasks,
        zombies: environment.zombies,
        lost_panics: environment.lost_panics,
        kill_processes: environment.kill_processes,
        ..Settings::default()
    };
    Ok(Some(in_order(settings, &from_environment, shared)))
}

/// The order of settings, strongest first: the test's own words (its attribute or
/// `Options`), then the environment (set once for a whole CI run), then the shared
/// `leakcheck.toml`, then the defaults; the way a lint attribute beats `-W`.
fn in_order(own: &Settings, environment: &Settings, shared: Option<&Settings>) -> Settings {
    let below = match shared {
        Some(shared) => environment.clone().merged_with(shared),
        None => environment.clone(),
    };
    own.clone().merged_with(&below)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakcheck_schema::rules::RuleKind;

    /// The crate docs' reference (`leakcheck::reference`) documents every key of
    /// `leakcheck.toml` and every variable: a new one must be written up there.
    #[test]
    fn the_reference_documents_every_key_and_variable() {
        let reference = include_str!("../../docs/reference.md");
        for key in file::KEYS {
            assert!(
                reference.contains(&format!("`{key}"))
                    && reference.contains(&format!("\n{key} = ")),
                "the reference does not document `{key}` (in its table and its example file)"
            );
        }
        for variable in env::VARIABLES {
            assert!(
                reference.contains(&format!("| `{variable}` |")),
                "the reference's table of variables has no row for {variable}"
            );
        }
    }

    /// The attribute's page (`#[leakcheck::test]`'s docs) describes every argument the
    /// attribute accepts, by the attribute's own table of names.
    #[test]
    fn the_attribute_s_page_lists_every_argument() {
        let lib = include_str!("../lib.rs");
        let page_end = lib
            .find("pub use leakcheck_macros::test;")
            .expect("the attribute's re-export");
        let page_start = lib[..page_end]
            .rfind("\n\n")
            .expect("the attribute's doc comment");
        let page = &lib[page_start..page_end];
        for argument in leakcheck_schema::attribute::ARGUMENTS {
            assert!(
                page.contains(&format!("/// - `{argument} = ")),
                "the attribute's page (leakcheck/src/lib.rs) does not describe `{argument}`"
            );
        }
    }

    #[test]
    fn the_test_s_words_beat_the_environment_which_beats_the_file() {
        let own = Settings {
            grace: Some(Duration::from_secs(5)),
            lost_panics: Some(Policy::Off),
            ..Settings::default()
        };
        let environment = Settings {
            grace: Some(Duration::from_millis(100)),
            lost_panics: Some(Policy::Fail),
            zombies: Some(Policy::Fail),
            ..Settings::default()
        };
        let shared = Settings {
            zombies: Some(Policy::Off),
            kill_processes: Some(true),
            timeout: Some(Duration::from_secs(30)),
            ..Settings::default()
        };
        let merged = in_order(&own, &environment, Some(&shared));
        assert_eq!(merged.grace_period(), Duration::from_secs(5));
        assert_eq!(merged.lost_panics(), Policy::Off);
        assert_eq!(merged.zombies(), Policy::Fail);
        assert!(merged.kills_processes());
        assert_eq!(merged.timeout, Some(Duration::from_secs(30)));
        // Where nobody says anything, the default.
        let merged = in_order(&Settings::default(), &Settings::default(), None);
        assert_eq!(merged.grace_period(), DEFAULT_GRACE);
        assert_eq!(merged.untracked_tasks(), Policy::Fail);
    }

    #[test]
    fn a_test_s_own_settings_win_over_the_shared_file_and_rules_add_up() {
        let mut own = Settings {
            grace: Some(Duration::from_secs(3)),
            ..Settings::default()
        };
        own.add_rule(RuleKind::Spawn.parse("mine").unwrap());
        let mut shared = Settings {
            grace: Some(Duration::from_secs(1)),
            default_allowlist: Some(false),
            ..Settings::default()
        };
        shared.add_rule(RuleKind::Spawn.parse("shared").unwrap());
        let merged = own.merged_with(&shared);
        assert_eq!(merged.grace_period(), Duration::from_secs(3));
        assert_eq!(merged.ignore_spawns, ["mine", "shared"]);
        assert!(!merged.uses_default_allowlist());
    }
}
