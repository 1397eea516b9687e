//! At spawn: the registers an unwinder starts from, and a copy of the spawner's stack from
//! its stack pointer up, bounded by the thread's stack and a cap. A memory copy, with no
//! lock and no unwinding; one allocation, of the bytes copied.
//!
//! # Staying inside the stack
//!
//! The copy reads only `[sp, high)` of the spawning thread's own stack, where `low <= sp <
//! high` are that thread's bounds, learnt once per thread and kept in a thread-local: a
//! thread started by the spawn hook knows the top of its own frames from the trampoline;
//! its lower end, and the whole stack of any other thread, come from `pthread_getattr_np`
//! the first time the thread spawns (cheap, except on the main thread, where it reads
//! `/proc/self/maps`: the main thread's bounds are learnt before `main`, in `init`, and a
//! spawn from it before that copies nothing). Code running on a stack of its own (a
//! coroutine, a signal's alternate stack) has its stack pointer outside those bounds: the
//! spawn keeps no copy then, rather than read memory that may not be mapped.
//!
//! # The record's words
//!
//! `[pc, sp, fp, lr, stack...]`: where the spawn was, and the stack from `sp` up.

use std::cell::Cell;

use super::SpawnStack;

/// What a spawn keeps of the spawner's stack: at most this many bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    bytes: usize,
}

/// A thread's spawn: a record of at most 8 KiB a live thread, which reaches from
/// `pthread_create`'s caller through std's spawn path, the user's frames and the test
/// harness even in debug builds, whose frames are large (an async test's `spawn_blocking`
/// needs ~5 KiB; the deepest fixture, rayon's global pool started from a plain `#[test]`,
/// ~7.9 KiB to libtest's short-backtrace marker).
pub(crate) const THREAD: Limit = Limit {
    bytes: 8 * 1024 - RECORD_BYTES,
};

/// A child process's spawn: up to 64 KiB, the whole stack of a test's thread in practice.
/// A crate that starts children through frames of its own (duct, in a debug build: five
/// of its frames and std's fill 8 KiB) still reaches the test's line. Spawns of processes
/// are rare, and each costs a `fork` or `posix_spawn` and an `exec`; a record holds what
/// was copied, the spawner's stack as deep as it was, not the cap.
#[cfg(lc_process_hook)]
pub(crate) const PROCESS: Limit = Limit {
    bytes: 64 * 1024 - RECORD_BYTES,
};

/// A task's spawn, when task backtraces are on: tokio's spawn path, then the user's call
/// and a few of its callers. In a debug build the frames of tokio's spawn path each keep a
/// copy of the future (the user's call is ~3.6 KiB above the hook for an empty future,
/// ~5.1 KiB for one awaiting `TcpListener::accept`, which the 4 KiB kept before missed),
/// and tokio boxes a future only above 2 KiB: the largest it does not box puts the user's
/// call ~31 KiB above the hook through `tokio::spawn`. 40 KiB leaves room for the frames of
/// `JoinSet::spawn` and the like, and a caller or two. Up to 40 KiB a live task, where a
/// plain task record is 56 bytes: why task backtraces stay a switch.
#[cfg(tokio_unstable)]
pub(crate) const TASK: Limit = Limit { bytes: 40 * 1024 };

/// `40 KiB of the spawner's stack`: what a spawn keeps, as a report says it.
impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} KiB of the spawner's stack",
            self.bytes.div_ceil(1024)
        )
    }
}

/// What a record holds besides the stack: its header and the registers.
const RECORD_BYTES: usize = super::record::HEADER_BYTES + REGISTERS * 8;

/// Words of registers before the stack in a record: `pc` is an instruction pointer (for
/// a spawn read at a call, inside the call instruction).
pub(super) const REGISTERS: usize = 4;

/// The registers an unwinder starts from, read where the spawn is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registers {
    pc: usize,
    sp: usize,
    fp: usize,
    /// The link register (aarch64); 0 on x86_64, which has none.
    lr: usize,
}

impl Registers {
    /// The registers at this point of the calling function (inlined into it, so that the
    /// frame it describes is the caller's, and the caller's frame is part of the copy).
    #[inline(always)]
    pub(crate) fn here() -> Registers {
        let (pc, sp, fp, lr): (usize, usize, usize, usize);
        // SAFETY: reads three registers into outputs; no memory, stack or flags touched.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!(
                "lea {pc}, [rip]",
                "mov {sp}, rsp",
                "mov {fp}, rbp",
                pc = out(reg) pc,
                sp = out(reg) sp,
                fp = out(reg) fp,
                options(nomem, nostack, preserves_flags),
            );
            lr = 0;
        }
        // SAFETY: reads four registers into outputs; no memory, stack or flags touched.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            std::arch::asm!(
                "adr {pc}, .",
                "mov {sp}, sp",
                "mov {fp}, x29",
                "mov {lr}, x30",
                pc = out(reg) pc,
                sp = out(reg) sp,
                fp = out(reg) fp,
                lr = out(reg) lr,
                options(nomem, nostack, preserves_flags),
            );
        }
        Registers { pc, sp, fp, lr }
    }

    /// The registers of a caller at the point of its call, from a function's entry: its
    /// stack pointer once the call returns and its frame pointer, and on aarch64 the link
    /// register (x86_64 reads the return address below `sp`). The unwind starts inside the
    /// call instruction (one byte before the return address), as unwinders treat a return
    /// address, so that the caller's unwind row is the call's.
    ///
    /// # Safety
    ///
    /// The values are the caller's at the call, as the entry received them, and on x86_64
    /// the return address is in the 8 bytes below `sp`.
    pub(crate) unsafe fn at_call(sp: usize, fp: usize, lr: usize) -> Registers {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's promise; the return address is on this thread's stack.
        let return_address = unsafe { *(sp as *const usize).sub(1) };
        #[cfg(target_arch = "aarch64")]
        let return_address = lr;
        Registers {
            pc: return_address.wrapping_sub(1),
            sp,
            fp,
            lr,
        }
    }
}

/// A thread's stack, as far as the copy may read it. `low == 0`: not learnt yet;
/// `low == usize::MAX`: not known, nothing is copied.
#[derive(Clone, Copy)]
struct Bounds {
    low: usize,
    high: usize,
}

const NOT_LEARNT: Bounds = Bounds { low: 0, high: 0 };
const UNKNOWN: Bounds = Bounds {
    low: usize::MAX,
    high: 0,
};

thread_local! {
    // A const-initialised `Cell` without a destructor: a plain thread-local access, safe
    // before `main` and inside the spawn hook.
    static BOUNDS: Cell<Bounds> = const { Cell::new(NOT_LEARNT) };
}

/// Bytes kept above the trampoline's stack pointer: the rest of its small frame, up to the
/// return into the C library's thread start (whose frame, and the thread's descriptor
/// above it, are mapped). Beyond the trampoline there is nothing a report shows.
const ABOVE_TRAMPOLINE: usize = 64;

/// Called first thing on a thread the hook started: the top of its frames.
#[inline(always)]
pub(crate) fn note_thread_start() {
    let top = Registers::here().sp.saturating_add(ABOVE_TRAMPOLINE);
    let _ = BOUNDS.try_with(|bounds| bounds.set(Bounds { low: 0, high: top }));
}

/// Called before `main`, on the main thread: its bounds, from `pthread_getattr_np`, which
/// for the main thread reads `/proc/self/maps` (never inside the spawn hook).
pub(crate) fn learn_main_thread_bounds() {
    if let Some(stack) = own_stack() {
        let _ = BOUNDS.try_with(|bounds| bounds.set(stack));
    }
}

/// The calling thread's whole stack, `[low, high)`, as the C library knows it.
fn own_stack() -> Option<Bounds> {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read, and
    // destroyed once after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut low: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut low, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (got == 0 && !low.is_null()).then(|| Bounds {
            low: low as usize,
            high: (low as usize).saturating_add(size),
        })
    }
}

/// The calling thread's bounds, learnt on its first spawn if need be.
fn bounds() -> Bounds {
    let known = BOUNDS.try_with(Cell::get).unwrap_or(UNKNOWN);
    if known.low != NOT_LEARNT.low {
        return known;
    }
    // SAFETY: gettid and getpid have no preconditions.
    let main_thread = unsafe { libc::gettid() == libc::getpid() };
    // The main thread's bounds come from before `main` only (see the module doc): asking
    // here would read `/proc/self/maps` inside the hook.
    let stack = if main_thread { None } else { own_stack() };
    let learnt = match stack {
        Some(stack) => Bounds {
            low: stack.low,
            high: match known.high {
                0 => stack.high,
                top => top.min(stack.high),
            },
        },
        None => UNKNOWN,
    };
    let _ = BOUNDS.try_with(|bounds| bounds.set(learnt));
    learnt
}

/// The spawner's registers and the top of its stack from `registers.sp` up, at most
/// `limit` bytes and never past the thread's stack. `registers` must have been read on the
/// calling thread, in a frame that is still running (the copy starts at that frame).
pub(crate) fn capture(registers: Registers, limit: Limit) -> SpawnStack {
    let bounds = bounds();
    let sp = registers.sp;
    let (words, cut) = if bounds.low <= sp && sp < bounds.high {
        let stack = bounds.high - sp;
        (stack.min(limit.bytes) / 8, stack > limit.bytes)
    } else {
        (0, false)
    };
    let fill = |record: *mut u64| {
        let Registers { pc, sp, fp, lr } = registers;
        // SAFETY: `new` hands over room for `REGISTERS + words` words. The source is this
        // thread's own stack from `sp` up, inside its bounds (checked above): mapped, and
        // holding the frames of the caller and of everything that called it, which are
        // only read (as the system unwinder reads them). Its bytes are what those frames
        // wrote, padding and unwritten slots included: the copy keeps them as words, and
        // the unwinder reads only the slots that frames' unwind rules name.
        unsafe {
            for (at, register) in [pc, sp, fp, lr].into_iter().enumerate() {
                record.add(at).write(register as u64);
            }
            std::ptr::copy_nonoverlapping(sp as *const u64, record.add(REGISTERS), words);
        }
    };
    // SAFETY: `fill` writes all `REGISTERS + words` words: the registers, then the stack's.
    unsafe { SpawnStack::new(REGISTERS + words, cut, fill) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_pointer_outside_the_threads_stack_keeps_no_copy() {
        // As on a coroutine's stack or a signal's alternate stack: heap memory.
        let elsewhere = vec![0u64; 1024];
        let here = Registers::here();
        let foreign = Registers {
            sp: elsewhere.as_ptr() as usize + 4096,
            ..here
        };
        let kept = capture(foreign, THREAD);
        assert_eq!(kept.words().len(), REGISTERS);
        // Its own stack, on the other hand, is copied.
        assert!(capture(here, THREAD).words().len() > REGISTERS);
    }

    #[test]
    fn a_copy_stops_at_the_cap() {
        #[inline(never)]
        fn deep(depth: usize) -> SpawnStack {
            let padding = std::hint::black_box([depth as u8; 512]);
            if depth == 0 {
                capture(Registers::here(), THREAD)
            } else {
                let kept = deep(depth - 1);
                std::hint::black_box(padding);
                kept
            }
        }
        // 32 frames of over 512 bytes: more than the cap.
        let kept = deep(32);
        assert_eq!(kept.words().len(), REGISTERS + THREAD.bytes / 8);
        assert!(kept.cut_short(), "the unwind runs out of the copy");
        assert!(super::super::record::HEADER_BYTES + kept.words().len() * 8 <= 8 * 1024);
    }
}
