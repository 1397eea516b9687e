//! tokio's task hooks (`--cfg tokio_unstable`): every task spawned on a hooked runtime is
//! registered with the scope it was spawned from, and while a worker polls it, the worker
//! runs in that scope, so what the task spawns (tasks, threads) is the same test's.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::runtime::{Builder, TaskMeta};

use crate::registry;
use crate::scope::{self, TaskRef};
use crate::unwind::{self, Registers};

/// Installs the hooks. By default a task records only tokio's spawn location (the user's
/// line) and its parent; `LEAKCHECK_TASK_BACKTRACE=1` adds the backtrace, kept as a copy of
/// the top of the spawner's stack (`unwind::TASK`: up to 40 KiB a live task), unwound only
/// if the task is reported. A bad value of any variable records none here; the first
/// check reports the value.
pub(super) fn install(builder: &mut Builder) {
    let with_backtrace =
        crate::config::environment().is_ok_and(|environment| environment.task_backtrace);
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
    // Read in this frame: the kept stack starts here, with tokio's spawn path and the
    // user's call above.
    let here = Registers::here();
    let spawn = with_backtrace.then(|| unwind::capture(here, unwind::TASK));
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
    let task = TaskRef {
        id: meta.id(),
        spawned_at: meta.spawned_at(),
    };
    scope::enter_task(task, registry::polling(meta.id()));
}

fn after_poll(_meta: &TaskMeta<'_>) {
    scope::leave_task();
}
