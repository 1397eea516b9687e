//! Child processes' records: who started each, by scope. Written by the process hooks on
//! the parent's thread, after the child exists; read by checks and snapshots, which tell
//! from `/proc` whether the child still runs, and drop the record of one the program has
//! waited for.

// Without the hooks (`lc_process_hook`) nothing is recorded: records and findings are
// types only.
#![cfg_attr(not(lc_process_hook), allow(dead_code))]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{FORKS, REGISTRY};
use crate::clock::Tick;
use crate::registry::ThreadOrigin;
use crate::scope::{ScopeId, TaskRef};
use crate::unwind::SpawnStack;

#[cfg(lc_process_hook)]
use super::{Exec, ExecNote};

/// Where a child process came from.
pub(crate) struct ProcessOrigin {
    pub(crate) key: u64,
    pub(crate) scope: ScopeId,
    /// Forks of this process's line when it was recorded: a forked child of the test
    /// process does not own its parent's children.
    generation: u32,
    pub(crate) pid: i32,
    /// When it started: the pid with it names the child, since pids are reused.
    pub(crate) started: StartWindow,
    /// The command line as started (`posix_spawn`'s arguments), for when `/proc` no longer
    /// has one (a zombie); `None` for a fork, which runs this program until it `exec`s.
    pub(crate) command: Option<Box<str>>,
    /// The program as started (`posix_spawn`'s path), for when `/proc` no longer says.
    pub(crate) program: Option<Box<str>>,
    /// For a fork: what the child `exec`s, as it noted it.
    #[cfg(lc_process_hook)]
    exec: Option<ExecNote>,
    /// Whether its environment carries the marker that finds its orphans.
    pub(crate) marked: bool,
    /// The thread that started it, where the thread hook saw that thread start: the
    /// exit check names the plain `#[test]` of its line.
    pub(crate) spawner: Option<Arc<ThreadOrigin>>,
    /// The task polled on that thread then, if any: the real spawner.
    pub(crate) spawning_task: Option<TaskRef>,
    /// Its spawn backtrace, as kept at spawn (`unwind`).
    pub(crate) spawn: SpawnStack,
    pub(crate) spawned: Tick,
    /// Set once a look found the program had waited for it: not looked up again.
    waited: std::sync::atomic::AtomicBool,
    /// Set once, the child waited for, a look found a live process that carries its
    /// marker: the record stays until its scope's check, which reports that process.
    left_running: std::sync::atomic::AtomicBool,
}

/// When a child started, in the clock ticks after boot that `/proc/<pid>/stat` counts
/// start times in: read on the parent's side just before and just after the spawn (a
/// clock read, where reading the child's own start time would cost a `/proc` read on
/// every spawn). A later process that reuses the pid starts after the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StartWindow {
    pub(crate) after: u64,
    pub(crate) before: u64,
}

impl StartWindow {
    /// Whether a process that started at `start_time` started in the window.
    #[cfg(lc_process_hook)]
    pub(crate) fn holds(self, start_time: u64) -> bool {
        (self.after..=self.before).contains(&start_time)
    }
}

/// What a process record is made of.
#[cfg(lc_process_hook)]
pub(crate) struct NewProcess {
    pub(crate) key: u64,
    pub(crate) scope: ScopeId,
    pub(crate) pid: i32,
    pub(crate) started: StartWindow,
    pub(crate) command: Option<Box<str>>,
    pub(crate) program: Option<Box<str>>,
    pub(crate) exec: Option<ExecNote>,
    pub(crate) marked: bool,
    pub(crate) spawner: Option<Arc<ThreadOrigin>>,
    pub(crate) spawning_task: Option<TaskRef>,
    pub(crate) spawn: SpawnStack,
}

impl ProcessOrigin {
    #[cfg(lc_process_hook)]
    pub(crate) fn new(new: NewProcess) -> ProcessOrigin {
        ProcessOrigin {
            key: new.key,
            scope: new.scope,
            generation: FORKS.load(Ordering::Relaxed),
            pid: new.pid,
            started: new.started,
            command: new.command,
            program: new.program,
            exec: new.exec,
            marked: new.marked,
            spawner: new.spawner,
            spawning_task: new.spawning_task,
            spawn: new.spawn,
            spawned: crate::clock::now(),
            waited: std::sync::atomic::AtomicBool::new(false),
            left_running: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// For a fork: what the child noted it `exec`ed, once it has.
    #[cfg(lc_process_hook)]
    pub(crate) fn exec_noted(&self) -> Option<Exec> {
        self.exec.as_ref()?.read()
    }

    /// Whether a look already found that the program waited for it.
    pub(crate) fn known_waited_for(&self) -> bool {
        self.waited.load(Ordering::Relaxed)
    }

    /// A look found that the program waited for it.
    #[cfg(lc_process_hook)]
    pub(crate) fn set_waited_for(&self) {
        self.waited.store(true, Ordering::Relaxed);
    }

    /// Whether a look found a live process carrying its marker after it was waited for.
    pub(crate) fn known_to_have_left_running(&self) -> bool {
        self.left_running.load(Ordering::Relaxed)
    }

    /// A look found a live process carrying its marker after it was waited for.
    #[cfg(lc_process_hook)]
    pub(crate) fn set_left_running(&self) {
        self.left_running.store(true, Ordering::Relaxed);
    }

    /// Whether this process started it (not the parent of a fork this process is).
    pub(crate) fn in_this_process(&self) -> bool {
        self.generation == FORKS.load(Ordering::Relaxed)
    }
}

/// Records a child; returns how many records its scope holds now.
#[cfg(lc_process_hook)]
pub(crate) fn add_process(origin: Arc<ProcessOrigin>) -> usize {
    let mut registry = REGISTRY.lock();
    let processes = &mut registry.scopes.entry(origin.scope).or_default().processes;
    processes.push(origin);
    processes.len()
}

/// Forgets the records with these `keys` of `scope`: the program waited for the children.
#[cfg(lc_process_hook)]
pub(crate) fn remove_processes(scope: ScopeId, keys: &[u64]) {
    if keys.is_empty() {
        return;
    }
    if let Some(entries) = REGISTRY.lock().scopes.get_mut(&scope) {
        entries
            .processes
            .retain(|origin| !keys.contains(&origin.key));
    }
}

/// The children recorded for `scope`.
pub(crate) fn processes_of(scope: ScopeId) -> Vec<Arc<ProcessOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .get(&scope)
        .map(|entries| {
            entries
                .processes
                .iter()
                .filter(|origin| origin.in_this_process())
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Every recorded child, whatever its scope.
pub(crate) fn all_processes() -> Vec<Arc<ProcessOrigin>> {
    REGISTRY
        .lock()
        .scopes
        .values()
        .flat_map(|entries| entries.processes.iter().cloned())
        .filter(|origin| origin.in_this_process())
        .collect()
}

/// Whether any scope has a record of a child with this pid and start time.
#[cfg(lc_process_hook)]
pub(crate) fn is_recorded(pid: i32, start_time: u64) -> bool {
    REGISTRY.lock().scopes.values().any(|entries| {
        entries
            .processes
            .iter()
            .any(|origin| origin.pid == pid && origin.started.holds(start_time))
    })
}
