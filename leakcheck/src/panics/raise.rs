//! The override of the unwinder's `_Unwind_RaiseException`, which every Rust panic goes
//! through as it starts to unwind (`panic!` and `resume_unwind` alike): on a thread the
//! spawn hook started, before the real raise, it reads the exception table of each frame
//! of the stack as the unwinder will (`lsda`), to see where the panic will be caught. Caught
//! beneath std's thread entry (`catch_unwind` in the thread, a pool's worker catching a
//! job's panic, tokio's workers): observed. Caught by std's thread entry itself, which keeps
//! the panic for `JoinHandle::join`: it unwinds out of the thread's closure and ends the
//! thread, and is recorded as lost until a join observes it (`pthread_join`, in `join`).
//! Work only when a panic happens.

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::hook;
use super::lsda::{self, Action};
use super::payload;
use crate::frames;
use crate::interpose::{self, Real};
use crate::registry::{self, LostPanic};
use crate::threads;

/// The unwinder's context of a frame, opaque.
#[repr(C)]
struct Context {
    _private: [u8; 0],
}

type RaiseFn = unsafe extern "C-unwind" fn(*mut c_void) -> c_int;
type TraceFn = extern "C" fn(*mut Context, *mut c_void) -> c_int;

unsafe extern "C" {
    /// POSIX; the libc crate does not declare it.
    fn pthread_attr_getdetachstate(
        attributes: *const libc::pthread_attr_t,
        state: *mut c_int,
    ) -> c_int;
    fn _Unwind_Backtrace(trace: TraceFn, argument: *mut c_void) -> c_int;
    fn _Unwind_GetIPInfo(context: *mut Context, before_instruction: *mut c_int) -> usize;
    fn _Unwind_GetLanguageSpecificData(context: *mut Context) -> *const u8;
    fn _Unwind_GetRegionStart(context: *mut Context) -> usize;
}

/// The override of `_Unwind_RaiseException`.
///
/// # Safety
///
/// The unwinder's contract: `exception` is the exception being raised.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _Unwind_RaiseException(exception: *mut c_void) -> c_int {
    let Some(real) = interpose::address(Real::UnwindRaiseException) else {
        // No unwinder behind this one: nothing can unwind. The caller aborts.
        return 5; // _URC_FATAL_PHASE1_ERROR
    };
    // Rust's panics only: a C++ `throw` (or another language's exception) on a hooked
    // thread is not a panic, and its frames' catch clauses are not Rust's to read.
    if registry::hooks_on() && is_rust_s(exception) {
        // A panic in here must not become a second one unwinding from the raise.
        let _ = catch_unwind(AssertUnwindSafe(|| look_at_the_raise(exception)));
    }
    // SAFETY: the C library's unwinder, with the caller's exception.
    let real = unsafe { std::mem::transmute::<usize, RaiseFn>(real) };
    // SAFETY: as above.
    unsafe { real(exception) }
}

/// The class of Rust's exceptions, the first field of every `_Unwind_Exception` std raises
/// (std's `RUST_EXCEPTION_CLASS`).
const RUST_EXCEPTION_CLASS: u64 = u64::from_ne_bytes(*b"MOZ\0RUST");

/// Whether the exception being raised is a Rust panic: its class, the header's first 8 bytes.
fn is_rust_s(exception: *mut c_void) -> bool {
    // SAFETY: the unwinder's contract: `exception` is an `_Unwind_Exception`, whose first
    // field is its 64-bit class; the read is unaligned-safe.
    !exception.is_null()
        && unsafe { exception.cast::<u64>().read_unaligned() } == RUST_EXCEPTION_CLASS
}

/// One frame of the raising thread, from the raise outwards.
struct Frame {
    /// The return address into it (the address after the call).
    return_address: usize,
    /// Where the function starts.
    start: usize,
    /// What its landing pad for the call does; `None` when its table was not understood.
    action: Option<Action>,
}

/// Where the raise will be caught, as the exception tables say.
#[derive(Debug, PartialEq, Eq)]
enum Caught {
    /// Beneath the thread's entry: observed.
    Inside,
    /// By std's thread entry: the panic ends the thread.
    AtTheThreadEntry,
    /// Not known (a frame's table not understood, no std entry on the stack).
    Unknown,
}

fn look_at_the_raise(exception: *mut c_void) {
    // The scope's owner, on any thread: the panics of the threads it spawned in the scope
    // were handed to it (decided by what std does, not by names a release build inlines).
    if registry::any_lost_panic() && hook::hands_back_scoped_panics(|| payload::message(exception))
    {
        let owner = threads::current_origin();
        registry::handed_back(owner.map(|owner| owner.key), crate::scope::current());
    }
    // Only threads the spawn hook started (std's or another's): the test's own thread's
    // panic is the test's failure, seen by the harness.
    let Some(thread) = threads::current_origin() else {
        return;
    };
    // Whatever happens below (a panic in here too), a panic caught inside the thread leaves
    // nothing to wait for; only one that ends the thread is in progress until it is gone.
    thread.set_panicking(false);
    let frames = stack();
    let ips: Vec<usize> = frames.iter().map(|frame| frame.return_address).collect();
    let names = frames::names(&ips).unwrap_or_default();
    let name = |at: usize| {
        names
            .get(at)
            .and_then(|frame| frame.function())
            .unwrap_or_default()
    };
    let fresh = (0..frames.len()).any(|at| name(at).contains("__rust_end_short_backtrace"));
    let seen = hook::take_seen(fresh);
    if caught(&frames, name) != Caught::AtTheThreadEntry {
        return;
    }
    // Unwinding out of the thread, which it ends: in progress until the thread is gone.
    thread.set_panicking(true);
    // The hook's record where it ran; else the exception's own payload (a preloaded
    // library's hook is not the test's; a test may have replaced it).
    let (message, location) = seen.map_or((None, None), |seen| (seen.message, seen.location));
    let message = message.or_else(|| payload::message(exception));
    // SAFETY: pthread_self has no preconditions.
    let handle = unsafe { libc::pthread_self() };
    registry::add_lost_panic(
        LostPanic::new(
            thread,
            threads::current_tid(),
            handle as usize,
            message,
            location,
            !fresh,
        ),
        || is_detached(handle),
    );
}

/// Whether the calling thread `me` is detached (its `JoinHandle` was dropped already).
fn is_detached(me: libc::pthread_t) -> bool {
    // SAFETY: an attribute object initialised by pthread_getattr_np, read, then destroyed.
    unsafe {
        let mut attributes = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
        if libc::pthread_getattr_np(me, attributes.as_mut_ptr()) != 0 {
            return false;
        }
        let mut state = 0;
        let read = pthread_attr_getdetachstate(attributes.as_ptr(), &mut state);
        libc::pthread_attr_destroy(attributes.as_mut_ptr());
        read == 0 && state == libc::PTHREAD_CREATE_DETACHED
    }
}

/// The stack from the raise outwards, past this module's own frames.
fn stack() -> Vec<Frame> {
    // The unwinder's callback: a panic cannot unwind out of it (it would abort the
    // process), so one inside it ends the walk with a frame not understood.
    extern "C" fn each(context: *mut Context, frames: *mut c_void) -> c_int {
        // SAFETY: `frames` is the vector `stack` passes.
        let frames = unsafe { &mut *frames.cast::<Vec<Frame>>() };
        match catch_unwind(AssertUnwindSafe(|| one_frame(context, frames))) {
            Ok(status) => status,
            Err(_) => {
                frames.push(Frame {
                    return_address: 0,
                    start: 0,
                    action: None,
                });
                5 // _URC_END_OF_STACK
            }
        }
    }
    fn one_frame(context: *mut Context, frames: &mut Vec<Frame>) -> c_int {
        let mut before_instruction = 0;
        // SAFETY: the unwinder's context of this frame.
        let (ip, lsda, start) = unsafe {
            (
                _Unwind_GetIPInfo(context, &mut before_instruction),
                _Unwind_GetLanguageSpecificData(context),
                _Unwind_GetRegionStart(context),
            )
        };
        if ip == 0 {
            return 5; // _URC_END_OF_STACK
        }
        // The call is just before a return address; a signal frame's address is its own.
        let in_call = if before_instruction != 0 {
            ip
        } else {
            ip.wrapping_sub(1)
        };
        frames.push(Frame {
            return_address: in_call.wrapping_add(1),
            start,
            // SAFETY: the unwinder's table of this very frame.
            action: unsafe { lsda::action(lsda, start, in_call) },
        });
        0 // _URC_NO_REASON: go on
    }
    let mut frames: Vec<Frame> = Vec::with_capacity(64);
    // SAFETY: `each` only reads the contexts it is given, and pushes to `frames`.
    unsafe { _Unwind_Backtrace(each, (&raw mut frames).cast()) };
    // Past the raise: the frames of this module (this function, its callers up to the
    // override, whose own `catch_unwind` must not count) are left out.
    let raise = _Unwind_RaiseException as *const () as usize;
    match frames.iter().position(|frame| frame.start == raise) {
        Some(at) => frames.split_off(at + 1),
        None => Vec::new(),
    }
}

/// Where the panic will be caught: the first frame, from the raise outwards, whose landing
/// pad catches it, against std's thread entry (`std::sys::backtrace::__rust_begin_short_backtrace`,
/// which calls the thread's closure from inside the entry's `catch_unwind`).
fn caught<'a>(frames: &[Frame], name: impl Fn(usize) -> &'a str) -> Caught {
    for (at, frame) in frames.iter().enumerate() {
        let function = name(at);
        if function.starts_with("std::") && function.ends_with("__rust_begin_short_backtrace") {
            return Caught::AtTheThreadEntry;
        }
        match frame.action {
            Some(Action::Catch) => return Caught::Inside,
            Some(Action::None | Action::Cleanup) => {}
            None => return Caught::Unknown,
        }
    }
    Caught::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(action: Action) -> Frame {
        Frame {
            return_address: 0,
            start: 0,
            action: Some(action),
        }
    }

    #[test]
    fn a_catch_beneath_the_thread_entry_is_inside_and_none_is_the_entry_s() {
        let names = [
            "std::panicking::begin_panic",
            "my_crate::work",
            "std::sys::backtrace::__rust_begin_short_backtrace",
            "std::thread::lifecycle::spawn_unchecked::{{closure}}",
        ];
        let name = |at: usize| names[at];
        let escapes = [
            frame(Action::None),
            frame(Action::Cleanup),
            frame(Action::None),
            frame(Action::Catch),
        ];
        assert_eq!(caught(&escapes, name), Caught::AtTheThreadEntry);
        let inside = [
            frame(Action::None),
            frame(Action::Catch),
            frame(Action::None),
            frame(Action::Catch),
        ];
        assert_eq!(caught(&inside, name), Caught::Inside);
        let libtest = ["x", "test::__rust_begin_short_backtrace", "y", "z"];
        assert_eq!(caught(&escapes[..2], |at| libtest[at]), Caught::Unknown);
    }
}
