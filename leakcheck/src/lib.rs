//! Fail the test that leaked an OS thread or a tokio task, with the line that spawned it
//! and what it is doing now.
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
//! async fn client_closes() {}
//! ```
//!
//! `#[leakcheck::test]` runs the test in a [`Scope`] named after it. Every thread and task
//! the test starts, and every one those start, belongs to that scope; when the body
//! returns, whatever the scope still runs after a grace period fails the test, with a
//! [`Report`] naming each thread or task, where it was spawned and where it is blocked.
//! Tests that run in parallel never blame each other: ownership follows the spawn, not
//! timing.
//!
//! An async test's tasks are checked inside its runtime, before the runtime is dropped
//! (dropping it would cancel them and hide the leak); then the runtime is shut down, waiting
//! at most the grace period for `spawn_blocking` work, and its threads are checked. On a
//! plain build tokio tells how many tasks are alive; with `--cfg tokio_unstable` leakcheck
//! installs tokio's task hooks and names each task, its spawn line and its parent, and with
//! the `taskdump` feature where it is awaiting. [`TokioBuilderExt::with_leakcheck`] gives a
//! runtime you build yourself the same hooks.
//!
//! Attribute arguments: `grace = "300ms"`, `ignore_thread = "glob"`, `ignore_spawn =
//! "path or file:line"`, `ignore_top = "function path"`, each ignore may repeat; a wrong one
//! is a compile error pointing at it. A `leakcheck.toml` (found from the crate's manifest
//! directory up to the workspace root) adds rules for every test; a default allowlist
//! ignores threads that popular crates keep for the whole process (rayon's global pool,
//! ...).
//!
//! For CI: `LEAKCHECK=fail|warn|off`, `LEAKCHECK_GRACE=2s`, `LEAKCHECK_REPORT=path` (one
//! JSON line per checked test), `LEAKCHECK_CONFIG=path`, and `LEAKCHECK_TASK_BACKTRACE=1`
//! (a backtrace at every task spawn, about 8 µs each, so off by default). A value that is
//! not understood fails the check with a message naming the variable.
//!
//! Without the attribute, [`verify_none`] checks the current scope, or, outside every
//! scope, the whole process (as in a `harness = false` test's `main`), and
//! [`verify_test_main!`] checks a whole test binary when it exits.

mod config;
mod exit_gate;
mod filter;
mod frames;
mod harness;
// Written by the Linux spawn hook only; on other platforms it stays empty.
#[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
mod registry;
mod report;
mod scope;
mod tasks;
mod threads;
mod verify;

pub use config::{DEFAULT_GRACE, Options};
pub use leakcheck_macros::test;
pub use report::{Frame, Identity, Leak, LeakKind, Report};
pub use scope::Scope;
pub use tasks::TokioBuilderExt;

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
    if let Err(report) = find(options) {
        fail_or_warn(&report);
    }
}

/// A report from `verify_none`: a panic, or under `LEAKCHECK=warn` a printed warning.
#[track_caller]
fn fail_or_warn(report: &Report) {
    match config::mode() {
        config::Mode::Warn => eprintln!("{report}\n{}", harness::WARN_ONLY),
        _ => panic!("{report}"),
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
    verify::find_configured(target, options)
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
/// `LEAKCHECK=warn` prints the report without failing; `LEAKCHECK=off` skips the check.
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
        #[$crate::__private::ctor::ctor(unsafe, anonymous, crate_path = $crate::__private::ctor)]
        fn leakcheck_verify_test_main() {
            $crate::__private::install_exit_gate(
                ::core::option_env!("CARGO_MANIFEST_DIR"),
                $options,
            );
        }
    };
}

/// Used by the code `#[leakcheck::test]` and `verify_test_main!` generate; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::exit_gate::install as install_exit_gate;
    pub use crate::harness::{TestOutcome, TestSpec, run_async_test, run_test};
    pub use crate::tasks::Flavor;
    pub use ctor;
}
