//! What a check found, described: each suspect becomes a [`Leak`] with its owner, its
//! spawn site and backtrace (symbols resolved now, only for leaks), what the OS says it is
//! doing, its current stack (a signal to the thread) or await trace (the runtime's dump),
//! who spawned it, what it did while watched, and its notes, as facts. After this the
//! report is pure data.
//!
//! The checks end here: [`check`], [`check_threads`] and [`check_tasks`] run `verify`'s and
//! turn what it found into a [`Report`]. One builder a kind (`thread`, `task`, `process`,
//! `panic`), what a leak did while watched (`activity`), and who spawned it (`spawner`).

use std::collections::HashMap;
use std::time::Duration;

use crate::config::Settings;
use crate::filter::pools;
use crate::frames::{self, Frame};
use crate::processes::{self, Status};
use crate::registry::{self, LiveTask, LostPanic, ProcessOrigin, ThreadOrigin};
use crate::report::{
    Activity, ActivityKind, Ending, Identity, Leak, Note, PanicFacts, ProcessFacts, ProcessRef,
    Report, SpawnedBy, Subject,
};
use crate::scope::{self, PROCESS, ScopeId, TaskRef};
use crate::tasks::{Awaiting, TestRuntime};
use crate::threads;
use crate::unwind::SpawnStack;
use crate::verify::{self, Found, FoundProcess, PoolJob, Suspect, Target};

mod activity;
mod panic;
mod process;
mod spawner;
mod task;
mod thread;

use activity::*;
use panic::*;
use process::*;
use spawner::*;
use task::*;
use thread::*;

/// Checks the threads, hooked tasks and child processes of `target`: its report if
/// anything outlived the grace period.
pub(crate) fn check(target: Target, settings: &Settings) -> Result<(), Report> {
    verify::check(target, settings).map_err(|found| finish(*found, settings))
}

/// Checks the threads and child processes of `target` only (an async test's tasks were
/// checked in its runtime).
pub(crate) fn check_threads(target: Target, settings: &Settings) -> Result<(), Report> {
    verify::check_threads(target, settings).map_err(|found| finish(*found, settings))
}

/// The report of what a check found, then, with `kill_leaked_processes`, each leaked
/// process ended (after it was described) and the report saying so.
fn finish(found: Found, settings: &Settings) -> Report {
    let mut report = into_report(found);
    if settings.kills_processes() {
        for leak in &mut report.leaks {
            let Identity::Process { pid, .. } = leak.identity else {
                continue;
            };
            let Some(process) = leak.process.as_mut().filter(|process| !process.zombie) else {
                continue;
            };
            process.ended = Some(processes::end(
                pid,
                process.start_time,
                &process.descendants,
            ));
        }
    }
    report
}

/// Checks the tasks of a test's scope from inside its runtime.
pub(crate) async fn check_tasks(
    scope: ScopeId,
    settings: &Settings,
    runtime: &TestRuntime,
) -> Result<(), Report> {
    verify::check_tasks(scope, settings, runtime)
        .await
        .map_err(|found| into_report(*found))
}

/// The report of what a check found: each suspect described, the check's wait kept.
pub(crate) fn into_report(found: Found) -> Report {
    let Found {
        target,
        suspects,
        waited,
        watched,
        awaiting,
        earlier,
        grace,
    } = found;
    let then = FirstSeen::of(&earlier, watched, grace);
    let subject = match target {
        Target::Scope(scope) => Subject::Scope(scope::label(scope)),
        Target::Process => Subject::Process,
        Target::Exit => Subject::Exit,
    };
    let leaks = suspects
        .into_iter()
        .map(|suspect| match suspect {
            Suspect::Thread {
                tid,
                origin,
                stack,
                counters,
                job,
            } => {
                let claimed = job.is_some();
                let mut leak = thread_leak(tid, origin.as_deref(), stack, job);
                leak.activity = then.thread(tid, counters, &leak);
                // Its CPU time is the panic's (a hook, an unwinding), not a loop's.
                if leak.notes.contains(&Note::PanicInProgress) {
                    leak.activity = None;
                }
                // A pool's thread runs a job of this test's, whichever test grew the pool.
                if let (true, Target::Scope(scope)) = (claimed, target) {
                    leak.owner = owner(scope);
                }
                leak
            }
            Suspect::Task(origin) => {
                let mut leak = task_leak(&origin, awaiting.as_ref());
                leak.activity = then.task(&origin, &leak);
                leak
            }
            Suspect::UntrackedTasks(count) => Leak {
                owner: match target {
                    Target::Scope(scope) => owner(scope),
                    Target::Process | Target::Exit => None,
                },
                ..Leak::known_only_by(Identity::UntrackedTasks { count })
            },
            Suspect::Process(found) => process_leak(found, target),
            Suspect::LostPanic(panic) => lost_panic_leak(panic),
        })
        .collect();
    let mut report = Report {
        subject,
        leaks,
        waited,
        ending: None,
    };
    mark_what_is_kept_for_the_process(&mut report.leaks);
    report
}

/// The report of a test that cannot be returned from: what its scope runs, with the test's
/// own thread first, where it is stuck now.
pub(crate) fn stuck_test(found: Found, test_tid: i32, ending: Ending) -> Report {
    let mut report = into_report(found);
    let origin = registry::all_threads()
        .into_iter()
        .find(|origin| origin.tid() == Some(test_tid));
    let test_thread = Leak {
        is_test_thread: true,
        ..thread_leak(Some(test_tid), origin.as_deref(), None, None)
    };
    report.leaks.insert(0, test_thread);
    report.ending = Some(ending);
    report
}

/// The owning scope's name; `None` at the process level.
fn owner(scope: ScopeId) -> Option<String> {
    (scope != PROCESS).then(|| scope::label(scope))
}
