//! Live threads (and, with the tokio integration, tasks) and where they came from, indexed
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

/// Frames kept of a spawn backtrace: enough for std's spawn path, the user's frames and
/// libtest's, at 8 bytes a frame.
pub(crate) const SPAWN_FRAMES: usize = 48;

/// A spawn backtrace as raw instruction pointers, captured without the global backtrace
/// lock and without allocating.
pub(crate) struct SpawnTrace {
    ips: [usize; SPAWN_FRAMES],
    len: usize,
}

impl SpawnTrace {
    /// Captures the calling thread's stack. Safe to call inside `pthread_create`: it takes
    /// no lock that a thread spawn could hold and allocates nothing.
    #[inline(never)]
    pub(crate) fn capture() -> SpawnTrace {
        let mut trace = SpawnTrace {
            ips: [0; SPAWN_FRAMES],
            len: 0,
        };
        // SAFETY: `trace_unsynchronized` only requires that no other thread unwinds
        // through the same non-thread-safe unwinder state at once; the system unwinder
        // (libgcc / libunwind) used on our targets is thread-safe.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                trace.ips[trace.len] = frame.ip() as usize;
                trace.len += 1;
                trace.len < SPAWN_FRAMES
            });
        }
        trace
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
    pub(crate) spawn: SpawnTrace,
}

impl ThreadOrigin {
    pub(crate) fn new(
        key: u64,
        scope: ScopeId,
        parent: Option<Arc<ThreadOrigin>>,
        spawn: SpawnTrace,
    ) -> Self {
        ThreadOrigin {
            key,
            scope,
            tid: AtomicI32::new(0),
            handle: AtomicUsize::new(0),
            name: Mutex::new(None),
            parent,
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
}

#[derive(Default)]
struct ScopeEntries {
    name: Option<Arc<str>>,
    threads: HashMap<u64, Arc<ThreadOrigin>>,
}

#[derive(Default)]
struct Registry {
    scopes: HashMap<ScopeId, ScopeEntries>,
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
