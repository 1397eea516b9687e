//! The one retry loop: look at what the target owns that is still alive, drop what the
//! rules ignore, and if anything is left, back off and look again until the grace period
//! is spent. A clean target returns after the first look, without sleeping or reading
//! `/proc` for anything but its own threads.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::config::Options;
use crate::filter::Rules;
use crate::registry::{self, ThreadOrigin};
use crate::report::{Identity, Leak, Report, Subject};
use crate::scope::{PROCESS, ScopeId};
use crate::{frames, threads};

/// Even when the grace period is spent (or zero), look this many times: on a loaded CI
/// machine a thread that is exiting may not have been scheduled yet.
const MIN_ATTEMPTS: u32 = 4;
const FIRST_DELAY: Duration = Duration::from_millis(1);
const MAX_DELAY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    Scope(ScopeId),
    /// Every thread of the process but the caller and those alive at start-up.
    Process,
}

/// A thread found alive and not ignored.
struct Suspect {
    tid: Option<i32>,
    origin: Option<Arc<ThreadOrigin>>,
}

pub(crate) fn find(target: Target, options: &Options) -> Result<(), Report> {
    if let Err(reason) = threads::tracking() {
        say_once(reason);
    }
    let rules = Rules::new(options);
    let grace = options.grace_period();
    let started = Instant::now();
    let mut delay = FIRST_DELAY;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let suspects = alive(target, &rules);
        if suspects.is_empty() {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= grace && attempts >= MIN_ATTEMPTS {
            return Err(report(target, suspects, waited));
        }
        std::thread::sleep(delay.min(grace.saturating_sub(waited)).max(FIRST_DELAY));
        delay = (delay * 2).min(MAX_DELAY);
    }
}

fn alive(target: Target, rules: &Rules<'_>) -> Vec<Suspect> {
    let me = threads::current_tid();
    let mut suspects: Vec<Suspect> = match target {
        Target::Scope(scope) => registry::threads_of(scope)
            .into_iter()
            .filter_map(|origin| match origin.tid() {
                None => Some(Suspect {
                    tid: None,
                    origin: Some(origin),
                }),
                Some(tid) if tid != me && threads::is_alive(tid) => Some(Suspect {
                    tid: Some(tid),
                    origin: Some(origin),
                }),
                Some(_) => None,
            })
            .collect(),
        Target::Process => process_suspects(me),
    };
    suspects.retain(|suspect| {
        !rules.ignores_thread(suspect.tid, &name_of(suspect).unwrap_or_default())
    });
    if rules.has_spawn_rules() {
        suspects.retain(|suspect| match &suspect.origin {
            Some(origin) => !rules.ignores_spawn(&frames::resolve(origin.spawn.ips())),
            None => true,
        });
    }
    suspects.sort_by_key(|suspect| {
        suspect
            .origin
            .as_ref()
            .map_or(u64::MAX, |origin| origin.key)
    });
    suspects
}

fn process_suspects(me: i32) -> Vec<Suspect> {
    let Some(live) = threads::list() else {
        return Vec::new();
    };
    let startup = startup_threads();
    let mut registered: HashMap<i32, Arc<ThreadOrigin>> = HashMap::new();
    let mut suspects = Vec::new();
    for origin in registry::all_threads() {
        match origin.tid() {
            Some(tid) => {
                registered.insert(tid, origin);
            }
            None => suspects.push(Suspect {
                tid: None,
                origin: Some(origin),
            }),
        }
    }
    for tid in live {
        if tid == me || startup.contains(&tid) || !threads::is_alive(tid) {
            continue;
        }
        let origin = registered.remove(&tid);
        suspects.push(Suspect {
            tid: Some(tid),
            origin,
        });
    }
    suspects
}

/// The name rules match and reports show: the full name the thread set, else the
/// kernel's for a thread the hook did not see start or name. A hooked thread that never
/// named itself has no name (the kernel's would be its parent's, inherited).
fn name_of(suspect: &Suspect) -> Option<String> {
    let kernel_name = || suspect.tid.and_then(threads::describe).map(|os| os.comm);
    match &suspect.origin {
        Some(origin) if threads::NAMES_HOOKED => origin.name(),
        Some(origin) => origin.name().or_else(kernel_name),
        None => kernel_name(),
    }
}

fn report(target: Target, suspects: Vec<Suspect>, waited: Duration) -> Report {
    let subject = match target {
        Target::Scope(scope) => Subject::Scope(scope_label(scope)),
        Target::Process => Subject::Process,
    };
    let leaks = suspects
        .iter()
        .map(|suspect| {
            let origin = suspect.origin.as_deref();
            Leak {
                identity: Identity::Thread {
                    tid: suspect.tid,
                    name: name_of(suspect),
                },
                owner: origin
                    .filter(|origin| origin.scope != PROCESS)
                    .map(|origin| scope_label(origin.scope)),
                spawn_backtrace: origin
                    .map(|origin| frames::user_frames(&frames::resolve(origin.spawn.ips())))
                    .unwrap_or_default(),
                spawned_by: origin.and_then(describe_parent),
                state: suspect
                    .tid
                    .and_then(threads::describe)
                    .map(|os| os.summary()),
            }
        })
        .collect();
    Report {
        subject,
        leaks,
        waited,
    }
}

fn scope_label(scope: ScopeId) -> String {
    registry::scope_name(scope).map_or_else(|| format!("scope #{scope}"), |name| name.to_string())
}

/// The spawning thread, when it belongs to the same scope (the test thread itself is not
/// worth a line): `thread 812 "spawner" (exited), spawned at src/lib.rs:40:9`.
fn describe_parent(origin: &ThreadOrigin) -> Option<String> {
    let parent = origin
        .parent
        .as_deref()
        .filter(|parent| parent.scope == origin.scope)?;
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

fn say_once(reason: &str) {
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| eprintln!("leakcheck: {reason}"));
}
