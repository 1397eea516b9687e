//! Tasks' records, sharded by id: every spawn, poll and termination of every hooked task
//! goes through here, from all workers at once. A scope's live-task count, kept in the
//! registry, lets a clean scope's check read one number.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
#[cfg(tokio_unstable)]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use super::IdHasher;
use super::REGISTRY;
use crate::clock::Tick;
use crate::lock::Lock;
use crate::scope::{ScopeId, TaskRef};
use crate::unwind::SpawnStack;

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
    pub(super) scope_count: Arc<AtomicUsize>,
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

/// Live tasks, sharded by id: every spawn, poll and termination of every hooked task goes
/// through here, from all workers at once, so one lock would be contended. A task's shard
/// also keeps the terminations that arrived before their spawn.
pub(super) const TASK_SHARDS: usize = 32;

type IdMap<V> = HashMap<tokio::task::Id, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
pub(super) struct TaskShard {
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

/// A shard on cache lines of its own: workers lock different shards at once, and shards
/// sharing a line would bounce it between their cores anyway (multi_thread spawn + await
/// went from 0.78-0.99 µs to 0.70-0.77 µs a task with this, instructions unchanged).
#[derive(Default)]
#[repr(align(128))]
pub(super) struct Padded(pub(super) Lock<TaskShard>);

pub(super) static TASKS: LazyLock<[Padded; TASK_SHARDS]> =
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
pub(super) fn forget_spawning_scope() {
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

#[cfg(all(test, tokio_unstable))]
mod tests {
    use super::*;
    use crate::scope;

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
}
