//! What `#[leakcheck::test]` expands to calls this: run the body in a scope named after the
//! test, check the scope, and fail the test if it leaked, keeping the test's own failure
//! as the headline when it has one.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::time::Instant;

use crate::config::{self, Mode, Options};
use crate::report::Report;
use crate::report::json;
use crate::scope::Scope;
use crate::tasks::{Flavor, TestRuntime};
use crate::verify;

/// What a report under `LEAKCHECK=warn` ends with.
pub(crate) const WARN_ONLY: &str =
    "leakcheck: LEAKCHECK=warn: reported, not failed (LEAKCHECK=fail, the default, fails on leaks)";

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
    /// The name libtest and nextest show: the module path without the crate, then the fn.
    pub fn test_name(&self) -> String {
        match self.module_path.split_once("::") {
            Some((_crate, modules)) => format!("{modules}::{}", self.fn_name),
            None => self.fn_name.to_owned(),
        }
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

/// Runs a test body in its own scope and fails the test if the scope leaked.
#[track_caller]
pub fn run_test<R: TestOutcome>(spec: &TestSpec, options: &Options, body: impl FnOnce() -> R) -> R {
    let Some(options) = configure(spec, options) else {
        return body();
    };
    let scope = Scope::enter_named(spec.test_name());
    let outcome = catch_unwind(AssertUnwindSafe(body));
    let check = verify::find(verify::Target::Scope(scope.id()), &options);
    drop(scope);
    conclude(spec, outcome, check)
}

/// The options the test's check runs with, or `None` under `LEAKCHECK=off` (the test runs
/// as a plain test).
///
/// # Panics
///
/// If an environment variable or `leakcheck.toml` is not understood: the test fails with
/// the message, before its body runs.
#[track_caller]
fn configure(spec: &TestSpec, options: &Options) -> Option<Options> {
    if let Some(dir) = spec.manifest_dir {
        config::remember_manifest_dir(dir);
    }
    config::effective(options).unwrap_or_else(|message| panic!("{message}"))
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
    let Some(options) = configure(spec, options) else {
        let runtime = TestRuntime::build(builder, flavor).expect("Failed building the Runtime");
        return runtime.block_on(body);
    };
    let options = &options;
    let scope = Scope::enter_named(spec.test_name());
    let runtime = TestRuntime::build(builder, flavor).expect("Failed building the Runtime");
    let outcome = catch_unwind(AssertUnwindSafe(|| runtime.block_on(body)));
    let returned = Instant::now();
    let tasks = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(verify::find_tasks(scope.id(), options, &runtime))
    }))
    // The runtime itself panicked (say `unhandled_panic = "shutdown_runtime"`): its tasks
    // are gone with it.
    .unwrap_or(Ok(()));
    let shutdown = Instant::now();
    runtime.shutdown_timeout(options.grace_period());
    let threads_grace = options.grace_period().saturating_sub(shutdown.elapsed());
    // The threads' report says how long they outlived the body, shutdown included.
    let threads = verify::find_threads(
        verify::Target::Scope(scope.id()),
        &options.clone().grace(threads_grace),
    )
    .map_err(|report| report.waited_since(returned));
    drop(scope);
    let check = match (tasks, threads) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(report), Ok(())) | (Ok(()), Err(report)) => Err(report),
        (Err(tasks), Err(threads)) => Err(tasks.merge(threads)),
    };
    conclude(spec, outcome, check)
}

/// The test's verdict: its own failure stays the headline, with the report added; a test
/// that passed but leaked fails with the report (under `LEAKCHECK=warn` it only prints it).
/// With `LEAKCHECK_REPORT` set, the check is appended there as a JSON line first.
#[track_caller]
fn conclude<R: TestOutcome>(
    spec: &TestSpec,
    outcome: std::thread::Result<R>,
    check: Result<(), Report>,
) -> R {
    let mode = config::mode();
    // As libtest will judge the test, leaks aside.
    let test_passed = match &outcome {
        Ok(value) => value.passed() && !spec.should_panic,
        Err(_) => spec.should_panic,
    };
    let name = spec.test_name();
    let record = json::Record {
        check: "test",
        test: Some(&name),
        mode,
        test_passed: Some(test_passed),
        found: check.as_ref().map(|_| ()),
    };
    if let Err(message) = write_json(&record) {
        panic!("{message}");
    }
    let report = match check {
        Ok(()) => return outcome.unwrap_or_else(|panic| resume_unwind(panic)),
        Err(report) => report,
    };
    if mode == Mode::Warn {
        eprintln!("{report}\n{WARN_ONLY}");
        return outcome.unwrap_or_else(|panic| resume_unwind(panic));
    }
    match outcome {
        Ok(value) if value.passed() => panic!("{report}"),
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

/// Appends a check to `LEAKCHECK_REPORT`, if it is set; the error says which file failed.
pub(crate) fn write_json(record: &json::Record<'_>) -> Result<(), String> {
    let Ok(environment) = config::environment() else {
        return Ok(());
    };
    let Some(path) = &environment.report else {
        return Ok(());
    };
    json::append(path, record).map_err(|error| {
        format!(
            "leakcheck: cannot append to {}={}: {error}",
            config::REPORT_VAR,
            path.display()
        )
    })
}
