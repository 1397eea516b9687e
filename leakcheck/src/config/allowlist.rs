//! The default allowlist: what well-known crates keep for the whole process by design, so
//! that the test that happens to start it first is not blamed. Each entry was found by a
//! fixture that uses the crate for real (`fixtures/tests/ecosystem.rs`, `pools.rs`); the
//! README gives the reason for each. `default_allowlist = false` switches it off.
//!
//! Two shapes:
//! - a [`Singleton`]: one thread started on first use and never stopped (rayon's global
//!   pool, async-io's reactor), known by a function on its spawn path;
//! - a [`Pool`]: threads that wait for work for the rest of the process and run jobs or
//!   tasks of any test (smol's `blocking`, async-std's and smol's executors). A pool's
//!   thread is allowed only where it waits for work: a job that never ends in it is the leak
//!   of the test that submitted the job, with the job's line.

/// A thread a crate keeps for the whole process, known by a function on its spawn path.
pub(crate) struct Singleton {
    /// The crate, as the README's table lists it.
    #[cfg(test)]
    pub(crate) krate: &'static str,
    /// Substrings of a function path on the spawn path; any one identifies the thread.
    pub(crate) spawned_in: &'static [&'static str],
}

pub(crate) const SINGLETONS: &[Singleton] = &[
    // The global pool starts on first use and has no shutdown.
    Singleton {
        #[cfg(test)]
        krate: "rayon",
        spawned_in: &["rayon_core::registry::set_global_registry"],
    },
    // The "async-io" thread drives the global reactor for the rest of the process.
    Singleton {
        #[cfg(test)]
        krate: "async-io",
        spawned_in: &["async_io::driver::unparker"],
    },
    // The "ctrl-c" thread waits for the signal for good: a handler cannot be removed.
    Singleton {
        #[cfg(test)]
        krate: "ctrlc",
        spawned_in: &["ctrlc::set_handler_inner"],
    },
];

/// A process-wide pool of threads that run jobs or tasks of any test.
pub(crate) struct Pool {
    /// The crate, as the README's table lists it.
    pub(crate) krate: &'static str,
    /// How its threads' names start, as the crate names them: a check looks at these
    /// threads for a job of its test's, whichever test grew the pool.
    pub(crate) named: &'static [&'static str],
    /// Substrings of a function path on the spawn path: the pool grew by this thread.
    pub(crate) spawned_in: &'static [&'static str],
    /// Where an idle thread waits for work, from the top of its current stack.
    pub(crate) waits_in: &'static [Wait],
}

/// A pool's wait for work: the first function of its stack, from the top, that is not std's
/// or the C library's, and the std call it made there (a lock taken on the way to the wait
/// is not the wait).
pub(crate) struct Wait {
    /// How the function's path starts.
    pub(crate) function: &'static str,
    /// Part of the path of the std function it called; empty when it called none (a raw
    /// system call).
    pub(crate) calling: &'static str,
}

/// How an async executor's thread waits for a task: parked on a condvar, or polling the
/// reactor (epoll, through rustix).
const EXECUTOR_WAITS_IN: &[Wait] = &[
    Wait {
        function: "parking::",
        calling: "Condvar::wait",
    },
    Wait {
        function: "rustix::",
        calling: "",
    },
];

pub(crate) const POOLS: &[Pool] = &[
    // `blocking::unblock` (and async-std's `spawn_blocking`, smol's file and DNS work):
    // threads that wait for jobs until the process exits.
    Pool {
        krate: "blocking",
        named: &["blocking-"],
        spawned_in: &["blocking::Executor::grow_pool"],
        waits_in: &[Wait {
            function: "blocking::Executor::main_loop",
            calling: "Condvar::wait",
        }],
    },
    // async-std's executor threads, started by its first task, never stopped.
    Pool {
        krate: "async-global-executor",
        named: &["async-std/runtime", "async-global-executor-"],
        spawned_in: &["async_global_executor::threading::spawn_more_threads"],
        waits_in: EXECUTOR_WAITS_IN,
    },
    // smol's global executor threads, started by the first `smol::spawn`.
    Pool {
        krate: "smol",
        named: &["smol-"],
        spawned_in: &["smol::spawn::spawn::global"],
        waits_in: EXECUTOR_WAITS_IN,
    },
];

/// The crates of the pools and of the executors they run jobs with: their frames on a
/// pool's thread are the pool's, not a job's.
pub(crate) const POOL_CRATES: &[&str] = &[
    "blocking",
    "async_task",
    "async_executor",
    "async_global_executor",
    "async_std",
    "smol",
    "futures_lite",
    "futures_core",
    "async_io",
];

/// Functions that run a job or a task on a pool's thread: a stack with one of them is busy.
pub(crate) const RUNS_A_JOB: &[&str] =
    &["async_task::raw::RawTask", "async_task::runnable::Runnable"];

/// The pool whose threads are named like this, if any (the name alone: the spawn path says
/// whether it is one).
#[cfg(lc_thread_hook)]
pub(crate) fn pool_named(name: &str) -> Option<&'static Pool> {
    POOLS
        .iter()
        .find(|pool| pool.named.iter().any(|start| name.starts_with(start)))
}
