//! tokio's task hooks (`--cfg tokio_unstable`): every task spawned on a hooked runtime is
//! registered with the scope it was spawned from, and while a worker polls it, the worker
//! runs in that scope, so what the task spawns (tasks, threads) is the same test's.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::runtime::{Builder, TaskMeta};

use crate::registry::{self, SpawnTrace};
use crate::scope::{self, ScopeId};

thread_local! {
    /// The scope a worker was in before it started polling a task, to go back to after.
    static OUTSIDE_POLL: Cell<Option<ScopeId>> = const { Cell::new(None) };
}

pub(super) fn install(builder: &mut Builder) {
    builder
        .on_task_spawn(on_spawn)
        .on_task_terminate(on_terminate)
        .on_before_task_poll(before_poll)
        .on_after_task_poll(after_poll);
}

/// Runs on the spawning thread, before the task is first scheduled: the current scope is
/// the spawner's (a test thread's, or the task being polled), and the stack is the user's
/// spawn call.
fn on_spawn(meta: &TaskMeta<'_>) {
    // Nothing in here should panic, but a panic must never escape into tokio's spawn.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        registry::add_task(
            meta.id(),
            scope::current(),
            meta.spawned_at(),
            tokio::task::try_id(),
            SpawnTrace::capture(),
        );
    }));
}

fn on_terminate(meta: &TaskMeta<'_>) {
    // tokio already runs this hook under `catch_unwind`.
    registry::remove_task(meta.id());
}

fn before_poll(meta: &TaskMeta<'_>) {
    if let Some(scope) = registry::task_scope(meta.id()) {
        let outside = scope::set_current(scope);
        let _ = OUTSIDE_POLL.try_with(|saved| saved.set(Some(outside)));
    }
}

fn after_poll(_meta: &TaskMeta<'_>) {
    if let Some(outside) = OUTSIDE_POLL.try_with(Cell::take).ok().flatten() {
        scope::set_current(outside);
    }
}
