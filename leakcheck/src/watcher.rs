//! A thread the user starts to watch a running service: a snapshot every interval, and an
//! alarm for a spawn site that grew in each of the last few intervals.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::snapshot::{Growth, Site, SiteGrowth, Snapshot};
use crate::threads;

#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "metrics")]
pub use metrics::SiteGauges;

type OnAlarm = Box<dyn FnMut(&Alarm) + Send>;

/// Watches the process's live threads and tasks from a thread of its own, and raises an
/// [`Alarm`] for a spawn site whose count grew in each of the last `alarm_after` intervals
/// (three by default): the shape of a leak in a running service. By default an alarm is
/// one line on stderr; [`Watcher::on_alarm`] sends it to your logger instead.
///
/// Each interval costs one [`Snapshot::take`]. The watcher keeps the last snapshot and, per
/// site, the last few counts: its memory follows the number of sites, not of tasks.
///
/// ```
/// use std::time::Duration;
///
/// let watcher = leakcheck::service::Watcher::every(Duration::from_secs(60))
///     .alarm_after(3)
///     .on_alarm(|alarm| eprintln!("{alarm}")) // or your logger's warn!
///     .start()
///     .expect("a thread for the watcher");
/// // ... the service runs ...
/// watcher.stop();
/// ```
pub struct Watcher {
    interval: Duration,
    alarm_after: usize,
    on_alarm: OnAlarm,
    #[cfg(feature = "metrics")]
    gauges: Option<SiteGauges>,
}

/// A running [`Watcher`]. Dropping it leaves the watcher running for the rest of the
/// process; [`WatcherHandle::stop`] stops it.
#[must_use = "dropping the handle leaves the watcher running; keep it to stop it"]
pub struct WatcherHandle {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

/// A spawn site that kept growing.
#[derive(Clone, Debug)]
pub struct Alarm {
    site: Site,
    counts: Vec<usize>,
    interval: Duration,
    survivors: usize,
    idle: usize,
}

impl Watcher {
    /// A watcher that takes a snapshot every `interval`.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    #[must_use]
    pub fn every(interval: Duration) -> Watcher {
        assert!(
            !interval.is_zero(),
            "leakcheck::service::Watcher::every: the interval must not be zero"
        );
        Watcher {
            interval,
            alarm_after: 3,
            on_alarm: Box::new(|alarm| eprintln!("{alarm}")),
            #[cfg(feature = "metrics")]
            gauges: None,
        }
    }

    /// Raises an alarm for a site that grew in each of the last `intervals` intervals (and
    /// again after each further `intervals` of growth).
    ///
    /// # Panics
    ///
    /// If `intervals` is zero.
    #[must_use]
    pub fn alarm_after(mut self, intervals: usize) -> Watcher {
        assert!(
            intervals > 0,
            "leakcheck::service::Watcher::alarm_after: the number of intervals must not be zero"
        );
        self.alarm_after = intervals;
        self
    }

    /// What to do with an alarm, on the watcher's thread. The default writes it to stderr.
    #[must_use]
    pub fn on_alarm(mut self, on_alarm: impl FnMut(&Alarm) + Send + 'static) -> Watcher {
        self.on_alarm = Box::new(on_alarm);
        self
    }

    /// Publishes every interval's snapshot as gauges through the `metrics` facade (feature
    /// `metrics`): per spawn site, the live tasks, threads and child processes, the oldest's
    /// age, how many were idle over the interval, zombies, and a counter of alarms; the
    /// `sites` biggest sites of each kind by their own label, the rest as `other` (see
    /// [`SiteGauges`]). To the recorder the program installed (Prometheus's exporter, say).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let watcher = leakcheck::service::Watcher::every(Duration::from_secs(15))
    ///     .publish_metrics(20)
    ///     .start()
    ///     .expect("a thread for the watcher");
    /// # watcher.stop();
    /// ```
    ///
    /// # Panics
    ///
    /// If `sites` is zero.
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn publish_metrics(mut self, sites: usize) -> Watcher {
        self.gauges = Some(SiteGauges::new(sites));
        self
    }

    /// Starts the watcher's thread, `leakcheck-watcher`, which snapshots leave out.
    ///
    /// # Errors
    ///
    /// If the thread cannot be spawned.
    pub fn start(self) -> std::io::Result<WatcherHandle> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = stop.clone();
        // Outside every scope: a watcher started inside a test is not that test's leak.
        let thread = threads::spawn_own("leakcheck-watcher", move || self.run(&stopped))?;
        Ok(WatcherHandle { stop, thread })
    }

    fn run(mut self, stop: &(Mutex<bool>, Condvar)) {
        let mut history = History::new(self.alarm_after);
        let mut last = Snapshot::take();
        #[cfg(feature = "metrics")]
        if let Some(gauges) = &mut self.gauges {
            gauges.publish(&last, &last.growth_since(&last));
        }
        loop {
            {
                let mut stopped = stop.0.lock();
                if !*stopped {
                    stop.1.wait_for(&mut stopped, self.interval);
                }
                if *stopped {
                    return;
                }
            }
            let now = Snapshot::take();
            let growth = now.growth_since(&last);
            #[cfg(feature = "metrics")]
            if let Some(gauges) = &mut self.gauges {
                gauges.publish(&now, &growth);
            }
            for alarm in history.record(&growth, self.interval) {
                #[cfg(feature = "metrics")]
                if let Some(gauges) = &self.gauges {
                    gauges.alarm(&alarm);
                }
                (self.on_alarm)(&alarm);
            }
            last = now;
        }
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("interval", &self.interval)
            .field("alarm_after", &self.alarm_after)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WatcherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatcherHandle")
            .field("thread", &self.thread.thread().name())
            .field("stopped", &*self.stop.0.lock())
            .finish()
    }
}

impl WatcherHandle {
    /// Stops the watcher and waits for its thread to end (at most one snapshot's time).
    pub fn stop(self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

/// Per site that is growing: its last counts, newest last, and how many intervals in a
/// row it grew.
struct History {
    alarm_after: usize,
    sites: HashMap<String, Streak>,
}

#[derive(Default)]
struct Streak {
    /// At most `alarm_after + 1`: what an alarm shows.
    counts: std::collections::VecDeque<usize>,
    grown: usize,
}

impl History {
    fn new(alarm_after: usize) -> History {
        History {
            alarm_after,
            sites: HashMap::new(),
        }
    }

    /// Adds one interval's growth; returns the alarms it raises, for a site that has now
    /// grown `alarm_after` intervals in a row (and each further `alarm_after`). A site that
    /// did not grow starts over; a site that is gone is forgotten.
    fn record(&mut self, growth: &Growth, interval: Duration) -> Vec<Alarm> {
        let mut alarms = Vec::new();
        let mut sites = HashMap::new();
        for site in growth.growing() {
            let key = site.site().key();
            let mut streak = self.sites.remove(&key).unwrap_or_default();
            if streak.counts.is_empty() {
                streak.counts.push_back(site.then());
            }
            streak.counts.push_back(site.now());
            if streak.counts.len() > self.alarm_after + 1 {
                streak.counts.pop_front();
            }
            streak.grown += 1;
            if streak.grown % self.alarm_after == 0 {
                alarms.push(Alarm::of(
                    site,
                    streak.counts.iter().copied().collect(),
                    interval,
                ));
            }
            sites.insert(key, streak);
        }
        self.sites = sites;
        alarms
    }
}

impl Alarm {
    fn of(site: &SiteGrowth, counts: Vec<usize>, interval: Duration) -> Alarm {
        Alarm {
            site: site.site().clone(),
            counts,
            interval,
            survivors: site.survivors(),
            idle: site.idle(),
        }
    }

    /// The site that keeps growing.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The counts over the intervals that raised the alarm, oldest first: one more than
    /// the intervals, each larger than the one before.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Of those alive now, how many were alive an interval ago.
    pub fn survivors(&self) -> usize {
        self.survivors
    }

    /// Of the [`survivors`](Alarm::survivors), how many did not run at all since: stuck.
    pub fn idle(&self) -> usize {
        self.idle
    }
}

impl std::fmt::Display for Alarm {
    /// `leakcheck: tasks spawned at src/main.rs:61:9 keep growing: 10 -> 20 -> 30 -> 40
    /// over 3 intervals of 1.00s; 30 of the 30 alive an interval ago did not run since`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<String> = self.counts.iter().map(usize::to_string).collect();
        let intervals = self.counts.len() - 1;
        write!(
            f,
            "leakcheck: {} keep growing: {} over {intervals} interval{} of {}",
            self.site,
            counts.join(" -> "),
            if intervals == 1 { "" } else { "s" },
            crate::snapshot::human(self.interval)
        )?;
        if self.survivors > 0 {
            write!(
                f,
                "; {} of the {} alive an interval ago did not run since",
                self.idle, self.survivors
            )?;
        }
        if let Some(parent) = self.site.parent() {
            let parent = crate::snapshot::place(parent);
            write!(f, "; spawned by code spawned at {parent}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
