//! leakcheck's one thread of its own: it ends a test that cannot be returned from, so that
//! leakcheck is never the reason a suite hangs. Two deadlines use it:
//!
//! - a test's task check, which runs inside the test's runtime: on a current_thread runtime
//!   a task that blocks in a call that never returns blocks the test's own thread, and the
//!   check with it. Anything still running after the body returned is a leak, so the check
//!   must end in bounded time: grace plus [`STALL_MARGIN`];
//! - a test's opt-in `timeout`: a body that has not returned by then.
//!
//! When a deadline passes, the watchdog reports everything the test's scope runs, the
//! test's own thread first with its current stack, writes the JSON record and ends the
//! process (`outcome::end_process`), as `go test -timeout` does. A disarmed deadline costs a
//! lock and a condvar notification; the thread starts with the first deadline and waits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::Settings;
use crate::describe;
use crate::outcome::{self, Check};
use crate::report::Ending;
use crate::scope::ScopeId;
use crate::threads;
use crate::verify::{self, Target};

/// Beyond the grace period, what a task check may take before it counts as stuck: the task
/// dump's own 2 s limit and more, so that a slow but working check is never cut short.
pub(crate) const STALL_MARGIN: Duration = Duration::from_secs(4);

/// A test that may get stuck: what to report if it does.
pub(crate) struct Watch {
    pub(crate) scope: ScopeId,
    pub(crate) test: String,
    /// The test's own thread.
    pub(crate) tid: i32,
    pub(crate) settings: Settings,
    /// The test's runtime, whose live tasks are counted on a build without task hooks.
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    /// Whether the test passed on its own, as far as is known when the deadline is armed.
    pub(crate) test_passed: bool,
    /// What the deadline stands for.
    pub(crate) ending: Ending,
    /// Since when the test has been stuck: the body's end for a stalled check, its start
    /// for a timeout.
    pub(crate) since: Instant,
}

/// An armed deadline; dropping it disarms it.
#[must_use = "dropping the deadline disarms it"]
pub(crate) struct Deadline(u64);

impl Drop for Deadline {
    fn drop(&mut self) {
        // No wake-up: the watchdog finds the deadline gone when it next looks.
        DEADLINES.lock().pending.remove(&self.0);
    }
}

#[derive(Default)]
struct Deadlines {
    pending: BTreeMap<u64, (Instant, Watch)>,
    /// When the watchdog looks next; `None` while it waits for a deadline. A deadline due
    /// later needs no wake-up, so a test that arms and disarms one costs no context switch.
    next_look: Option<Instant>,
}

static DEADLINES: LazyLock<Mutex<Deadlines>> = LazyLock::new(Default::default);
static RUNG: Condvar = Condvar::new();

/// Arms a deadline that ends the process with `watch`'s report unless dropped within `after`.
pub(crate) fn arm(after: Duration, watch: Watch) -> Deadline {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    start_the_thread();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + after;
    let mut deadlines = DEADLINES.lock();
    deadlines.pending.insert(id, (deadline, watch));
    if deadlines
        .next_look
        .is_none_or(|next_look| deadline < next_look)
    {
        RUNG.notify_one();
    }
    Deadline(id)
}

/// Starts the watchdog once, outside every scope: it belongs to no test.
fn start_the_thread() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let started = threads::spawn_own("leakcheck-watchdog", watch_over_deadlines);
        match started {
            Ok(_) => {}
            Err(error) => {
                eprintln!(
                    "leakcheck: the watchdog thread did not start ({error}): a stuck test hangs"
                );
            }
        }
    });
}

fn watch_over_deadlines() {
    let mut deadlines = DEADLINES.lock();
    loop {
        let next = deadlines
            .pending
            .iter()
            .map(|(&id, (deadline, _))| (*deadline, id))
            .min();
        deadlines.next_look = next.map(|(deadline, _)| deadline);
        match next {
            None => RUNG.wait(&mut deadlines),
            Some((deadline, id)) if deadline <= Instant::now() => {
                let (_, watch) = deadlines
                    .pending
                    .remove(&id)
                    .expect("the deadline was just seen");
                drop(deadlines);
                end_the_stuck_test(watch);
            }
            Some((deadline, _)) => {
                RUNG.wait_until(&mut deadlines, deadline);
            }
        }
    }
}

/// Reports what the stuck test's scope runs and ends the process.
fn end_the_stuck_test(watch: Watch) -> ! {
    let found = verify::found_now(
        Target::Scope(watch.scope),
        &watch.settings,
        watch.runtime.as_ref(),
        watch.since,
    );
    let report = describe::stuck_test(found, watch.tid, watch.ending);
    outcome::end_process(
        Check::Test {
            name: &watch.test,
            passed: watch.test_passed,
        },
        report,
    )
}
