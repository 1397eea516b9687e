//! What `#[leakcheck::test]` expands to calls this: run the body in a scope named after the
//! test, check the scope, and fail the test if it leaked, keeping the test's own failure
//! as the headline when it has one.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::config::Options;
use crate::scope::Scope;

/// Where the test is, as the macro sees it.
#[derive(Clone, Copy, Debug)]
pub struct TestSpec {
    /// `module_path!()` at the test: the crate name, then the modules.
    pub module_path: &'static str,
    /// The test function's name.
    pub fn_name: &'static str,
    /// Whether the test has `#[should_panic]`.
    pub should_panic: bool,
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
    let scope = Scope::enter_named(spec.test_name());
    let outcome = catch_unwind(AssertUnwindSafe(body));
    let check = scope.find(options);
    drop(scope);
    let report = match check {
        Ok(()) => return outcome.unwrap_or_else(|panic| resume_unwind(panic)),
        Err(report) => report,
    };
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
