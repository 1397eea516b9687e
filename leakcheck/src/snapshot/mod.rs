//! What a running process has alive now, grouped by where it was spawned: the answer to
//! "why does this service have 40,000 tasks?" without a debugger.
//!
//! [`Snapshot::take`] reads what the spawn hooks already keep (every live thread, and every
//! live task of a runtime built with [`with_leakcheck`](crate::TokioBuilderExt::with_leakcheck)
//! under `--cfg tokio_unstable`) and groups it by spawn site and the site of the task or
//! thread that spawned it. Print it (`Display`: biggest groups first, bounded), serve it as
//! JSON ([`Snapshot::to_json`]), or compare two ([`Snapshot::growth_since`]); the
//! [`Watcher`](crate::service::Watcher) does the comparing for you, periodically. The cost and the
//! JSON schema are in [`Snapshot`]'s docs.

mod growth;
mod json;
mod site;
mod text;

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::{self, Tick};
use crate::frames::{self, Frame};
use crate::processes::{self, Status, Unrecorded};
use crate::registry::{self, ThreadOrigin};
use crate::report::ThreadState;
use crate::scope::TaskRef;
use crate::threads;

pub use growth::{Growth, SiteGrowth};
pub(crate) use site::place;
pub use site::{Site, SiteKind};
pub(crate) use text::human;

/// Every live thread, task and child process of the process, grouped by spawn site.
///
/// # Cost
///
/// Nothing while nobody asks: the hooks record a spawn time they keep in room the task's
/// record already had. A snapshot visits the task table one shard at a time (a shard is
/// locked while its own tasks are read, never the whole table), resolves each distinct
/// thread spawn site once (a thread's spawn stack is unwound then, and kept unwound), and
/// reads a few `/proc` files per live thread.
///
/// # JSON (`schema_version` 1)
///
/// ```text
/// { "schema_version": 1,
///   "uptime_ms": 133000,            // since leakcheck's clock started (process start)
///   "threads": 7,                   // live threads, leakcheck's own left out
///   "tasks": 1200,                  // live tasks on hooked runtimes; null if not tracked
///   "tasks_not_tracked": null,      // why tasks are not tracked on this build, if so
///   "processes": 1,                 // live child processes (and orphans of them)
///   "groups": [                     // biggest first
///     { "kind": "task",             // or "thread", "process"
///       "count": 1150,
///       "site":   { "function": null, "file": "src/main.rs", "line": 61, "column": 9 },
///       "parent": { ... } | null,   // where the spawning task (or thread) was spawned
///       "oldest_ms": 130000, "newest_ms": 200,   // ages; null where unknown
///       "never_woken": 1150,        // tasks: polled once at most since spawned
///       "names": ["worker"],        // threads: names; processes: command lines; at most 8
///       "states": [["sleeping in futex_wait_queue", 12]]   // threads: where they wait
///     } ] }
/// ```
///
/// ```
/// let worker = std::thread::spawn(|| std::thread::park());
/// let snapshot = leakcheck::service::Snapshot::take();
/// assert!(snapshot.threads() >= 1);
/// println!("{snapshot}"); // biggest groups first
/// let json = snapshot.to_json(); // for a debug endpoint
/// assert!(json.contains("\"schema_version\":1"));
/// # worker.thread().unpark();
/// # worker.join().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Snapshot {
    uptime: Duration,
    threads: usize,
    tasks: Option<usize>,
    tasks_not_tracked: Option<&'static str>,
    processes: usize,
    groups: Vec<SiteGroup>,
}

/// The live threads or tasks spawned at one [`Site`].
#[derive(Clone, Debug)]
pub struct SiteGroup {
    site: Site,
    count: usize,
    oldest: Option<Duration>,
    newest: Option<Duration>,
    never_woken: Option<usize>,
    states: Vec<WaitingThreads>,
    /// Who is in it and how far each has run: what [`Snapshot::growth_since`] compares.
    members: Vec<Member>,
}

/// One thread or task of a group, and a counter that moves when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Member {
    id: MemberId,
    /// Polls of a task; wake-ups plus CPU milliseconds of a thread.
    ran: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum MemberId {
    /// A thread the hook saw start, by its record's key: never reused, unlike a tid.
    Thread(u64),
    /// A thread the hook did not see start, by its tid.
    Unseen(i32),
    Task(tokio::task::Id),
    /// A child process, by its pid and start time (pids are reused).
    Process(i32, u64),
}

impl Snapshot {
    /// Looks at every live thread and task now. Call it from any thread, at any time: it
    /// does not stop a runtime (see [`Snapshot`], "Cost").
    ///
    /// Threads are seen where the spawn hook runs (Linux); elsewhere only their count is
    /// known. Tasks are seen on runtimes built with
    /// [`with_leakcheck`](crate::TokioBuilderExt::with_leakcheck) under
    /// `--cfg tokio_unstable`; [`Snapshot::tasks`] is `None` otherwise.
    ///
    /// ```
    /// let snapshot = leakcheck::service::Snapshot::take();
    /// for group in snapshot.groups() {
    ///     println!("{} {}", group.count(), group.site()); // `3 threads spawned at src/pool.rs:12:9`
    /// }
    /// ```
    pub fn take() -> Snapshot {
        processes::look_at_ended_scopes();
        registry::forget_finished_scopes();
        registry::give_back_room();
        let mut groups = thread_groups();
        let (tasks, tasks_not_tracked) = match tasks_not_tracked() {
            Some(why) => (None, Some(why)),
            None => {
                let task_groups = task_groups();
                let count = task_groups.iter().map(|group| group.count).sum();
                groups.extend(task_groups);
                (Some(count), None)
            }
        };
        let process_groups = process_groups();
        let processes = process_groups.iter().map(|group| group.count).sum();
        groups.extend(process_groups);
        let threads = groups
            .iter()
            .filter(|group| group.site.kind() == SiteKind::Threads)
            .map(|group| group.count)
            .sum();
        groups.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.site.key().cmp(&b.site.key()))
        });
        Snapshot {
            uptime: clock::uptime(),
            threads,
            tasks,
            tasks_not_tracked,
            processes,
            groups,
        }
    }

    /// Live child processes the hooks recorded (and orphans of them, found by their
    /// marker), and children no hook saw start; 0 where processes are not tracked.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Live threads, leakcheck's own left out.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Live tasks on runtimes with leakcheck's hooks, or `None` where tasks are not tracked
    /// (without `--cfg tokio_unstable`).
    pub fn tasks(&self) -> Option<usize> {
        self.tasks
    }

    /// The groups, biggest first.
    pub fn groups(&self) -> &[SiteGroup] {
        &self.groups
    }

    /// How long after the process started this was taken.
    pub fn uptime(&self) -> Duration {
        self.uptime
    }

    /// Per spawn site, how many then (in `earlier`) and now, and how many of those alive
    /// both times did not run in between: the comparison that finds a site that only
    /// grows.
    ///
    /// ```
    /// let before = leakcheck::service::Snapshot::take();
    /// let worker = std::thread::spawn(|| std::thread::park());
    /// let after = leakcheck::service::Snapshot::take();
    /// let growth = after.growth_since(&before);
    /// assert!(growth.growing().count() >= 1);
    /// # worker.thread().unpark();
    /// # worker.join().unwrap();
    /// ```
    pub fn growth_since(&self, earlier: &Snapshot) -> Growth {
        growth::between(earlier, self)
    }
}

impl SiteGroup {
    /// Where they were spawned, by whom, and what they are.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// How many are alive.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The age of the oldest, if known.
    pub fn oldest(&self) -> Option<Duration> {
        self.oldest
    }

    /// The age of the newest, if known.
    pub fn newest(&self) -> Option<Duration> {
        self.newest
    }

    /// Tasks: how many have not been woken since their first poll, the shape of a task
    /// waiting for something that never comes. `None` for threads.
    pub fn never_woken(&self) -> Option<usize> {
        self.never_woken
    }

    /// Threads: where they wait now and how many wait there (`12 sleeping in
    /// futex_wait_queue`), most first.
    pub fn states(&self) -> &[WaitingThreads] {
        &self.states
    }
}

/// Where some threads of a group wait now, and how many: their state and the kernel
/// function they sleep in (not a call's arguments, which differ between threads waiting on
/// different locks of the same kind). `Display`: `sleeping in futex_wait_queue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingThreads {
    /// `None`: exited while the snapshot was taken.
    state: Option<ThreadState>,
    wchan: Option<String>,
    count: usize,
}

impl WaitingThreads {
    /// Their state; `None` for threads that exited while the snapshot was taken.
    pub fn state(&self) -> Option<ThreadState> {
        self.state
    }

    /// The kernel function they sleep in, when the kernel tells.
    pub fn wchan(&self) -> Option<&str> {
        self.wchan.as_deref()
    }

    /// How many wait there.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// `running`, `sleeping in futex_wait_queue`, `exited`.
impl std::fmt::Display for WaitingThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.state, &self.wchan) {
            (None, _) => f.write_str("exited"),
            (Some(ThreadState::Running), _) => f.write_str("running"),
            (Some(state), Some(wchan)) => write!(f, "{state} in {wchan}"),
            (Some(state), None) => write!(f, "{state}"),
        }
    }
}

/// Why tasks are not in snapshots on this build, if they are not.
fn tasks_not_tracked() -> Option<&'static str> {
    if !crate::tasks::HOOKED {
        return Some(
            "tasks are not tracked: tokio's task hooks need --cfg tokio_unstable (and a \
             runtime built with with_leakcheck())",
        );
    }
    None
}

/// A group being gathered.
struct Gathering {
    site: Site,
    spawned: Vec<Tick>,
    never_woken: usize,
    states: HashMap<(Option<ThreadState>, Option<String>), usize>,
    members: Vec<Member>,
}

impl Gathering {
    fn new(site: Site) -> Gathering {
        Gathering {
            site,
            spawned: Vec::new(),
            never_woken: 0,
            states: HashMap::new(),
            members: Vec::new(),
        }
    }

    fn finish(self, uptime: Duration) -> SiteGroup {
        let age = |tick: Option<&Tick>| tick.map(|&tick| clock::age(tick, uptime));
        let mut states: Vec<WaitingThreads> = self
            .states
            .into_iter()
            .map(|((state, wchan), count)| WaitingThreads {
                state,
                wchan,
                count,
            })
            .collect();
        states.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.to_string().cmp(&b.to_string()))
        });
        SiteGroup {
            count: self.members.len(),
            oldest: age(self.spawned.iter().min()),
            newest: age(self.spawned.iter().max()),
            never_woken: (self.site.kind() == SiteKind::Tasks).then_some(self.never_woken),
            states,
            members: self.members,
            site: self.site,
        }
    }
}

/// Tasks, grouped by the two spawn locations tokio recorded (theirs and their parent's):
/// pointers to static locations, so grouping costs a hash of two words a task.
fn task_groups() -> Vec<SiteGroup> {
    type Place = &'static std::panic::Location<'static>;
    let mut gathering: HashMap<(Place, Option<Place>), Gathering> = HashMap::new();
    registry::visit_tasks(|id, origin| {
        let parent = origin.parent.map(|TaskRef { spawned_at, .. }| spawned_at);
        let group = gathering
            .entry((origin.spawned_at, parent))
            .or_insert_with(|| {
                Gathering::new(Site::new(
                    SiteKind::Tasks,
                    Some(frames::location_frame(origin.spawned_at, None)),
                    parent.map(|parent| frames::location_frame(parent, None)),
                ))
            });
        group.spawned.push(origin.spawned);
        group.never_woken += usize::from(origin.polls <= 1);
        group.members.push(Member {
            id: MemberId::Task(id),
            ran: u64::from(origin.polls),
        });
    });
    let uptime = clock::uptime();
    gathering
        .into_values()
        .map(|group| group.finish(uptime))
        .collect()
}

/// Threads: those the hook saw start, by spawn site (each distinct spawn path resolved
/// once) and their spawner's site; the others by name.
fn thread_groups() -> Vec<SiteGroup> {
    let origins: Vec<_> = registry::all_threads()
        .into_iter()
        .filter(|origin| {
            origin
                .tid()
                .is_some_and(|tid| !registry::is_own_thread(tid))
        })
        .collect();
    let mut sites: HashMap<Vec<usize>, Option<Frame>> = HashMap::new();
    let mut site_of = |ips: &[usize]| {
        sites
            .entry(ips.to_vec())
            .or_insert_with(|| {
                let user = frames::user_frames(&frames::resolve(ips));
                frames::spawn_site(&user).cloned()
            })
            .clone()
    };
    let mut gathering: HashMap<String, Gathering> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for origin in &origins {
        let Some(tid) = origin.tid() else { continue };
        seen.insert(tid);
        let site = site_of(origin.spawn.unwind());
        let parent = parent_site(origin, &mut site_of);
        let name = threads::name_of(Some(tid), Some(origin));
        let mut site = Site::new(SiteKind::Threads, site, parent);
        // Spawned by machinery alone (a runtime's blocking pool, say): told apart by name.
        if site.spawned_at().is_none() {
            site.add_name(name.clone());
        }
        let group = gathering
            .entry(site.key())
            .or_insert_with(|| Gathering::new(site));
        group.spawned.push(origin.spawned);
        add_thread(group, tid, MemberId::Thread(origin.key), name);
    }
    // The main thread, and threads the hook did not see start: by name.
    for tid in threads::list().unwrap_or_default() {
        if seen.contains(&tid) || registry::is_own_thread(tid) {
            continue;
        }
        let name = threads::name_of(Some(tid), None);
        let mut site = Site::unseen();
        site.add_name(name.clone());
        let group = gathering
            .entry(site.key())
            .or_insert_with(|| Gathering::new(site));
        add_thread(group, tid, MemberId::Unseen(tid), name);
    }
    let uptime = clock::uptime();
    gathering
        .into_values()
        .map(|group| group.finish(uptime))
        .collect()
}

/// Child processes, by spawn site and their spawner's site; those no hook saw start, by
/// command line.
fn process_groups() -> Vec<SiteGroup> {
    let records = registry::all_processes();
    let mut gathering: HashMap<String, Gathering> = HashMap::new();
    for child in processes::survey(&records, Unrecorded::OfTheProcess) {
        let origin = child.origin.as_deref();
        let site = origin.and_then(|origin| {
            let user = frames::user_frames(&frames::resolve(origin.spawn.unwind()));
            frames::spawn_site(&user).cloned()
        });
        let parent = origin.and_then(|origin| match origin.spawning_task {
            Some(task) => Some(frames::location_frame(task.spawned_at, None)),
            None => origin.spawner.as_ref().and_then(|spawner| {
                let user = frames::user_frames(&frames::resolve(spawner.spawn.unwind()));
                frames::spawn_site(&user).cloned()
            }),
        });
        let command =
            processes::command_now(child.pid).or_else(|| processes::command_as_started(origin?));
        let mut site = match origin {
            Some(_) => Site::new(SiteKind::Processes, site, parent),
            None => Site::unseen_process(),
        };
        if site.spawned_at().is_none() {
            site.add_name(command.clone());
        }
        let group = gathering
            .entry(site.key())
            .or_insert_with(|| Gathering::new(site));
        group.site.add_name(command);
        if let Some(origin) = origin {
            group.spawned.push(origin.spawned);
        }
        let waits = if child.status == Status::Zombie {
            (Some(ThreadState::Zombie), None)
        } else {
            processes::os_state(child.pid).map_or((None, None), |os| {
                let wchan = (os.state() != ThreadState::Running)
                    .then(|| os.wchan().map(str::to_owned))
                    .flatten();
                (Some(os.state()), wchan)
            })
        };
        *group.states.entry(waits).or_default() += 1;
        group.members.push(Member {
            id: MemberId::Process(child.pid, child.start_time),
            ran: 0,
        });
    }
    let uptime = clock::uptime();
    gathering
        .into_values()
        .map(|group| group.finish(uptime))
        .collect()
}

/// Where the spawner of a thread was spawned: the task that spawned it, else its parent
/// thread's spawn site.
fn parent_site(
    origin: &ThreadOrigin,
    site_of: &mut impl FnMut(&[usize]) -> Option<Frame>,
) -> Option<Frame> {
    if let Some(task) = origin.spawning_task {
        return Some(frames::location_frame(task.spawned_at, None));
    }
    site_of(origin.parent()?.spawn.unwind())
}

fn add_thread(group: &mut Gathering, tid: i32, id: MemberId, name: Option<String>) {
    group.site.add_name(name);
    let waits = threads::os_state(tid).map_or((None, None), |thread| {
        let state = thread.os.state();
        // Running has no wait channel worth grouping by.
        let wchan = (state != ThreadState::Running)
            .then(|| thread.os.wchan().map(str::to_owned))
            .flatten();
        (Some(state), wchan)
    });
    *group.states.entry(waits).or_default() += 1;
    let ran = threads::counters(tid).map_or(0, |counters| {
        counters.wakeups + u64::try_from(counters.cpu.as_millis()).unwrap_or(u64::MAX)
    });
    group.members.push(Member { id, ran });
}

#[cfg(test)]
mod tests;
