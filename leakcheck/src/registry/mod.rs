//! Live threads, tokio tasks and child processes, and where they came from. Threads are indexed by owning
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
//! order (scope names, `REGISTRY`, the shards, `OWN_THREADS`, `POOL_NAMED`, the lost
//! panics): no other thread holds one at the fork. The parent then releases them; the
//! child empties them first, so that it starts with no record of its parent's threads,
//! tasks, children and panics, and touches no record made before the fork (the fork
//! generation tells a record's process).
//!
//! Memory stays bounded over a long run: a scope's entry goes when its `Scope` has been
//! dropped and its last thread and task have ended ([`forget_finished_scopes`]), and a
//! snapshot has the task tables give back the room a burst of tasks left empty.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use crate::lock::Lock;
use crate::scope::{self, ScopeId};

#[cfg(lc_process_hook)]
mod exec_note;
mod id_hasher;
mod panics;
mod processes;
mod tasks;
mod threads;

#[cfg(lc_process_hook)]
pub(crate) use exec_note::{Exec, ExecNote, ExecNoteWriter};
use id_hasher::IdHasher;
pub(crate) use panics::{LostPanic, take_lost_panics};
#[cfg(lc_panic_hook)]
pub(crate) use panics::{add_lost_panic, any_lost_panic, detached, handed_back, joined, replaced};
#[cfg(lc_process_hook)]
pub(crate) use processes::{NewProcess, StartWindow, add_process, is_recorded, remove_processes};
pub(crate) use processes::{ProcessOrigin, all_processes, processes_of};
#[cfg(all(tokio_unstable, lc_thread_hook))]
use tasks::forget_spawning_scope;
pub(crate) use tasks::{LiveTask, all_tasks, give_back_room, task_alive, tasks_of, visit_tasks};
#[cfg(lc_thread_hook)]
use tasks::{TASK_SHARDS, TASKS, TaskShard};
#[cfg(tokio_unstable)]
pub(crate) use tasks::{add_task, polling, remove_task};
#[cfg(lc_thread_hook)]
use threads::POOL_NAMED;
#[cfg(lc_thread_hook)]
pub(crate) use threads::name_thread;
#[cfg(lc_name_hook)]
pub(crate) use threads::thread_by_handle;
#[cfg(lc_thread_hook)]
pub(crate) use threads::{Launch, StartRoutine, add_thread, remove_thread};
pub(crate) use threads::{ThreadOrigin, all_threads, pool_named_threads, threads_of};

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
        lost_panics: MutexGuard<'static, Vec<super::LostPanic>>,
        /// Last: a look-up of names takes no other lock.
        _symbol_names: crate::frames::NamesFoundHeld,
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
            lost_panics: super::panics::LOST.lock(),
            _symbol_names: crate::frames::hold_names_found(),
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
                std::mem::forget(std::mem::take(&mut *held.lost_panics));
                held.names.forget_all();
            }
        });
        #[cfg(tokio_unstable)]
        super::forget_spawning_scope();
    }
}

#[derive(Default)]
struct ScopeEntries {
    threads: HashMap<u64, Arc<ThreadOrigin>, BuildHasherDefault<IdHasher>>,
    /// How many of the scope's tasks are alive: a clean scope's task check reads only this.
    live_tasks: Arc<AtomicUsize>,
    /// The child processes it started that the program has not been seen to wait for
    /// (few: a check or the next spawn drops those that were waited for).
    processes: Vec<Arc<ProcessOrigin>>,
}

#[derive(Default)]
struct Registry {
    scopes: HashMap<ScopeId, ScopeEntries, BuildHasherDefault<IdHasher>>,
}

static REGISTRY: LazyLock<Lock<Registry>> = LazyLock::new(Default::default);

/// Forgets the scopes whose `Scope` has been dropped and whose threads and tasks have all
/// ended and whose children were all waited for (as last seen: `processes` looks again
/// first): their entries here and their names. Called by every check and snapshot; a
/// scope with something still running stays, to be reported under its name, and so that
/// its children are never taken for another's.
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
                        && entries.live_tasks.load(Ordering::Relaxed) == 0
                        && entries
                            .processes
                            .iter()
                            .all(|origin| origin.known_waited_for()) =>
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
