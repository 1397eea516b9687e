//! Options: how long to wait and what to ignore. Per-test options from the attribute and
//! from code are merged here, in one place.

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
    pub(crate) ignore_current: Option<Arc<BTreeSet<i32>>>,
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

    /// The grace period a check with these options waits at most.
    pub fn grace_period(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }
}

/// The environment variable that switches task spawn backtraces on.
pub(crate) const TASK_BACKTRACE_VAR: &str = "LEAKCHECK_TASK_BACKTRACE";

/// Whether task spawn hooks capture a backtrace (`LEAKCHECK_TASK_BACKTRACE=1`), read once.
/// Without it a leaked task is reported with its spawn line and parent, not its callers.
pub(crate) fn task_backtraces() -> Result<bool, String> {
    static VALUE: std::sync::OnceLock<Result<bool, String>> = std::sync::OnceLock::new();
    VALUE
        .get_or_init(|| match std::env::var(TASK_BACKTRACE_VAR) {
            Err(std::env::VarError::NotPresent) => Ok(false),
            Ok(value) => parse_switch(&value).ok_or_else(|| {
                format!(
                    "leakcheck: {TASK_BACKTRACE_VAR}={value:?} is not understood: expected 1, \
                     true, yes or on (capture task spawn backtraces), or 0, false, no or off"
                )
            }),
            Err(std::env::VarError::NotUnicode(value)) => Err(format!(
                "leakcheck: {TASK_BACKTRACE_VAR}={value:?} is not valid UTF-8: expected 1 or 0"
            )),
        })
        .clone()
}

fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_switch;

    #[test]
    fn switches_read_like_people_write_them() {
        for on in ["1", "true", "YES", " on "] {
            assert_eq!(parse_switch(on), Some(true), "{on:?}");
        }
        for off in ["0", "false", "No", "off", ""] {
            assert_eq!(parse_switch(off), Some(false), "{off:?}");
        }
        for bad in ["2", "enabled", "tru"] {
            assert_eq!(parse_switch(bad), None, "{bad:?}");
        }
    }
}
