//! `kill` and `killpg`: a child (or a group) the test signalled is one it ended, not a
//! zombie to warn of.

use super::*;

pub(super) type KillFn = unsafe extern "C" fn(libc::pid_t, c_int) -> c_int;

/// The override of `kill(2)`: a child this process signalled (`Child::kill`, tokio's
/// `kill_on_drop`) and that has not been waited for yet is not reported as a zombie.
///
/// # Safety
///
/// The contract of `kill(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kill(pid: libc::pid_t, signal: c_int) -> c_int {
    let Some(real) = real::kill() else {
        real::missing();
        return -1;
    };
    // A pid, or a process group as `-pgid` (`kill(-pgid, ..)`; not 0 or -1, this
    // process's own group and every process).
    if !(-1..=0).contains(&pid) && signal != 0 {
        signalled::note(pid);
    }
    // SAFETY: forwarding.
    unsafe { real(pid, signal) }
}

/// The override of `killpg(3)`, which the C library sends through its internal `kill`,
/// past the hook above: a group ended this way is noted as `-pgid`, as `kill` notes it.
///
/// # Safety
///
/// The contract of `killpg(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn killpg(group: libc::pid_t, signal: c_int) -> c_int {
    let Some(real) = real::killpg() else {
        real::missing();
        return -1;
    };
    if group > 1 && signal != 0 {
        signalled::note(-group);
    }
    // SAFETY: forwarding.
    unsafe { real(group, signal) }
}
