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

/// Installs the hooks. Task spawn backtraces cost ~8 µs a spawn (unwinding), over ten times
/// a plain spawn, so by default a task records only tokio's spawn location (the user's
/// line) and its parent; `LEAKCHECK_TASK_BACKTRACE=1` adds the backtrace.
///
/// # Panics
///
/// If `LEAKCHECK_TASK_BACKTRACE` holds something other than a yes or no: here, where the
/// runtime is built, not inside a hook.
pub(super) fn install(builder: &mut Builder) {
    let with_backtrace = match crate::config::task_backtraces() {
        Ok(on) => on,
        Err(message) => panic!("{message}"),
    };
    let on_spawn = move |meta: &TaskMeta<'_>| on_spawn(meta, with_backtrace);
    builder
        .on_task_spawn(on_spawn)
        .on_task_terminate(on_terminate)
        .on_before_task_poll(before_poll)
        .on_after_task_poll(after_poll);
}

/// Runs on the spawning thread, before the task is first scheduled: the current scope is
/// the spawner's (a test thread's, or the task being polled), and the stack is the user's
/// spawn call.
fn on_spawn(meta: &TaskMeta<'_>, with_backtrace: bool) {
    let spawn = with_backtrace.then(|| Box::new(SpawnTrace::capture()));
    // Nothing in here should panic, but a panic must never escape into tokio's spawn.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        registry::add_task(
            meta.id(),
            scope::current(),
            meta.spawned_at(),
            tokio::task::try_id(),
            spawn,
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
    super::set_polled_task(Some((meta.id(), meta.spawned_at())));
}

fn after_poll(_meta: &TaskMeta<'_>) {
    super::set_polled_task(None);
    if let Some(outside) = OUTSIDE_POLL.try_with(Cell::take).ok().flatten() {
        scope::set_current(outside);
    }
}
