//! What a dashboard shows: the live threads, tasks and child processes of each spawn site,
//! as gauges through the `metrics` facade (the recorder the service installed: Prometheus's
//! exporter, StatsD, ...), beside the runtime-wide totals tokio-metrics publishes the same
//! way.
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `leakcheck_live_tasks` | `site` | live tasks spawned at the site |
//! | `leakcheck_live_threads` | `site` | live threads spawned there (or, with no frame of the program's, named so) |
//! | `leakcheck_live_processes` | `site` | live child processes started there |
//! | `leakcheck_zombie_processes` | `site` | children started there that exited and were never waited for |
//! | `leakcheck_oldest_seconds` | `kind`, `site` | age of the site's oldest member |
//! | `leakcheck_idle` | `kind`, `site` | of those alive now and an interval ago, how many did not run in between |
//! | `leakcheck_alarms_total` | `kind`, `site` | the watcher's alarms for the site (a counter) |
//!
//! Label sets stay bounded, now and over the service's life (an exporter keeps every series
//! it was ever given, and the `metrics` facade cannot remove one): per kind, the biggest
//! sites (20 by default) by their own label, the rest summed under `site="other"`; a site
//! that is no longer published goes to zero; and over the whole life at most twice that
//! many values of `site` are ever given a series of their own, a new site beyond them
//! joining `other`. `site` is the spawn line, `src/main.rs:61:9`; a thread with no frame of
//! the program's on its spawn path is labelled by its names, each run of digits read as
//! `*` (`names:tokio-rt-worker`, `names:conn-*` for `conn-1234`), a child no hook saw start
//! `unseen`. Published on the watcher's interval, never on a spawn path.
//!
//! The leaking line, in PromQL: the site whose count climbs steadily, and whose members
//! are old and idle:
//!
//! ```text
//! topk(5, deriv(leakcheck_live_tasks{site!="other"}[10m]) > 0)
//! ```

use std::collections::{HashMap, HashSet};

use metrics::Label;

use crate::report::ThreadState;
use crate::snapshot::{Growth, Site, SiteKind, Snapshot};

use super::Alarm;

/// How many sites of each kind get a label of their own, by default.
pub(super) const DEFAULT_SITES: usize = 20;

/// The label of the sites beyond the biggest.
const OTHER: &str = "other";

/// How many values of `site` a kind may ever have, per site shown at once: room for the
/// biggest sites to change over a service's life, and a bound on the series it leaves.
const LIFETIME_LABELS_PER_SITE: usize = 2;

/// Publishes a [`Snapshot`]'s spawn sites as gauges through the `metrics` facade (feature
/// `metrics`). [`Watcher::publish_metrics`](crate::service::Watcher::publish_metrics) does it on
/// every interval; a service that takes its own snapshots can call
/// [`SiteGauges::publish`]. The metrics, their labels and the PromQL that finds a leaking
/// line are in the README's "Watching a running service".
///
/// ```
/// let mut gauges = leakcheck::service::SiteGauges::new(20);
/// let before = leakcheck::service::Snapshot::take();
/// let now = leakcheck::service::Snapshot::take();
/// gauges.publish(&now, &now.growth_since(&before)); // to the installed recorder, if any
/// ```
#[derive(Debug)]
pub struct SiteGauges {
    sites: usize,
    /// Every value of `site` given a series of its own so far, by kind: at most
    /// `sites * LIFETIME_LABELS_PER_SITE` of each.
    labelled: HashMap<SiteKind, HashSet<String>>,
    /// What the last publish set, by metric name and labels: what goes to zero when it is
    /// not published again.
    published: HashSet<(&'static str, Vec<Label>)>,
}

/// What one label of one kind adds up to.
#[derive(Default)]
struct Sum {
    live: usize,
    zombies: usize,
    idle: usize,
    oldest: Option<f64>,
}

impl SiteGauges {
    /// Gauges for the `sites` biggest sites of each kind, the rest under `site="other"`.
    ///
    /// # Panics
    ///
    /// If `sites` is zero.
    pub fn new(sites: usize) -> SiteGauges {
        assert!(
            sites > 0,
            "leakcheck::service::SiteGauges::new: sites must not be zero"
        );
        describe();
        SiteGauges {
            sites,
            labelled: HashMap::new(),
            published: HashSet::new(),
        }
    }

    /// Sets the gauges from `snapshot`, with the idle counts of `growth` (the change from
    /// the previous snapshot); a site published before and not now goes to zero.
    pub fn publish(&mut self, snapshot: &Snapshot, growth: &Growth) {
        let idle: HashMap<String, usize> = growth
            .sites()
            .iter()
            .map(|site| (site.site().key(), site.idle()))
            .collect();
        let mut published = HashSet::new();
        for kind in [SiteKind::Tasks, SiteKind::Threads, SiteKind::Processes] {
            let mut sums: HashMap<String, Sum> = HashMap::new();
            for group in snapshot.groups() {
                let site = group.site();
                if site.kind() != kind {
                    continue;
                }
                let sum = sums.entry(label(site)).or_default();
                sum.live += group.count();
                sum.idle += idle.get(&site.key()).copied().unwrap_or(0);
                sum.zombies += group
                    .states()
                    .iter()
                    .filter(|waiting| waiting.state() == Some(ThreadState::Zombie))
                    .map(|waiting| waiting.count())
                    .sum::<usize>();
                let oldest = group.oldest().map(|age| age.as_secs_f64());
                sum.oldest = older(sum.oldest, oldest);
            }
            for (label, sum) in self.bounded(kind, sums) {
                self.set(kind, label, &sum, &mut published);
            }
        }
        for (name, labels) in self.published.difference(&published) {
            metrics::gauge!(*name, labels.clone()).set(0.0);
        }
        self.published = published;
    }

    /// The biggest sites by their own label, as long as the kind's labels over its life
    /// stay within their bound; the rest summed as `other`.
    fn bounded(&mut self, kind: SiteKind, sums: HashMap<String, Sum>) -> Vec<(String, Sum)> {
        let mut sums: Vec<(String, Sum)> = sums.into_iter().collect();
        sums.sort_by(|a, b| b.1.live.cmp(&a.1.live).then_with(|| a.0.cmp(&b.0)));
        let lifetime = self.sites.saturating_mul(LIFETIME_LABELS_PER_SITE);
        let labelled = self.labelled.entry(kind).or_default();
        let mut own = Vec::new();
        let mut other: Option<Sum> = None;
        for (label, sum) in sums {
            let shown =
                own.len() < self.sites && (labelled.contains(&label) || labelled.len() < lifetime);
            if shown {
                labelled.insert(label.clone());
                own.push((label, sum));
            } else {
                let other = other.get_or_insert_with(Sum::default);
                other.live += sum.live;
                other.zombies += sum.zombies;
                other.idle += sum.idle;
                other.oldest = older(other.oldest, sum.oldest);
            }
        }
        own.extend(other.map(|other| (OTHER.to_owned(), other)));
        own
    }

    fn set(
        &self,
        kind: SiteKind,
        site: String,
        sum: &Sum,
        published: &mut HashSet<(&'static str, Vec<Label>)>,
    ) {
        let (live, noun) = match kind {
            SiteKind::Tasks => ("leakcheck_live_tasks", "task"),
            SiteKind::Threads => ("leakcheck_live_threads", "thread"),
            SiteKind::Processes => ("leakcheck_live_processes", "process"),
        };
        let by_site = vec![Label::new("site", site.clone())];
        let by_kind = vec![Label::new("kind", noun), Label::new("site", site)];
        let mut gauge = |name: &'static str, labels: &Vec<Label>, value: f64| {
            metrics::gauge!(name, labels.clone()).set(value);
            published.insert((name, labels.clone()));
        };
        gauge(live, &by_site, sum.live as f64);
        gauge("leakcheck_idle", &by_kind, sum.idle as f64);
        if let Some(oldest) = sum.oldest {
            gauge("leakcheck_oldest_seconds", &by_kind, oldest);
        }
        if kind == SiteKind::Processes {
            gauge("leakcheck_zombie_processes", &by_site, sum.zombies as f64);
        }
    }

    /// Counts an alarm of the watcher's, under its site's label if that site has a series of
    /// its own, else under `other`.
    pub(super) fn alarm(&self, alarm: &Alarm) {
        let kind = match alarm.site().kind() {
            SiteKind::Tasks => "task",
            SiteKind::Threads => "thread",
            SiteKind::Processes => "process",
        };
        let site = label(alarm.site());
        let site = if self
            .labelled
            .get(&alarm.site().kind())
            .is_some_and(|labelled| labelled.contains(&site))
        {
            site
        } else {
            OTHER.to_owned()
        };
        metrics::counter!("leakcheck_alarms_total", "kind" => kind, "site" => site).increment(1);
    }
}

impl Default for SiteGauges {
    /// Gauges for the 20 biggest sites of each kind.
    fn default() -> SiteGauges {
        SiteGauges::new(DEFAULT_SITES)
    }
}

/// The older of two ages.
fn older(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A site's label: its spawn line, else its names (each run of digits as `*`: a name that
/// carries an id, `conn-1234`, is one label), else `unseen`.
fn label(site: &Site) -> String {
    match site.spawned_at() {
        Some(frame) => frame
            .location()
            .or_else(|| frame.function().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned()),
        None if site.names().is_empty() => "unseen".to_owned(),
        None => {
            let mut names: Vec<String> =
                site.names().iter().map(|name| without_ids(name)).collect();
            names.sort();
            names.dedup();
            format!("names:{}", names.join(","))
        }
    }
}

/// `name` with each run of digits as `*`: `conn-1234` is `conn-*`.
pub(super) fn without_ids(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('*') {
                out.push('*');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What each metric is, for the recorder (Prometheus's `# HELP` lines).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_gauge!(
        "leakcheck_live_tasks",
        Unit::Count,
        "Live tokio tasks, by the line that spawned them (leakcheck)"
    );
    describe_gauge!(
        "leakcheck_live_threads",
        Unit::Count,
        "Live threads, by the line that spawned them (leakcheck)"
    );
    describe_gauge!(
        "leakcheck_live_processes",
        Unit::Count,
        "Live child processes, by the line that started them (leakcheck)"
    );
    describe_gauge!(
        "leakcheck_zombie_processes",
        Unit::Count,
        "Children that exited and were never waited for, by the line that started them"
    );
    describe_gauge!(
        "leakcheck_oldest_seconds",
        Unit::Seconds,
        "Age of the oldest live member of a spawn site"
    );
    describe_gauge!(
        "leakcheck_idle",
        Unit::Count,
        "Members of a spawn site alive an interval ago and now that did not run in between"
    );
    describe_counter!(
        "leakcheck_alarms_total",
        Unit::Count,
        "Alarms of leakcheck's watcher: a spawn site that grew interval after interval"
    );
}
