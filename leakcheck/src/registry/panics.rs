//! Lost panics: a panic that unwound out of a thread's closure, until the thread is joined
//! (then it was observed, and forgotten) or its scope's check takes it. Written on the
//! panicking thread, as the panic starts; read by checks. Few: a process that panics often
//! in threads nobody joins keeps one record per panic until a check of its scope.

// Without the hooks (`lc_panic_hook`) nothing is recorded: the record is a type only.
#![cfg_attr(not(lc_panic_hook), allow(dead_code))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};

use crate::lock::Lock;
use crate::registry::ThreadOrigin;
use crate::scope::ScopeId;

/// A panic that ended a thread, not yet observed.
#[derive(Clone)]
pub(crate) struct LostPanic {
    pub(crate) scope: ScopeId,
    /// The thread it ended.
    pub(crate) thread: Arc<ThreadOrigin>,
    pub(crate) tid: i32,
    /// Its `pthread_t`, which a join names.
    handle: usize,
    /// The panic's message, when the panic hook saw it (not for `resume_unwind`, nor
    /// while another hook was in place of leakcheck's).
    pub(crate) message: Option<String>,
    /// `file:line:column` of the panic, when the hook saw it.
    pub(crate) location: Option<String>,
    /// Resumed with `resume_unwind`: the message is the first panic's, as this thread's
    /// hook last saw it.
    pub(crate) resumed: bool,
    /// Detached (its `JoinHandle` dropped), before or after the panic: no join can observe
    /// it, and a join of a later thread given the same `pthread_t` is not one of it.
    detached: bool,
    /// The thread that spawned it (its record's key), as the panic started: a scope's
    /// owner hands its scoped threads' panics on (`registry::handed_back`).
    spawner: Option<u64>,
}

impl LostPanic {
    pub(crate) fn new(
        thread: Arc<ThreadOrigin>,
        tid: i32,
        handle: usize,
        message: Option<String>,
        location: Option<String>,
        resumed: bool,
    ) -> LostPanic {
        LostPanic {
            scope: thread.scope,
            spawner: thread.parent().map(|parent| parent.key),
            thread,
            tid,
            handle,
            message,
            location,
            resumed,
            detached: false,
        }
    }
}

pub(super) static LOST: Lock<Vec<LostPanic>> = Lock::new(Vec::new());

/// Whether any panic was ever lost: what the join hook reads, once, before anything else.
static ANY: AtomicBool = AtomicBool::new(false);

/// A thread's closure panicked, and the panic is unwinding out of it; `is_detached` says
/// whether its thread is detached already, read under the records' lock so that a detach
/// racing the panic either comes before the read or marks the record (`detached`).
pub(crate) fn add_lost_panic(mut panic: LostPanic, is_detached: impl FnOnce() -> bool) {
    // Raised before the read, behind a fence that pairs with the detach hook's: a detach
    // that does not see the flag is one this read sees.
    ANY.store(true, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    let mut lost = LOST.lock();
    panic.detached = is_detached();
    lost.push(panic);
}

/// Whether a panic was ever lost in this process: one relaxed load.
pub(crate) fn any_lost_panic() -> bool {
    ANY.load(Ordering::Relaxed)
}

/// The thread `handle` was joined: whatever ended it was observed. Only a thread spawned
/// before the join began (its key below `spawned_before`) can be the one joined: a later
/// thread given the freed `pthread_t` is not. (A detached thread's `pthread_t` is reused by
/// a later thread too: the join is that one's.)
pub(crate) fn joined(handle: usize, spawned_before: u64) {
    LOST.lock().retain(|panic| {
        panic.handle != handle || panic.detached || panic.thread.key >= spawned_before
    });
}

/// The thread `key` (a `ThreadOrigin`'s) started another thread while its panic unwound
/// out of it: a pool replacing the worker the panic ended, having seen the panic (its drop
/// guard read `thread::panicking()`). Observed.
pub(crate) fn replaced(key: u64) {
    LOST.lock().retain(|panic| panic.thread.key != key);
}

/// A scope's owner (the thread of record `owner`, or an unhooked one of `scope`, such as
/// the main thread) panicked with "a scoped thread panicked": std hands the panics of the
/// scope's threads back to its owner that way, so those it spawned were observed. (A plain
/// thread it spawned within the scope is taken for one of them.)
pub(crate) fn handed_back(owner: Option<u64>, scope: ScopeId) {
    LOST.lock()
        .retain(|panic| panic.spawner != owner || owner.is_none() && panic.scope != scope);
}

/// The thread `handle` was detached (its `JoinHandle` dropped): nobody can join it now.
/// Only a thread spawned before the detach began (its key below `spawned_before`) is the
/// one detached: once detached, it may end, and a later thread get its `pthread_t`.
pub(crate) fn detached(handle: usize, spawned_before: u64) {
    for panic in LOST.lock().iter_mut() {
        if panic.handle == handle && panic.thread.key < spawned_before {
            panic.detached = true;
        }
    }
}

/// The lost panics of `scope` (every scope's, for `None`), taken: a check reports each once.
pub(crate) fn take_lost_panics(scope: Option<ScopeId>) -> Vec<LostPanic> {
    let mut lost = LOST.lock();
    if lost.is_empty() {
        return Vec::new();
    }
    let (taken, kept) = std::mem::take(&mut *lost)
        .into_iter()
        .partition(|panic| scope.is_none_or(|scope| panic.scope == scope));
    *lost = kept;
    taken
}
