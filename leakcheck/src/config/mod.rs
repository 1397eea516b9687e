//! Options: how long to wait and what to ignore. A test's options (from the attribute or
//! from code), the shared `leakcheck.toml`, the ecosystem allowlist and the environment are
//! merged here, in one place: [`effective`].

mod env;
mod file;

pub(crate) use env::{Mode, REPORT_VAR, TASK_BACKTRACE_VAR, environment, mode, task_backtraces};
// Read by the spawn hooks, which this build may not have (no Linux hook, no tokio_unstable).
#[cfg_attr(
    not(any(all(target_os = "linux", not(miri)), tokio_unstable)),
    allow(unused_imports)
)]
pub(crate) use env::hooks_off;
pub(crate) use file::remember_manifest_dir;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a check waits for threads and tasks to finish before calling them leaks.
///
/// Close to goleak's: long enough for a thread that is shutting down, short enough that a
/// leaky test fails fast. A clean test never waits: the first look already finds nothing.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(500);

/// What a check ignores and how long it waits.
///
/// Built like this, then passed to [`verify_none_with`](crate::verify_none_with),
/// [`find`](crate::find) or [`Scope::find`](crate::Scope::find). The same settings are
/// available as arguments of `#[leakcheck::test(...)]`.
///
/// ```
/// use std::time::Duration;
/// use leakcheck::Options;
///
/// let options = Options::new()
///     .grace(Duration::from_millis(300))
///     .ignore_thread("metrics-*")
///     .ignore_spawn("my_crate::telemetry::start");
/// assert_eq!(options.grace_period(), Duration::from_millis(300));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub(crate) grace: Option<Duration>,
    pub(crate) ignore_threads: Vec<glob::Pattern>,
    pub(crate) ignore_spawns: Vec<String>,
    pub(crate) ignore_tops: Vec<String>,
    pub(crate) ignore_current: Option<Arc<BTreeSet<i32>>>,
    pub(crate) default_allowlist: Option<bool>,
}

impl Options {
    /// Default options: a grace period of [`DEFAULT_GRACE`], nothing ignored.
    pub fn new() -> Options {
        Options::default()
    }

    /// How long to wait for threads and tasks to finish before reporting them.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let options = leakcheck::Options::new().grace(Duration::ZERO);
    /// assert_eq!(options.grace_period(), Duration::ZERO);
    /// ```
    pub fn grace(mut self, grace: Duration) -> Options {
        self.grace = Some(grace);
        self
    }

    /// Ignores threads whose full name matches a glob (`*`, `?`, `[a-z]`), such as
    /// `"metrics-*"`. May be given several times.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid glob (`#[leakcheck::test(ignore_thread = ..)]` reports
    /// that at compile time instead).
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_thread("pool-worker-?");
    /// ```
    pub fn ignore_thread(mut self, pattern: &str) -> Options {
        match glob::Pattern::new(pattern) {
            Ok(pattern) => self.ignore_threads.push(pattern),
            Err(error) => {
                panic!("leakcheck: ignore_thread({pattern:?}) is not a valid glob: {error}")
            }
        }
        self
    }

    /// Ignores threads and tasks whose spawn backtrace has a frame whose function path or
    /// `file:line` contains `substring`, such as `"my_crate::telemetry::start"`. May be
    /// given several times.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_spawn("my_crate::telemetry");
    /// ```
    pub fn ignore_spawn(mut self, substring: &str) -> Options {
        self.ignore_spawns.push(substring.to_owned());
        self
    }

    /// Ignores threads whose current stack, from its top down to the first frame of your
    /// code, has a function whose path contains `substring` (goleak's
    /// `IgnoreTopFunction`): `"my_crate::pool::park"` ignores threads parked there however
    /// they were spawned. Linux only (the stack is captured with a signal); elsewhere it
    /// matches nothing. May be given several times.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_top("my_crate::pool::park");
    /// ```
    pub fn ignore_top(mut self, substring: &str) -> Options {
        self.ignore_tops.push(substring.to_owned());
        self
    }

    /// Whether the threads that well-known crates keep for the whole process by design
    /// (rayon's global pool, ...; the README lists them) are ignored. On by default; a
    /// `leakcheck.toml` can switch it off with `default_allowlist = false`.
    ///
    /// ```
    /// let options = leakcheck::Options::new().default_allowlist(false);
    /// ```
    pub fn default_allowlist(mut self, on: bool) -> Options {
        self.default_allowlist = Some(on);
        self
    }

    /// Ignores every thread alive right now (goleak's `IgnoreCurrent`): take this before
    /// starting the code under test, in a harness that inherits threads it cannot join.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_current();
    /// leakcheck::verify_none_with(&options);
    /// ```
    pub fn ignore_current(mut self) -> Options {
        let alive = crate::threads::list().unwrap_or_default();
        self.ignore_current = Some(Arc::new(alive.into_iter().collect()));
        self
    }

    /// The grace period a check with these options waits at most. `LEAKCHECK_GRACE` and
    /// a `leakcheck.toml` are merged in only when the check runs.
    pub fn grace_period(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }

    /// Whether rules of the ecosystem allowlist apply.
    pub(crate) fn uses_default_allowlist(&self) -> bool {
        self.default_allowlist.unwrap_or(true)
    }
}

/// What a check runs with: `options` (the test's own), plus the shared file's rules, its
/// grace and allowlist switch where the test set none, with `LEAKCHECK_GRACE` over every
/// grace; `None` under `LEAKCHECK=off`, when nothing is checked. An error is a bad variable
/// or file, said in full.
pub(crate) fn effective(options: &Options) -> Result<Option<Options>, &'static str> {
    let environment = environment()?;
    if environment.mode == Mode::Off {
        return Ok(None);
    }
    let mut merged = options.clone();
    if let Some(shared) = file::shared(environment.config_file.as_deref())? {
        merged
            .ignore_threads
            .extend(shared.ignore_threads.iter().cloned());
        merged
            .ignore_spawns
            .extend(shared.ignore_spawns.iter().cloned());
        merged
            .ignore_tops
            .extend(shared.ignore_tops.iter().cloned());
        merged.grace = merged.grace.or(shared.grace);
        merged.default_allowlist = merged.default_allowlist.or(shared.default_allowlist);
    }
    merged.grace = environment.grace.or(merged.grace);
    Ok(Some(merged))
}
