//! A spawn's record: one allocation behind one pointer, so that a task's origin (stored
//! inline in the task table, 56 bytes) grows by no more than the pointer it had before,
//! and shared by its clones, so that copying origins out of the tables for a check does
//! not copy stacks.

use std::alloc::{Layout, dealloc};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

/// The allocation starts with this, then `len` words.
struct Header {
    clones: AtomicUsize,
    len: usize,
    /// Whether the spawner's stack went on past what was kept.
    capped: bool,
    /// The backtrace, once a check has asked for it.
    unwound: OnceLock<Unwound>,
}

/// A kept stack, unwound.
pub(super) struct Unwound {
    /// Instruction pointers, innermost first.
    pub(super) ips: Box<[usize]>,
    /// Whether the unwind stopped because the kept stack ended (a frame's caller was past
    /// it), rather than at the stack's start or on a frame it could not unwind.
    pub(super) ran_out: bool,
}

/// Bytes of a record before its words.
#[cfg(lc_stack_copy)]
pub(super) const HEADER_BYTES: usize = std::mem::size_of::<Header>();

/// A spawn backtrace as kept at spawn (see the module above for what the words are), and
/// its instruction pointers once unwound.
pub(crate) struct SpawnStack(NonNull<Header>);

// SAFETY: the words are written before the record is shared and only read after, and the
// header's fields are an atomic and a `OnceLock`: sharing across threads is sound.
unsafe impl Send for SpawnStack {}
// SAFETY: as above.
unsafe impl Sync for SpawnStack {}

/// The layout of a record of `len` words, and where the words start in it.
fn layout(len: usize) -> (Layout, usize) {
    let words = Layout::array::<u64>(len).expect("a spawn record fits in memory");
    let (layout, offset) = Layout::new::<Header>()
        .extend(words)
        .expect("a spawn record fits in memory");
    (layout.pad_to_align(), offset)
}

impl SpawnStack {
    /// A record of `len` words, written by `fill` before the record is shared; `capped`,
    /// whether the spawner's stack went on past them.
    ///
    /// # Safety
    ///
    /// `fill` writes every one of the `len` words it is handed room for (and nothing
    /// beyond): the record's words are read as initialised from then on.
    #[cfg(any(lc_thread_hook, tokio_unstable))]
    pub(super) unsafe fn new(len: usize, capped: bool, fill: impl FnOnce(*mut u64)) -> SpawnStack {
        let (layout, offset) = layout(len);
        // SAFETY: the layout has a non-zero size (the header's).
        let Some(header) = NonNull::new(unsafe { std::alloc::alloc(layout) }.cast::<Header>())
        else {
            std::alloc::handle_alloc_error(layout);
        };
        // SAFETY: a fresh allocation of this layout: the header fits at its start, the
        // words at `offset`; `fill` writes all `len` of them, as the caller promises.
        unsafe {
            header.as_ptr().write(Header {
                clones: AtomicUsize::new(1),
                len,
                capped,
                unwound: OnceLock::new(),
            });
            fill(header.as_ptr().cast::<u8>().add(offset).cast::<u64>());
        }
        SpawnStack(header)
    }

    fn header(&self) -> &Header {
        // SAFETY: the header lives as long as any clone of the record.
        unsafe { self.0.as_ref() }
    }

    /// The words kept at spawn.
    pub(super) fn words(&self) -> &[u64] {
        let len = self.header().len;
        // SAFETY: `new` wrote `len` words at this offset, and they are never written again.
        unsafe {
            std::slice::from_raw_parts(
                self.0
                    .as_ptr()
                    .cast::<u8>()
                    .add(layout(len).1)
                    .cast::<u64>(),
                len,
            )
        }
    }

    /// Unwinds the kept stack, the first time it is asked for: the spawn backtrace's
    /// instruction pointers, innermost first (return addresses, as the system unwinder
    /// gives them).
    pub(crate) fn unwind(&self) -> &[usize] {
        &self.unwound().ips
    }

    /// Whether the backtrace is cut short: the unwind ran out of the kept stack where the
    /// spawner's stack went on (a spawn deeper than the copy's cap).
    pub(crate) fn cut_short(&self) -> bool {
        self.header().capped && self.unwound().ran_out
    }

    fn unwound(&self) -> &Unwound {
        self.header()
            .unwound
            .get_or_init(|| super::unwind(self.words()))
    }
}

impl Clone for SpawnStack {
    fn clone(&self) -> SpawnStack {
        // As `Arc` does: a new clone is made from an existing one, so no ordering is needed.
        self.header().clones.fetch_add(1, Ordering::Relaxed);
        SpawnStack(self.0)
    }
}

impl Drop for SpawnStack {
    #[inline]
    fn drop(&mut self) {
        release(self.0);
    }
}

/// Drops one clone of a record, freeing it with the last. Out of line and cold, so that
/// dropping a task's origin (inlined into the task hooks) stays a call: only tasks with
/// backtraces have a record.
#[cold]
#[inline(never)]
fn release(header: NonNull<Header>) {
    // SAFETY: the clone being dropped keeps the header alive until here.
    if unsafe { header.as_ref() }
        .clones
        .fetch_sub(1, Ordering::Release)
        != 1
    {
        return;
    }
    // The last clone: every other clone's use happened before this (as `Arc` does).
    fence(Ordering::Acquire);
    // SAFETY: no clone is left; the header was written by `new` and is dropped once, then
    // the allocation is freed with the layout it was made with.
    unsafe {
        let len = header.as_ref().len;
        std::ptr::drop_in_place(header.as_ptr());
        dealloc(header.as_ptr().cast::<u8>(), layout(len).0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(lc_thread_hook, tokio_unstable))]
    fn clones_share_the_words_and_the_last_one_frees_them() {
        let fill = |words: *mut u64| {
            for i in 0..3 {
                // SAFETY: `new` hands over room for 3 words.
                unsafe { words.add(i).write(i as u64 + 7) };
            }
        };
        // SAFETY: `fill` writes all 3 words.
        let record = unsafe { SpawnStack::new(3, false, fill) };
        let clone = record.clone();
        assert_eq!(clone.words(), [7, 8, 9]);
        assert_eq!(clone.words().as_ptr(), record.words().as_ptr());
        drop(record);
        assert_eq!(clone.words(), [7, 8, 9]);
        assert_eq!(clone.header().clones.load(Ordering::Relaxed), 1);
    }
}
