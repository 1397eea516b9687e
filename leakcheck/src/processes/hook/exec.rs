//! `execve`, `execv` and `execvp`: in a fork child, the program and arguments noted for the
//! parent's record and the environment with the marker; elsewhere they pass through.

use super::fork::FORKED;
use super::*;

pub(super) type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
pub(super) type ExecvpFn = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;

/// In a fork child: notes `program` and `argv` for the parent, and gives the environment
/// with the marker for the `exec`; elsewhere `envp` as it is.
///
/// # Safety
///
/// `program` is null or a C string; `argv` and `envp` are null or null-terminated arrays of
/// C strings.
unsafe fn forked_exec(
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> *const *const c_char {
    let forked = FORKED.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    if forked.is_null() {
        return envp;
    }
    // SAFETY: the child's copy of what its parent prepared; the child has one thread.
    let forked = unsafe { &mut *forked };
    if let Some(note) = forked.note {
        // SAFETY: in the fork child the note was made for, before its `exec`; the caller's
        // C strings.
        unsafe { note.write(program, argv) };
    }
    match &mut forked.environment {
        // SAFETY: the caller's environment.
        Some(environment) => unsafe { environment.marked(envp) },
        None => envp,
    }
}

/// The override of `execve(2)`: in a fork child, what it runs is noted for the parent and
/// the environment it is given gets the marker; elsewhere it is forwarded as it is.
///
/// # Safety
///
/// The contract of `execve(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let Some(real) = real::execve() else {
        real::missing();
        return -1;
    };
    // SAFETY: the caller's arguments; then forwarding.
    unsafe { real(path, argv, forked_exec(path, argv, envp)) }
}

/// The override of `execv(3)` (what `nix::unistd::execv` calls, and C code after a
/// `fork`): glibc runs it on its internal `execve`, past the hook above, so it is followed
/// here as `execvp` is: with `environ`, which gets the marker in a fork child.
///
/// # Safety
///
/// The contract of `execv(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    let Some(real) = real::execve() else {
        real::missing();
        return -1;
    };
    // SAFETY: the caller's arguments and the child's own environment (with the marker in a
    // fork child); `execv` is `execve` with `environ`.
    unsafe { real(path, argv, forked_exec(path, argv, environ)) }
}

/// The override of `execvp(3)`, which std's `Command` calls in a fork child after it has
/// set `environ` to the command's environment: in a fork child, that gets the marker, and
/// what it runs is noted for the parent.
///
/// # Safety
///
/// The contract of `execvp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    let Some(real) = real::execvp() else {
        real::missing();
        return -1;
    };
    // SAFETY: the child's own environment pointer, replaced by one with the marker in a
    // fork child only (a process's `environ` is its own, never stored here elsewhere); then
    // forwarding.
    unsafe {
        let marked = forked_exec(file, argv, environ);
        if marked != environ {
            environ = marked;
        }
        real(file, argv)
    }
}
