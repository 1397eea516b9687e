//! Threads of the process-wide pools of the default allowlist (`config::allowlist::POOLS`):
//! which pool a thread is of, whether it waits for work (allowed) or runs a job, and which
//! test's job it runs.
//!
//! A pool's thread runs the jobs of whichever test submitted them, not of the test that
//! happened to grow the pool, so a job's test is told from the job itself: the frames of the
//! user's code on the thread's current stack are the job (a closure, or an async block),
//! written in a function; a test is a function of the same path as its name. A job written
//! in a helper is the test's whose submission grew the pool by the thread that runs it (the
//! helper is on the thread's spawn path). A job that neither tells is no test's: the exit
//! check (`verify_test_main!`) reports it. A job still queued when its test is checked (the
//! pool's threads all busy) is seen only once it runs.

use crate::config::allowlist::{POOL_CRATES, POOLS, Pool, RUNS_A_JOB};
use crate::frames::{self, Frame};

/// What a pool's thread is doing, read off its current stack.
#[derive(Debug)]
pub(crate) enum Doing {
    /// Waiting for work in the pool's own wait.
    Waiting,
    /// Running a job: the frames of the job (those above the pool's code that runs it) that
    /// are not std's or the runtime's, innermost first; empty when it has none.
    Job(Vec<Frame>),
    /// Neither can be told from these frames (the symbol table's names alone, where code
    /// was inlined): the debug info can.
    Unknown,
}

/// The pool a thread's spawn path (any frames: names alone do) says it grew, if any.
pub(crate) fn pool_of(spawn_path: &[Frame]) -> Option<&'static Pool> {
    POOLS.iter().find(|pool| {
        spawn_path.iter().any(|frame| {
            frame.function().is_some_and(|function| {
                pool.spawned_in
                    .iter()
                    .any(|needle| function.contains(needle))
            })
        })
    })
}

/// What a pool's thread does, from its current stack (innermost first, the signal
/// handler's frames included).
pub(crate) fn doing(pool: &Pool, stack: &[Frame]) -> Doing {
    let stack = frames::shape_current_stack(stack).own;
    let runs_a_job = |frame: &Frame| {
        frame
            .function()
            .is_some_and(|function| RUNS_A_JOB.iter().any(|job| function.contains(job)))
    };
    if let Some(runner) = stack.iter().position(runs_a_job) {
        let job = frames::user_frames(&stack[..runner])
            .into_iter()
            .filter(|frame| !is_pool_machinery(frame))
            .collect();
        return Doing::Job(job);
    }
    // The first function from the top that is neither std's nor the C library's, and the
    // std function it called.
    let functions: Vec<&str> = stack.iter().filter_map(Frame::function).collect();
    let waiting = functions
        .iter()
        .position(|function| !frames::is_std_or_c(function))
        .is_some_and(|at| {
            let called = at
                .checked_sub(1)
                .map(|below| functions[below])
                .filter(|called| called.contains("::"));
            pool.waits_in.iter().any(|wait| {
                functions[at].starts_with(wait.function)
                    && (wait.calling.is_empty()
                        || called.is_some_and(|called| called.contains(wait.calling)))
            })
        });
    if waiting {
        Doing::Waiting
    } else {
        Doing::Unknown
    }
}

/// Whether a frame is a pool's or its executor's own code.
fn is_pool_machinery(frame: &Frame) -> bool {
    frame.function().is_some_and(|function| {
        let function = function.trim_start_matches('<');
        POOL_CRATES.iter().any(|krate| {
            function
                .strip_prefix(krate)
                .is_some_and(|rest| rest.starts_with("::"))
        })
    })
}

/// The frame that says where a job came from: its outermost frame of the workspace's own
/// code (a dependency's when it has no other).
pub(crate) fn job_site(job: &[Frame]) -> Option<Frame> {
    job.iter()
        .rev()
        .find(|frame| !frame.is_dependency())
        .or_else(|| job.last())
        .cloned()
}

/// Whether a job (its frames) was written in the test named `test` (`module::test_fn`, as
/// libtest names it): one of its functions, closures aside, is that test's function.
pub(crate) fn written_in(job: &[Frame], test: &str) -> bool {
    defined_in(job).any(|function| function == test || function.ends_with(&format!("::{test}")))
}

/// Whether a job (its frames) was written in a function on the spawn path of the thread
/// that runs it: the job whose submission grew the pool by this thread (a pool grows on
/// the submitting thread, from the submitting code).
pub(crate) fn grew_the_pool(job: &[Frame], spawn_path: &[Frame]) -> bool {
    defined_in(job).any(|function| {
        spawn_path
            .iter()
            .filter_map(Frame::function)
            .any(|spawner| spawner.split("::{{closure}}").next() == Some(function))
    })
}

/// The functions a job's frames were written in, closures aside.
fn defined_in(job: &[Frame]) -> impl Iterator<Item = &str> {
    job.iter().filter_map(|frame| {
        let function = frame.function()?;
        function.split("::{{closure}}").next()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str) -> Frame {
        Frame::new(
            Some(function.into()),
            Some("src/x.rs".into()),
            Some(1),
            None,
        )
    }

    fn c(function: &str) -> Frame {
        Frame::new(Some(function.into()), None, None, None)
    }

    fn blocking() -> &'static Pool {
        POOLS.iter().find(|pool| pool.krate == "blocking").unwrap()
    }

    #[test]
    fn a_pool_is_known_by_its_spawn_path() {
        let path = [
            c("std::thread::Builder::spawn"),
            c("blocking::Executor::grow_pool"),
            c("blocking::unblock"),
        ];
        assert_eq!(pool_of(&path).map(|pool| pool.krate), Some("blocking"));
        assert!(pool_of(&[c("my_crate::start")]).is_none());
    }

    #[test]
    fn an_idle_thread_waits_in_the_pool_s_loop() {
        let idle = [
            c("syscall"),
            c("std::sync::poison::condvar::Condvar::wait_timeout"),
            c("blocking::Executor::main_loop"),
            c("std::sys::thread::unix::Thread::new::thread_start"),
        ];
        assert!(matches!(doing(blocking(), &idle), Doing::Waiting));
        let busy = [
            c("__GI___clock_nanosleep"),
            c("std::thread::functions::sleep"),
            frame("pools::leaks_a_job::{{closure}}"),
            c("blocking::unblock::{{closure}}"),
            c("async_task::raw::RawTask<F,T,S,M>::run"),
            c("blocking::Executor::main_loop"),
        ];
        match doing(blocking(), &busy) {
            Doing::Job(job) => {
                assert_eq!(job.len(), 1, "{job:?}");
                assert!(written_in(&job, "leaks_a_job"));
                assert_eq!(
                    job_site(&job).and_then(|frame| frame.function().map(str::to_owned)),
                    Some("pools::leaks_a_job::{{closure}}".to_owned())
                );
            }
            other => panic!("{other:?}"),
        }
        let inlined = [
            c("syscall"),
            c("blocking::Executor::grow_pool::{{closure}}"),
        ];
        assert!(matches!(doing(blocking(), &inlined), Doing::Unknown));
        // A lock taken on the way to the wait is not the wait.
        let locking = [
            c("syscall"),
            c("std::sys::sync::mutex::futex::Mutex::lock_contended"),
            c("blocking::Executor::main_loop"),
        ];
        assert!(matches!(doing(blocking(), &locking), Doing::Unknown));
    }

    #[test]
    fn a_job_written_in_a_helper_is_the_one_that_grew_the_pool() {
        let job = [frame("my_crate::start_worker::{{closure}}")];
        let grown_for_it = [
            c("blocking::Executor::grow_pool"),
            c("blocking::unblock"),
            frame("my_crate::start_worker"),
            frame("tests::uses_the_worker"),
        ];
        assert!(grew_the_pool(&job, &grown_for_it));
        let grown_for_another = [c("blocking::unblock"), frame("tests::other")];
        assert!(!grew_the_pool(&job, &grown_for_another));
    }

    #[test]
    fn a_job_is_the_test_s_whose_function_wrote_it() {
        let job = [frame("pools::tests::leaks_a_job::{{closure}}::{{closure}}")];
        assert!(written_in(&job, "tests::leaks_a_job"));
        assert!(written_in(&job, "leaks_a_job"));
        assert!(!written_in(&job, "a_job"));
        assert!(!written_in(&job, "clean_unblock"));
    }
}
