//! What a check found, described: each suspect becomes a [`Leak`] with its owner, its
//! spawn site and backtrace (symbols resolved now, only for leaks), what the OS says it is
//! doing, its current stack (a signal to the thread) or await trace (the runtime's dump),
//! who spawned it, and every note the report prints. After this the report is pure data.

use crate::frames::{self, Frame};
use crate::registry::{self, LiveTask, ThreadOrigin};
use std::collections::HashMap;
use std::time::Duration;

use crate::report::{Activity, Ending, Identity, Leak, Report, Subject};
use crate::scope::{self, PROCESS, ScopeId, TaskRef};
use crate::tasks::Awaiting;
use crate::threads;
use crate::verify::{Found, PoolJob, Suspect, Target};

/// The report of what a check found: each suspect described, the check's wait kept.
pub(crate) fn report(found: Found) -> Report {
    let Found {
        target,
        suspects,
        waited,
        awaiting,
        baseline,
        grace,
    } = found;
    let then = Baseline::of(&baseline, grace);
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
        })
        .collect();
    Report {
        subject,
        leaks,
        waited,
        ending: None,
    }
}

/// Each leak as the grace period's looks first saw it: its wake-ups are counted from there.
struct Baseline {
    /// Every look's counters of each thread, in order.
    threads: HashMap<i32, Vec<threads::Counters>>,
    tasks: HashMap<tokio::task::Id, u32>,
    grace: Duration,
}

impl Baseline {
    fn of(first_look: &[Suspect], grace: Duration) -> Baseline {
        let mut baseline = Baseline {
            threads: HashMap::new(),
            tasks: HashMap::new(),
            grace,
        };
        for suspect in first_look {
            match suspect {
                Suspect::Thread {
                    tid: Some(tid),
                    counters: Some(counters),
                    ..
                } => {
                    baseline.threads.entry(*tid).or_default().push(*counters);
                }
                Suspect::Task(origin) => {
                    baseline.tasks.entry(origin.id).or_insert(origin.polls);
                }
                _ => {}
            }
        }
        baseline
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
        let timer = threads::describe(tid).is_some_and(|os| os.timed)
            || leak
                .state
                .as_deref()
                .is_some_and(|state| state.contains("nanosleep"));
        Some(Activity {
            woken: now
                .wakeups
                .saturating_sub(then.wakeups)
                .saturating_sub(entered),
            cpu: Some(now.cpu.saturating_sub(then.cpu)),
            timer,
            grace: self.grace,
        })
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
        Some(Activity {
            woken: u64::from(woken),
            cpu: None,
            timer,
            grace: self.grace,
        })
    }
}

/// The report of a test that cannot be returned from: what its scope runs, with the test's
/// own thread first, where it is stuck now.
pub(crate) fn stuck_test(found: Found, test_tid: i32, ending: Ending) -> Report {
    let mut report = report(found);
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
/// `ignore_top` rule already captured, else a fresh capture), its owner and spawner.
fn thread_leak(
    tid: Option<i32>,
    origin: Option<&ThreadOrigin>,
    stack: Option<Vec<Frame>>,
    job: Option<PoolJob>,
) -> Leak {
    let all_frames = origin
        .map(|origin| frames::resolve(origin.spawn.unwind()))
        .unwrap_or_default();
    let mut spawn_backtrace = frames::user_frames(&all_frames);
    let mut spawn_site = frames::spawn_site(&spawn_backtrace).cloned();
    let mut state = tid.and_then(threads::describe).map(|os| os.summary());
    let mut add_note = |note: &str| {
        state = Some(match state.take() {
            Some(state) => format!("{state}; {note}"),
            None => note.to_owned(),
        });
    };
    let stack = match (stack, tid) {
        (Some(stack), _) => Some(Ok(stack)),
        (None, Some(tid)) => Some(threads::capture_stack(tid).map(|ips| frames::resolve(&ips))),
        (None, None) => None,
    };
    let closure = match &stack {
        Some(Ok(stack)) => blocking_pool_closure(stack),
        _ => None,
    };
    if let Some(job) = job {
        add_note(&format!(
            "a thread of {}'s process-wide pool, running a job that has not returned",
            job.krate
        ));
        if let Some(frame) = crate::filter::pools::job_site(&job.frames) {
            add_note("spawn site: the job it runs, from its current stack");
            spawn_site = Some(frame);
            // The pool grew for another job: the path of this one is its own frames.
            spawn_backtrace = job.frames;
        }
    } else if let Some(closure) = closure {
        add_note("a tokio blocking-pool thread: its spawn_blocking closure has not returned");
        // The pool runs a closure on whichever of its threads is idle: the thread's own
        // spawn path is then an earlier spawn's (or the runtime's start), so the closure
        // running now says where the work came from.
        if !spawned_for(&spawn_backtrace, &closure) {
            add_note(
                "spawn site: the closure it runs, from its current stack (the pool reused the thread)",
            );
            spawn_site = Some(closure);
        }
    } else if spawned_by_spawn_blocking(&all_frames) {
        add_note("a tokio blocking-pool thread: its spawn_blocking closure has not returned");
    }
    let current_stack = match stack {
        Some(Ok(stack)) => frames::shape_current_stack(&stack).shown,
        Some(Err(why)) => {
            add_note(&format!("current stack {why}"));
            Vec::new()
        }
        None => Vec::new(),
    };
    Leak {
        identity: Identity::Thread {
            tid,
            name: threads::name_of(tid, origin),
        },
        owner: origin.and_then(|origin| owner(origin.scope).or_else(|| spawning_test(origin))),
        spawn_site,
        spawn_backtrace,
        backtrace_recorded: true,
        spawned_by: origin.and_then(describe_parent_thread),
        state,
        awaiting: Vec::new(),
        current_stack,
        activity: None,
        is_test_thread: false,
    }
}

/// A task: tokio's spawn location (with the function, when a backtrace was recorded), its
/// parent, and where it awaits from the runtime's dump when there is one.
fn task_leak(origin: &LiveTask, awaiting: Option<&Awaiting>) -> Leak {
    let spawn_backtrace = frames::user_frames(&frames::resolve(origin.spawn_ips()));
    let (state, awaiting) = match awaiting {
        Some(Ok(dump)) => match dump.get(&origin.id) {
            Some(frames) if !frames.is_empty() => (None, frames.clone()),
            Some(_) => (
                Some("awaiting a future tokio's task dump cannot trace (not a tokio one)"),
                Vec::new(),
            ),
            None => (
                Some("awaiting: not in the task dump (not on the test's runtime)"),
                Vec::new(),
            ),
        },
        Some(Err(why)) => (Some(*why), Vec::new()),
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
        spawned_by: describe_parent_task(origin),
        state: state.map(str::to_owned),
        awaiting,
        current_stack: Vec::new(),
        activity: None,
        is_test_thread: false,
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
/// belongs to the same scope (the test thread itself is not worth a line):
/// `thread 812 "spawner" (exited), itself spawned at src/lib.rs:40:9`.
fn describe_parent_thread(origin: &ThreadOrigin) -> Option<String> {
    if let Some(task) = origin.spawning_task {
        return Some(describe_task(task));
    }
    // A parent outside the scope, or the test's own thread, is not worth a line.
    let parent = origin
        .parent()
        .filter(|parent| parent.scope == origin.scope && !is_libtest_thread(parent))?;
    let identity = Identity::Thread {
        tid: parent.tid(),
        name: parent.name(),
    };
    let alive = parent.tid().is_some_and(threads::is_alive);
    let mut line = format!(
        "{identity} ({})",
        if alive { "still running" } else { "exited" }
    );
    let site = frames::user_frames(&frames::resolve(parent.spawn.unwind()));
    if let Some(location) = site.first().and_then(|frame| frame.location()) {
        line.push_str(", itself spawned at ");
        line.push_str(&location);
    }
    Some(line)
}

/// For a thread outside every scope, the plain `#[test]` that spawned it, directly or
/// through other threads: libtest runs each test on a thread named after it, which it
/// spawns from the main thread (so the hook saw no parent) in `test::run_test`.
fn spawning_test(origin: &ThreadOrigin) -> Option<String> {
    let root = origin.root.as_deref()?;
    is_libtest_thread(root).then(|| root.name()).flatten()
}

fn is_libtest_thread(thread: &ThreadOrigin) -> bool {
    thread.is_root()
        && frames::resolve(thread.spawn.unwind()).iter().any(|frame| {
            frame
                .function()
                .is_some_and(|function| function.starts_with("test::run_test"))
        })
}

/// The spawning task: `task 7 (finished), itself spawned at tests/tasks.rs:40:5`.
fn describe_parent_task(origin: &LiveTask) -> Option<String> {
    origin.parent.map(describe_task)
}

fn describe_task(
    TaskRef {
        id: task,
        spawned_at,
    }: TaskRef,
) -> String {
    let alive = registry::task_alive(task);
    format!(
        "task {} ({}), itself spawned at {}:{}:{}",
        task_number(task),
        if alive { "still running" } else { "finished" },
        spawned_at.file(),
        spawned_at.line(),
        spawned_at.column()
    )
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
