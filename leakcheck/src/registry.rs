//! Live threads and tokio tasks and where they came from, indexed
//! by owning scope so that checking a scope costs O(what that scope spawned), not
//! O(everything alive in the process).
//!
//! Writers are the spawn hooks (on the spawning thread, before the OS thread exists) and
//! thread exit; readers are `verify`. Entries hold raw instruction pointers only: symbols
//! are resolved by `report`, and only for leaks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use crate::scope::ScopeId;

/// Frames kept of a thread's spawn backtrace: enough for std's spawn path, the user's
/// frames and libtest's, at 8 bytes a frame.
pub(crate) const THREAD_FRAMES: usize = 48;

/// Frames kept of a task's spawn backtrace, when task backtraces are on: tokio's spawn path
/// is shallow, and 24 frames reach through it into the user's code and its callers.
pub(crate) const TASK_FRAMES: usize = 24;

/// A spawn backtrace as raw instruction pointers, captured without the global backtrace
/// lock and without allocating.
#[derive(Clone)]
pub(crate) struct SpawnTrace<const N: usize = THREAD_FRAMES> {
    ips: [usize; N],
    len: usize,
}

impl<const N: usize> SpawnTrace<N> {
    /// Captures the calling thread's stack. Safe to call inside `pthread_create`: it takes
    /// no lock that a thread spawn could hold and allocates nothing.
    #[inline(never)]
    pub(crate) fn capture() -> Self {
        let mut trace = SpawnTrace {
            ips: [0; N],
            len: 0,
        };
        // SAFETY: `trace_unsynchronized` only requires that no other thread unwinds
        // through the same non-thread-safe unwinder state at once; the system unwinder
        // (libgcc / libunwind) used on our targets is thread-safe.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                trace.ips[trace.len] = frame.ip() as usize;
                trace.len += 1;
                trace.len < N
            });
        }
        trace
    }

    /// No frames: what a task records unless task backtraces are switched on.
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn empty() -> Self {
        SpawnTrace {
            ips: [0; N],
            len: 0,
        }
    }

    pub(crate) fn ips(&self) -> &[usize] {
        &self.ips[..self.len]
    }
}

/// Where an OS thread came from. Shared by the registry, the thread itself (to hand its
/// origin to the threads it spawns) and its children (so a chain of origins survives a
/// parent that has exited).
pub(crate) struct ThreadOrigin {
    pub(crate) key: u64,
    pub(crate) scope: ScopeId,
    /// Kernel thread id; 0 until the new thread has started running.
    tid: AtomicI32,
    /// The `pthread_t`, so that a name given by another thread finds its thread.
    handle: AtomicUsize,
    /// The full name (the kernel keeps only 15 bytes), when the thread named itself.
    name: Mutex<Option<Box<str>>>,
    pub(crate) parent: Option<Arc<ThreadOrigin>>,
    /// The task that was being polled on the spawning thread, if any: the real spawner.
    pub(crate) spawning_task: Option<crate::tasks::TaskRef>,
    pub(crate) spawn: SpawnTrace,
}

impl ThreadOrigin {
    pub(crate) fn new(
        key: u64,
        scope: ScopeId,
        parent: Option<Arc<ThreadOrigin>>,
        spawning_task: Option<crate::tasks::TaskRef>,
        spawn: SpawnTrace,
    ) -> Self {
        ThreadOrigin {
            key,
            scope,
            tid: AtomicI32::new(0),
            handle: AtomicUsize::new(0),
            name: Mutex::new(None),
            parent,
            spawning_task,
            spawn,
        }
    }

    /// The kernel thread id, or `None` while the thread is still being created.
    pub(crate) fn tid(&self) -> Option<i32> {
        match self.tid.load(Ordering::Acquire) {
            0 => None,
            tid => Some(tid),
        }
    }

    pub(crate) fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Release);
    }

    pub(crate) fn set_handle(&self, handle: usize) {
        self.handle.store(handle, Ordering::Release);
    }

    pub(crate) fn name(&self) -> Option<String> {
        self.name.lock().as_deref().map(str::to_owned)
    }

    pub(crate) fn set_name(&self, name: &str) {
        *self.name.lock() = Some(name.into());
    }

    /// The same thread, owned by another scope.
    pub(crate) fn with_scope(&self, scope: ScopeId) -> ThreadOrigin {
        ThreadOrigin {
            key: self.key,
            scope,
            tid: AtomicI32::new(self.tid.load(Ordering::Acquire)),
            handle: AtomicUsize::new(self.handle.load(Ordering::Acquire)),
            name: Mutex::new(self.name.lock().clone()),
            parent: self.parent.clone(),
            spawning_task: self.spawning_task,
            spawn: self.spawn.clone(),
        }
    }
}

/// Where a tokio task came from, recorded by the spawn hook of a runtime that has
/// leakcheck's hooks (`--cfg tokio_unstable`).
pub(crate) struct TaskOrigin {
    pub(crate) id: tokio::task::Id,
    pub(crate) scope: ScopeId,
    /// The user's spawn call, as tokio's `#[track_caller]` chain saw it.
    pub(crate) spawned_at: &'static std::panic::Location<'static>,
    /// The task that spawned it and where that one was spawned, if a task did (else a
    /// thread did). Not the parent's whole origin: a task that respawns itself would
    /// otherwise keep an ever longer chain alive.
    pub(crate) parent: Option<crate::tasks::TaskRef>,
    pub(crate) spawn: SpawnTrace<TASK_FRAMES>,
}

// Written by the task hooks, which exist under `--cfg tokio_unstable` only.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
/// Ids of tasks whose termination arrived before their spawn (tokio runs the spawn hook
/// after binding the task, and binding into a closing runtime terminates it at once), so
/// that the late spawn is not recorded as a task that never ends. Blocking tasks terminate
/// without a spawn at all, so this keeps only the most recent ids.
const EARLY_TERMINATIONS: usize = 256;

#[derive(Default)]
struct ScopeEntries {
    name: Option<Arc<str>>,
    threads: HashMap<u64, Arc<ThreadOrigin>>,
    tasks: HashMap<tokio::task::Id, Arc<TaskOrigin>>,
}

#[derive(Default)]
struct Registry {
    scopes: HashMap<ScopeId, ScopeEntries>,
    /// Live task -> owning scope, for the poll hooks and for removal.
    task_scopes: HashMap<tokio::task::Id, ScopeId>,
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    early_terminations: std::collections::VecDeque<tokio::task::Id>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

pub(crate) fn name_scope(scope: ScopeId, name: Arc<str>) {
    REGISTRY.lock().scopes.entry(scope).or_default().name = Some(name);
}

pub(crate) fn scope_name(scope: ScopeId) -> Option<Arc<str>> {
    REGISTRY.lock().scopes.get(&scope)?.name.clone()
}

pub(crate) fn add_thread(origin: Arc<ThreadOrigin>) {
    REGISTRY
        .lock()
        .scopes
        .entry(origin.scope)
        .or_default()
        .threads
        .insert(origin.key, origin);
}

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
        .map(|entries| entries.threads.values().cloned().collect())
        .unwrap_or_default()
}

/// Every registered thread that has not exited, whatever its scope.
pub(crate) fn all_threads() -> Vec<Arc<ThreadOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .values()
        .flat_map(|entries| entries.threads.values().cloned())
        .collect()
}

/// The registered thread with this `pthread_t`, if it is still running.
pub(crate) fn thread_by_handle(handle: usize) -> Option<Arc<ThreadOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .values()
        .flat_map(|entries| entries.threads.values())
        .find(|origin| origin.handle.load(Ordering::Acquire) == handle)
        .cloned()
}

// Written by the task hooks, which exist under `--cfg tokio_unstable` only.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
/// Records a spawned task, unless it has already terminated.
pub(crate) fn add_task(
    id: tokio::task::Id,
    scope: ScopeId,
    spawned_at: &'static std::panic::Location<'static>,
    parent: Option<tokio::task::Id>,
    spawn: SpawnTrace<TASK_FRAMES>,
) {
    let mut registry = REGISTRY.lock();
    if let Some(at) = registry
        .early_terminations
        .iter()
        .position(|&ended| ended == id)
    {
        registry.early_terminations.remove(at);
        return;
    }
    let parent = parent.and_then(|parent| {
        let parent_scope = *registry.task_scopes.get(&parent)?;
        let origin = registry.scopes.get(&parent_scope)?.tasks.get(&parent)?;
        Some((parent, origin.spawned_at))
    });
    let origin = Arc::new(TaskOrigin {
        id,
        scope,
        spawned_at,
        parent,
        spawn,
    });
    registry.task_scopes.insert(id, scope);
    registry
        .scopes
        .entry(scope)
        .or_default()
        .tasks
        .insert(id, origin);
}

// Written by the task hooks, which exist under `--cfg tokio_unstable` only.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
/// Forgets a task that has terminated (completed, failed or cancelled).
pub(crate) fn remove_task(id: tokio::task::Id) {
    let mut registry = REGISTRY.lock();
    match registry.task_scopes.remove(&id) {
        Some(scope) => {
            if let Some(entries) = registry.scopes.get_mut(&scope) {
                entries.tasks.remove(&id);
            }
        }
        None => {
            if registry.early_terminations.len() == EARLY_TERMINATIONS {
                registry.early_terminations.pop_front();
            }
            registry.early_terminations.push_back(id);
        }
    }
}

/// Whether a task is still registered (has not terminated).
pub(crate) fn task_alive(id: tokio::task::Id) -> bool {
    REGISTRY.lock().task_scopes.contains_key(&id)
}

// Written by the task hooks, which exist under `--cfg tokio_unstable` only.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
/// The scope that owns a live task, for the poll hooks.
pub(crate) fn task_scope(id: tokio::task::Id) -> Option<ScopeId> {
    REGISTRY.lock().task_scopes.get(&id).copied()
}

/// The live tasks registered to `scope`.
pub(crate) fn tasks_of(scope: ScopeId) -> Vec<Arc<TaskOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .get(&scope)
        .map(|entries| entries.tasks.values().cloned().collect())
        .unwrap_or_default()
}

/// Every live registered task, whatever its scope.
pub(crate) fn all_tasks() -> Vec<Arc<TaskOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .values()
        .flat_map(|entries| entries.tasks.values().cloned())
        .collect()
}
