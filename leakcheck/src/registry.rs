//! Live threads and tokio tasks and where they came from. Threads are indexed by owning
//! scope, so checking a scope costs O(what that scope spawned), not O(everything alive in
//! the process). Tasks are many and their hooks run on every poll of every worker, so they
//! are sharded by id, with a live count per scope: a clean scope's check reads the count.
//!
//! Writers are the spawn hooks (on the spawning thread, before the OS thread exists) and
//! thread exit; readers are `verify` and `describe`. Entries hold spawn stacks as kept at
//! spawn (`unwind`): they are unwound and symbols resolved by `verify` and `describe`, and
//! only for leaks.
//!
//! # Locks
//!
//! The bounded globals, `REGISTRY` (threads and per-scope task counts), the task shards and
//! `OWN_THREADS`, are [`Lock`]s, and outside a fork no lock is ever taken while another is
//! held: `add_task` reads the parent's shard, releases it, takes `REGISTRY` for the scope's
//! count only on a cache miss (`SPAWNING_SCOPE`), releases it, then takes its own shard;
//! `tasks_of` reads the count under `REGISTRY`, releases it, then visits each shard in turn.
//! That is what keeps the hooks, which run inside `pthread_create` and inside tokio's
//! scheduler, free of deadlock. Nothing here allocates under a lock but the maps' own
//! growth, and a snapshot's `visit_tasks`, which runs on the thread that asked, never inside
//! a hook. A record's own fields (a thread's name and parent) have locks of their own,
//! `parking_lot`'s, each held for a copy at most.
//!
//! # Fork
//!
//! A child forked while another thread held one of the bounded locks would find it held for
//! ever (that thread does not exist in the child), and hang in its first spawn. So around
//! `fork` (`pthread_atfork`, see [`fork`]) the forking thread takes all of them, in one
//! order (scope names, `REGISTRY`, the shards, `OWN_THREADS`, `POOL_NAMED`): no other thread
//! holds one at the fork. The
//! parent then releases them; the child empties them first, so that it starts with no
//! record of its parent's threads and tasks, and touches no record made before the fork
//! (the fork generation tells a record's process).
//!
//! Memory stays bounded over a long run: a scope's entry goes when its `Scope` has been
//! dropped and its last thread and task have ended ([`forget_finished_scopes`]), and a
//! snapshot has the task tables give back the room a burst of tasks left empty.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use crate::clock::Tick;
use crate::lock::Lock;
use crate::scope::{self, ScopeId, TaskRef};
use crate::unwind::SpawnStack;

/// Whether the spawn hooks record anything: off under `LEAKCHECK=off`, decided before
/// `main` (see `init`), so that `pthread_create` never reads the environment.
#[cfg(any(lc_thread_hook, tokio_unstable))]
static HOOKS_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[cfg(any(lc_thread_hook, tokio_unstable))]
/// Whether the spawn hooks record spawns; one atomic load.
pub(crate) fn hooks_on() -> bool {
    HOOKS_ON.load(Ordering::Relaxed)
}

#[cfg(any(lc_thread_hook, tokio_unstable))]
/// Turns the spawn hooks into pass-throughs, for the rest of the process.
pub(crate) fn switch_hooks_off() {
    HOOKS_ON.store(false, Ordering::Relaxed);
}

/// The kernel ids of leakcheck's own threads while they run (the watchdog, the thread that
/// loads debug info, any watchers): no check or snapshot reports them. Read by checks and
/// snapshots, never by a hook.
static OWN_THREADS: Lock<Vec<i32>> = Lock::new(Vec::new());

/// Marks the calling thread as leakcheck's own.
pub(crate) fn mark_own_thread(tid: i32) {
    OWN_THREADS.lock().push(tid);
}

/// The thread is about to end: its id may be reused by a thread of the program's.
pub(crate) fn unmark_own_thread(tid: i32) {
    OWN_THREADS.lock().retain(|&own| own != tid);
}

/// Whether `tid` is one of leakcheck's own threads.
pub(crate) fn is_own_thread(tid: i32) -> bool {
    tid != 0 && OWN_THREADS.lock().contains(&tid)
}

/// Threads named like a process-wide pool's (`config::allowlist::POOLS`): the few a check
/// looks at, whoever owns them, for a job its test submitted. Entries of exited threads are
/// dropped when read.
static POOL_NAMED: Lock<Vec<std::sync::Weak<ThreadOrigin>>> = Lock::new(Vec::new());

/// Remembers the full name a thread gave itself (the kernel keeps 15 bytes), and indexes
/// it if a pool's threads are named so.
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

/// Forks this process has gone through (in its ancestry): a thread record made under an
/// earlier count is a thread of the parent.
static FORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The handlers `pthread_atfork` runs around every `fork` of the process (see the module's
/// docs, "Fork"), registered before `main` (`init`).
#[cfg(lc_thread_hook)]
pub(crate) mod fork {
    use std::cell::RefCell;
    use std::sync::MutexGuard;
    use std::sync::atomic::Ordering;

    use super::{
        FORKS, OWN_THREADS, POOL_NAMED, REGISTRY, Registry, TASK_SHARDS, TASKS, TaskShard,
        ThreadOrigin,
    };

    /// The bounded locks, held by the forking thread across the fork.
    struct Held {
        names: crate::scope::NamesHeld,
        registry: MutexGuard<'static, Registry>,
        shards: [MutexGuard<'static, TaskShard>; TASK_SHARDS],
        own_threads: MutexGuard<'static, Vec<i32>>,
        pool_named: MutexGuard<'static, Vec<std::sync::Weak<ThreadOrigin>>>,
    }

    thread_local! {
        static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    }

    /// Before the fork, in the parent: every bounded lock, in the one order.
    pub(crate) extern "C" fn prepare() {
        let held = Held {
            names: crate::scope::hold_names(),
            registry: REGISTRY.lock(),
            shards: std::array::from_fn(|at| TASKS[at].0.lock()),
            own_threads: OWN_THREADS.lock(),
            pool_named: POOL_NAMED.lock(),
        };
        let _ = HELD.try_with(|slot| *slot.borrow_mut() = Some(held));
    }

    /// After the fork, in the parent: released.
    pub(crate) extern "C" fn in_parent() {
        let _ = HELD.try_with(|slot| drop(slot.borrow_mut().take()));
    }

    /// After the fork, in the child, where the forking thread is the only one: the fork is
    /// counted (records made before it are the parent's), and the globals emptied before
    /// they are released. What they held is forgotten, not dropped: it is the parent's, and
    /// a child often `exec`s at once. Releasing a std lock is an atomic swap and, when
    /// another thread waited, a wake-up of the lock's own word: nothing shared.
    pub(crate) extern "C" fn in_child() {
        FORKS.fetch_add(1, Ordering::Relaxed);
        let _ = HELD.try_with(|slot| {
            if let Some(mut held) = slot.borrow_mut().take() {
                std::mem::forget(std::mem::take(&mut *held.registry));
                for shard in &mut held.shards {
                    std::mem::forget(std::mem::take(&mut **shard));
                }
                std::mem::forget(std::mem::take(&mut *held.own_threads));
                std::mem::forget(std::mem::take(&mut *held.pool_named));
                held.names.forget_all();
            }
        });
        #[cfg(tokio_unstable)]
        super::forget_spawning_scope();
    }
}

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
    /// The start routine and its argument, which the spawn hook hands to the new thread
    /// here rather than in an allocation of its own.
    #[cfg(lc_thread_hook)]
    launch: [usize; 2],
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
        launch: [usize; 2],
    ) -> Self {
        ThreadOrigin {
            key,
            scope,
            generation: FORKS.load(Ordering::Relaxed),
            tid: AtomicI32::new(0),
            handle: AtomicUsize::new(0),
            name: Mutex::new(None),
            idle_call: std::sync::atomic::AtomicU64::new(0),
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
    pub(crate) fn launch(&self) -> [usize; 2] {
        self.launch
    }

    pub(crate) fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Release);
    }

    pub(crate) fn set_handle(&self, handle: usize) {
        self.handle.store(handle, Ordering::Release);
    }

    /// The call a check last found it idle in, when a pool's thread: 0 when never.
    pub(crate) fn idle_call(&self) -> u64 {
        self.idle_call.load(Ordering::Relaxed)
    }

    pub(crate) fn set_idle_call(&self, call: u64) {
        self.idle_call.store(call, Ordering::Relaxed);
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
            parent: Mutex::new(self.parent()),
            root: self.root.clone(),
            spawning_task: self.spawning_task,
            spawn: self.spawn.clone(),
            launch: self.launch,
            spawned: self.spawned,
        }
    }
}

/// Where a tokio task came from, recorded by the spawn hook of a runtime that has
/// leakcheck's hooks (`--cfg tokio_unstable`). Stored inline in the task table, so that a
/// task costs no allocation of leakcheck's own; a check copies out the few it reports.
///
/// Its id is the table's key, not a field: a record of 56 bytes, where one more field
/// pushed the table's buckets past 64 and cost ~400 instructions a task (callgrind).
#[derive(Clone)]
pub(crate) struct TaskOrigin {
    pub(crate) scope: ScopeId,
    /// The user's spawn call, as tokio's `#[track_caller]` chain saw it.
    pub(crate) spawned_at: &'static std::panic::Location<'static>,
    /// The task that spawned it and where that one was spawned, if a task did (else a
    /// thread did). Not the parent's whole origin: a task that respawns itself would
    /// otherwise keep an ever longer chain alive.
    pub(crate) parent: Option<TaskRef>,
    /// Only with `LEAKCHECK_TASK_BACKTRACE=1`: one pointer, so that a task without one costs
    /// no more than its few fields.
    pub(crate) spawn: Option<SpawnStack>,
    /// How many times it has been polled: what a check compares over its grace period to
    /// tell a stuck task from one that is still woken.
    pub(crate) polls: u32,
    /// When it was spawned (in the four bytes `polls` leaves before the next field).
    pub(crate) spawned: Tick,
    /// The live-task count of its scope, decremented when it terminates.
    #[cfg(tokio_unstable)]
    scope_count: Arc<AtomicUsize>,
}

/// A live task as a check copies it out of the table: its id and its origin.
pub(crate) struct LiveTask {
    pub(crate) id: tokio::task::Id,
    pub(crate) origin: TaskOrigin,
}

impl std::ops::Deref for LiveTask {
    type Target = TaskOrigin;

    fn deref(&self) -> &TaskOrigin {
        &self.origin
    }
}

impl TaskOrigin {
    /// The spawn backtrace's instruction pointers, if one was recorded.
    pub(crate) fn spawn_ips(&self) -> &[usize] {
        self.spawn.as_ref().map_or(&[], SpawnStack::unwind)
    }
}

/// Ids of tasks whose termination arrived before their spawn (tokio runs the spawn hook
/// after binding the task, and binding into a closing runtime terminates it at once), so
/// that the late spawn is not recorded as a task that never ends. Blocking tasks terminate
/// without a spawn at all, so this keeps only the most recent ids.
#[cfg(tokio_unstable)]
const EARLY_TERMINATIONS: usize = 256;

#[derive(Default)]
struct ScopeEntries {
    threads: HashMap<u64, Arc<ThreadOrigin>, BuildHasherDefault<IdHasher>>,
    /// How many of the scope's tasks are alive: a clean scope's task check reads only this.
    live_tasks: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Registry {
    scopes: HashMap<ScopeId, ScopeEntries, BuildHasherDefault<IdHasher>>,
}

static REGISTRY: LazyLock<Lock<Registry>> = LazyLock::new(Default::default);

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

/// Forgets the scopes whose `Scope` has been dropped and whose threads and tasks have all
/// ended: their entries here and their names. Called by every check and snapshot; a scope
/// with something still running stays, to be reported under its name.
pub(crate) fn forget_finished_scopes() {
    let closed = scope::closed();
    if closed.is_empty() {
        return;
    }
    let finished: Vec<ScopeId> = {
        let mut registry = REGISTRY.lock();
        closed
            .into_iter()
            .filter(|id| match registry.scopes.get(id) {
                None => true,
                Some(entries)
                    if entries.threads.is_empty()
                        && entries.live_tasks.load(Ordering::Relaxed) == 0 =>
                {
                    registry.scopes.remove(id);
                    true
                }
                Some(_) => false,
            })
            .collect()
    };
    // Not under `REGISTRY`: no lock is taken while another is held.
    scope::forget(&finished);
}

/// How many scopes have an entry: what a long run must keep bounded.
pub(crate) fn scope_entries() -> usize {
    REGISTRY.lock().scopes.len()
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

/// Live tasks, sharded by id: every spawn, poll and termination of every hooked task goes
/// through here, from all workers at once, so one lock would be contended. A task's shard
/// also keeps the terminations that arrived before their spawn.
const TASK_SHARDS: usize = 32;

type IdMap<V> = HashMap<tokio::task::Id, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct TaskShard {
    live: IdMap<TaskOrigin>,
    #[cfg(tokio_unstable)]
    early_terminations: EarlyTerminations,
}

/// The most recent terminations that arrived before their spawn: a set, so that a spawn
/// asks in O(1) (blocking tasks keep it full), and the order they came in, to forget the
/// oldest.
#[cfg(tokio_unstable)]
#[derive(Default)]
struct EarlyTerminations {
    ids: std::collections::HashSet<tokio::task::Id, BuildHasherDefault<IdHasher>>,
    order: std::collections::VecDeque<tokio::task::Id>,
}

#[cfg(tokio_unstable)]
impl EarlyTerminations {
    fn insert(&mut self, id: tokio::task::Id) {
        if self.order.len() == EARLY_TERMINATIONS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        self.order.push_back(id);
        self.ids.insert(id);
    }

    /// Whether `id` terminated early; forgets it if so (its id is not reused).
    fn take(&mut self, id: tokio::task::Id) -> bool {
        // The stale entry in `order` goes when it is the oldest; removing an absent id
        // from `ids` then is harmless.
        self.ids.remove(&id)
    }
}

/// Task ids, thread keys and scope ids are sequential numbers, not attacker-chosen keys: a
/// multiply spreads them over shards and buckets for a fraction of SipHash's cost, on paths
/// taken several times per task and per thread spawn.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }

    fn finish(&self) -> u64 {
        // Fibonacci hashing: the high bits of the product depend on all bits of the id.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32)
    }
}

/// A shard on cache lines of its own: workers lock different shards at once, and shards
/// sharing a line would bounce it between their cores anyway (multi_thread spawn + await
/// went from 0.78-0.99 µs to 0.70-0.77 µs a task with this, instructions unchanged).
#[derive(Default)]
#[repr(align(128))]
struct Padded(Lock<TaskShard>);

static TASKS: LazyLock<[Padded; TASK_SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Padded::default()));

fn shard(id: tokio::task::Id) -> &'static Lock<TaskShard> {
    let mut hasher = IdHasher::default();
    id.hash(&mut hasher);
    &TASKS[hasher.finish() as usize % TASK_SHARDS].0
}

#[cfg(tokio_unstable)]
thread_local! {
    /// The live-task count of the scope this thread last spawned a task from: spawns come in
    /// runs from one scope, and this spares each of them the global registry lock.
    static SPAWNING_SCOPE: std::cell::RefCell<Option<(ScopeId, Arc<AtomicUsize>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Forgets the cached count, which belongs to the registry before a fork.
#[cfg(all(tokio_unstable, lc_thread_hook))]
fn forget_spawning_scope() {
    let _ = SPAWNING_SCOPE.try_with(|cached| cached.borrow_mut().take());
}

/// The live-task count of `scope`.
#[cfg(tokio_unstable)]
fn scope_task_count(scope: ScopeId) -> Arc<AtomicUsize> {
    let cached = SPAWNING_SCOPE
        .try_with(|cached| match &*cached.borrow() {
            Some((cached_scope, count)) if *cached_scope == scope => Some(count.clone()),
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(count) = cached {
        return count;
    }
    let count = REGISTRY
        .lock()
        .scopes
        .entry(scope)
        .or_default()
        .live_tasks
        .clone();
    let _ = SPAWNING_SCOPE.try_with(|cached| *cached.borrow_mut() = Some((scope, count.clone())));
    count
}

/// Records a spawned task, unless it has already terminated. Called by the task hooks,
/// which exist under `--cfg tokio_unstable` only, like the writers below.
#[cfg(tokio_unstable)]
#[inline]
pub(crate) fn add_task(
    id: tokio::task::Id,
    scope: ScopeId,
    spawned_at: &'static std::panic::Location<'static>,
    parent: Option<tokio::task::Id>,
    spawn: Option<SpawnStack>,
) {
    let parent = parent.and_then(|parent| {
        let spawned_at = shard(parent).lock().live.get(&parent)?.spawned_at;
        Some(TaskRef {
            id: parent,
            spawned_at,
        })
    });
    let scope_count = scope_task_count(scope);
    let spawned = crate::clock::now();
    let mut shard = shard(id).lock();
    if shard.early_terminations.take(id) {
        return;
    }
    scope_count.fetch_add(1, Ordering::Relaxed);
    let origin = TaskOrigin {
        scope,
        spawned_at,
        parent,
        spawn,
        polls: 0,
        spawned,
        scope_count,
    };
    shard.live.insert(id, origin);
}

/// Forgets a task that has terminated (completed, failed or cancelled).
#[cfg(tokio_unstable)]
#[inline]
pub(crate) fn remove_task(id: tokio::task::Id) {
    let mut shard = shard(id).lock();
    match shard.live.remove(&id) {
        Some(origin) => {
            origin.scope_count.fetch_sub(1, Ordering::Relaxed);
        }
        None => shard.early_terminations.insert(id),
    }
}

/// Gives back the room of task tables a burst of tasks has left mostly empty: a service
/// that once ran a million tasks does not keep their room. Called by snapshots (a
/// service's watcher takes one every interval), not by the hooks: on the terminate hook,
/// even the test for it moved the instruction count by ~100 a task.
pub(crate) fn give_back_room() {
    for shard in TASKS.iter() {
        shard.0.lock().give_back_room();
    }
}

impl TaskShard {
    /// A table a quarter full halves; the quarter (not the half) keeps a table that hovers
    /// around one size from resizing back and forth.
    fn give_back_room(&mut self) {
        const SMALL: usize = 1024;
        let capacity = self.live.capacity();
        if capacity > SMALL && self.live.len() * 4 < capacity {
            self.live.shrink_to(self.live.len() * 2);
        }
    }
}

/// Whether a task is still registered (has not terminated).
pub(crate) fn task_alive(id: tokio::task::Id) -> bool {
    shard(id).lock().live.contains_key(&id)
}

/// A poll of a live task begins: counted, and the scope that owns it returned, for the
/// poll hooks.
#[cfg(tokio_unstable)]
#[inline]
pub(crate) fn polling(id: tokio::task::Id) -> Option<ScopeId> {
    let mut shard = shard(id).lock();
    let origin = shard.live.get_mut(&id)?;
    origin.polls = origin.polls.wrapping_add(1);
    Some(origin.scope)
}

/// The live tasks registered to `scope`. A clean scope costs one atomic read; a scope with
/// live tasks costs a pass over all live tasks (it is leaking, or about to be done).
pub(crate) fn tasks_of(scope: ScopeId) -> Vec<Arc<LiveTask>> {
    let count = REGISTRY
        .lock()
        .scopes
        .get(&scope)
        .map_or(0, |entries| entries.live_tasks.load(Ordering::Relaxed));
    if count == 0 {
        return Vec::new();
    }
    tasks_where(|origin| origin.scope == scope)
}

/// Every live registered task, whatever its scope.
pub(crate) fn all_tasks() -> Vec<Arc<LiveTask>> {
    tasks_where(|_| true)
}

/// Visits every live registered task, one shard at a time: a shard is locked only while
/// its own tasks are visited, so a snapshot of a busy runtime never stops it, and nothing
/// is copied but what `visit` keeps. `visit` runs under the shard's lock: it must not
/// spawn, poll or end a hooked task.
pub(crate) fn visit_tasks(mut visit: impl FnMut(tokio::task::Id, &TaskOrigin)) {
    for shard in TASKS.iter() {
        for (&id, origin) in &shard.0.lock().live {
            visit(id, origin);
        }
    }
}

fn tasks_where(keep: impl Fn(&TaskOrigin) -> bool) -> Vec<Arc<LiveTask>> {
    TASKS
        .iter()
        .flat_map(|shard| {
            shard
                .0
                .lock()
                .live
                .iter()
                .filter(|(_, origin)| keep(origin))
                .map(|(&id, origin)| {
                    Arc::new(LiveTask {
                        id,
                        origin: origin.clone(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(tokio_unstable)]
    fn early_terminations_keep_the_most_recent() {
        let mut early = EarlyTerminations::default();
        // Task ids are opaque: take real ones from a runtime's tasks.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fresh_id = || runtime.block_on(async { tokio::spawn(async {}).id() });
        let first = fresh_id();
        early.insert(first);
        for _ in 0..EARLY_TERMINATIONS {
            early.insert(fresh_id());
        }
        // The first was pushed out by newer ones; the newest is there, once.
        assert!(!early.take(first));
        let newest = fresh_id();
        early.insert(newest);
        assert!(early.take(newest));
        assert!(!early.take(newest));
    }

    #[test]
    #[cfg(tokio_unstable)]
    fn a_task_record_fits_a_64_byte_bucket_with_its_id() {
        assert!(std::mem::size_of::<TaskOrigin>() <= 56);
    }

    #[test]
    #[cfg(tokio_unstable)]
    fn a_shard_gives_back_its_room_after_a_burst() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ids: Vec<_> = (0..20_000)
            .map(|_| runtime.block_on(async { tokio::spawn(async {}).id() }))
            .collect();
        let mut shard = TaskShard::default();
        let origin = |spawned_at| TaskOrigin {
            scope: scope::PROCESS,
            spawned_at,
            parent: None,
            spawn: None,
            polls: 0,
            spawned: 0,
            scope_count: Arc::default(),
        };
        for &id in &ids {
            shard
                .live
                .insert(id, origin(std::panic::Location::caller()));
        }
        let burst = shard.live.capacity();
        for id in &ids[..19_990] {
            shard.live.remove(id);
        }
        shard.give_back_room();
        assert!(
            shard.live.capacity() <= 1024 * 2,
            "{burst} -> {}",
            shard.live.capacity()
        );
        assert_eq!(shard.live.len(), 10);
    }

    #[test]
    #[cfg(lc_thread_hook)]
    fn an_exited_thread_keeps_no_ancestor_alive_but_its_line_keeps_its_root() {
        use crate::unwind::{Registers, THREAD, capture};
        let spawn = |key, parent| {
            Arc::new(ThreadOrigin::new(
                key,
                scope::PROCESS,
                parent,
                None,
                capture(Registers::here(), THREAD),
                [0, 0],
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

    #[test]
    fn a_dropped_scope_is_forgotten_with_its_last_thread() {
        let scope = scope::Scope::enter_named("forgotten");
        let id = scope.id();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || wait.recv());
        drop(scope);
        forget_finished_scopes();
        if cfg!(lc_thread_hook) {
            // Its thread still runs: the scope and its name stay, for a report.
            assert!(REGISTRY.lock().scopes.contains_key(&id));
            assert_eq!(scope::label(id), "forgotten");
        }
        drop(release);
        let _ = worker.join();
        forget_finished_scopes();
        assert!(!REGISTRY.lock().scopes.contains_key(&id));
        assert_eq!(scope::label(id), format!("scope #{id}"));
    }

    #[test]
    fn sequential_ids_spread_over_shards() {
        let mut used = [0usize; TASK_SHARDS];
        for id in 1..=3200u64 {
            let mut hasher = IdHasher::default();
            id.hash(&mut hasher);
            used[hasher.finish() as usize % TASK_SHARDS] += 1;
        }
        // Even enough: no shard gets more than twice its share.
        assert!(used.iter().all(|&n| n > 0 && n <= 200), "{used:?}");
    }
}
