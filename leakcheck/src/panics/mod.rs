//! Lost panics: a panic that unwound out of a thread of the test's (directly, or through
//! threads it spawned) and that nobody observed. The one platform boundary for them.
//!
//! Linux with a dynamically linked unwinder (`lc_panic_hook`) gets the full set: the raise
//! of every panic is seen (`raise`), where the exception tables tell whether it will be
//! caught inside the thread or end it; a join observes it (`pthread_join` and glibc's other joins, `join`);
//! the panic hook (`hook`) gives its message and location, and where that hook did not run,
//! the exception's own payload its message (`payload`). Exact: a panic caught inside the thread
//! (`catch_unwind`, a pool's worker, tokio's), a scoped thread's (the scope hands it on)
//! and a joined thread's are never lost. Not seen: a panic that aborts (`panic = "abort"`),
//! and tasks: tokio 1.54 tells no outsider whether a task's `JoinHandle` will see its panic.
//! Elsewhere the fallback sees nothing, and checks say so once.

#[cfg(lc_panic_hook)]
mod hook;
#[cfg(lc_panic_hook)]
mod join;
#[cfg(lc_panic_hook)]
mod lsda;
#[cfg(lc_panic_hook)]
mod payload;
#[cfg(lc_panic_hook)]
mod raise;

/// Puts leakcheck's panic hook around the one in place (once, and again after a test
/// replaced it): called where a test or a check begins.
pub(crate) fn watch() {
    // Preloaded, leakcheck's std is not the test's: a hook set here would never run.
    #[cfg(lc_panic_hook)]
    if !crate::config::preloaded() {
        hook::wrap();
    }
}

/// Whether lost panics are seen on this build, and if not, why.
pub(crate) fn tracking() -> Result<(), &'static str> {
    if cfg!(lc_panic_hook) {
        Ok(())
    } else if cfg!(leakcheck_no_panic_hook) {
        Err(
            "lost panics are off: this build has --cfg leakcheck_no_panic_hook (for a binary \
             that links its own unwinder), so a panic that ends a thread nobody joins is not \
             seen",
        )
    } else {
        Err(
            "lost panics are found on Linux with a dynamically linked C library and \
             unwinder: on this platform a panic that ends a thread nobody joins is not seen",
        )
    }
}
