//! Spawn backtraces, kept cheaply at spawn and unwound only for a report.
//!
//! A spawn runs on every thread and task start of the test binary, and its backtrace is
//! read only when what it started leaks, which is almost never. So a spawn does not unwind:
//! it keeps the registers an unwinder starts from and a copy of the top of the spawner's
//! stack (a memory copy of a few KiB, bounded by the thread's own stack and a cap), and
//! only a report unwinds that copy (with `framehop`, through the loaded modules' unwind
//! tables). The system unwinder would walk the live stack at ~2,000 instructions a frame
//! at every spawn instead.
//!
//! The one platform boundary for it: Linux on x86_64 and aarch64 copies (`lc_stack_copy`);
//! elsewhere the system unwinder walks the stack at spawn, as before.

mod record;

#[cfg(lc_stack_copy)]
mod copy;
#[cfg(lc_stack_copy)]
mod modules;
// `lc_stack_copy` implies `lc_thread_hook` (build.rs).
#[cfg(all(lc_stack_copy, lc_process_hook))]
pub(crate) use copy::PROCESS;
#[cfg(all(lc_stack_copy, tokio_unstable))]
pub(crate) use copy::TASK;
#[cfg(lc_stack_copy)]
pub(crate) use copy::{Registers, THREAD, capture, learn_main_thread_bounds, note_thread_start};
#[cfg(lc_stack_copy)]
use modules::unwind;

#[cfg(not(lc_stack_copy))]
mod fallback;
#[cfg(all(not(lc_stack_copy), lc_process_hook))]
pub(crate) use fallback::PROCESS;
#[cfg(all(not(lc_stack_copy), tokio_unstable))]
pub(crate) use fallback::TASK;
#[cfg(all(not(lc_stack_copy), lc_thread_hook))]
pub(crate) use fallback::THREAD;
#[cfg(not(lc_stack_copy))]
use fallback::unwind;
#[cfg(all(not(lc_stack_copy), any(lc_thread_hook, tokio_unstable)))]
pub(crate) use fallback::{Registers, capture};
#[cfg(all(not(lc_stack_copy), lc_thread_hook))]
pub(crate) use fallback::{learn_main_thread_bounds, note_thread_start};

pub(crate) use record::SpawnStack;

/// Frames unwound of a kept stack at most: more than the copy's cap holds.
#[cfg(lc_stack_copy)]
const MAX_FRAMES: usize = 128;
