//! Fail the test that leaked an OS thread, a tokio task or a child process, or lost a
//! panic in a thread nobody joined, with the line that started it and what it is doing now.
//!
//! ```no_run
//! #[leakcheck::test]
//! fn pool_shuts_down() {
//!     let worker = std::thread::spawn(|| 40 + 2);
//!     assert_eq!(worker.join().unwrap(), 42); // joined: the test passes
//! }
//!
//! #[leakcheck::test] // above tokio's attribute, which it absorbs
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn server_stops() {
//!     let task = tokio::spawn(async { 6 * 7 });
//!     assert_eq!(task.await.unwrap(), 42); // awaited: the test passes
//! }
//!
//! #[leakcheck::test] // alone on an async fn: a current_thread runtime
//! async fn client_closes() {
//!     let output = tokio::process::Command::new("true").output().await; // waited for
//!     assert!(output.unwrap().status.success());
//! }
//! ```
//!
//! `#[leakcheck::test]` runs the test in a [`Scope`] named after it. Every thread, task and
//! child process the test starts, and every one those start, belongs to that scope; when
//! the body returns, whatever the scope still runs after a grace period fails the test,
//! with a [`Report`] naming each, where it was started and where it is blocked. A panic
//! that ended one of its threads, and that nobody joined, fails it too. Tests that run in
//! parallel never blame each other: ownership follows the spawn, not timing.
//!
//! An async test's tasks are checked inside its runtime, before the runtime is dropped
//! (dropping it would cancel them and hide the leak); then the runtime is shut down, waiting
//! at most the grace period for `spawn_blocking` work, and its threads and children are
//! checked. On a plain build tokio tells how many tasks are alive; with
//! `--cfg tokio_unstable` leakcheck installs tokio's task hooks and names each task, its
//! spawn line and its parent, and with the `taskdump` feature where it is awaiting.
//! [`TokioBuilderExt::with_leakcheck`] gives a runtime you build yourself the same hooks.
//!
//! Every setting (attribute arguments, [`Options`], `leakcheck.toml`, `LEAKCHECK_*`
//! variables), the report's fields and the JSON record are in
//! [`reference`](mod@reference). Without the attribute, [`verify_none`] checks the current
//! scope, or, outside every scope, the whole process (as in a `harness = false` test's
//! `main`), and [`verify_test_main!`] checks a whole test binary when it exits.
//! `cargo leakcheck` (the `cargo-leakcheck` crate) runs a suite with tokio's hooks on and
//! sums its leaks up by spawn site.
//!
//! A report's facts (a thread's state, a process's, a lost panic's) are in [`report`]. In a
//! running service, [`service`]'s [`Snapshot::take`](service::Snapshot::take) groups every
//! live thread, task and child by spawn site,
//! [`Snapshot::growth_since`](service::Snapshot::growth_since) compares two, and a
//! [`Watcher`](service::Watcher) raises an [`Alarm`](service::Alarm) for a site that keeps
//! growing and, with the `metrics` feature, publishes each site's counts through the
//! `metrics` facade.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// The modules form layers, each importing only from the layers it may use
// (`tests/layers.rs` keeps it so). The check pipeline is one stack; the service view a side
// branch beside it, on the same sources. Bottom up:
// foundation: lock (the bounded globals' mutex), paths (how reports show them), unwind
// (spawn stacks, kept at spawn, unwound for a report), interpose (the real functions behind
// the hooks, and the rules every hook keeps)
#[cfg(lc_thread_hook)]
mod interpose;
mod lock;
mod paths;
mod unwind;
// leaves: scope ids and the per-thread context, frames (symbols, the user's frames),
// config (environment, leakcheck.toml, the default allowlist), clock (spawn times)
mod clock;
mod config;
mod frames;
mod scope;
// store and data: registry (spawn records), report (what a check hands back, as facts)
mod registry;
pub mod report;
// sources: threads (the spawn hook, /proc, current stacks), then tasks (tokio), then
// processes (the spawn hooks, /proc, orphans), then panics (the raise, the hook)
mod panics;
mod processes;
mod tasks;
mod threads;
// rules and start-up: options, filter (rules, the process-wide pools), init (before main)
mod filter;
mod init;
mod options;
// the check pipeline: verify (the one retry loop) -> describe (suspects -> leaks) ->
// outcome (fail / warn, the JSON record) -> watchdog (a test that cannot return) ->
// harness, exit_gate (what the attribute and verify_test_main! call), preload (the exit
// gate installed by `cargo leakcheck`'s preloaded library)
mod describe;
mod exit_gate;
mod harness;
mod outcome;
#[cfg(unix)]
mod preload;
mod verify;
mod watchdog;
// the service view, beside the pipeline: snapshot (live work by spawn site), watcher
mod snapshot;
mod watcher;

#[doc = include_str!("../docs/reference.md")]
pub mod reference {}

/// Leak-checks a test: runs it in a [`Scope`] named after it, and fails it, with the
/// [`Report`], if an OS thread, a tokio task or a child process it started is still running
/// after the grace period, or a thread it started ended by a panic nobody observed.
///
/// On a sync fn it checks OS threads, child processes and lost panics. On an `async fn` it
/// checks the test's tasks too: it builds a current_thread tokio
/// runtime (as `#[tokio::test]` would) and checks the test's tasks inside it before it is
/// dropped, then its threads. Placed *above* `#[tokio::test(..)]`, it absorbs tokio's
/// attribute and builds the runtime tokio's arguments describe (`flavor`,
/// `worker_threads`, `start_paused`, `crate`, `name`, `unhandled_panic`); placed below it,
/// it would only see tokio's expansion, whose runtime cancels the tasks first, so that is a
/// compile error. A `#[test]` written next to it is dropped (it would register the test
/// twice); `#[should_panic]` and a `Result` or `ExitCode` return type work as with `#[test]`.
///
/// With other test attributes, each test, and each case of a parametrised one, is
/// registered once and checked on its own, in either order: `#[rstest]` (above or below,
/// leakcheck goes on each case), `#[test_case(..)]`, `#[test_log::test]` (below leakcheck,
/// `#[test_log::test(tokio::test(..))]` has its tokio arguments taken over) and
/// `#[serial_test::serial]`.
///
/// Arguments, each a string literal but the last; the ignore rules may repeat:
/// - `grace = "300ms"`: how long to wait before calling what is left a leak (500 ms);
/// - `timeout = "30s"`: a body that has not returned by then ends the process with a report
///   of everything the test runs, its own thread first (off);
/// - `ignore_thread = "metrics-*"`: a glob over a thread's full name;
/// - `ignore_spawn = "my_crate::telemetry::start"` (or `"src/lib.rs:40"`): part of a
///   function path or `file:line` on the spawn path of a thread, task or process;
/// - `ignore_top = "my_crate::pool::park"`: part of a function path at the top of a
///   thread's current stack;
/// - `ignore_process = "sleep"`: a glob over a child process's program name or whole
///   command line;
/// - `ignore_panic = "threadpool::spawn_in_pool"`: accepts lost panics of threads spawned
///   there (part of a function path or `file:line` on the spawn path), or whose panic's
///   location contains it; it decides lost panics only;
/// - `zombies = "fail"`: what a child that exited and was never waited for does: `"warn"`
///   (the default), `"fail"` or `"off"`;
/// - `lost_panics = "warn"`: what a panic nobody observed does: `"fail"` (the default),
///   `"warn"` or `"off"`;
/// - `untracked_tasks = "warn"`: what task counts leakcheck cannot tell apart do (a build
///   without `--cfg tokio_unstable`): `"fail"` (the default) or `"warn"`;
/// - `kill_leaked_processes = true`: end each leaked child process and its descendants
///   after the report (`false`, the default).
///
/// An unknown argument, a value that is not a duration or a glob, an empty rule, or a
/// tokio argument tokio would refuse is a compile error pointing at it.
///
/// Which setting wins: the test's own argument, then a `LEAKCHECK_*` variable, then
/// `leakcheck.toml`, then the default; rules add up from all of them (the reference,
/// [`leakcheck::reference`](crate::reference), has every variable and key).
///
/// ```
/// #[leakcheck::test]
/// fn pool_shuts_down() {
///     let worker = std::thread::spawn(|| 40 + 2);
///     assert_eq!(worker.join().unwrap(), 42);
/// }
///
/// #[leakcheck::test]
/// #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn server_stops() {
///     let task = tokio::spawn(async { 6 * 7 });
///     assert_eq!(task.await.unwrap(), 42);
/// }
///
/// #[leakcheck::test(grace = "300ms", ignore_thread = "metrics-*")]
/// fn with_options() {}
/// ```
pub use leakcheck_macros::test;

/// `#[leakcheck::test]` where it moved itself below another runtime's test attribute; not
/// to be written by hand.
#[doc(hidden)]
pub use leakcheck_macros::checked as __checked;

pub use config::{DEFAULT_GRACE, Policy};
pub use leakcheck_schema::rules::Rule;
pub use options::Options;
pub use report::{Leak, LeakKind, Report};
pub use scope::Scope;
pub use tasks::TokioBuilderExt;

/// The service view: what a running program has alive, by spawn site
/// ([`Snapshot`](crate::snapshot::Snapshot)), its growth between two looks, and a watcher
/// that takes snapshots on an interval, raises an alarm when a site keeps growing and, with
/// the `metrics` feature, publishes gauges per site (`SiteGauges`).
///
/// ```
/// let snapshot = leakcheck::service::Snapshot::take();
/// println!("{} threads alive", snapshot.threads());
/// ```
pub mod service {
    pub use crate::snapshot::{
        Growth, Site, SiteGroup, SiteGrowth, SiteKind, Snapshot, WaitingThreads,
    };
    #[cfg(feature = "metrics")]
    pub use crate::watcher::SiteGauges;
    pub use crate::watcher::{Alarm, Watcher, WatcherHandle};
}

/// Checks now, with default options, and panics with the report if anything leaked.
///
/// Inside a scope (a `#[leakcheck::test]`, or after [`Scope::enter`]) it checks that
/// scope. Outside every scope it checks the whole process: every thread but the caller and
/// those that were running before `main`. That is the check a custom harness
/// (`harness = false`) runs at the end of its `main`.
///
/// ```
/// let worker = std::thread::spawn(|| ());
/// worker.join().unwrap();
/// leakcheck::verify_none();
/// ```
#[track_caller]
pub fn verify_none() {
    verify_none_with(&Options::default());
}

/// [`verify_none`] with options.
///
/// ```
/// use std::time::Duration;
/// leakcheck::verify_none_with(&leakcheck::Options::new().grace(Duration::from_millis(50)));
/// ```
#[track_caller]
pub fn verify_none_with(options: &Options) {
    match scope::current() {
        scope::PROCESS => verify_and_conclude(verify::Target::Process, None, options),
        scope => verify_and_conclude(verify::Target::Scope(scope), Some(scope), options),
    }
}

/// [`verify_none_with`], returning the report instead of panicking.
///
/// ```
/// match leakcheck::find(&leakcheck::Options::new()) {
///     Ok(()) => {}
///     Err(report) => eprintln!("{report}"),
/// }
/// ```
pub fn find(options: &Options) -> Result<(), Report> {
    let target = match scope::current() {
        scope::PROCESS => verify::Target::Process,
        scope => verify::Target::Scope(scope),
    };
    check_configured(target, options)
}

impl Scope {
    /// Checks this scope with default options; panics with the report if anything
    /// it owns is still running after the grace period.
    ///
    /// ```
    /// let scope = leakcheck::Scope::enter();
    /// scope.verify_none();
    /// ```
    #[track_caller]
    pub fn verify_none(&self) {
        self.verify_none_with(&Options::default());
    }

    /// [`Scope::verify_none`] with options.
    ///
    /// ```
    /// use std::time::Duration;
    /// let scope = leakcheck::Scope::enter();
    /// scope.verify_none_with(&leakcheck::Options::new().grace(Duration::from_millis(50)));
    /// ```
    #[track_caller]
    pub fn verify_none_with(&self, options: &Options) {
        verify_and_conclude(verify::Target::Scope(self.id()), Some(self.id()), options);
    }

    /// Checks this scope and returns the report instead of panicking.
    ///
    /// ```
    /// let scope = leakcheck::Scope::enter();
    /// assert!(scope.find(&leakcheck::Options::new()).is_ok());
    /// ```
    pub fn find(&self, options: &Options) -> Result<(), Report> {
        check_configured(verify::Target::Scope(self.id()), options)
    }
}

/// A check asked for from code: nothing under `LEAKCHECK=off`; else `options` merged with
/// the shared file and the environment.
///
/// # Panics
///
/// If an environment variable or the shared file is not understood, with the message.
fn check_configured(target: verify::Target, options: &Options) -> Result<(), Report> {
    match config::effective(options.settings()) {
        Ok(Some(settings)) => describe::check(target, &settings),
        Ok(None) => Ok(()),
        Err(message) => outcome::fail(message.to_owned()),
    }
}

/// `verify_none*`: the check, then the one outcome policy (JSON record, warn or fail). The
/// failing panic is the caller's: libtest's "panicked at" names the test's line.
#[track_caller]
fn verify_and_conclude(target: verify::Target, scope: Option<scope::ScopeId>, options: &Options) {
    panics::watch();
    let settings = match config::effective(options.settings()) {
        Ok(Some(settings)) => settings,
        Ok(None) => return,
        Err(message) => outcome::fail(message.to_owned()),
    };
    let found = describe::check(target, &settings);
    let name = scope.map(scope::label);
    match outcome::conclude(
        outcome::Check::Call {
            scope: name.as_deref(),
        },
        found,
        outcome::Policies::of(&settings),
    ) {
        Err(message) => panic!("{message}"),
        Ok(outcome::Verdict::Clean | outcome::Verdict::Warned) => {}
        Ok(outcome::Verdict::Fail(report)) => panic!("{report}"),
    }
}

/// Fails the whole test binary, after libtest has printed its results, if any thread or
/// task outlives its tests: goleak's `VerifyTestMain`, with no attribute on any test.
///
/// Put it once at the top of a test file (an integration test, or the crate's `lib.rs`
/// under `#[cfg(test)]`), optionally with an [`Options`] expression. When the binary exits,
/// every thread and task outside a `#[leakcheck::test]` (those were checked by their test)
/// is checked like [`verify_none`] checks the process. Each leak names the plain `#[test]`
/// that spawned it (libtest runs every test on a thread named after it), its spawn line,
/// name and state; what was spawned from `main` or by the C library is reported as
/// unattributed. Under `cargo nextest run`, one process per test, the leaking test fails.
///
/// `LEAKCHECK=warn` prints the report without failing; `LEAKCHECK=off` skips the check. It
/// compiles in a file under `#![forbid(unsafe_code)]`.
///
/// ```
/// // At the top of tests/integration.rs; here in a doctest's `main`, which it checks too.
/// leakcheck::verify_test_main!();
///
/// fn main() {
///     std::thread::spawn(|| ()).join().unwrap(); // joined: the binary exits cleanly
/// }
/// ```
///
/// With options:
///
/// ```
/// leakcheck::verify_test_main!(leakcheck::Options::new().ignore_thread("metrics-*"));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! verify_test_main {
    () => {
        $crate::verify_test_main!($crate::Options::new());
    };
    ($options:expr $(,)?) => {
        // A constructor, as `ctor` would write it: a function pointer in the section the
        // platform's loader runs before `main`. Written out here because `ctor`'s expansion
        // allows `unsafe_code`, which a crate under `#![forbid(unsafe_code)]` may not (E0453);
        // tokens from this macro are not linted in the user's crate, so no allow is needed.
        const _: () = {
            #[used]
            #[cfg_attr(
                any(
                    target_os = "linux",
                    target_os = "android",
                    target_os = "freebsd",
                    target_os = "netbsd",
                    target_os = "openbsd",
                    target_os = "dragonfly",
                    target_os = "illumos",
                    target_os = "haiku"
                ),
                unsafe(link_section = ".init_array")
            )]
            #[cfg_attr(
                target_vendor = "apple",
                unsafe(link_section = "__DATA,__mod_init_func,mod_init_funcs")
            )]
            #[cfg_attr(
                all(target_os = "windows", any(target_env = "gnu", target_env = "msvc")),
                unsafe(link_section = ".CRT$XCU")
            )]
            static LEAKCHECK_VERIFY_TEST_MAIN: extern "C" fn() = {
                extern "C" fn leakcheck_verify_test_main() {
                    $crate::__private::install_exit_gate(
                        ::core::option_env!("CARGO_MANIFEST_DIR"),
                        $options,
                    );
                }
                leakcheck_verify_test_main
            };
        };
    };
}

/// Used by the code `#[leakcheck::test]` and `verify_test_main!` generate, and by the library
/// `cargo leakcheck` preloads; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::exit_gate::install as install_exit_gate;
    pub use crate::harness::{TestOutcome, TestSpec, run_async_test, run_test};
    #[cfg(unix)]
    pub use crate::preload::install as install_preloaded;
    pub use crate::tasks::Flavor;

    /// How many scopes the registry keeps entries for: what the soak test holds flat.
    pub fn scope_entries() -> usize {
        crate::registry::scope_entries()
    }
}
