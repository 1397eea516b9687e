//! What every interposed entry point shares: the C library's and the unwinder's own
//! functions behind leakcheck's overrides, in one table filled before `main`, and the one
//! way a hook says something once.
//!
//! The rules every hook keeps:
//! - **Never unwind into C.** A hook's own work runs inside `catch_unwind`; when it fails, the
//!   call is forwarded unchanged and the hook says so once.
//! - **errno is the real function's.** Nothing after the real call overwrites it.
//! - **Nothing in a fork child before `exec` allocates, locks or looks a symbol up.** The
//!   exec hooks only store pointers and copy bytes into room the parent made.
//! - **No symbol lookup where it is unsafe.** Every real function is looked up by the
//!   constructor below ([`resolve_all`]), so that a fork child (std's `pre_exec`, `uid`,
//!   `env_clear()` with a bare program name) or a signal handler (a `SIGTERM` handler that
//!   forwards to its children with `kill`) never runs `dlsym`. The one lazy path left is for
//!   a hook called before that constructor (another library's constructor that spawns or
//!   forks): it looks its own function up then, once.

use std::sync::atomic::{AtomicBool, Ordering};

/// Says `message` on stderr the first time, with `write(2)`: a hook may run where
/// allocation or std's stderr lock is not safe.
pub(crate) struct SayOnce(AtomicBool);

impl SayOnce {
    pub(crate) const fn new() -> SayOnce {
        SayOnce(AtomicBool::new(false))
    }

    pub(crate) fn say(&self, message: &[u8]) {
        if !self.0.swap(true, Ordering::Relaxed) {
            // SAFETY: writing a valid buffer to stderr, which needs no runtime.
            unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
        }
    }
}

#[cfg(lc_name_hook)]
pub(crate) use table::{Real, address, resolve_all};

/// The table of real functions: only where the C library is linked dynamically
/// (`lc_name_hook`), where `dlsym(RTLD_NEXT)` finds the definition after leakcheck's.
#[cfg(lc_name_hook)]
mod table {
    use std::ffi::CStr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    macro_rules! real_functions {
        ($($variant:ident = $symbol:literal,)*) => {
            /// A function leakcheck overrides, whose real definition it forwards to. (Without
            /// the panic hooks, `--cfg leakcheck_no_panic_hook`, the joins and the raise are
            /// looked up and never asked for.)
            #[derive(Clone, Copy, Debug)]
            #[cfg_attr(not(lc_panic_hook), allow(dead_code))]
            pub(crate) enum Real {
                $($variant,)*
            }

            const SYMBOLS: &[&CStr] = &[$($symbol,)*];
        };
    }

    real_functions! {
        PthreadCreate = c"pthread_create",
        PthreadSetname = c"pthread_setname_np",
        PthreadJoin = c"pthread_join",
        PthreadTryjoin = c"pthread_tryjoin_np",
        PthreadTimedjoin = c"pthread_timedjoin_np",
        PthreadClockjoin = c"pthread_clockjoin_np",
        PthreadDetach = c"pthread_detach",
        PosixSpawn = c"posix_spawn",
        PosixSpawnp = c"posix_spawnp",
        Fork = c"fork",
        Execve = c"execve",
        Execvp = c"execvp",
        Kill = c"kill",
        Killpg = c"killpg",
        Popen = c"popen",
        UnwindRaiseException = c"_Unwind_RaiseException",
    }

    /// The addresses, 0 until looked up (or where there is none).
    static TABLE: [AtomicUsize; SYMBOLS.len()] = [const { AtomicUsize::new(0) }; SYMBOLS.len()];
    /// Whether [`resolve_all`] has run: after it, a 0 is a function the C library lacks.
    static RESOLVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// The real function's address, `None` where the C library has none. After
    /// [`resolve_all`], one load.
    pub(crate) fn address(real: Real) -> Option<usize> {
        let slot = &TABLE[real as usize];
        let mut address = slot.load(Ordering::Acquire);
        if address == 0 && !RESOLVED.load(Ordering::Acquire) {
            address = look_up(real as usize);
            slot.store(address, Ordering::Release);
        }
        (address != 0).then_some(address)
    }

    /// Looks every real function up: from the constructor, before `main` and before any
    /// fork child or signal handler could need one.
    pub(crate) fn resolve_all() {
        for (at, slot) in TABLE.iter().enumerate() {
            if slot.load(Ordering::Acquire) == 0 {
                slot.store(look_up(at), Ordering::Release);
            }
        }
        RESOLVED.store(true, Ordering::Release);
    }

    /// The next definition after leakcheck's of the `at`th symbol, 0 where there is none.
    fn look_up(at: usize) -> usize {
        // SAFETY: dlsym with a valid C string; a null result is handled by the callers.
        unsafe { libc::dlsym(libc::RTLD_NEXT, SYMBOLS[at].as_ptr()) as usize }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_real_function_of_this_c_library_is_found_before_main() {
            // The constructor has run: each is one load.
            assert!(RESOLVED.load(Ordering::Acquire));
            for real in [
                Real::PthreadCreate,
                Real::PthreadJoin,
                Real::PosixSpawnp,
                Real::Execvp,
                Real::Kill,
                Real::Killpg,
                Real::UnwindRaiseException,
            ] {
                assert!(address(real).is_some(), "{real:?}");
            }
        }
    }
}
