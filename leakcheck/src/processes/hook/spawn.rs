//! `posix_spawn` and `posix_spawnp`: std's `Command` (and so tokio's) on its usual path;
//! the child is recorded once the real call returned.

use super::*;

pub(super) type SpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    *const *const c_char,
    *const *const c_char,
) -> c_int;

/// The override of `posix_spawn(3)`.
///
/// # Safety
///
/// The contract of `posix_spawn(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    file_actions: *const libc::posix_spawn_file_actions_t,
    attributes: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let Some(real) = real::posix_spawn() else {
        real::missing();
        return libc::ENOSYS;
    };
    // SAFETY: the caller's arguments, with the real function.
    unsafe { spawn(real, pid, path, file_actions, attributes, argv, envp) }
}

/// The override of `posix_spawnp(3)`, which std's `Command::spawn` calls.
///
/// # Safety
///
/// The contract of `posix_spawnp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    file_actions: *const libc::posix_spawn_file_actions_t,
    attributes: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let Some(real) = real::posix_spawnp() else {
        real::missing();
        return libc::ENOSYS;
    };
    // SAFETY: the caller's arguments, with the real function.
    unsafe { spawn(real, pid, file, file_actions, attributes, argv, envp) }
}

/// Both spawns: prepare (on the parent's thread, before the child exists), spawn with the
/// marked environment, record.
///
/// # Safety
///
/// The contract of `posix_spawn(3)`; `real` is the C library's.
unsafe fn spawn(
    real: SpawnFn,
    pid: *mut libc::pid_t,
    path: *const c_char,
    file_actions: *const libc::posix_spawn_file_actions_t,
    attributes: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    if !registry::hooks_on() {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(pid, path, file_actions, attributes, argv, envp) };
    }
    let caller = Registers::here();
    let prepared = catch_unwind(AssertUnwindSafe(|| {
        let spawning = Spawning::new(caller, path, argv);
        let environment = spawning
            .marker
            .as_deref()
            // SAFETY: the caller's `envp` and the C library's `environ`, null-terminated
            // arrays (or null); std holds its environment lock around the spawn.
            .filter(|_| unsafe { marker::inherits(envp, environ) })
            // SAFETY: the caller's `envp`, a null-terminated array (or null).
            .map(|marker| unsafe { with_marker(envp, marker) });
        (spawning, environment)
    }));
    let Ok((spawning, environment)) = prepared else {
        real::could_not_record();
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(pid, path, file_actions, attributes, argv, envp) };
    };
    let envp = environment
        .as_ref()
        .map_or(envp, |entries| entries.as_ptr());
    let _in_flight = InFlight::start();
    let mut child: libc::pid_t = 0;
    // SAFETY: the caller's arguments, the environment a copy of theirs with the marker
    // (which lives until the call returns), and our own pid slot.
    let status = unsafe { real(&mut child, path, file_actions, attributes, argv, envp) };
    if status == 0 {
        if !pid.is_null() {
            // SAFETY: the caller's slot for the pid.
            unsafe { *pid = child };
        }
        let marked = environment.is_some();
        let record = || spawning.record(child, marked);
        if catch_unwind(AssertUnwindSafe(record)).is_err() {
            real::could_not_record();
        }
    }
    status
}
