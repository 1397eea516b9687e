//! The joins and the detach, as lost panics see them: glibc's `pthread_join` (std's
//! `JoinHandle::join`) and its timed and try joins observe a thread's panic; a
//! `pthread_detach` (a `JoinHandle` dropped) makes it unobservable. Each forwards to the C
//! library's own function, unchanged, then tells the registry.

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::interpose;
use crate::registry;
use crate::threads;

/// The override of `pthread_join`: a thread's panic that the join returns (std's
/// `JoinHandle::join`) was observed, not lost. Two loads when no panic was ever lost (the
/// next thread key, and whether any panic was lost).
///
/// # Safety
///
/// The contract of `pthread_join(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_join(thread: libc::pthread_t, result: *mut *mut c_void) -> c_int {
    let Some(real_join) = join_real() else {
        return libc::ENOSYS;
    };
    let spawned_before = threads::next_key();
    // SAFETY: forwarding the caller's arguments unchanged.
    let status = unsafe { real_join(thread, result) };
    joined(thread, status, spawned_before);
    status
}

/// glibc's join that does not wait (`pthread_tryjoin_np`): a join like `pthread_join`'s
/// when it succeeds.
///
/// # Safety
///
/// The contract of `pthread_tryjoin_np(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_tryjoin_np(
    thread: libc::pthread_t,
    result: *mut *mut c_void,
) -> c_int {
    let Some(real_join) = try_join_real() else {
        return libc::ENOSYS;
    };
    let spawned_before = threads::next_key();
    // SAFETY: forwarding the caller's arguments unchanged.
    let status = unsafe { real_join(thread, result) };
    joined(thread, status, spawned_before);
    status
}

/// glibc's join with a deadline on the realtime clock (`pthread_timedjoin_np`).
///
/// # Safety
///
/// The contract of `pthread_timedjoin_np(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_timedjoin_np(
    thread: libc::pthread_t,
    result: *mut *mut c_void,
    deadline: *const libc::timespec,
) -> c_int {
    let Some(real_join) = timed_join_real() else {
        return libc::ENOSYS;
    };
    let spawned_before = threads::next_key();
    // SAFETY: forwarding the caller's arguments unchanged.
    let status = unsafe { real_join(thread, result, deadline) };
    joined(thread, status, spawned_before);
    status
}

/// glibc's join with a deadline on a given clock (`pthread_clockjoin_np`).
///
/// # Safety
///
/// The contract of `pthread_clockjoin_np(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_clockjoin_np(
    thread: libc::pthread_t,
    result: *mut *mut c_void,
    clock: libc::clockid_t,
    deadline: *const libc::timespec,
) -> c_int {
    let Some(real_join) = clock_join_real() else {
        return libc::ENOSYS;
    };
    let spawned_before = threads::next_key();
    // SAFETY: forwarding the caller's arguments unchanged.
    let status = unsafe { real_join(thread, result, clock, deadline) };
    joined(thread, status, spawned_before);
    status
}

/// A join of `thread` returned `status`: if it succeeded, whatever ended that thread was
/// observed. Only records of threads spawned before the join began (`spawned_before`, the
/// next key then) are the joined thread's: once the join has freed its `pthread_t`, a new
/// thread may get the same one, and panic, before this runs. One relaxed load when no panic
/// was ever lost.
fn joined(thread: libc::pthread_t, status: c_int, spawned_before: u64) {
    if status == 0 && registry::any_lost_panic() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            registry::joined(thread as usize, spawned_before);
        }));
    }
}

/// The override of `pthread_detach` (std's `JoinHandle` dropped): a lost panic of that
/// thread can no longer be observed. A fence and one relaxed load when no panic was ever
/// lost.
///
/// # Safety
///
/// The contract of `pthread_detach(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_detach(thread: libc::pthread_t) -> c_int {
    let Some(real_detach) = detach_real() else {
        return libc::ENOSYS;
    };
    let spawned_before = threads::next_key();
    // SAFETY: forwarding the caller's argument unchanged.
    let status = unsafe { real_detach(thread) };
    // After the real detach, behind a fence that pairs with the panic's record
    // (`registry::add_lost_panic`): either the panicking thread reads its detached state
    // after this detach, or its record is there to mark.
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    if status == 0 && registry::any_lost_panic() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            registry::detached(thread as usize, spawned_before);
        }));
    }
    status
}

type JoinFn = unsafe extern "C" fn(libc::pthread_t, *mut *mut std::ffi::c_void) -> std::ffi::c_int;

fn join_real() -> Option<JoinFn> {
    let address = interpose::address(interpose::Real::PthreadJoin)?;
    // SAFETY: the C library's pthread_join has exactly this signature.
    Some(unsafe { std::mem::transmute::<usize, JoinFn>(address) })
}

fn try_join_real() -> Option<JoinFn> {
    let address = interpose::address(interpose::Real::PthreadTryjoin)?;
    // SAFETY: glibc's pthread_tryjoin_np has exactly pthread_join's signature.
    Some(unsafe { std::mem::transmute::<usize, JoinFn>(address) })
}

type TimedJoinFn = unsafe extern "C" fn(
    libc::pthread_t,
    *mut *mut std::ffi::c_void,
    *const libc::timespec,
) -> std::ffi::c_int;

fn timed_join_real() -> Option<TimedJoinFn> {
    let address = interpose::address(interpose::Real::PthreadTimedjoin)?;
    // SAFETY: glibc's pthread_timedjoin_np has exactly this signature.
    Some(unsafe { std::mem::transmute::<usize, TimedJoinFn>(address) })
}

type ClockJoinFn = unsafe extern "C" fn(
    libc::pthread_t,
    *mut *mut std::ffi::c_void,
    libc::clockid_t,
    *const libc::timespec,
) -> std::ffi::c_int;

fn clock_join_real() -> Option<ClockJoinFn> {
    let address = interpose::address(interpose::Real::PthreadClockjoin)?;
    // SAFETY: glibc's pthread_clockjoin_np has exactly this signature.
    Some(unsafe { std::mem::transmute::<usize, ClockJoinFn>(address) })
}

type DetachFn = unsafe extern "C" fn(libc::pthread_t) -> std::ffi::c_int;

fn detach_real() -> Option<DetachFn> {
    let address = interpose::address(interpose::Real::PthreadDetach)?;
    // SAFETY: the C library's pthread_detach has exactly this signature.
    Some(unsafe { std::mem::transmute::<usize, DetachFn>(address) })
}
