//! OS threads: the spawn hook, enumeration of live threads and what a thread is doing.
//!
//! The one platform boundary for threads. Linux (glibc or musl) gets the full set: every
//! `pthread_create` of the binary is hooked, so threads are owned by scopes and carry a
//! spawn backtrace, `/proc` tells liveness, state and the blocking system call, and a signal
//! captures a leaked thread's current stack. Elsewhere
//! the fallback tracks nothing, and `verify` says so once.

// `lc_thread_hook` and `lc_name_hook` are defined once, in build.rs.
#[cfg(lc_thread_hook)]
mod hook;
#[cfg(lc_thread_hook)]
mod procfs;
#[cfg(lc_thread_hook)]
mod stack;
#[cfg(lc_panic_hook)]
pub(crate) use hook::next_key;
#[cfg(lc_thread_hook)]
pub(crate) use {
    hook::{current_origin, release_current_thread},
    procfs::{counters, current_tid, is_alive, is_running, list, os_state, process_os_state},
    stack::capture as capture_stack,
};

#[cfg(not(lc_thread_hook))]
mod fallback;
#[cfg(not(lc_thread_hook))]
pub(crate) use fallback::{
    capture_stack, counters, current_tid, is_alive, is_running, list, os_state,
    release_current_thread,
};

/// [`spawn_own`] for a thread whose body returns nothing and whose handle nobody keeps: `true`
/// when it started.
pub(crate) fn spawn_own_detached(name: &'static str, body: fn()) -> bool {
    spawn_own(name, body).is_ok()
}

/// Starts one of leakcheck's own threads (the watchdog, the symbol loader, a watcher):
/// outside every scope, so it is no test's, and marked as leakcheck's own before this
/// returns, so no check or snapshot that follows sees it. It is unmarked when it ends,
/// however it ends: its id may then be reused by a thread of the program's.
pub(crate) fn spawn_own<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    struct Own(i32);
    impl Drop for Own {
        fn drop(&mut self) {
            crate::registry::unmark_own_thread(self.0);
        }
    }
    let spawner_scope = crate::scope::set_current(crate::scope::PROCESS);
    let (marked, is_marked) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let tid = current_tid();
            crate::registry::mark_own_thread(tid);
            let _own = Own(tid);
            let _ = marked.send(());
            body()
        });
    crate::scope::set_current(spawner_scope);
    let thread = spawned?;
    let _ = is_marked.recv();
    Ok(thread)
}

/// Whether the hook sees the names threads give themselves (`pthread_setname_np` is
/// interposed only where the C library is linked dynamically). Where it does not, the
/// kernel's 15-byte name is the best there is.
pub(crate) const NAMES_HOOKED: bool = cfg!(lc_name_hook);

/// Whether thread spawns are attributed on this build, and if not, why. Decided once:
/// every check asks.
pub(crate) fn tracking() -> Result<(), &'static str> {
    static TRACKING: std::sync::OnceLock<Result<(), &'static str>> = std::sync::OnceLock::new();
    *TRACKING.get_or_init(|| {
        #[cfg(lc_thread_hook)]
        return hook::status();
        #[cfg(not(lc_thread_hook))]
        return Err(fallback::UNAVAILABLE);
    })
}

/// What the OS says a thread is doing, read at report time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OsThread {
    /// The kernel's name for the thread, cut to 15 bytes.
    pub(crate) comm: String,
    /// Its state, the call it is blocked in, the kernel function it waits in.
    pub(crate) os: crate::report::OsState,
}

/// How much a thread has run: what a check compares over its grace period to tell a stuck
/// thread from one that is still woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Times it went to sleep and was woken (`voluntary_ctxt_switches`).
    pub(crate) wakeups: u64,
    /// CPU time it has used, user and system.
    pub(crate) cpu: std::time::Duration,
    /// The system call it was blocked in then, with its arguments and stack pointer, as a
    /// fingerprint: wake-ups count from when it entered the call it is found in at the end
    /// (a thread that blocked on its way to it, starting up, was not woken in it). 0 when it
    /// was not in a system call (running, say).
    pub(crate) call: u64,
    /// The bytes its reads had returned (`rchar`), read only while it is blocked in a read:
    /// a read that is the same call at two looks, with no byte read between them, was not
    /// woken by data, whatever woke the thread meanwhile (a signal whose handler ran on it,
    /// after which the read restarted).
    pub(crate) bytes_read: Option<u64>,
}

/// The name rules match and reports show: the full name the thread set, else the
/// kernel's for a thread the hook did not see start or name. A hooked thread that never
/// named itself has no name (the kernel's would be its parent's, inherited).
pub(crate) fn name_of(
    tid: Option<i32>,
    origin: Option<&crate::registry::ThreadOrigin>,
) -> Option<String> {
    let kernel_name = || tid.and_then(os_state).map(|os| os.comm);
    match origin {
        Some(origin) if NAMES_HOOKED => origin.name(),
        Some(origin) => origin.name().or_else(kernel_name),
        None => kernel_name(),
    }
}
