//! A thread's current stack, captured in leakcheck's signal handler, as a report shows it,
//! and its top, which `ignore_top` rules match.

use super::Frame;
use super::classify::{crate_of, is_named_library_frame, is_user_frame, user_frames};

/// The function of leakcheck's signal handler that captures a current stack: its frames,
/// then the signal trampoline, come before the thread's own. (`threads/stack.rs` checks
/// that its handler still has this path.)
pub(crate) const SIGNAL_HANDLER: &str = "leakcheck::threads::stack::on_signal";

/// A thread's current stack, captured in leakcheck's signal handler, as a report shows it:
/// the function it is stopped in, the last library function before the user's code (the
/// `Condvar::wait`, `thread::sleep` or `Receiver::recv` it called), then the user's frames.
/// Also returns `top`: every frame from the top down to the first of the user's, which
/// `ignore_top` rules match.
pub(crate) fn shape_current_stack(frames: &[Frame]) -> CurrentStack {
    // The handler's frames, then the signal trampoline, then the thread's own stack.
    let own = frames
        .iter()
        .position(|frame| {
            frame
                .function()
                .is_some_and(|function| function.contains(SIGNAL_HANDLER))
        })
        .map_or(0, |handler| handler + 2)
        .min(frames.len());
    let stack = &frames[own..];
    let first_user = stack.iter().position(is_user_frame);
    let top_end = first_user.map_or(stack.len(), |at| at + 1);
    let mut shown: Vec<Frame> = Vec::new();
    let mut show = |frame: &Frame| {
        // Inlined frames of one function repeat its name: once is enough.
        let repeated = shown.last().map(Frame::function) == Some(frame.function());
        if !repeated && frame.function().is_some() {
            shown.push(frame.clone());
        }
    };
    if let Some(innermost) = stack.iter().find(|frame| frame.function().is_some()) {
        show(innermost);
    }
    match first_user {
        Some(at) if at > 0 => show(library_call(&stack[..at])),
        Some(_) => {}
        // No code of the user's (a runtime's worker, say): the top few frames say most.
        None => stack
            .iter()
            .filter(|frame| is_named_library_frame(frame))
            .take(TOP_WITHOUT_USER_FRAMES)
            .for_each(&mut show),
    }
    for frame in user_frames(&stack[first_user.unwrap_or(stack.len())..]) {
        show(&frame);
    }
    CurrentStack {
        shown,
        top: stack[..top_end].to_vec(),
        own: stack.to_vec(),
    }
}

/// Of the library frames between the top of a stack and the user's code, the one that says
/// what the user called: the outermost of std's own API (not `std::sys` internals, not an
/// adapter such as `Iterator::for_each` around it), else the outermost frame.
fn library_call(library: &[Frame]) -> &Frame {
    library
        .iter()
        .rev()
        .find(|frame| {
            frame.function().is_some_and(|function| {
                crate_of(function) == "std" && !function.contains("std::sys::")
            })
        })
        .unwrap_or(&library[library.len() - 1])
}

/// Frames shown of a current stack that has none of the user's.
const TOP_WITHOUT_USER_FRAMES: usize = 6;

/// A current stack, for the report and for `ignore_top`.
pub(crate) struct CurrentStack {
    pub(crate) shown: Vec<Frame>,
    pub(crate) top: Vec<Frame>,
    /// Every frame of the thread's own, without the signal handler's.
    pub(crate) own: Vec<Frame>,
}
