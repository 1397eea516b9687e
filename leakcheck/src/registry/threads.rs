//! Threads' records: where each came from, by scope. Written by the spawn hook (on the
//! spawning thread, before the OS thread exists) and at thread exit; read by checks and
//! snapshots.

#[cfg(lc_thread_hook)]
use std::ffi::c_void;
use std::sync::Arc;
#[cfg(lc_thread_hook)]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use parking_lot::Mutex;

use super::{FORKS, REGISTRY};
use crate::clock::Tick;
use crate::lock::Lock;
use crate::scope::{ScopeId, TaskRef};
use crate::unwind::SpawnStack;

/// Threads named like a process-wide pool's (`config::allowlist::POOLS`): the few a check
/// looks at, whoever owns them, for a job its test submitted. Entries of exited threads are
/// dropped when read.
pub(super) static POOL_NAMED: Lock<Vec<std::sync::Weak<ThreadOrigin>>> = Lock::new(Vec::new());

/// Remembers the full name a thread gave itself (the kernel keeps 15 bytes), and indexes
/// it if a pool's threads are named so.
#[cfg(lc_thread_hook)]
pub(crate) fn name_thread(origin: &Arc<ThreadOrigin>, name: &str) {
    *origin.name.lock() = Some(name.into());
    if crate::config::allowlist::pool_named(name).is_some() {
        POOL_NAMED.lock().push(Arc::downgrade(origin));
    }
}

/// The live threads of this process named like a pool's.
pub(crate) fn pool_named_threads() -> Vec<Arc<ThreadOrigin>> {
    let mut index = POOL_NAMED.lock();
    if index.is_empty() {
        return Vec::new();
    }
    index.retain(|origin| origin.strong_count() > 0);
    index
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .filter(|origin| origin.in_this_process())
        .collect()
}

/// A thread's start routine, as `pthread_create` takes it: `C-unwind`, since a C thread
/// that calls `pthread_exit` force-unwinds through leakcheck's trampoline.
#[cfg(lc_thread_hook)]
pub(crate) type StartRoutine = unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void;

/// What a new thread runs: the start routine and argument its spawner gave
/// `pthread_create`, kept in the thread's record until the thread starts.
#[cfg(lc_thread_hook)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Launch {
    pub(crate) start: StartRoutine,
    pub(crate) arg: *mut c_void,
}

// SAFETY: the argument is the spawner's, handed to the new thread exactly as
// `pthread_create` would hand it: it is passed on once, by the new thread, and never read
// or written through here. The record that holds it is shared between threads only as a
// `ThreadOrigin`, which never dereferences it.
#[cfg(lc_thread_hook)]
unsafe impl Send for Launch {}
// SAFETY: as above: nothing reads through the pointer but the one thread it is for.
#[cfg(lc_thread_hook)]
unsafe impl Sync for Launch {}

/// Where an OS thread came from. Shared by the registry, the thread itself (to hand its
/// origin to the threads it spawns) and its children (so a chain of origins survives a
/// parent that has exited).
pub(crate) struct ThreadOrigin {
    pub(crate) key: u64,
    pub(crate) scope: ScopeId,
    /// How many forks the process had seen when the thread was spawned: in a child of a
    /// later fork the thread does not exist.
    generation: u32,
    /// Kernel thread id; 0 until the new thread has started running.
    tid: AtomicI32,
    /// The `pthread_t`, so that a name given by another thread finds its thread.
    #[cfg(lc_thread_hook)]
    handle: AtomicUsize,
    /// The full name (the kernel keeps only 15 bytes), when the thread named itself.
    name: Mutex<Option<Box<str>>>,
    /// The thread that spawned it, until this thread exits: an exited thread's record
    /// lives on while its children do, and must not keep its own ancestors alive too (a
    /// thread that respawns itself would grow a chain of spawn stacks for ever).
    parent: Mutex<Option<Arc<ThreadOrigin>>>,
    /// The first thread of its line, the one with no parent (a libtest test thread, say):
    /// what the exit check names as the spawner, however many threads are in between.
    pub(crate) root: Option<Arc<ThreadOrigin>>,
    /// The task that was being polled on the spawning thread, if any: the real spawner.
    pub(crate) spawning_task: Option<TaskRef>,
    /// Its spawn backtrace, as kept at spawn (`unwind`).
    pub(crate) spawn: SpawnStack,
    /// The system call it waited in when a check last found it idle in a pool's wait
    /// (`/proc`'s fingerprint of the call, `threads::Counters::call`); 0 when never.
    idle_call: std::sync::atomic::AtomicU64,
    /// A panic is in progress on it: the panic hook saw it start, and it has not yet been
    /// caught inside the thread (it may be unwinding out of it). A check waits for such a
    /// thread, whatever the rules say of it, so that its panic is judged.
    panicking: AtomicBool,
    /// What the new thread runs, which the spawn hook hands to it here rather than in an
    /// allocation of its own.
    #[cfg(lc_thread_hook)]
    launch: Launch,
    /// When it was spawned.
    pub(crate) spawned: Tick,
}

impl ThreadOrigin {
    /// Whether the thread belongs to this process: after `fork`, the child has the forking
    /// thread alone, though it inherits every record (some of threads still starting).
    pub(crate) fn in_this_process(&self) -> bool {
        self.generation == FORKS.load(Ordering::Relaxed)
    }

    /// The kernel thread id, or `None` while the thread is still being created.
    pub(crate) fn tid(&self) -> Option<i32> {
        match self.tid.load(Ordering::Acquire) {
            0 => None,
            tid => Some(tid),
        }
    }

    /// The call a check last found it idle in, when a pool's thread: 0 when never.
    pub(crate) fn idle_call(&self) -> u64 {
        self.idle_call.load(Ordering::Relaxed)
    }

    pub(crate) fn set_idle_call(&self, call: u64) {
        self.idle_call.store(call, Ordering::Relaxed);
    }

    /// Whether a panic is in progress on it (its hook running, or unwinding out of it).
    pub(crate) fn is_panicking(&self) -> bool {
        self.panicking.load(Ordering::Acquire)
    }

    /// Called on the thread itself: a panic started (the hook saw it), or ended inside it.
    #[cfg(lc_panic_hook)]
    pub(crate) fn set_panicking(&self, panicking: bool) {
        self.panicking.store(panicking, Ordering::Release);
    }

    pub(crate) fn name(&self) -> Option<String> {
        self.name.lock().as_deref().map(str::to_owned)
    }

    /// The thread that spawned it, if the hook saw one and this thread has not exited.
    pub(crate) fn parent(&self) -> Option<Arc<ThreadOrigin>> {
        self.parent.lock().clone()
    }

    /// Whether it is the first of its line: spawned by no thread the hook saw.
    pub(crate) fn is_root(&self) -> bool {
        self.root.is_none() && self.parent.lock().is_none()
    }
}

/// Written by the thread spawn hook, which exists only where `lc_thread_hook` holds.
#[cfg(lc_thread_hook)]
impl ThreadOrigin {
    pub(crate) fn new(
        key: u64,
        scope: ScopeId,
        parent: Option<Arc<ThreadOrigin>>,
        spawning_task: Option<TaskRef>,
        spawn: SpawnStack,
        launch: Launch,
    ) -> Self {
        ThreadOrigin {
            key,
            scope,
            generation: FORKS.load(Ordering::Relaxed),
            tid: AtomicI32::new(0),
            handle: AtomicUsize::new(0),
            name: Mutex::new(None),
            idle_call: std::sync::atomic::AtomicU64::new(0),
            panicking: AtomicBool::new(false),
            root: parent
                .as_ref()
                .map(|parent| parent.root.clone().unwrap_or_else(|| parent.clone())),
            parent: Mutex::new(parent),
            spawning_task,
            spawn,
            launch,
            spawned: crate::clock::now(),
        }
    }

    /// What the new thread runs, as given to `new`.
    pub(crate) fn launch(&self) -> Launch {
        self.launch
    }

    pub(crate) fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Release);
    }

    pub(crate) fn set_handle(&self, handle: usize) {
        self.handle.store(handle, Ordering::Release);
    }

    /// The thread has exited: its record no longer keeps its parent alive.
    pub(crate) fn forget_parent(&self) {
        self.parent.lock().take();
    }

    /// The same thread, owned by another scope.
    pub(crate) fn with_scope(&self, scope: ScopeId) -> ThreadOrigin {
        ThreadOrigin {
            key: self.key,
            scope,
            generation: self.generation,
            tid: AtomicI32::new(self.tid.load(Ordering::Acquire)),
            handle: AtomicUsize::new(self.handle.load(Ordering::Acquire)),
            name: Mutex::new(self.name.lock().clone()),
            idle_call: std::sync::atomic::AtomicU64::new(self.idle_call.load(Ordering::Relaxed)),
            panicking: AtomicBool::new(self.is_panicking()),
            parent: Mutex::new(self.parent()),
            root: self.root.clone(),
            spawning_task: self.spawning_task,
            spawn: self.spawn.clone(),
            launch: self.launch,
            spawned: self.spawned,
        }
    }
}

#[cfg(lc_thread_hook)]
pub(crate) fn add_thread(origin: Arc<ThreadOrigin>) {
    REGISTRY
        .lock()
        .scopes
        .entry(origin.scope)
        .or_default()
        .threads
        .insert(origin.key, origin);
}

#[cfg(lc_thread_hook)]
pub(crate) fn remove_thread(scope: ScopeId, key: u64) {
    if let Some(entries) = REGISTRY.lock().scopes.get_mut(&scope) {
        entries.threads.remove(&key);
    }
}

/// The threads registered to `scope` that have not exited.
pub(crate) fn threads_of(scope: ScopeId) -> Vec<Arc<ThreadOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .get(&scope)
        .map(|entries| {
            entries
                .threads
                .values()
                .filter(|origin| origin.in_this_process())
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Every registered thread that has not exited, whatever its scope.
pub(crate) fn all_threads() -> Vec<Arc<ThreadOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .values()
        .flat_map(|entries| entries.threads.values().cloned())
        .filter(|origin| origin.in_this_process())
        .collect()
}

/// The registered thread with this `pthread_t`, if it is still running.
#[cfg(lc_name_hook)]
pub(crate) fn thread_by_handle(handle: usize) -> Option<Arc<ThreadOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .values()
        .flat_map(|entries| entries.threads.values())
        .find(|origin| origin.handle.load(Ordering::Acquire) == handle)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope;

    #[test]
    #[cfg(lc_thread_hook)]
    fn an_exited_thread_keeps_no_ancestor_alive_but_its_line_keeps_its_root() {
        unsafe extern "C-unwind" fn never_run(_: *mut c_void) -> *mut c_void {
            std::ptr::null_mut()
        }
        use crate::unwind::{Registers, THREAD, capture};
        let spawn = |key, parent| {
            Arc::new(ThreadOrigin::new(
                key,
                scope::PROCESS,
                parent,
                None,
                capture(Registers::here(), THREAD),
                Launch {
                    start: never_run,
                    arg: std::ptr::null_mut(),
                },
            ))
        };
        // A thread that respawns itself: root -> first -> second -> third.
        let root = spawn(1, None);
        let first = spawn(2, Some(root.clone()));
        let first_alive = Arc::downgrade(&first);
        let second = spawn(3, Some(first.clone()));
        drop(first);
        let third = spawn(4, Some(second.clone()));
        // `second` exits (the hook's registration calls this), then `first`'s last holder
        // is gone: nothing but `third` -> `second` stays, and the root.
        second.forget_parent();
        drop(second);
        assert!(
            first_alive.upgrade().is_none(),
            "an exited ancestor stayed alive"
        );
        assert!(third.parent().is_some());
        assert!(Arc::ptr_eq(third.root.as_ref().unwrap(), &root));
        assert!(root.is_root() && !third.is_root());
    }
}
