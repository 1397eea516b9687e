//! Where another thread is now: its stack, captured by the thread itself in a signal
//! handler. Used only at report time and only on leaked threads.
//!
//! A real-time signal is sent with `tgkill`; the handler, on the target thread, unwinds its
//! own stack into a static buffer (no allocation, no lock) and says it is done. One capture
//! runs at a time. The handler is installed with `SA_RESTART`, so most blocking calls resume
//! unnoticed, but a raw `poll`/`epoll_wait`/`nanosleep` in the target can return `EINTR`:
//! that is why this never runs on a thread that is not already reported as leaked, and
//! threads that block the signal are skipped rather than left with a pending signal.

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
    install()?;
    if blocks_signal(tid) {
        return Err("not captured (the thread blocks signals)");
    }
    REQUEST.store(tid, Ordering::Release);
    // SAFETY: tgkill with our own pid, a tid of this process and a signal with a handler.
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

/// Installs the handler once, unless the program already handles the signal.
fn install() -> Result<(), &'static str> {
    static INSTALLED: std::sync::OnceLock<Result<(), &'static str>> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: sigaction with zeroed structs we own; the handler is async-signal-safe in
        // the sense that matters here (no allocation, no lock; see `on_signal`).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal(), std::ptr::null(), &mut old) != 0 {
                return Err("not captured (the signal cannot be installed)");
            }
            if old.sa_sigaction != libc::SIG_DFL {
                return Err("not captured (the program handles leakcheck's signal, SIGRTMAX-3)");
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal(), &action, std::ptr::null_mut()) != 0 {
                return Err("not captured (the signal cannot be installed)");
            }
        }
        Ok(())
    })
}

/// Runs on the target thread: claim the request if it is for this thread, unwind into the
/// static buffer, say done. A signal that arrives late, for a withdrawn request, does nothing.
extern "C" fn on_signal(_signal: libc::c_int) {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    if REQUEST
        .compare_exchange(me, CAPTURING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let mut len = 0;
    // SAFETY: the unwinder is thread-safe on our targets and this thread is not inside it
    // for another capture (one capture at a time). It allocates nothing.
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
