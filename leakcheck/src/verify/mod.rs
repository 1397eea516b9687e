//! The one retry loop: look at what the target owns that is still alive, drop what the
//! rules ignore, and if anything is left, back off and look again until the grace period
//! is spent. A clean target returns after the first look, without sleeping or reading
//! `/proc` for anything but its own threads. What is left at the end goes to `describe`.
//!
//! Threads are waited for by sleeping; a test's tasks by sleeping *inside* its runtime, so
//! that the runtime keeps driving them (a current_thread runtime runs nothing otherwise).
//! Both run the same loop, [`retry`], with their own clock and sleep; the schedule is the
//! pure [`Backoff`].

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::config::{Policy, Settings};
use crate::filter::Rules;
use crate::frames::{self, Frame};
use crate::processes::{self, Status};
use crate::registry::{self, LiveTask, LostPanic, ThreadOrigin};
use crate::scope::{PROCESS, ScopeId};
use crate::tasks::{self, Awaiting, TestRuntime};
use crate::threads;

mod processes_alive;
mod tasks_alive;
mod threads_alive;

pub(crate) use processes_alive::FoundProcess;
use processes_alive::alive_processes;
use tasks_alive::alive_tasks;
use threads_alive::alive_threads;

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
pub(crate) enum Suspect {
    Thread {
        tid: Option<i32>,
        origin: Option<Arc<ThreadOrigin>>,
        /// Its current stack, resolved, if an `ignore_top` rule already had it captured:
        /// the report reuses it rather than interrupt the thread again.
        stack: Option<Vec<Frame>>,
        /// How much it had run when this look saw it.
        counters: Option<threads::Counters>,
        /// For a thread of a process-wide pool, the job it runs (its outermost frame of the
        /// user's code): where the work came from, not the spawn that grew the pool.
        job: Option<PoolJob>,
    },
    Task(Arc<LiveTask>),
    /// Tasks of a test's runtime that tokio counts but leakcheck cannot tell apart.
    UntrackedTasks(usize),
    /// A child process still running, an orphan of one, or a zombie.
    Process(FoundProcess),
    /// A panic that ended a thread, and that nobody observed.
    LostPanic(LostPanic),
}

/// A job a process-wide pool's thread runs.
#[derive(Clone, Debug)]
pub(crate) struct PoolJob {
    /// The pool's crate.
    pub(crate) krate: &'static str,
    /// The job's frames that are not std's or the runtime's, innermost first.
    pub(crate) frames: Vec<Frame>,
}

/// What a check that did not come out clean hands to `describe`.
pub(crate) struct Found {
    pub(crate) target: Target,
    pub(crate) suspects: Vec<Suspect>,
    /// How long the check waited, on the wall clock, measured before the final look (which
    /// may load debug info).
    pub(crate) waited: Duration,
    /// How long what it found was watched: from the first look to the end of the last.
    pub(crate) watched: Duration,
    /// For a test's tasks: where each is awaiting, from a dump of its runtime.
    pub(crate) awaiting: Option<Awaiting>,
    /// What the earlier looks saw during the grace period: with the final look, how often
    /// each leak was woken during it.
    pub(crate) earlier: Vec<Suspect>,
    /// The grace period the check had (some of it may have been spent before the check, by
    /// a test's runtime shutdown).
    pub(crate) grace: Duration,
}

/// When to look again: at once, then after 1 ms, doubling up to 100 ms, until the grace
/// period is spent and at least `MIN_ATTEMPTS` looks were made. Pure: the caller says how
/// long it has waited, on whatever clock it keeps.
#[derive(Debug)]
pub(crate) struct Backoff {
    grace: Duration,
    delay: Duration,
    attempts: u32,
}

impl Backoff {
    pub(crate) fn new(grace: Duration) -> Backoff {
        Backoff {
            grace,
            delay: FIRST_DELAY,
            attempts: 0,
        }
    }

    /// After a look that found something, `waited` after the first: how long to wait
    /// before the next, or `None` to give up.
    pub(crate) fn next_delay(&mut self, waited: Duration) -> Option<Duration> {
        self.attempts += 1;
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
}

/// How much a look may cost. Every rule applies at the first look, so that a test whose
/// only survivors are allowed ends at once: rules that name functions (`ignore_spawn`, the
/// default allowlist, `ignore_top`, a pool's wait) match the names of the executable's
/// symbol table, read without debug info (`frames::names`), and a current stack is taken
/// where a rule needs one. Loading the debug info (a tenth of a second to a second the first
/// time) would lengthen the grace period by as much, so the looks before the last use it
/// only where it is cached, or where a rule of the user's needs a `file:line`; the final
/// look uses it for what is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    /// The first look of a check: every rule, with the symbol table's names.
    First,
    /// A look during the grace period: what the first look kept, looked at again.
    Quick,
    /// The last look, when the grace period is spent: debug info where names did not tell.
    Final,
}

/// What [`retry`] found when something outlived the grace period.
struct Outlived {
    /// Every quick look's findings, in order: each suspect's earliest counters are the
    /// start of its grace period (a thread still starting at the first look has none yet).
    earlier: Vec<Suspect>,
    /// The final look.
    last: Vec<Suspect>,
    /// Wall time waited before the final look.
    waited: Duration,
    /// Wall time from the first look to the end of the final one: how long what it found
    /// was watched (the final look reads the counters last).
    watched: Duration,
}

/// The one retry loop: quick looks with `sleep` between them as [`Backoff`] says, the grace
/// measured on `clock`, then a final look.
async fn retry<S: Future<Output = ()>>(
    grace: Duration,
    clock: impl Fn() -> Instant,
    mut look: impl FnMut(Look) -> Vec<Suspect>,
    sleep: impl Fn(Duration) -> S,
) -> Result<(), Outlived> {
    let wall = Instant::now();
    let started = clock();
    let mut backoff = Backoff::new(grace);
    let mut earlier = Vec::new();
    let mut kind = Look::First;
    loop {
        let found = look(kind);
        kind = Look::Quick;
        if found.is_empty() {
            return Ok(());
        }
        if earlier.is_empty() {
            // Something may outlive the grace period: its report's debug info loads now,
            // on another thread, rather than after it.
            warm_symbols_for(&found);
        }
        earlier.extend(found);
        match backoff.next_delay(clock().saturating_duration_since(started)) {
            Some(delay) => sleep(delay).await,
            None => break,
        }
    }
    // Wall time even on a paused tokio clock: the report says how long the leaks outlived
    // the body.
    let waited = wall.elapsed();
    let last = look(Look::Final);
    if last.is_empty() {
        return Ok(());
    }
    Err(Outlived {
        earlier,
        last,
        waited,
        watched: wall.elapsed(),
    })
}

/// Starts loading the debug info a report of `suspects` would read.
fn warm_symbols_for(suspects: &[Suspect]) {
    let mut stacks = Vec::new();
    let mut any_thread = false;
    for suspect in suspects {
        match suspect {
            Suspect::Thread { origin, .. } => {
                any_thread = true;
                stacks.extend(origin.as_ref().map(|origin| origin.spawn.clone()));
            }
            Suspect::Task(task) => stacks.extend(task.spawn.clone()),
            Suspect::Process(found) => {
                stacks.extend(
                    found
                        .child
                        .origin
                        .as_ref()
                        .map(|origin| origin.spawn.clone()),
                );
            }
            Suspect::LostPanic(panic) => stacks.push(panic.thread.spawn.clone()),
            Suspect::UntrackedTasks(_) => {}
        }
    }
    frames::warm_symbols(stacks, any_thread, threads::spawn_own_detached);
}

/// Runs a future whose every await is ready when first polled ([`retry`] with a sleep that
/// has already slept): the synchronous checks share the async loop without a runtime.
fn run_ready<F: Future>(future: F) -> F::Output {
    let future = pin!(future);
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        // A pending await here would be a sleep that did not sleep: fail, never spin.
        Poll::Pending => unreachable!("a synchronous check's sleeps are always ready"),
    }
}

/// Checks threads, hooked tasks and child processes of `target`, sleeping between looks.
pub(crate) fn check(target: Target, settings: &Settings) -> Result<(), Box<Found>> {
    check_sleeping(target, settings, true)
}

/// Checks the threads and child processes of `target` only: an async test's tasks were
/// checked inside its runtime already.
pub(crate) fn check_threads(target: Target, settings: &Settings) -> Result<(), Box<Found>> {
    check_sleeping(target, settings, false)
}

fn check_sleeping(target: Target, settings: &Settings, with_tasks: bool) -> Result<(), Box<Found>> {
    say_what_is_not_checked();
    processes::look_at_ended_scopes();
    registry::forget_finished_scopes();
    let rules = Rules::new(settings);
    let look = |look| {
        let mut suspects = alive_threads(target, &rules, look);
        if with_tasks {
            suspects.extend(alive_tasks(target, &rules, look));
        }
        suspects.extend(alive_processes(target, &rules, look, Status::is_running));
        suspects
    };
    let sleep = |delay| {
        std::thread::sleep(delay);
        std::future::ready(())
    };
    let mut outlived = run_ready(retry(
        settings.remaining_grace(),
        Instant::now,
        &look,
        sleep,
    ));
    // A panic still in progress is judged once it ends: what it leaves is looked at again.
    let outliving = outlived
        .as_ref()
        .err()
        .map_or(&[][..], |left| &left.last[..]);
    if wait_for_panics_in_progress(target, settings, outliving) {
        if let Err(left) = &mut outlived {
            left.last = look(Look::Final);
            if left.last.is_empty() {
                outlived = Ok(());
            }
        }
    }
    let settled = settled(target, &rules, settings);
    let found = |suspects, waited, watched, earlier| {
        Box::new(Found {
            target,
            suspects,
            waited,
            watched,
            awaiting: None,
            earlier,
            grace: settings.grace_period(),
        })
    };
    match outlived {
        Ok(()) if settled.is_empty() => Ok(()),
        Ok(()) => Err(found(settled, Duration::ZERO, Duration::ZERO, Vec::new())),
        Err(mut outlived) => {
            outlived.last.extend(settled);
            Err(found(
                outlived.last,
                outlived.waited,
                outlived.watched,
                outlived.earlier,
            ))
        }
    }
}

/// How long a check waits for a panic in progress when the test set no `timeout`: a panic's
/// hook and unwinding end within milliseconds, unless a message, backtrace or `Drop` is slow.
const PANIC_WAIT: Duration = Duration::from_secs(10);

/// Waits, up to the test's timeout (else [`PANIC_WAIT`]), for the panics in progress on
/// threads of `target` to end (caught inside the thread, or the thread ended by it), so that
/// each is judged: a rule over threads decides thread leaks, never whether a panic was lost,
/// and a panic that unwinds after the grace period is judged like one before it. A panic is
/// in progress from its hook to the thread's end where it unwinds out of the thread (the
/// thread's record says so), and where a thread that `outliving` holds shows std's panic
/// machinery on its current stack (a slow message or backtrace, before the hook). Whether
/// what `outliving` holds must be looked at again: a thread of it was panicking, or has
/// ended since the final look.
fn wait_for_panics_in_progress(target: Target, settings: &Settings, outliving: &[Suspect]) -> bool {
    let me = threads::current_tid();
    let alive = |tid: i32| tid != me && threads::is_alive(tid);
    let flagged = || {
        let candidates = match target {
            Target::Scope(scope) => registry::threads_of(scope),
            Target::Process => registry::all_threads(),
            Target::Exit => registry::all_threads()
                .into_iter()
                .filter(|origin| origin.scope == PROCESS)
                .collect(),
        };
        candidates
            .into_iter()
            .any(|origin| origin.is_panicking() && origin.tid().is_some_and(alive))
    };
    let in_the_machinery = |tid: i32| {
        threads::capture_stack(tid)
            .ok()
            .and_then(|ips| frames::names(&ips))
            .is_some_and(|stack| frames::is_panicking(&stack))
    };
    let mut look_again = false;
    let mut panicking: Vec<i32> = Vec::new();
    for suspect in outliving {
        let Suspect::Thread {
            tid: Some(tid),
            origin,
            ..
        } = suspect
        else {
            continue;
        };
        // Only a thread on a CPU can be formatting a slow message: one that waits is never
        // interrupted here (the capture's signal would wake it just before the report
        // reads where it waits).
        if !alive(*tid) {
            look_again = true;
        } else if origin.as_deref().is_some_and(ThreadOrigin::is_panicking)
            || threads::is_running(*tid) && in_the_machinery(*tid)
        {
            panicking.push(*tid);
        }
    }
    if panicking.is_empty() && !flagged() {
        return look_again;
    }
    let deadline = Instant::now() + settings.timeout.unwrap_or(PANIC_WAIT);
    let mut delay = FIRST_DELAY;
    while Instant::now() < deadline {
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_DELAY);
        panicking.retain(|&tid| alive(tid) && in_the_machinery(tid));
        if panicking.is_empty() && !flagged() {
            break;
        }
    }
    true
}

/// What no wait changes, looked at once when the grace period is over: zombies (one stays
/// a zombie until the program waits for it) and lost panics (the threads have ended, or
/// leaked: a panic that ended one and that no join has observed by now is lost). Lost
/// panics are taken even when not reported, so that none waits for a later check; the
/// records of children the program waited for go too, their orphans looked for.
fn settled(target: Target, rules: &Rules<'_>, settings: &Settings) -> Vec<Suspect> {
    let mut settled = if settings.zombies() == Policy::Off {
        Vec::new()
    } else {
        alive_processes(target, rules, Look::Final, |status| {
            status == Status::Zombie
        })
    };
    let owner = match target {
        Target::Scope(scope) => scope,
        Target::Process | Target::Exit => PROCESS,
    };
    processes::forget_waited_for(owner, true);
    let lost = registry::take_lost_panics(match target {
        Target::Process => None,
        Target::Scope(_) | Target::Exit => Some(owner),
    });
    if settings.lost_panics() != Policy::Off {
        settled.extend(
            lost.into_iter()
                .filter(|panic| !panic_accepted(rules, panic))
                .map(Suspect::LostPanic),
        );
    }
    settled
}

/// Whether an `ignore_panic` accepts a lost panic: by its thread's spawn path, with the
/// debug info (inlined frames too), or by where it panicked.
fn panic_accepted(rules: &Rules<'_>, panic: &LostPanic) -> bool {
    rules.has_panic_rules()
        && rules.ignores_panic(
            &frames::resolve_spawn(panic.thread.spawn.unwind()),
            panic.location.as_deref(),
        )
}

/// Checks the tasks of a test's scope from inside its runtime, which keeps running them
/// while this waits, and dumps the runtime's tasks if any are left. Without tokio's hooks,
/// the runtime's count of live tasks stands in.
///
/// Grace is measured on the runtime's clock: with `start_paused` that is the paused clock,
/// which jumps ahead while the runtime idles, so timers within the grace period fire as
/// they would on the wall clock, without the wall-clock wait.
pub(crate) async fn check_tasks(
    scope: ScopeId,
    settings: &Settings,
    runtime: &TestRuntime,
) -> Result<(), Box<Found>> {
    let target = Target::Scope(scope);
    let rules = Rules::new(settings);
    let look = |look| {
        if tasks::HOOKED {
            return alive_tasks(target, &rules, look);
        }
        match runtime.metrics().num_alive_tasks() {
            0 => Vec::new(),
            count => vec![Suspect::UntrackedTasks(count)],
        }
    };
    let clock = || tokio::time::Instant::now().into_std();
    match retry(settings.grace_period(), clock, look, tokio::time::sleep).await {
        Ok(()) => Ok(()),
        Err(outlived) => Err(Box::new(Found {
            target,
            suspects: outlived.last,
            waited: outlived.waited,
            watched: outlived.watched,
            awaiting: Some(tasks::awaiting(runtime.handle()).await),
            earlier: outlived.earlier,
            grace: settings.grace_period(),
        })),
    }
}

/// Whether spawn rules ignore a spawn path (its instruction pointers), as far as this look
/// may tell: names from the symbol table match function rules; the debug info is read where
/// it is cached, or, where names did not match, at the final look or where the user's own
/// rules need a `file:line`. (A function the table names is on the path the debug info
/// gives too: a match by names is a match.)
fn spawn_ignored(rules: &Rules<'_>, ips: &[usize], look: Look) -> bool {
    if let Some(frames) = frames::resolve_spawn_cached(ips) {
        return rules.ignores_spawn(&frames);
    }
    if frames::names(ips).is_some_and(|names| rules.ignores_spawn(&names)) {
        return true;
    }
    (look == Look::Final || (look == Look::First && rules.has_line_rules()))
        && rules.ignores_spawn(&frames::resolve_spawn(ips))
}

/// What `target` runs now, from one final look without waiting: for the watchdog, when a
/// test cannot come back to be checked (`since`: when it got stuck). Tasks are those
/// leakcheck's hooks know, else the runtime's count of them; where they await is not
/// known (a dump runs inside the runtime, whose thread may be the stuck one).
pub(crate) fn found_now(
    target: Target,
    settings: &Settings,
    runtime: Option<&tokio::runtime::Handle>,
    since: Instant,
) -> Found {
    let rules = Rules::new(settings);
    let mut suspects = alive_threads(target, &rules, Look::Final);
    suspects.extend(alive_tasks(target, &rules, Look::Final));
    suspects.extend(alive_processes(
        target,
        &rules,
        Look::Final,
        Status::is_running,
    ));
    if !tasks::HOOKED {
        let count = runtime.map_or(0, |runtime| runtime.metrics().num_alive_tasks());
        if count > 0 {
            suspects.push(Suspect::UntrackedTasks(count));
        }
    }
    Found {
        target,
        suspects,
        waited: since.elapsed(),
        watched: Duration::ZERO,
        awaiting: Some(Err(
            "where it awaits is not known: the test's thread is stuck, so no task dump",
        )),
        earlier: Vec::new(),
        grace: settings.grace_period(),
    }
}

/// Says once per process what this build cannot check, the first time a check runs.
fn say_what_is_not_checked() {
    static SAID_PROCESSES: OnceLock<()> = OnceLock::new();
    if let Err(reason) = processes::tracking() {
        SAID_PROCESSES.get_or_init(|| eprintln!("leakcheck: {reason}"));
    }
    static SAID_PANICS: OnceLock<()> = OnceLock::new();
    if let Err(reason) = crate::panics::tracking() {
        SAID_PANICS.get_or_init(|| eprintln!("leakcheck: {reason}"));
    }
    static SAID: OnceLock<()> = OnceLock::new();
    if let Err(reason) = threads::tracking() {
        SAID.get_or_init(|| eprintln!("leakcheck: {reason}"));
    }
    static SAID_TASKS: OnceLock<()> = OnceLock::new();
    if let Some(reason) = tasks::unhooked_runtime_warning() {
        SAID_TASKS.get_or_init(|| eprintln!("leakcheck: {reason}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// The delays a check that never comes out clean sleeps, with `grace`.
    fn schedule(grace: Duration) -> Vec<Duration> {
        let mut backoff = Backoff::new(grace);
        let mut waited = Duration::ZERO;
        let mut delays = Vec::new();
        while let Some(delay) = backoff.next_delay(waited) {
            delays.push(delay);
            waited += delay;
        }
        delays
    }

    #[test]
    fn the_schedule_doubles_from_one_millisecond_up_to_the_cap_and_stops_at_grace() {
        let ms = Duration::from_millis;
        assert_eq!(
            schedule(ms(500)),
            [1, 2, 4, 8, 16, 32, 64, 100, 100, 100, 73].map(ms)
        );
        assert_eq!(schedule(ms(500)).iter().sum::<Duration>(), ms(500));
    }

    #[test]
    fn a_zero_grace_still_gets_the_minimum_number_of_looks() {
        // Three delays between four looks, each the shortest.
        assert_eq!(schedule(Duration::ZERO), [Duration::from_millis(1); 3]);
    }

    #[test]
    fn a_short_grace_is_not_overshot() {
        let ms = Duration::from_millis;
        assert_eq!(schedule(ms(5)), [1, 2, 2].map(ms));
    }

    /// [`retry`] on a clock that only sleeping moves: what it looked at and slept.
    fn retry_on_fake_clock(grace: Duration, clean_after: usize) -> (usize, Vec<Duration>, bool) {
        let start = Instant::now();
        let now = Cell::new(start);
        let looks = Cell::new(0);
        let slept = RefCell::new(Vec::new());
        let look = |_: Look| {
            looks.set(looks.get() + 1);
            if looks.get() > clean_after {
                Vec::new()
            } else {
                vec![Suspect::UntrackedTasks(1)]
            }
        };
        let sleep = |delay| {
            slept.borrow_mut().push(delay);
            now.set(now.get() + delay);
            std::future::ready(())
        };
        let clean = run_ready(retry(grace, || now.get(), look, sleep)).is_ok();
        (looks.get(), slept.into_inner(), clean)
    }

    #[test]
    fn a_clean_target_is_looked_at_once_and_never_waits() {
        assert_eq!(
            retry_on_fake_clock(Duration::from_millis(500), 0),
            (1, vec![], true)
        );
    }

    #[test]
    fn what_ends_during_the_grace_period_is_clean() {
        let (looks, slept, clean) = retry_on_fake_clock(Duration::from_millis(500), 3);
        assert!(clean);
        assert_eq!(looks, 4);
        assert_eq!(slept.len(), 3);
    }

    #[test]
    fn what_outlives_the_grace_period_gets_a_final_look() {
        let (looks, slept, clean) = retry_on_fake_clock(Duration::from_millis(500), usize::MAX);
        assert!(!clean);
        // One quick look per delay, the one that gave up, then the final look.
        assert_eq!(looks, slept.len() + 2);
        assert_eq!(slept.iter().sum::<Duration>(), Duration::from_millis(500));
    }
}
