//! The one retry loop: look at what the target owns that is still alive, drop what the
//! rules ignore, and if anything is left, back off and look again until the grace period
//! is spent. A clean target returns after the first look, without sleeping or reading
//! `/proc` for anything but its own threads.
//!
//! Threads are waited for by sleeping; a test's tasks by sleeping *inside* its runtime, so
//! that the runtime keeps driving them (a current_thread runtime runs nothing otherwise).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::config::Options;
use crate::filter::Rules;
use crate::registry::{self, TaskOrigin, ThreadOrigin};
use crate::report::{Frame, Identity, Leak, Report, Subject};
use crate::scope::{PROCESS, ScopeId};
use crate::tasks::{self, TestRuntime};
use crate::{frames, threads};

/// Even when the grace period is spent (or zero), look this many times: on a loaded CI
/// machine a thread that is exiting may not have been scheduled yet.
const MIN_ATTEMPTS: u32 = 4;
const FIRST_DELAY: Duration = Duration::from_millis(1);
const MAX_DELAY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    Scope(ScopeId),
    /// Every thread of the process but the caller and those alive at start-up, and every
    /// task leakcheck's hooks know.
    Process,
    /// As `Process`, less what belongs to a scope: at exit, a `#[leakcheck::test]`'s
    /// threads and tasks were checked by that test, under its own rules.
    Exit,
}

/// Something found alive and not ignored.
enum Suspect {
    Thread {
        tid: Option<i32>,
        origin: Option<Arc<ThreadOrigin>>,
        /// Its current stack, resolved, if an `ignore_top` rule already had it captured:
        /// the report reuses it rather than interrupt the thread again.
        stack: Option<Vec<Frame>>,
    },
    Task(Arc<TaskOrigin>),
    /// Tasks of a test's runtime that tokio counts but leakcheck cannot tell apart.
    UntrackedTasks(usize),
}

/// When to look again: at once, then after 1 ms, doubling up to 100 ms, until the grace
/// period is spent and at least `MIN_ATTEMPTS` looks were made.
struct Backoff {
    clock: fn() -> Instant,
    started: Instant,
    grace: Duration,
    delay: Duration,
    attempts: u32,
}

impl Backoff {
    /// Grace measured on the wall clock.
    fn new(grace: Duration) -> Backoff {
        Backoff::on_clock(grace, Instant::now)
    }

    /// Grace measured on `clock`.
    fn on_clock(grace: Duration, clock: fn() -> Instant) -> Backoff {
        Backoff {
            clock,
            started: clock(),
            grace,
            delay: FIRST_DELAY,
            attempts: 0,
        }
    }

    /// After a look that found something: how long to wait before the next, or `None` to
    /// give up.
    fn next_delay(&mut self) -> Option<Duration> {
        self.attempts += 1;
        let waited = self.waited();
        if waited >= self.grace && self.attempts >= MIN_ATTEMPTS {
            return None;
        }
        let delay = self
            .delay
            .min(self.grace.saturating_sub(waited))
            .max(FIRST_DELAY);
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Some(delay)
    }

    fn waited(&self) -> Duration {
        (self.clock)().saturating_duration_since(self.started)
    }
}

/// A check asked for from code (`find`, `verify_none`, `Scope::find`): nothing under
/// `LEAKCHECK=off`; else `options` merged with the shared file and the environment.
///
/// # Panics
///
/// If an environment variable or the shared file is not understood, with the message.
pub(crate) fn find_configured(target: Target, options: &Options) -> Result<(), Report> {
    match crate::config::effective(options) {
        Ok(Some(options)) => find(target, &options),
        Ok(None) => Ok(()),
        Err(message) => panic!("{message}"),
    }
}

/// Checks threads and hooked tasks of `target`, sleeping between looks.
pub(crate) fn find(target: Target, options: &Options) -> Result<(), Report> {
    find_sleeping(target, options, true)
}

/// Checks the threads of `target` only: an async test's tasks were checked inside its
/// runtime already.
pub(crate) fn find_threads(target: Target, options: &Options) -> Result<(), Report> {
    find_sleeping(target, options, false)
}

fn find_sleeping(target: Target, options: &Options, with_tasks: bool) -> Result<(), Report> {
    say_what_is_not_checked();
    let rules = Rules::new(options);
    let mut backoff = Backoff::new(options.grace_period());
    let look = |look| {
        let mut suspects = alive_threads(target, &rules, look);
        if with_tasks {
            suspects.extend(alive_tasks(target, &rules, look));
        }
        suspects
    };
    loop {
        if look(Look::Quick).is_empty() {
            return Ok(());
        }
        if let Some(delay) = backoff.next_delay() {
            std::thread::sleep(delay);
            continue;
        }
        // Measured before the final look, which may load debug info.
        let waited = backoff.waited();
        let suspects = look(Look::Final);
        if suspects.is_empty() {
            return Ok(());
        }
        return Err(report(target, suspects, waited, None));
    }
}

/// How much a look may cost. Rules that need symbols (`ignore_spawn`, the default
/// allowlist) or a current stack (`ignore_top`) would make a look take as long as loading
/// the binary's debug info the first time, and lengthen the grace period by as much: during
/// the grace period they apply only where symbols are cached already, and in full only to
/// what is left when it is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    Quick,
    Final,
}

/// Checks the tasks of a test's scope from inside its runtime, which keeps running them
/// while this waits. Without tokio's hooks, the runtime's count of live tasks stands in.
///
/// Grace is measured on the runtime's clock: with `start_paused` that is the paused clock,
/// which jumps ahead while the runtime idles, so timers within the grace period fire as
/// they would on the wall clock, without the wall-clock wait.
pub(crate) async fn find_tasks(
    scope: ScopeId,
    options: &Options,
    runtime: &TestRuntime,
) -> Result<(), Report> {
    let target = Target::Scope(scope);
    let rules = Rules::new(options);
    let started = Instant::now();
    let mut backoff = Backoff::on_clock(options.grace_period(), || {
        tokio::time::Instant::now().into_std()
    });
    loop {
        let suspects = if tasks::HOOKED {
            alive_tasks(target, &rules, Look::Quick)
        } else {
            match runtime.metrics().num_alive_tasks() {
                0 => Vec::new(),
                count => vec![Suspect::UntrackedTasks(count)],
            }
        };
        if suspects.is_empty() {
            return Ok(());
        }
        match backoff.next_delay() {
            Some(delay) => tokio::time::sleep(delay).await,
            None => {
                // Wall time even on a paused clock, and before the dump, which can take a
                // while to resolve symbols: the report says how long the tasks outlived the
                // body.
                let waited = started.elapsed();
                let suspects = if tasks::HOOKED {
                    alive_tasks(target, &rules, Look::Final)
                } else {
                    suspects
                };
                if suspects.is_empty() {
                    return Ok(());
                }
                let awaiting = tasks::awaiting(runtime.handle()).await;
                return Err(report(target, suspects, waited, Some(awaiting)));
            }
        }
    }
}

fn alive_threads(target: Target, rules: &Rules<'_>, look: Look) -> Vec<Suspect> {
    let me = threads::current_tid();
    let mut found: Vec<FoundThread> = match target {
        Target::Scope(scope) => registry::threads_of(scope)
            .into_iter()
            .filter_map(|origin| match origin.tid() {
                None => Some((None, Some(origin))),
                Some(tid) if tid != me && threads::is_alive(tid) => Some((Some(tid), Some(origin))),
                Some(_) => None,
            })
            .collect(),
        Target::Process => process_threads(me, false),
        Target::Exit => process_threads(me, true),
    };
    found.retain(|(tid, origin)| {
        !rules.ignores_thread(*tid, &name_of(*tid, origin.as_deref()).unwrap_or_default())
    });
    if rules.has_spawn_rules() {
        found.retain(|(_, origin)| {
            let Some(origin) = origin else { return true };
            match spawn_frames(origin.spawn.ips(), look) {
                Some(frames) => !rules.ignores_spawn(&frames),
                None => true,
            }
        });
    }
    let mut stacks: HashMap<i32, Vec<Frame>> = HashMap::new();
    if rules.has_top_rules() && look == Look::Final {
        found.retain(|(tid, _)| {
            let Some(tid) = *tid else { return true };
            let Ok(ips) = threads::current_stack(tid) else {
                return true;
            };
            let stack = frames::resolve(&ips);
            let ignored = rules.ignores_top(&frames::current_stack(&stack).top);
            if !ignored {
                stacks.insert(tid, stack);
            }
            !ignored
        });
    }
    found.sort_by_key(|(_, origin)| origin.as_ref().map_or(u64::MAX, |origin| origin.key));
    found
        .into_iter()
        .map(|(tid, origin)| Suspect::Thread {
            stack: tid.and_then(|tid| stacks.remove(&tid)),
            tid,
            origin,
        })
        .collect()
}

fn alive_tasks(target: Target, rules: &Rules<'_>, look: Look) -> Vec<Suspect> {
    let mut found = match target {
        Target::Scope(scope) => registry::tasks_of(scope),
        Target::Process => registry::all_tasks(),
        Target::Exit => registry::tasks_of(PROCESS),
    };
    if found.is_empty() {
        return Vec::new();
    }
    if rules.has_spawn_rules() {
        found.retain(|origin| {
            let Some(backtrace) = spawn_frames(origin.spawn_ips(), look) else {
                return true;
            };
            let mut spawn = vec![location_frame(origin.spawned_at, None)];
            spawn.extend(backtrace);
            !rules.ignores_spawn(&spawn)
        });
    }
    found.sort_by_key(|origin| origin.id);
    found.into_iter().map(Suspect::Task).collect()
}

/// A spawn backtrace's frames for rules to match, or `None` when this look may not pay for
/// resolving them.
fn spawn_frames(ips: &[usize], look: Look) -> Option<Vec<Frame>> {
    match look {
        Look::Quick => frames::resolve_cached(ips),
        Look::Final => Some(frames::resolve(ips)),
    }
}

type FoundThread = (Option<i32>, Option<Arc<ThreadOrigin>>);

/// Every live thread of the process, with its origin where the hook saw it start;
/// `unscoped_only` leaves out the threads that belong to a scope.
fn process_threads(me: i32, unscoped_only: bool) -> Vec<FoundThread> {
    let Some(live) = threads::list() else {
        return Vec::new();
    };
    let startup = startup_threads();
    let left_out = |origin: &ThreadOrigin| unscoped_only && origin.scope != PROCESS;
    let mut registered: HashMap<i32, Arc<ThreadOrigin>> = HashMap::new();
    let mut found = Vec::new();
    for origin in registry::all_threads() {
        match origin.tid() {
            Some(tid) => {
                registered.insert(tid, origin);
            }
            None if left_out(&origin) => {}
            None => found.push((None, Some(origin))),
        }
    }
    for tid in live {
        if tid == me || startup.contains(&tid) || !threads::is_alive(tid) {
            continue;
        }
        let origin = registered.remove(&tid);
        if !origin.as_deref().is_some_and(left_out) {
            found.push((Some(tid), origin));
        }
    }
    found
}

/// The name rules match and reports show: the full name the thread set, else the
/// kernel's for a thread the hook did not see start or name. A hooked thread that never
/// named itself has no name (the kernel's would be its parent's, inherited).
fn name_of(tid: Option<i32>, origin: Option<&ThreadOrigin>) -> Option<String> {
    let kernel_name = || tid.and_then(threads::describe).map(|os| os.comm);
    match origin {
        Some(origin) if threads::NAMES_HOOKED => origin.name(),
        Some(origin) => origin.name().or_else(kernel_name),
        None => kernel_name(),
    }
}

type Awaiting = Result<HashMap<tokio::task::Id, Vec<Frame>>, &'static str>;

fn report(
    target: Target,
    suspects: Vec<Suspect>,
    waited: Duration,
    awaiting: Option<Awaiting>,
) -> Report {
    let subject = match target {
        Target::Scope(scope) => Subject::Scope(scope_label(scope)),
        Target::Process => Subject::Process,
        Target::Exit => Subject::Exit,
    };
    let owner = |scope: ScopeId| (scope != PROCESS).then(|| scope_label(scope));
    let leaks = suspects
        .into_iter()
        .map(|suspect| match suspect {
            Suspect::Thread { tid, origin, stack } => {
                let origin = origin.as_deref();
                let all_frames = origin
                    .map(|origin| frames::resolve(origin.spawn.ips()))
                    .unwrap_or_default();
                let spawn_backtrace = frames::user_frames(&all_frames);
                let mut state = tid.and_then(threads::describe).map(|os| os.summary());
                let mut add_note = |note: &str| {
                    state = Some(match state.take() {
                        Some(state) => format!("{state}; {note}"),
                        None => note.to_owned(),
                    });
                };
                if spawned_by_spawn_blocking(&all_frames) {
                    add_note(
                        "a tokio blocking-pool thread: its spawn_blocking closure has not \
                         returned",
                    );
                }
                let stack = match (stack, tid) {
                    (Some(stack), _) => Some(Ok(stack)),
                    (None, Some(tid)) => {
                        Some(threads::current_stack(tid).map(|ips| frames::resolve(&ips)))
                    }
                    (None, None) => None,
                };
                let current_stack = match stack {
                    Some(Ok(stack)) => frames::current_stack(&stack).shown,
                    Some(Err(why)) => {
                        add_note(&format!("current stack {why}"));
                        Vec::new()
                    }
                    None => Vec::new(),
                };
                Leak {
                    identity: Identity::Thread {
                        tid,
                        name: name_of(tid, origin),
                    },
                    owner: origin.and_then(|origin| owner(origin.scope).or_else(|| spawning_test(origin))),
                    spawn_site: frames::spawn_site(&spawn_backtrace).cloned(),
                    spawn_backtrace,
                    spawned_by: origin.and_then(describe_parent_thread),
                    state,
                    awaiting: Vec::new(),
                    current_stack,
                }
            }
            Suspect::Task(origin) => {
                let spawn_backtrace = frames::user_frames(&frames::resolve(origin.spawn_ips()));
                let (state, awaiting) = match &awaiting {
                    Some(Ok(dump)) => match dump.get(&origin.id) {
                        Some(frames) if !frames.is_empty() => (None, frames.clone()),
                        Some(_) => (
                            Some("awaiting a future tokio's task dump cannot trace (not a tokio one)"),
                            Vec::new(),
                        ),
                        None => (Some("awaiting: not in the task dump (not on the test's runtime)"), Vec::new()),
                    },
                    Some(Err(why)) => (Some(*why), Vec::new()),
                    None => (None, Vec::new()),
                };
                Leak {
                    identity: Identity::Task {
                        id: task_number(origin.id),
                    },
                    owner: owner(origin.scope),
                    spawn_site: Some(location_frame(
                        origin.spawned_at,
                        spawn_backtrace.first(),
                    )),
                    spawn_backtrace,
                    spawned_by: describe_parent_task(&origin),
                    state: state.map(str::to_owned),
                    awaiting,
                    current_stack: Vec::new(),
                }
            }
            Suspect::UntrackedTasks(count) => Leak {
                identity: Identity::UntrackedTasks { count },
                owner: match target {
                    Target::Scope(scope) => owner(scope),
                    Target::Process | Target::Exit => None,
                },
                spawn_site: None,
                spawn_backtrace: Vec::new(),
                spawned_by: None,
                state: None,
                awaiting: Vec::new(),
                current_stack: Vec::new(),
            },
        })
        .collect();
    Report {
        subject,
        leaks,
        waited,
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

/// tokio's task ids display as their number.
fn task_number(id: tokio::task::Id) -> u64 {
    id.to_string().parse().unwrap_or(0)
}

/// A task's spawn site as a frame: tokio's record of the caller's `file:line:column`,
/// with the function from the spawn backtrace when that frame is the same call.
fn location_frame(
    location: &'static std::panic::Location<'static>,
    innermost_user_frame: Option<&Frame>,
) -> Frame {
    let function = innermost_user_frame
        .filter(|frame| {
            frame.line() == Some(location.line())
                && frame.file().is_some_and(|file| {
                    file.ends_with(location.file()) || location.file().ends_with(file)
                })
        })
        .and_then(|frame| frame.function().map(str::to_owned));
    Frame::new(
        function,
        Some(location.file().to_owned()),
        Some(location.line()),
        Some(location.column()),
    )
}

fn scope_label(scope: ScopeId) -> String {
    registry::scope_name(scope).map_or_else(|| format!("scope #{scope}"), |name| name.to_string())
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
        .parent
        .as_deref()
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
    let site = frames::user_frames(&frames::resolve(parent.spawn.ips()));
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
    let mut root = origin.parent.as_deref()?;
    while let Some(parent) = root.parent.as_deref() {
        root = parent;
    }
    is_libtest_thread(root).then(|| root.name()).flatten()
}

fn is_libtest_thread(thread: &ThreadOrigin) -> bool {
    thread.parent.is_none()
        && frames::resolve(thread.spawn.ips()).iter().any(|frame| {
            frame
                .function()
                .is_some_and(|function| function.starts_with("test::run_test"))
        })
}

/// The spawning task: `task 7 (finished), itself spawned at tests/tasks.rs:40:5`.
fn describe_parent_task(origin: &TaskOrigin) -> Option<String> {
    origin.parent.map(describe_task)
}

fn describe_task((task, spawned_at): crate::tasks::TaskRef) -> String {
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

/// Threads that were running before `main`: the main thread, and any started by a
/// library's initialiser before the hook could see them.
fn startup_threads() -> &'static HashSet<i32> {
    // The main thread's id is the process id; used if the initialiser did not run.
    STARTUP.get_or_init(|| HashSet::from([std::process::id() as i32]))
}

static STARTUP: OnceLock<HashSet<i32>> = OnceLock::new();

#[ctor::ctor(unsafe)]
fn record_startup_threads() {
    if let Some(live) = threads::list() {
        let _ = STARTUP.set(live.into_iter().collect());
    }
}

/// Says once per process what this build cannot check, the first time a check runs.
fn say_what_is_not_checked() {
    static SAID: OnceLock<()> = OnceLock::new();
    if let Err(reason) = threads::tracking() {
        SAID.get_or_init(|| eprintln!("leakcheck: {reason}"));
    }
    static SAID_TASKS: OnceLock<()> = OnceLock::new();
    if let Some(reason) = tasks::unhooked_runtime_warning() {
        SAID_TASKS.get_or_init(|| eprintln!("leakcheck: {reason}"));
    }
}
