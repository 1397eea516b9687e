//! What a check found, described: each suspect becomes a [`Leak`] with its owner, its
//! spawn site and backtrace (symbols resolved now, only for leaks), what the OS says it is
//! doing, its current stack (a signal to the thread) or await trace (the runtime's dump),
//! who spawned it, what it did while watched, and its notes, as facts. After this the
//! report is pure data.
//!
//! The checks end here: [`check`], [`check_threads`] and [`check_tasks`] run `verify`'s and
//! turn what it found into a [`Report`].

use std::collections::HashMap;
use std::time::Duration;

use crate::config::Settings;
use crate::filter::pools;
use crate::frames::{self, Frame};
use crate::processes::{self, Status};
use crate::registry::{self, LiveTask, LostPanic, ProcessOrigin, ThreadOrigin};
use crate::report::{
    Activity, Did, Ending, Identity, Leak, Note, PanicFacts, ProcessFacts, ProcessRef, Report,
    SpawnedBy, Subject,
};
use crate::scope::{self, PROCESS, ScopeId, TaskRef};
use crate::tasks::{Awaiting, TestRuntime};
use crate::threads;
use crate::unwind::SpawnStack;
use crate::verify::{self, Found, FoundProcess, PoolJob, Suspect, Target};

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

/// Each leak as the check's earlier looks first saw it: its wake-ups are counted from there.
struct FirstSeen {
    /// Every look's counters of each thread, in order.
    threads: HashMap<i32, Vec<threads::Counters>>,
    tasks: HashMap<tokio::task::Id, u32>,
    /// How long the looks watched.
    watched: Duration,
    grace: Duration,
}

impl FirstSeen {
    fn of(earlier: &[Suspect], watched: Duration, grace: Duration) -> FirstSeen {
        let mut first_seen = FirstSeen {
            threads: HashMap::new(),
            tasks: HashMap::new(),
            watched,
            grace,
        };
        for suspect in earlier {
            match suspect {
                Suspect::Thread {
                    tid: Some(tid),
                    counters: Some(counters),
                    ..
                } => {
                    first_seen.threads.entry(*tid).or_default().push(*counters);
                }
                Suspect::Task(origin) => {
                    first_seen.tasks.entry(origin.id).or_insert(origin.polls);
                }
                _ => {}
            }
        }
        first_seen
    }

    fn activity(&self, did: Did) -> Activity {
        Activity {
            did,
            watched: self.watched,
            grace: self.grace,
        }
    }

    /// A thread's wake-ups and CPU time since then; a timer is a sleep or a timed wait.
    fn thread(
        &self,
        tid: Option<i32>,
        now: Option<threads::Counters>,
        leak: &Leak,
    ) -> Option<Activity> {
        let (tid, now) = (tid?, now?);
        let looks = self.threads.get(&tid)?;
        // From the first look that found it in the call it is in now; if none did (it is
        // running, or entered it since), from the first look, less the one switch into it.
        let (then, entered) = match looks.iter().find(|then| then.call == now.call) {
            Some(then) => (then, 0),
            None => (looks.first()?, 1),
        };
        // Signals wake a blocked thread too (SIGCHLD lands on any thread of a process with a
        // handler for it): a read that restarted after each, having read nothing, is the read
        // it was, waiting for data that never came.
        let restarted_only = entered == 0
            && then
                .bytes_read
                .is_some_and(|bytes| now.bytes_read == Some(bytes));
        let woken = if restarted_only {
            0
        } else {
            now.wakeups
                .saturating_sub(then.wakeups)
                .saturating_sub(entered)
        };
        let cpu = now.cpu.saturating_sub(then.cpu);
        let timer = leak.os.as_ref().is_some_and(|os| os.is_timed());
        let did = match (woken, timer) {
            (0, true) => Did::WaitingOnATimer,
            (0, false) if cpu >= BUSY => Did::Busy { cpu },
            (0, false) => Did::Stuck,
            (times, _) => Did::Woken {
                times,
                cpu: Some(cpu),
            },
        };
        Some(self.activity(did))
    }

    /// A task's polls since then; a timer is a tokio timer in its await trace.
    fn task(&self, origin: &LiveTask, leak: &Leak) -> Option<Activity> {
        let then = self.tasks.get(&origin.id)?;
        let timer = leak.awaiting.iter().any(|frame| {
            frame
                .function()
                .is_some_and(|function| function.contains("tokio::time::"))
        });
        // A task not yet polled then is started, not woken, by its first poll.
        let woken = origin.polls.saturating_sub((*then).max(1));
        let did = match (woken, timer) {
            (0, true) => Did::WaitingOnATimer,
            (0, false) => Did::Stuck,
            (times, _) => Did::Woken {
                times: u64::from(times),
                cpu: None,
            },
        };
        Some(self.activity(did))
    }
}

/// CPU time that makes a thread never woken busy rather than stuck: more than the ticks a
/// thread that only started up uses.
const BUSY: Duration = Duration::from_millis(20);

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

/// A thread: its spawn path resolved, what `/proc` says, its current stack (the one an
/// `ignore_top` rule already captured, else a fresh capture), its owner and spawner; for a
/// pool's thread, the closure or job it runs.
fn thread_leak(
    tid: Option<i32>,
    origin: Option<&ThreadOrigin>,
    stack: Option<Vec<Frame>>,
    job: Option<PoolJob>,
) -> Leak {
    let all_frames = origin
        .map(|origin| frames::resolve_spawn(origin.spawn.unwind()))
        .unwrap_or_default();
    let mut spawn_backtrace = frames::user_frames(&all_frames);
    let mut spawn_backtrace_cut = origin.is_some_and(|origin| cut_short(&origin.spawn));
    let mut spawn_site = frames::spawn_site(&spawn_backtrace).cloned();
    let mut notes = Vec::new();
    // Read before the stack is captured: the capture's signal wakes the thread.
    let os = tid.and_then(threads::os_state).map(|thread| thread.os);
    let stack = match (stack, tid) {
        (Some(stack), _) => Some(Ok(stack)),
        (None, Some(tid)) => Some(threads::capture_stack(tid).map(|ips| frames::resolve(&ips))),
        (None, None) => None,
    };
    if let Some(job) = job {
        notes.push(Note::PoolJob { krate: job.krate });
        if let Some(frame) = pools::job_site(&job.frames) {
            notes.push(Note::SiteFromCurrentStack);
            spawn_site = Some(frame);
            // The pool grew for another job: the path of this one is its own frames.
            spawn_backtrace = job.frames;
            spawn_backtrace_cut = false;
        }
    } else if let Some(closure) = stack.as_ref().and_then(|stack| match stack {
        Ok(stack) => blocking_pool_closure(stack),
        Err(_) => None,
    }) {
        notes.push(Note::BlockingPoolClosure);
        // The pool runs a closure on whichever of its threads is idle: the thread's own
        // spawn path is then an earlier spawn's (or the runtime's start), so the closure
        // running now says where the work came from.
        if !spawned_for(&spawn_backtrace, &closure) {
            notes.push(Note::SiteFromCurrentStack);
            spawn_site = Some(closure);
        }
    } else if spawned_by_spawn_blocking(&all_frames) {
        notes.push(Note::BlockingPoolClosure);
    }
    // Panicking: its record says it unwinds, or its stack is in std's panic machinery.
    let in_a_panic = matches!(&stack, Some(Ok(stack)) if frames::is_panicking(stack));
    if in_a_panic || origin.is_some_and(ThreadOrigin::is_panicking) {
        notes.push(Note::PanicInProgress);
    }
    let current_stack = match stack {
        Some(Ok(stack)) => frames::shape_current_stack(&stack).shown,
        Some(Err(why)) => {
            notes.push(Note::CurrentStackNotCaptured(why));
            Vec::new()
        }
        None => Vec::new(),
    };
    if started_by_an_initialiser(&all_frames) {
        notes.push(Note::KeptForTheProcess);
    }
    Leak {
        identity: Identity::Thread {
            tid,
            name: threads::name_of(tid, origin),
        },
        owner: origin.and_then(|origin| owner(origin.scope).or_else(|| spawning_test(origin))),
        spawn_site,
        spawn_backtrace,
        spawn_backtrace_cut,
        spawned_by: origin.and_then(parent_thread),
        os,
        notes,
        current_stack,
        ..Leak::known_only_by(Identity::Thread {
            tid: None,
            name: None,
        })
    }
}

/// A task: tokio's spawn location (with the function, when a backtrace was recorded), its
/// parent, and where it awaits from the runtime's dump when there is one.
fn task_leak(origin: &LiveTask, awaiting: Option<&Awaiting>) -> Leak {
    let spawn_backtrace = frames::user_frames(&frames::resolve_spawn(origin.spawn_ips()));
    let (note, awaiting) = match awaiting {
        Some(Ok(dump)) => match dump.get(&origin.id) {
            Some(frames) if !frames.is_empty() => (None, frames.clone()),
            Some(_) => (Some(Note::AwaitingUntraceable), Vec::new()),
            None => (Some(Note::NotInTheDump), Vec::new()),
        },
        Some(Err(why)) => (Some(Note::AwaitingUnknown(why)), Vec::new()),
        None => (None, Vec::new()),
    };
    Leak {
        identity: Identity::Task {
            id: task_number(origin.id),
        },
        owner: owner(origin.scope),
        spawn_site: Some(frames::location_frame(
            origin.spawned_at,
            spawn_backtrace.first(),
        )),
        spawn_backtrace,
        backtrace_recorded: origin.spawn.is_some(),
        spawned_by: origin.parent.map(parent_task),
        notes: note.into_iter().collect(),
        awaiting,
        ..Leak::known_only_by(Identity::Task { id: 0 })
    }
}

/// A child process: what it runs, its state, its descendants and what of the test's output
/// it holds, whom it descends from if it is an orphan, and its spawn path and spawner.
fn process_leak(found: FoundProcess, target: Target) -> Leak {
    let FoundProcess {
        child,
        program,
        command,
    } = found;
    let origin = child.origin.as_deref();
    let zombie = child.status == Status::Zombie;
    let descendants = if zombie {
        Vec::new()
    } else {
        processes::descendants(child.pid)
    };
    let holds = processes::holds(child.pid, &descendants);
    let orphan_of = origin
        .filter(|_| child.status == Status::Orphan)
        .map(|origin| ProcessRef {
            pid: origin.pid,
            command: processes::command_as_started(origin),
        });
    let spawn_backtrace = origin
        .map(|origin| frames::user_frames(&frames::resolve_spawn(origin.spawn.unwind())))
        .unwrap_or_default();
    Leak {
        identity: Identity::Process {
            pid: child.pid,
            command,
        },
        owner: match (origin, target) {
            (Some(origin), _) => owner(origin.scope).or_else(|| process_spawning_test(origin)),
            (None, Target::Scope(scope)) => owner(scope),
            (None, Target::Process | Target::Exit) => None,
        },
        spawn_site: frames::spawn_site(&spawn_backtrace).cloned(),
        spawn_backtrace,
        spawn_backtrace_cut: origin.is_some_and(|origin| cut_short(&origin.spawn)),
        spawned_by: origin.and_then(process_spawner),
        os: (!zombie).then(|| processes::os_state(child.pid)).flatten(),
        process: Some(ProcessFacts {
            program,
            start_time: child.start_time,
            descendants,
            holds,
            orphan_of,
            zombie,
            ended: None,
        }),
        ..Leak::known_only_by(Identity::Process {
            pid: 0,
            command: None,
        })
    }
}

/// Whether a spawn backtrace is cut short before the test harness: a copy that ends past
/// the harness lost nothing a report shows.
fn cut_short(spawn: &SpawnStack) -> bool {
    spawn.cut_short() && !frames::reaches_the_harness(&frames::resolve(spawn.unwind()))
}

/// A lost panic: the thread it ended, where that thread was spawned, and the panic.
fn lost_panic_leak(panic: LostPanic) -> Leak {
    let thread = &panic.thread;
    let spawn_backtrace = frames::user_frames(&frames::resolve_spawn(thread.spawn.unwind()));
    Leak {
        owner: owner(thread.scope).or_else(|| spawning_test(thread)),
        spawn_site: frames::spawn_site(&spawn_backtrace).cloned(),
        spawn_backtrace,
        spawn_backtrace_cut: cut_short(&thread.spawn),
        spawned_by: parent_thread(thread),
        panic: Some(PanicFacts {
            message: panic.message,
            location: panic.location,
            resumed: panic.resumed,
        }),
        ..Leak::known_only_by(Identity::LostPanic {
            tid: panic.tid,
            name: threads::name_of(Some(panic.tid), Some(thread)),
        })
    }
}

/// The task or thread of the same scope that started a child, when worth a line.
fn process_spawner(origin: &ProcessOrigin) -> Option<SpawnedBy> {
    if let Some(task) = origin.spawning_task {
        return Some(parent_task(task));
    }
    spawner_thread(origin.spawner.as_deref()?, origin.scope)
}

/// For a child started outside every scope, the plain `#[test]` whose thread (or a thread
/// it spawned) started it.
fn process_spawning_test(origin: &ProcessOrigin) -> Option<String> {
    let spawner = origin.spawner.as_deref()?;
    if is_libtest_thread(spawner) {
        let name = spawner.name()?;
        return Some(whole_test_name(&name, &origin.spawn, None).unwrap_or(name));
    }
    let name = spawning_test(spawner)?;
    Some(whole_test_name(&name, &origin.spawn, None).unwrap_or(name))
}

/// Functions of one-time initialisers: a thread started inside one is started once for
/// the whole process (a static's, a `OnceLock`'s, a `lazy_static`'s).
const INITIALISERS: &[&str] = &[
    "std::sync::once::Once::call_once",
    "std::sync::poison::once::Once::call_once",
    "std::sync::once_lock::OnceLock<T>::",
    "std::sync::lazy_lock::LazyLock<T,F>::force",
    "once_cell::",
    "lazy_static::",
];

/// Whether a thread was started inside a one-time initialiser.
fn started_by_an_initialiser(spawn_path: &[Frame]) -> bool {
    spawn_path.iter().any(|frame| {
        frame.function().is_some_and(|function| {
            INITIALISERS
                .iter()
                .any(|initialiser| function.contains(initialiser))
        })
    })
}

/// A thread started by a one-time initialiser is kept for the process only if it waits
/// (stuck, or on a timer): one that runs or is woken is doing work, and the usual words fit.
fn mark_what_is_kept_for_the_process(leaks: &mut [Leak]) {
    for leak in leaks {
        let waits = leak
            .activity
            .is_some_and(|activity| matches!(activity.did(), Did::Stuck | Did::WaitingOnATimer));
        if !waits {
            leak.notes.retain(|note| *note != Note::KeptForTheProcess);
        }
    }
}

/// Whether tokio started the thread for a `spawn_blocking` call (the pool starts a thread
/// on the caller's stack when none is idle).
fn spawned_by_spawn_blocking(frames: &[Frame]) -> bool {
    frames.iter().any(|frame| {
        frame
            .function()
            .is_some_and(|function| function.contains("blocking::pool::Spawner::spawn_blocking"))
    })
}

/// For a thread of tokio's blocking pool (its current stack runs the pool's loop), the
/// user's closure it runs now: the outermost of the user's frames on its stack.
fn blocking_pool_closure(stack: &[Frame]) -> Option<Frame> {
    let in_pool = stack.iter().any(|frame| {
        frame
            .function()
            .is_some_and(|function| function.contains("runtime::blocking::pool::Inner::run"))
    });
    in_pool
        .then(|| frames::user_frames(stack).last().cloned())
        .flatten()
}

/// Whether a spawn path is the one that submitted `closure`: its frames include the
/// function the closure is defined in.
fn spawned_for(spawn_backtrace: &[Frame], closure: &Frame) -> bool {
    let Some(defined_in) = closure
        .function()
        .and_then(|function| function.strip_suffix("::{{closure}}"))
    else {
        return false;
    };
    spawn_backtrace
        .iter()
        .any(|frame| frame.function() == Some(defined_in))
}

/// tokio's task ids display as their number.
fn task_number(id: tokio::task::Id) -> u64 {
    id.to_string().parse().unwrap_or(0)
}

/// The spawning task, if a task spawned the thread; else the spawning thread, when it
/// belongs to the same scope (the test thread itself is not worth a line).
fn parent_thread(origin: &ThreadOrigin) -> Option<SpawnedBy> {
    if let Some(task) = origin.spawning_task {
        return Some(parent_task(task));
    }
    spawner_thread(&*origin.parent()?, origin.scope)
}

/// A thread that spawned something of `scope`, when it is of the same scope and not the
/// test's own thread: `thread 812 "spawner" (exited), itself spawned at ...`.
fn spawner_thread(spawner: &ThreadOrigin, scope: ScopeId) -> Option<SpawnedBy> {
    if spawner.scope != scope || is_libtest_thread(spawner) {
        return None;
    }
    let site = frames::user_frames(&frames::resolve_spawn(spawner.spawn.unwind()))
        .into_iter()
        .next();
    Some(SpawnedBy::Thread {
        tid: spawner.tid(),
        name: spawner.name(),
        site,
        alive: spawner.tid().is_some_and(threads::is_alive),
    })
}

/// For a thread outside every scope, the plain `#[test]` that spawned it, directly or
/// through other threads: libtest runs each test on a thread named after it, which it
/// spawns from the main thread (so the hook saw no parent) in `test::run_test`.
fn spawning_test(origin: &ThreadOrigin) -> Option<String> {
    let root = origin.root.as_deref()?;
    let name = is_libtest_thread(root).then(|| root.name()).flatten()?;
    Some(whole_test_name(&name, &origin.spawn, Some(origin)).unwrap_or(name))
}

/// The whole name of the test whose thread is named `name` where the kernel cut it to its
/// 15 bytes (preloaded, leakcheck's std cannot read the test's own thread handle), from the
/// test's function on the spawn path `spawn`, or on that of `thread` or a thread between it
/// and the test: libtest names a test by its function's path without the crate.
fn whole_test_name(
    name: &str,
    spawn: &SpawnStack,
    thread: Option<&ThreadOrigin>,
) -> Option<String> {
    const KERNEL_NAME_BYTES: usize = 15;
    if name.len() != KERNEL_NAME_BYTES {
        return None;
    }
    let test_of = |frames: Vec<Frame>| {
        frames.iter().find_map(|frame| {
            let function = frame.function()?.split("::{{closure}}").next()?;
            let (_crate, path) = function.split_once("::")?;
            path.starts_with(name).then(|| path.to_owned())
        })
    };
    let on_the_path = |spawn: &SpawnStack| {
        let ips = spawn.unwind();
        frames::names(ips)
            .and_then(test_of)
            .or_else(|| test_of(frames::resolve_spawn(ips)))
    };
    if let Some(found) = on_the_path(spawn) {
        return Some(found);
    }
    let mut next = thread.and_then(ThreadOrigin::parent);
    while let Some(between) = next {
        if let Some(found) = on_the_path(&between.spawn) {
            return Some(found);
        }
        next = between.parent();
    }
    None
}

fn is_libtest_thread(thread: &ThreadOrigin) -> bool {
    let runs_tests = |frames: Vec<Frame>| {
        frames.iter().any(|frame| {
            frame
                .function()
                .is_some_and(|function| function.starts_with("test::run_test"))
        })
    };
    // The symbol table's names first, at no cost; the debug info (the C library's too, on
    // this path) only where they do not tell: `run_test` may be inlined.
    let ips = thread.spawn.unwind();
    thread.is_root()
        && (frames::names(ips).is_some_and(runs_tests) || runs_tests(frames::resolve_spawn(ips)))
}

/// The spawning task: `task 7 (finished), itself spawned at tests/tasks.rs:40:5`.
fn parent_task(TaskRef { id, spawned_at }: TaskRef) -> SpawnedBy {
    SpawnedBy::Task {
        id: task_number(id),
        site: frames::location_frame(spawned_at, None),
        alive: registry::task_alive(id),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_ids_read_as_their_number() {
        // `Identity::Task` holds the number tokio's `Id` displays; a format change must fail
        // here, not turn every id into 0.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let id = runtime.block_on(async { tokio::spawn(async {}).id() });
        assert_ne!(super::task_number(id), 0);
        assert_eq!(super::task_number(id).to_string(), id.to_string());
    }
}
