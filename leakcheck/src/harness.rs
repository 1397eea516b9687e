//! What `#[leakcheck::test]` expands to calls this: run the body in a scope named after the
//! test, check the scope, and fail the test if it leaked, keeping the test's own failure
//! as the headline when it has one.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::time::Instant;

use crate::config::{self, Settings};
use crate::options::Options;
use crate::outcome::{self, Check, Policies, Verdict};
use crate::report::Ending;
use crate::report::Report;
use crate::scope::Scope;
use crate::tasks::{Flavor, TestRuntime};
use crate::watchdog::{self, Watch};
use crate::{describe, threads, verify};

/// Where the test is, as the macro sees it.
#[derive(Clone, Copy, Debug)]
pub struct TestSpec {
    /// `module_path!()` at the test: the crate name, then the modules.
    pub module_path: &'static str,
    /// The test function's name.
    pub fn_name: &'static str,
    /// Whether the test has `#[should_panic]`.
    pub should_panic: bool,
    /// `CARGO_MANIFEST_DIR` at compile time: where the search for `leakcheck.toml` starts
    /// when the binary runs without cargo.
    pub manifest_dir: Option<&'static str>,
}

impl TestSpec {
    /// The name libtest and nextest show: the module path without the crate, then the fn,
    /// each without a raw identifier's `r#` (`fn r#async()` is the test `async`).
    pub fn test_name(&self) -> String {
        let unraw = |name: &str| name.strip_prefix("r#").unwrap_or(name).to_owned();
        let mut path: Vec<String> = self.module_path.split("::").skip(1).map(unraw).collect();
        path.push(unraw(self.fn_name));
        path.join("::")
    }
}

/// The return types a test may have, told apart into pass and fail.
pub trait TestOutcome: Sized {
    /// Whether the test passed (before leaks are considered).
    fn passed(&self) -> bool;
    /// A passing value, for a `#[should_panic]` test that must now fail by not panicking.
    fn passing() -> Option<Self>;
}

impl TestOutcome for () {
    fn passed(&self) -> bool {
        true
    }
    fn passing() -> Option<Self> {
        Some(())
    }
}

impl<T, E> TestOutcome for Result<T, E> {
    fn passed(&self) -> bool {
        self.is_ok()
    }
    fn passing() -> Option<Self> {
        None
    }
}

/// libtest passes a test that returns `ExitCode::SUCCESS` and fails any other code.
impl TestOutcome for std::process::ExitCode {
    fn passed(&self) -> bool {
        *self == std::process::ExitCode::SUCCESS
    }
    fn passing() -> Option<Self> {
        Some(std::process::ExitCode::SUCCESS)
    }
}

/// Runs a test body in its own scope and fails the test if the scope leaked.
#[track_caller]
pub fn run_test<R: TestOutcome>(spec: &TestSpec, options: &Options, body: impl FnOnce() -> R) -> R {
    let Some(settings) = configure(spec, options) else {
        return body();
    };
    crate::panics::watch();
    let scope = Scope::enter_named(spec.test_name());
    let timeout = arm_timeout(spec, &scope, &settings, None);
    let outcome = catch_unwind(AssertUnwindSafe(|| __rust_begin_short_backtrace(body)));
    drop(timeout);
    let check = describe::check(verify::Target::Scope(scope.id()), &settings);
    drop(scope);
    finish(spec, outcome, check, Policies::of(&settings))
}

/// The options the test's check runs with, or `None` under `LEAKCHECK=off` (the test runs
/// as a plain test).
///
/// If an environment variable or `leakcheck.toml` is not understood, the test fails with
/// the message before its body runs (the user's setting is at fault: no location inside
/// leakcheck).
fn configure(spec: &TestSpec, options: &Options) -> Option<Settings> {
    if let Some(dir) = spec.manifest_dir {
        config::remember_manifest_dir(dir);
    }
    match config::effective(options.settings()) {
        Ok(settings) => settings,
        Err(message) => outcome::fail(message.to_owned()),
    }
}

/// Runs an async test body on a runtime built from `builder` (as `#[tokio::test]` would)
/// in its own scope. Its tasks are checked inside the runtime, which keeps running them
/// through the grace period (dropping it would cancel them and hide the leak); then the
/// runtime is shut down, waiting at most the grace period for `spawn_blocking` work, and
/// the threads are checked.
#[track_caller]
pub fn run_async_test<R: TestOutcome>(
    spec: &TestSpec,
    options: &Options,
    builder: tokio::runtime::Builder,
    flavor: Flavor,
    body: Pin<&mut dyn Future<Output = R>>,
) -> R {
    let Some(settings) = configure(spec, options) else {
        let runtime = TestRuntime::build(builder, flavor).expect("Failed building the Runtime");
        return runtime.block_on(body);
    };
    crate::panics::watch();
    let scope = Scope::enter_named(spec.test_name());
    let runtime = TestRuntime::build(builder, flavor).expect("Failed building the Runtime");
    let timeout = arm_timeout(spec, &scope, &settings, Some(&runtime));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        __rust_begin_short_backtrace(|| runtime.block_on(body))
    }));
    drop(timeout);
    let returned = Instant::now();
    // The check runs the test's tasks on its runtime: on current_thread, on this thread,
    // which a task that never returns from a blocking call keeps forever.
    let stall = watchdog::arm(
        settings.grace_period() + watchdog::STALL_MARGIN,
        Watch {
            test_passed: passed_on_its_own(spec, &outcome),
            ..watch(spec, &scope, &settings, Some(&runtime), Ending::Stalled)
        },
    );
    let tasks = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(describe::check_tasks(scope.id(), &settings, &runtime))
    }))
    // The runtime itself panicked (say `unhandled_panic = "shutdown_runtime"`): its tasks
    // are gone with it.
    .unwrap_or(Ok(()));
    drop(stall);
    let shutdown = Instant::now();
    let policies = Policies::of(&settings);
    runtime.shutdown_timeout(settings.grace_period());
    let threads_settings = Settings {
        grace_spent: shutdown.elapsed(),
        ..settings
    };
    // The threads' report says how long they outlived the body, shutdown included.
    let threads = describe::check_threads(verify::Target::Scope(scope.id()), &threads_settings)
        .map_err(|report| report.waited_since(returned));
    drop(scope);
    let check = match (tasks, threads) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(report), Ok(())) | (Ok(()), Err(report)) => Err(report),
        (Err(tasks), Err(threads)) => Err(tasks.merge(threads)),
    };
    finish(spec, outcome, check, policies)
}

/// With a `timeout`, a deadline that ends the process with a report if the body has not
/// returned by then.
fn arm_timeout(
    spec: &TestSpec,
    scope: &Scope,
    settings: &Settings,
    runtime: Option<&TestRuntime>,
) -> Option<watchdog::Deadline> {
    let timeout = settings.timeout?;
    let watch = watch(spec, scope, settings, runtime, Ending::TimedOut(timeout));
    Some(watchdog::arm(timeout, watch))
}

/// What the watchdog reports of this test if it gets stuck, from now.
fn watch(
    spec: &TestSpec,
    scope: &Scope,
    settings: &Settings,
    runtime: Option<&TestRuntime>,
    ending: Ending,
) -> Watch {
    Watch {
        scope: scope.id(),
        test: spec.test_name(),
        tid: threads::current_tid(),
        settings: settings.clone(),
        runtime: runtime.map(|runtime| runtime.handle().clone()),
        test_passed: false,
        ending,
        since: Instant::now(),
    }
}

/// Whether the test passed on its own, leaks aside, as libtest will judge it.
fn passed_on_its_own<R: TestOutcome>(spec: &TestSpec, outcome: &std::thread::Result<R>) -> bool {
    match outcome {
        Ok(value) => value.passed() && !spec.should_panic,
        Err(_) => spec.should_panic,
    }
}

/// Runs the test body. Its name is the marker std's short backtraces stop at
/// (`RUST_BACKTRACE=1` prints frames from the panic up to the first function whose name
/// holds it, as libtest's own runner does around every test): a test that panics shows its
/// own frames, none of leakcheck's or libtest's beneath them. Never inlined, and the body's
/// result is kept past the call, so that the frame is there to be found.
#[inline(never)]
fn __rust_begin_short_backtrace<R>(body: impl FnOnce() -> R) -> R {
    let result = body();
    std::hint::black_box(());
    result
}

/// Ends the test with its verdict (`outcome::conclude` decides what the check's result does):
/// its own failure stays the headline, with the report added; a test that passed but
/// leaked fails with the report (under `LEAKCHECK=warn` it only prints it).
#[track_caller]
fn finish<R: TestOutcome>(
    spec: &TestSpec,
    outcome: std::thread::Result<R>,
    check: Result<(), Report>,
    policies: Policies,
) -> R {
    let passed = passed_on_its_own(spec, &outcome);
    let name = spec.test_name();
    let report = match outcome::conclude(
        Check::Test {
            name: &name,
            passed,
        },
        check,
        policies,
    ) {
        Err(message) => outcome::fail(message),
        Ok(Verdict::Clean | Verdict::Warned) => {
            return outcome.unwrap_or_else(|panic| resume_unwind(panic));
        }
        Ok(Verdict::Fail(report)) => report,
    };
    match outcome {
        Ok(value) if value.passed() => outcome::fail(report.to_string()),
        Ok(failed) => {
            eprintln!("{report}");
            failed
        }
        Err(panic) if spec.should_panic => match R::passing() {
            Some(value) => {
                eprintln!(
                    "{report}\nleakcheck: the test panicked as expected but leaked; it is \
                     failed by returning instead of panicking"
                );
                value
            }
            None => resume_unwind(panic),
        },
        Err(panic) => {
            eprintln!("{report}");
            resume_unwind(panic)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TestSpec;

    fn spec(module_path: &'static str, fn_name: &'static str) -> TestSpec {
        TestSpec {
            module_path,
            fn_name,
            should_panic: false,
            manifest_dir: None,
        }
    }

    #[test]
    fn test_names_are_libtest_s() {
        assert_eq!(spec("threads", "leaks").test_name(), "leaks");
        assert_eq!(spec("my_crate::a::b", "leaks").test_name(), "a::b::leaks");
        assert_eq!(
            spec("flume::r#async", "r#async_recv").test_name(),
            "async::async_recv"
        );
    }

    #[test]
    fn frames_knows_where_test_bodies_are_called() {
        // `frames` cuts spawn backtraces at these functions, by path, as strings.
        let module = module_path!().trim_end_matches("::tests");
        for function in ["run_test", "run_async_test", "__rust_begin_short_backtrace"] {
            let path = format!("{module}::{function}");
            assert!(
                crate::frames::TEST_BOUNDARY.contains(&path.as_str()),
                "{path}"
            );
        }
    }
}
