//! Where stacks are not copied (other architectures and operating systems, Miri): the
//! system unwinder walks the spawner's stack at spawn, without the global backtrace lock
//! and without allocating for the walk, and the record keeps its instruction pointers.

#[cfg(any(lc_thread_hook, tokio_unstable))]
use super::SpawnStack;
use super::record::Unwound;

/// What a spawn keeps of its backtrace: at most this many frames.
#[cfg(any(lc_thread_hook, tokio_unstable))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    frames: usize,
}

/// `24 frames of the spawner's stack`: what a spawn keeps, as a report says it.
#[cfg(any(lc_thread_hook, tokio_unstable))]
impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} frames of the spawner's stack", self.frames)
    }
}

/// A thread's spawn: enough for std's spawn path, the user's frames and libtest's.
#[cfg(lc_thread_hook)]
pub(crate) const THREAD: Limit = Limit { frames: 48 };

/// A child process's spawn: as many frames as a walk keeps.
#[cfg(lc_process_hook)]
pub(crate) const PROCESS: Limit = Limit { frames: MOST };

/// A task's spawn, when task backtraces are on: tokio's spawn path is shallow, and 24
/// frames reach through it into the user's code and its callers.
#[cfg(tokio_unstable)]
pub(crate) const TASK: Limit = Limit { frames: 24 };

/// Nothing to read: the walk starts wherever `capture` is called.
#[cfg(any(lc_thread_hook, tokio_unstable))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registers;

#[cfg(any(lc_thread_hook, tokio_unstable))]
impl Registers {
    #[inline(always)]
    pub(crate) fn here() -> Registers {
        Registers
    }
}

/// Frames a walk keeps at most.
#[cfg(any(lc_thread_hook, tokio_unstable))]
const MOST: usize = 48;

/// Walks the calling thread's stack. Safe inside `pthread_create`: it takes no lock that a
/// thread spawn could hold and allocates nothing but the record.
#[cfg(any(lc_thread_hook, tokio_unstable))]
#[inline(never)]
pub(crate) fn capture(_here: Registers, limit: Limit) -> SpawnStack {
    let mut ips = [0u64; MOST];
    let mut len = 0;
    let most = limit.frames.min(MOST);
    // Whether the walk stopped at the cap with frames left.
    let mut capped = false;
    // SAFETY: `trace_unsynchronized` only requires that no other thread unwinds through
    // the same non-thread-safe unwinder state at once; the system unwinders (libgcc,
    // libunwind) are thread-safe.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            if len == most {
                capped = true;
                return false;
            }
            ips[len] = frame.ip() as u64;
            len += 1;
            true
        });
    }
    let fill = |record: *mut u64| {
        // SAFETY: `new` hands over room for `len` words; `ips` holds `len`.
        unsafe { std::ptr::copy_nonoverlapping(ips.as_ptr(), record, len) }
    };
    // SAFETY: `fill` writes all `len` words, from `ips`.
    unsafe { SpawnStack::new(len, capped, fill) }
}

/// The thread's stack bounds are not needed here.
#[cfg(lc_thread_hook)]
pub(crate) fn note_thread_start() {}

/// As above.
#[cfg(lc_thread_hook)]
pub(crate) fn learn_main_thread_bounds() {}

/// The record's words are the instruction pointers already: a walk capped at spawn ran
/// out of them.
pub(super) fn unwind(words: &[u64]) -> Unwound {
    Unwound {
        ips: words.iter().map(|&ip| ip as usize).collect(),
        ran_out: true,
    }
}
