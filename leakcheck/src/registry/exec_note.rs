//! What a fork child `exec`s, noted by the child for its parent: the program and its
//! arguments, in a page mapped shared before the fork. A record of a `fork` is made in the
//! parent when `fork` returns, before the child has chosen what to run; once the child has
//! exited and not been waited for (a zombie), `/proc` keeps no command line of it. So the
//! child's `exec` hook writes what it is about to run into this page (plain stores, no
//! allocation, no lock: what a fork child may do), and the parent reads it when a check or
//! a report asks.

use std::ffi::{CStr, c_char};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering, fence};

/// The page's bytes for the note itself: the program, then each argument, each ended by a
/// NUL. More than a report shows (a command line is cut at 200 bytes).
const ROOM: usize = 4096 - 8;

/// The shared page.
#[repr(C)]
struct Page {
    /// Odd while the child writes, even once it has written; 0: nothing written yet.
    sequence: AtomicU32,
    /// Bytes of `bytes` written.
    len: AtomicU32,
    bytes: [u8; ROOM],
}

/// The parent's side: owns the mapping, unmapped with the record.
pub(crate) struct ExecNote(NonNull<Page>);

// SAFETY: the page is only written by the child (another process) and read here through
// atomics and a sequence check; the pointer itself is never written after `new`.
unsafe impl Send for ExecNote {}
// SAFETY: as above.
unsafe impl Sync for ExecNote {}

/// What a note says the child `exec`ed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Exec {
    /// As `exec` was given it: a path, or a bare name for `execvp`.
    pub(crate) program: String,
    /// Its `argv`.
    pub(crate) args: Vec<String>,
}

/// The child's side: where its `exec` hook writes. Copied into the child with the rest of
/// its memory; the pages behind it are the parent's.
#[derive(Clone, Copy)]
pub(crate) struct ExecNoteWriter(*mut Page);

impl ExecNote {
    /// A fresh shared page, or `None` if the system gives none.
    pub(crate) fn new() -> Option<ExecNote> {
        // SAFETY: an anonymous shared mapping of a fresh page; the result is checked.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Page>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return None;
        }
        // A fresh anonymous mapping is zeroed: sequence 0, nothing written.
        NonNull::new(page.cast::<Page>()).map(ExecNote)
    }

    /// The pointer the fork child writes through.
    pub(crate) fn writer(&self) -> ExecNoteWriter {
        ExecNoteWriter(self.0.as_ptr())
    }

    /// What the child `exec`ed, once it has written it (and not in the middle of a write).
    pub(crate) fn read(&self) -> Option<Exec> {
        let page = self.0.as_ptr();
        for _ in 0..3 {
            // SAFETY: the mapping lives as long as `self`; the fields read are atomics.
            let before = unsafe { (*page).sequence.load(Ordering::Acquire) };
            if before == 0 {
                return None;
            }
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            // SAFETY: as above.
            let len = unsafe { (*page).len.load(Ordering::Relaxed) } as usize;
            let mut bytes = vec![0u8; len.min(ROOM)];
            // SAFETY: the mapping's bytes, `len` of them at most `ROOM`; another process may
            // write them meanwhile, which the sequence read after tells, and the copy is then
            // thrown away. Volatile reads: the compiler assumes nothing of memory another
            // process writes.
            unsafe {
                let from = (&raw const (*page).bytes).cast::<u8>();
                for (at, byte) in bytes.iter_mut().enumerate() {
                    *byte = from.add(at).read_volatile();
                }
            }
            fence(Ordering::Acquire);
            // SAFETY: as above.
            if unsafe { (*page).sequence.load(Ordering::Relaxed) } != before {
                continue;
            }
            return parse(&bytes);
        }
        None
    }
}

impl Drop for ExecNote {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, unmapped once; no reference into it outlives this.
        unsafe { libc::munmap(self.0.as_ptr().cast(), std::mem::size_of::<Page>()) };
    }
}

impl ExecNoteWriter {
    /// Notes `program` and `argv`, cut to the room there is. In a fork child, before its
    /// `exec`: no allocation, no lock, no call but to the atomics.
    ///
    /// # Safety
    ///
    /// Called in the fork child the note was made for, whose copy of the parent's mapping is
    /// still mapped (before the `exec`, which unmaps it); `program` is null or a C string,
    /// `argv` null or a null-terminated array of C strings.
    pub(crate) unsafe fn write(self, program: *const c_char, argv: *const *const c_char) {
        let page = self.0;
        // SAFETY: the caller's promise: the page is mapped, and only this thread of this
        // process writes it.
        unsafe {
            let sequence = (*page).sequence.load(Ordering::Relaxed);
            (*page).sequence.store(sequence | 1, Ordering::Relaxed);
            fence(Ordering::Release);
            let to = (&raw mut (*page).bytes).cast::<u8>();
            let mut len = 0;
            let mut push = |text: *const c_char| {
                if text.is_null() {
                    return false;
                }
                let text = CStr::from_ptr(text).to_bytes_with_nul();
                if len + text.len() > ROOM {
                    return false;
                }
                for &byte in text {
                    to.add(len).write_volatile(byte);
                    len += 1;
                }
                true
            };
            if push(program) && !argv.is_null() {
                for at in 0.. {
                    let arg = *argv.add(at);
                    if arg.is_null() || !push(arg) {
                        break;
                    }
                }
            }
            (*page).len.store(len as u32, Ordering::Relaxed);
            (*page)
                .sequence
                .store((sequence | 1).wrapping_add(1), Ordering::Release);
        }
    }
}

/// The program, then the arguments, from a note's bytes.
fn parse(bytes: &[u8]) -> Option<Exec> {
    let mut fields = bytes
        .strip_suffix(b"\0")?
        .split(|&byte| byte == 0)
        .map(|field| String::from_utf8_lossy(field).into_owned());
    let program = fields.next().filter(|program| !program.is_empty())?;
    Some(Exec {
        program,
        args: fields.collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_back_what_was_written_and_nothing_before() {
        let note = ExecNote::new().expect("a shared page");
        assert_eq!(note.read(), None);
        let argv = [c"sleep".as_ptr(), c"600".as_ptr(), std::ptr::null()];
        // SAFETY: this process's own mapping, written by this thread only; C strings.
        unsafe { note.writer().write(c"/bin/sleep".as_ptr(), argv.as_ptr()) };
        let exec = note.read().expect("written");
        assert_eq!(exec.program, "/bin/sleep");
        assert_eq!(exec.args, ["sleep", "600"]);
        // A second `exec` (the first failed) replaces it.
        let argv = [c"true".as_ptr(), std::ptr::null()];
        // SAFETY: as above.
        unsafe { note.writer().write(c"true".as_ptr(), argv.as_ptr()) };
        assert_eq!(note.read().map(|exec| exec.args), Some(vec!["true".into()]));
    }

    #[test]
    fn arguments_past_the_room_are_left_out_whole() {
        let note = ExecNote::new().expect("a shared page");
        let long = std::ffi::CString::new("x".repeat(ROOM / 3)).unwrap();
        let argv = [
            c"echo".as_ptr(),
            long.as_ptr(),
            long.as_ptr(),
            long.as_ptr(),
            std::ptr::null(),
        ];
        // SAFETY: as above.
        unsafe { note.writer().write(c"echo".as_ptr(), argv.as_ptr()) };
        let exec = note.read().expect("written");
        assert_eq!(exec.args.len(), 3);
        assert_eq!(exec.args[2].len(), ROOM / 3);
    }

    #[test]
    fn a_fork_child_s_note_is_read_by_its_parent() {
        let note = ExecNote::new().expect("a shared page");
        let writer = note.writer();
        let argv = [
            c"sh".as_ptr(),
            c"-c".as_ptr(),
            c"exit 0".as_ptr(),
            std::ptr::null(),
        ];
        // SAFETY: the child writes through the shared page and leaves with `_exit`, calling
        // nothing that allocates or locks.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                writer.write(c"/bin/sh".as_ptr(), argv.as_ptr());
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let exec = note.read().expect("the child's note");
        assert_eq!(exec.program, "/bin/sh");
        assert_eq!(exec.args, ["sh", "-c", "exit 0"]);
    }
}
