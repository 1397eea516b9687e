//! Where another thread is now: its stack, captured by the thread itself in a signal
//! handler. Used on threads a check suspects: for a report, for an `ignore_top` rule, and to
//! tell a process-wide pool's thread waiting for work from one running a job.
//!
//! A real-time signal is sent with `tgkill`; the handler, on the target thread, unwinds its
//! own stack into a static buffer and says it is done. One capture runs at a time.
//!
//! # What the handler may do
//!
//! The handler allocates nothing, takes no lock of leakcheck's or std's, and saves and
//! restores `errno`. It does call the system unwinder (`_Unwind_Backtrace`), which is not on
//! signal-safety(7)'s list: to find a frame's unwind info it may take the dynamic loader's
//! lock (`dl_iterate_phdr`) or libgcc's lock for registered frames, unless the toolchain
//! uses glibc's lock-free `_dl_find_object` (glibc >= 2.35 with libgcc >= 12, as on this
//! project's CI). If the target was interrupted while holding one of those locks, its
//! handler blocks: the capture then times out (`ANSWER_WITHIN * 5`), says so in the report,
//! and captures stop for the process (`BROKEN`), though the target thread stays stuck in its
//! handler.
//!
//! The handler is installed with `SA_RESTART`, so most blocking calls resume unnoticed, but
//! a raw `poll`/`epoll_wait`/`nanosleep` in the target can return `EINTR`. That is why this
//! only runs on threads a check suspects (a pool's thread found idle where it was idle
//! before is not signalled again: its system call says so), and threads that block the
//! signal are skipped rather than left with a pending signal.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Frames kept of a current stack: the signal frames, the C library's, and enough of the
/// user's to see the caller.
const FRAMES: usize = 64;

/// How long to wait for the target to run its handler. A thread blocked in the kernel runs
/// it at once; one that does not answer is reported without a stack.
const ANSWER_WITHIN: Duration = Duration::from_millis(200);

/// No capture requested.
const IDLE: i32 = 0;
/// The target's handler is unwinding.
const CAPTURING: i32 = -1;
/// The stack is in `IPS`.
const CAPTURED: i32 = -2;

/// The capture in progress: the tid asked, or one of the states above.
static REQUEST: AtomicI32 = AtomicI32::new(IDLE);
static IPS: [AtomicUsize; FRAMES] = [const { AtomicUsize::new(0) }; FRAMES];
static LEN: AtomicUsize = AtomicUsize::new(0);
/// Set when a handler never answered: its late answer could overwrite a later capture, so
/// captures stop for the rest of the process.
static BROKEN: AtomicBool = AtomicBool::new(false);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The signal: well above `SIGRTMIN`, which programs that use real-time signals take first.
fn signal() -> libc::c_int {
    libc::SIGRTMAX() - 3
}

/// The raw instruction pointers of `tid`'s stack now, innermost first (the handler's own
/// frames and the signal trampoline included), or why there are none.
pub(crate) fn capture(tid: i32) -> Result<Vec<usize>, &'static str> {
    let _one = ONE_AT_A_TIME.lock();
    if BROKEN.load(Ordering::Acquire) {
        return Err("not captured (an earlier capture did not finish)");
    }
    if blocks_signal(tid) {
        return Err("not captured (the thread blocks signals)");
    }
    make_ours()?;
    REQUEST.store(tid, Ordering::Release);
    // SAFETY: tgkill with our own pid, a tid of this process and a signal whose handler
    // `make_ours` has just seen to be ours.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal()) };
    if sent != 0 {
        REQUEST.store(IDLE, Ordering::Release);
        return Err("not captured (the thread has exited)");
    }
    let asked = Instant::now();
    loop {
        match REQUEST.load(Ordering::Acquire) {
            CAPTURED => break,
            CAPTURING if asked.elapsed() > ANSWER_WITHIN * 5 => {
                BROKEN.store(true, Ordering::Release);
                return Err("not captured (the thread did not finish unwinding)");
            }
            requested if requested == tid && asked.elapsed() > ANSWER_WITHIN => {
                // Withdraw the request; if the handler claimed it meanwhile, wait for it.
                if REQUEST
                    .compare_exchange(tid, IDLE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Err("not captured (the thread did not answer the signal)");
                }
            }
            _ => std::thread::sleep(Duration::from_micros(50)),
        }
    }
    let len = LEN.load(Ordering::Acquire).min(FRAMES);
    let ips = IPS[..len]
        .iter()
        .map(|ip| ip.load(Ordering::Relaxed))
        .collect();
    REQUEST.store(IDLE, Ordering::Release);
    Ok(ips)
}

/// Makes the signal leakcheck's at the moment of sending, or says why it is not: decided
/// at every capture, never once per process, since a program may reset or take the signal
/// at any time. With the default action (the first capture, or the program reset it) the
/// handler is installed; a handler or `SIG_IGN` of the program's own is left alone, and
/// nothing is sent (the default action would kill the process; another handler would get a
/// signal it does not expect). A program changing the signal between this and the send,
/// in the few microseconds between them, is the one case not covered.
fn make_ours() -> Result<(), &'static str> {
    let ours = on_signal as extern "C" fn(libc::c_int) as usize;
    // SAFETY: sigaction with zeroed structs we own, installing a handler whose limits are
    // stated in the module docs (no allocation, errno kept, the unwinder's locks).
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal(), std::ptr::null(), &mut current) != 0 {
            return Err("not captured (the signal's action cannot be read)");
        }
        if current.sa_sigaction == ours {
            return Ok(());
        }
        if current.sa_sigaction != libc::SIG_DFL {
            return Err(
                "not captured (the program handles or ignores leakcheck's signal, SIGRTMAX-3)",
            );
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ours;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal(), &action, std::ptr::null_mut()) != 0 {
            return Err("not captured (the signal cannot be installed)");
        }
    }
    Ok(())
}

/// Runs on the target thread: claim the request if it is for this thread, unwind into the
/// static buffer, say done. A signal that arrives late, for a withdrawn request, does nothing.
extern "C" fn on_signal(_signal: libc::c_int) {
    // SAFETY: `__errno_location` has no preconditions and returns this thread's errno; the
    // interrupted code must find it as it left it.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    if REQUEST
        .compare_exchange(me, CAPTURING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        let mut len = 0;
        // SAFETY: `trace_unsynchronized` skips backtrace-rs's own global lock, which this
        // handler must not take (the interrupted code may hold it). That lock only guards
        // against two traces at once on unwinders that are not thread-safe; the system
        // unwinder on Linux is, and one capture runs at a time. The unwinder's own locks
        // are the residual hazard the module docs describe. Nothing here allocates.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                IPS[len].store(frame.ip() as usize, Ordering::Relaxed);
                len += 1;
                len < FRAMES
            });
        }
        LEN.store(len, Ordering::Release);
        REQUEST.store(CAPTURED, Ordering::Release);
    }
    // SAFETY: as above; restores the value read on entry.
    unsafe { *libc::__errno_location() = errno };
}

/// Whether `tid` blocks the signal (`SigBlk` in `/proc/self/task/<tid>/status`): a thread
/// that exits, or that masks signals on purpose, would keep it pending.
fn blocks_signal(tid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")) else {
        return true;
    };
    let Some(mask) = status
        .lines()
        .find_map(|line| line.strip_prefix("SigBlk:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    else {
        return true;
    };
    mask & (1u64 << (signal() - 1)) != 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_knows_the_handler_by_its_path() {
        // `frames` cuts a current stack at the handler by this path, as a string.
        let module = module_path!().trim_end_matches("::tests");
        assert_eq!(
            crate::frames::SIGNAL_HANDLER,
            format!("{module}::on_signal")
        );
    }
}
