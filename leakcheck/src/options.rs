//! [`Options`]: the public builder for what a check ignores and how long it waits. Every
//! rule goes through the one grammar (`leakcheck_schema::rules`) that the attribute and
//! `leakcheck.toml` use, so a rule refused there is refused here.

use std::sync::Arc;
use std::time::Duration;

use leakcheck_schema::rules::RuleKind;

use crate::config::{Policy, Settings};
use crate::threads;

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
/// assert_eq!(options.get_grace(), Duration::from_millis(300));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    settings: Settings,
}

impl Options {
    /// Default options: a grace period of [`DEFAULT_GRACE`](crate::DEFAULT_GRACE), nothing
    /// ignored.
    pub fn new() -> Options {
        Options::default()
    }

    /// How long to wait for threads and tasks to finish before reporting them.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let options = leakcheck::Options::new().grace(Duration::ZERO);
    /// assert_eq!(options.get_grace(), Duration::ZERO);
    /// ```
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Options {
        self.settings.grace = Some(grace);
        self
    }

    /// Ends the process if the test body has not returned within `timeout`, printing
    /// everything its scope runs (the test's own thread first, with where it is stuck) and
    /// writing its JSON record: a hung test fails with a report instead of hanging CI (as
    /// `go test -timeout` does). Off by default; `LEAKCHECK_TIMEOUT` sets it for every test
    /// that sets none.
    /// Used by `#[leakcheck::test]`; a `verify_none*` call has no body to time.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let options = leakcheck::Options::new().timeout(Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Options {
        self.settings.timeout = Some(timeout);
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
    #[must_use]
    #[track_caller]
    pub fn ignore_thread(self, pattern: &str) -> Options {
        self.rule(RuleKind::Thread, pattern)
    }

    /// Ignores threads and tasks whose spawn backtrace has a frame whose function path or
    /// `file:line` contains `substring`, such as `"my_crate::telemetry::start"`. May be
    /// given several times.
    ///
    /// # Panics
    ///
    /// If `substring` is empty or blank: it would match every leak.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_spawn("my_crate::telemetry");
    /// ```
    #[must_use]
    #[track_caller]
    pub fn ignore_spawn(self, substring: &str) -> Options {
        self.rule(RuleKind::Spawn, substring)
    }

    /// Ignores threads whose current stack, from its top down to the first frame of your
    /// code, has a function whose path contains `substring` (goleak's
    /// `IgnoreTopFunction`): `"my_crate::pool::park"` ignores threads parked there however
    /// they were spawned. Linux only (the stack is captured with a signal); elsewhere it
    /// matches nothing. May be given several times.
    ///
    /// # Panics
    ///
    /// If `substring` is empty or blank: it would match every thread.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_top("my_crate::pool::park");
    /// ```
    #[must_use]
    #[track_caller]
    pub fn ignore_top(self, substring: &str) -> Options {
        self.rule(RuleKind::Top, substring)
    }

    /// Ignores child processes whose program's file name (`sleep`, the last part of its
    /// path) or whole command line (`sleep 600`, as reports show it) matches a glob. May be
    /// given several times.
    ///
    /// # Panics
    ///
    /// If `pattern` is empty or not a valid glob (`#[leakcheck::test(ignore_process = ..)]`
    /// reports that at compile time instead).
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_process("my-daemon");
    /// ```
    #[must_use]
    #[track_caller]
    pub fn ignore_process(self, pattern: &str) -> Options {
        self.rule(RuleKind::Process, pattern)
    }

    /// Accepts lost panics of threads whose spawn backtrace has a frame whose function path
    /// or `file:line` contains `substring` (a pool that counts its workers' panics:
    /// `"threadpool::spawn_in_pool"`), or whose panic's location (`file:line:column`)
    /// contains it. It decides lost panics only: that site's threads are still checked for
    /// leaks, and [`ignore_spawn`](Options::ignore_spawn) or
    /// [`ignore_thread`](Options::ignore_thread) never accept a panic. May be given several
    /// times.
    ///
    /// # Panics
    ///
    /// If `substring` is empty or blank: it would accept every lost panic (that is
    /// [`lost_panics(Policy::Off)`](Options::lost_panics)).
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_panic("threadpool::spawn_in_pool");
    /// ```
    #[must_use]
    #[track_caller]
    pub fn ignore_panic(self, substring: &str) -> Options {
        self.rule(RuleKind::Panic, substring)
    }

    /// What a child that exited and was never waited for (a zombie) does: reported on
    /// stderr without failing ([`Policy::Warn`], the default), failing the test
    /// ([`Policy::Fail`]), or nothing ([`Policy::Off`]). Over `LEAKCHECK_ZOMBIES`.
    ///
    /// ```
    /// let options = leakcheck::Options::new().zombies(leakcheck::Policy::Fail);
    /// ```
    #[must_use]
    pub fn zombies(mut self, policy: Policy) -> Options {
        self.settings.zombies = Some(policy);
        self
    }

    /// What a panic that ended a thread of the test, and that nobody observed (the thread
    /// was never joined), does: fail the test ([`Policy::Fail`], the default), be reported
    /// without failing ([`Policy::Warn`]), or nothing ([`Policy::Off`]).
    /// Over `LEAKCHECK_LOST_PANICS`.
    ///
    /// ```
    /// let options = leakcheck::Options::new().lost_panics(leakcheck::Policy::Warn);
    /// ```
    #[must_use]
    pub fn lost_panics(mut self, policy: Policy) -> Options {
        self.settings.lost_panics = Some(policy);
        self
    }

    /// What task counts leakcheck cannot tell apart do (a build without
    /// `--cfg tokio_unstable`, where tokio counts tasks but names none): fail the test
    /// ([`Policy::Fail`], the default) or be reported without failing ([`Policy::Warn`]),
    /// for a suite with a known long-lived task no rule can name; [`Policy::Off`] reads as
    /// `Warn`, since such counts are always said. Over `LEAKCHECK_UNTRACKED_TASKS`.
    ///
    /// ```
    /// let options = leakcheck::Options::new().untracked_tasks(leakcheck::Policy::Warn);
    /// ```
    #[must_use]
    pub fn untracked_tasks(mut self, policy: Policy) -> Options {
        // Such counts are always said: `Off` reads as `Warn`.
        let policy = if policy == Policy::Off {
            Policy::Warn
        } else {
            policy
        };
        self.settings.untracked_tasks = Some(policy);
        self
    }

    /// After the report, ends each leaked child process and its descendants (`SIGTERM`,
    /// then `SIGKILL` after half a second) and says so in the report: so a leaked daemon
    /// does not outlive the test run. Off by default, or `LEAKCHECK_KILL_PROCESSES` where
    /// the test says nothing.
    ///
    /// ```
    /// let options = leakcheck::Options::new().kill_leaked_processes(true);
    /// ```
    #[must_use]
    pub fn kill_leaked_processes(mut self, on: bool) -> Options {
        self.settings.kill_processes = Some(on);
        self
    }

    /// Whether the threads that well-known crates keep for the whole process by design
    /// (rayon's global pool, ...; the README lists them) are ignored. On by default; a
    /// `leakcheck.toml` can switch it off with `default_allowlist = false`.
    ///
    /// ```
    /// let options = leakcheck::Options::new().default_allowlist(false);
    /// ```
    #[must_use]
    pub fn default_allowlist(mut self, on: bool) -> Options {
        self.settings.default_allowlist = Some(on);
        self
    }

    /// Ignores every thread alive right now (goleak's `IgnoreCurrent`): take this before
    /// starting the code under test, in a harness that inherits threads it cannot join.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_current();
    /// leakcheck::verify_none_with(&options);
    /// ```
    #[must_use]
    pub fn ignore_current(mut self) -> Options {
        let alive = threads::list().unwrap_or_default();
        self.settings.ignore_current = Some(Arc::new(alive.into_iter().collect()));
        self
    }

    /// The grace period a check with these options waits at most. Where these options set
    /// none, `LEAKCHECK_GRACE` or a `leakcheck.toml` gives it when the check runs.
    pub fn get_grace(&self) -> Duration {
        self.settings.grace_period()
    }

    /// What the check runs with, before the shared file and the environment are merged in.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    #[track_caller]
    fn rule(mut self, kind: RuleKind, text: &str) -> Options {
        match kind.parse(text) {
            Ok(rule) => self.settings.add_rule(rule),
            Err(error) => panic!("leakcheck: Options::{}({text:?}): {error}", kind.key()),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "Options::ignore_spawn(\"\"): `ignore_spawn`: an empty rule")]
    fn an_empty_spawn_rule_is_refused() {
        let _ = Options::new().ignore_spawn("");
    }

    #[test]
    #[should_panic(expected = "Options::ignore_top(\" \"): `ignore_top`: an empty rule")]
    fn a_blank_top_rule_is_refused() {
        let _ = Options::new().ignore_top(" ");
    }

    #[test]
    #[should_panic(
        expected = "Options::ignore_thread(\"[\"): `ignore_thread`: \"[\" is not a glob"
    )]
    fn a_bad_glob_is_refused() {
        let _ = Options::new().ignore_thread("[");
    }
}
