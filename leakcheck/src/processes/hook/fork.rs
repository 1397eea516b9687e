//! `fork`: the parent prepares what the child's `exec` hooks use (its environment with the
//! marker, where it notes what it `exec`s), so that the child only stores pointers and
//! copies bytes.

use super::*;

/// What a fork child's `exec` hooks use, prepared by the parent before the fork: the child
/// only stores pointers and copies bytes.
pub(super) struct ForkChild {
    /// Its environment with the marker, where children are marked.
    pub(super) environment: Option<ForkEnvironment>,
    /// Where it notes what it `exec`s, for its record.
    pub(super) note: Option<ExecNoteWriter>,
}

/// A fork child's environment with the marker, built by the parent before the fork: the
/// child stores pointers, and copies an `exec`'s own environment into room made here.
pub(super) struct ForkEnvironment {
    /// Kept alive for the pointers below.
    marker: CString,
    /// The C library's environment at the fork, which the child inherits as it is.
    inherited: *const *const c_char,
    /// The environment at the fork, with the marker.
    at_fork: Vec<*const c_char>,
    /// Room for an `exec`'s own environment (std's `Command` with changed variables sets
    /// it just before `execvp`), with the marker.
    room: Vec<*const c_char>,
}

/// Entries of room left for an `exec`'s own environment beyond the one at the fork.
const ROOM_BEYOND: usize = 256;

thread_local! {
    /// In a fork child, until it `exec`s: what the parent prepared for it. `const` and a
    /// `Cell`, no destructor: read in the child without allocating.
    pub(super) static FORKED: Cell<*mut ForkChild> = const { Cell::new(std::ptr::null_mut()) };
}

impl ForkEnvironment {
    fn new(marker: CString) -> ForkEnvironment {
        // SAFETY: the C library's environment, read on the forking thread; std's `fork`
        // path holds its environment lock, so no `set_var` runs meanwhile.
        // SAFETY: as above.
        let inherited = unsafe { environ };
        // SAFETY: as above.
        let at_fork = unsafe { with_marker(inherited, &marker) };
        let room = Vec::with_capacity(at_fork.len() + ROOM_BEYOND);
        ForkEnvironment {
            marker,
            inherited,
            at_fork,
            room,
        }
    }

    /// The environment an `exec` in the child runs with: the environment at the fork with
    /// the marker, where the child inherited it; a copy of `envp` with the marker in the
    /// room, where `envp` inherits it with changes (if it fits, else `envp`); `envp` as it
    /// is, where the child's caller built or cut it ([`marker::inherits`]). No allocation.
    ///
    /// # Safety
    ///
    /// `envp` is null or a null-terminated array of C strings; called in the fork child.
    pub(super) unsafe fn marked(&mut self, envp: *const *const c_char) -> *const *const c_char {
        if envp == self.inherited {
            return self.at_fork.as_ptr();
        }
        if envp == self.at_fork.as_ptr() || envp == self.room.as_ptr() {
            return envp;
        }
        // SAFETY: the caller's `envp`; `inherited` is the child's copy of the parent's
        // environment at the fork, which nothing in the child has freed.
        if !unsafe { marker::inherits(envp, self.inherited) } {
            return envp;
        }
        let capacity = self.room.capacity();
        let room = self.room.as_mut_ptr();
        let mut len = 0;
        for at in 0.. {
            // SAFETY: read up to the terminator.
            let entry = unsafe { *envp.add(at) };
            if entry.is_null() {
                break;
            }
            // SAFETY: a C string; reading it allocates nothing.
            if unsafe { marker::is_marker_c_entry(entry) } {
                continue;
            }
            if len + 2 >= capacity {
                return envp;
            }
            // SAFETY: `len` is within the room's capacity.
            unsafe { room.add(len).write(entry) };
            len += 1;
        }
        // SAFETY: within capacity, checked above.
        unsafe {
            room.add(len).write(self.marker.as_ptr());
            room.add(len + 1).write(std::ptr::null());
        }
        room.cast_const()
    }
}

pub(super) type ForkFn = unsafe extern "C" fn() -> libc::pid_t;

/// The override of `fork(2)`: the child is recorded in the parent when `fork` returns
/// there; the child only switches to the environment with the marker, prepared before, and
/// its `exec` notes what it runs in a page shared with the parent (a zombie's `/proc`
/// keeps no command line).
///
/// # Safety
///
/// The contract of `fork(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fork() -> libc::pid_t {
    let Some(real) = real::fork() else {
        real::missing();
        return -1;
    };
    if !registry::hooks_on() {
        // SAFETY: forwarding.
        return unsafe { real() };
    }
    let caller = Registers::here();
    let prepared = catch_unwind(AssertUnwindSafe(|| {
        let mut spawning = Spawning::new(caller, std::ptr::null(), std::ptr::null());
        spawning.exec = ExecNote::new();
        let child = ForkChild {
            environment: spawning.marker.take().map(ForkEnvironment::new),
            note: spawning.exec.as_ref().map(ExecNote::writer),
        };
        (spawning, Box::into_raw(Box::new(child)))
    }))
    .ok();
    let child = prepared
        .as_ref()
        .map_or(std::ptr::null_mut(), |(_, child)| *child);
    let before = FORKED.try_with(|forked| forked.replace(child)).ok();
    let in_flight = InFlight::start();
    // SAFETY: forwarding.
    let pid = unsafe { real() };
    if pid == 0 {
        // The child: nothing is freed or stored here. What the parent prepared is the
        // child's copy, kept for its `exec`; until then (and for ever, in a child that never
        // execs) it sees its environment as it was, without the marker.
        std::mem::forget(prepared);
        std::mem::forget(in_flight);
        // The count is the parent's, of spawns on threads this child does not have.
        IN_FLIGHT.store(0, Ordering::Release);
        return 0;
    }
    if let Some(before) = before {
        let _ = FORKED.try_with(|forked| forked.set(before));
    }
    let marked = !child.is_null() && {
        // SAFETY: made by `Box::into_raw` above; the parent's copy, no longer pointed to.
        let child = unsafe { Box::from_raw(child) };
        child.environment.is_some()
    };
    match prepared {
        Some((spawning, _)) if pid > 0 => {
            let record = || spawning.record(pid, marked);
            if catch_unwind(AssertUnwindSafe(record)).is_err() {
                real::could_not_record();
            }
        }
        Some(_) => {}
        None => real::could_not_record(),
    }
    drop(in_flight);
    pid
}
