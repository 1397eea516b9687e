//! What runs before `main`, in one place, each with why it is safe that early.
//!
//! A constructor runs before std's runtime is set up: no thread may be spawned, nothing
//! printed, and no thread-local with a destructor touched. Those below only read the
//! environment or `/proc` (std's `env` and `fs` need no runtime, nor does the C library's
//! stdio) and store plain statics or const thread-locals.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::threads;

/// Threads that were running before `main`: the main thread, and any started by a
/// library's initialiser before the hook could see them. The process-wide check leaves
/// them out.
pub(crate) fn startup_threads() -> &'static HashSet<i32> {
    // The main thread's id is the process id; used if the initialiser did not run.
    STARTUP.get_or_init(|| HashSet::from([std::process::id() as i32]))
}

static STARTUP: OnceLock<HashSet<i32>> = OnceLock::new();

// SAFETY: before `main`, this only lists `/proc/self/task` with std's `fs` (no runtime
// needed), reads the monotonic clock, and stores the results in a `OnceLock` and a
// `LazyLock`; it spawns nothing and prints nothing.
#[ctor::ctor(unsafe)]
fn record_startup_threads() {
    // Ages of threads and tasks count from here.
    crate::clock::start();
    if let Some(live) = threads::list() {
        let _ = STARTUP.set(live.into_iter().collect());
    }
}

// SAFETY: before `main`, this only reads one environment variable with std's `env` and
// stores an atomic; it spawns nothing and prints nothing (a bad value is reported by the
// first check, through the same parser).
#[cfg(any(lc_thread_hook, tokio_unstable))]
#[ctor::ctor(unsafe)]
fn switch_hooks_off_under_leakcheck_off() {
    // Decided before the first spawn, so that `pthread_create` never reads the environment.
    if crate::config::mode_before_main() == crate::config::Mode::Off {
        crate::registry::switch_hooks_off();
    }
}

// SAFETY: before `main`, this looks up the C library's functions behind leakcheck's
// overrides with `dlsym` (the loader is set up; it spawns nothing and prints nothing) and
// stores their addresses in atomics.
#[cfg(lc_name_hook)]
#[ctor::ctor(unsafe)]
fn find_the_real_functions() {
    crate::interpose::resolve_all();
}

// SAFETY: before `main`, this registers fork handlers with `pthread_atfork`, which has no
// preconditions. The handlers take and release leakcheck's own locks, in one order, and in
// the child empty what they guard without freeing it (see `registry::fork`): no
// allocation, and no lock another thread of the parent could have held.
#[cfg(lc_thread_hook)]
#[ctor::ctor(unsafe)]
fn handle_forks() {
    use crate::registry::fork;
    // SAFETY: as above; a failure (ENOMEM) leaves forks unhandled, and says so.
    let failed = unsafe {
        libc::pthread_atfork(
            Some(fork::prepare),
            Some(fork::in_parent),
            Some(fork::in_child),
        )
    };
    if failed != 0 {
        let message = b"leakcheck: pthread_atfork failed: a child forked while leakcheck \
                        records a spawn may hang\n";
        // SAFETY: writing a valid buffer to stderr, which needs no runtime.
        unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
    }
}

// SAFETY: before `main`, on the main thread, this reads one environment variable (as
// above) and asks `pthread_getattr_np` for the main thread's stack (glibc reads
// `/proc/self/maps` for it, with stdio, which needs no runtime), and stores it in a
// const-initialised thread-local without a destructor; it spawns nothing and prints
// nothing.
#[cfg(lc_thread_hook)]
#[ctor::ctor(unsafe)]
fn learn_main_thread_stack() {
    // Where spawns copy the spawner's stack, the main thread's bounds are learnt here, once,
    // rather than in its first spawn (see `unwind`).
    if crate::config::mode_before_main() != crate::config::Mode::Off {
        crate::unwind::learn_main_thread_bounds();
    }
}

// SAFETY: before `main`, this only reads one environment variable with std's `env` and
// stores an atomic; it spawns nothing and prints nothing (a bad value is reported by the
// first check).
#[cfg(lc_process_hook)]
#[ctor::ctor(unsafe)]
fn read_whether_children_are_marked() {
    // Decided before the first spawn: `posix_spawn` runs under std's environment lock and
    // must not read the environment.
    if !crate::config::mark_children_before_main() {
        crate::processes::stop_marking();
    }
}
