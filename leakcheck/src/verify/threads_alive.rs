//! What a look finds of the target's threads: its own (or, process-wide, every live one),
//! less what the rules ignore and what a process-wide pool runs for another test, plus a
//! pool's thread that runs a job of this test's.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Look, PoolJob, Suspect, Target, spawn_ignored};
use crate::filter::{Rules, pools};
use crate::frames::{self, Frame};
use crate::registry::{self, ThreadOrigin};
use crate::scope::{self, PROCESS};
use crate::threads;

pub(super) fn alive_threads(target: Target, rules: &Rules<'_>, look: Look) -> Vec<Suspect> {
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
        !rules.ignores_thread(
            *tid,
            &threads::name_of(*tid, origin.as_deref()).unwrap_or_default(),
        )
    });
    if rules.has_spawn_rules() {
        found.retain(|(_, origin)| {
            origin
                .as_deref()
                .is_none_or(|origin| !spawn_ignored(rules, origin.spawn.unwind(), look))
        });
    }
    // Read before any capture below: the capture's signal wakes the thread once.
    let mut counters: HashMap<i32, threads::Counters> = found
        .iter()
        .filter_map(|(tid, _)| Some(((*tid)?, threads::counters((*tid)?)?)))
        .collect();
    let mut jobs: HashMap<i32, PoolJob> = HashMap::new();
    if rules.uses_default_allowlist() {
        let own_scope = match target {
            Target::Scope(scope) => Some(scope),
            Target::Process | Target::Exit => None,
        };
        found.retain(|(tid, origin)| {
            let (Some(tid), Some(origin)) = (*tid, origin.as_deref()) else {
                return true;
            };
            match pool_thread(tid, origin, counters.get(&tid), look) {
                PoolThread::NotOne | PoolThread::Unknown | PoolThread::Waking => true,
                PoolThread::Waiting => false,
                PoolThread::Job(job) => {
                    // On a thread this test grew, a job this test wrote, or whose submission
                    // grew the pool by it; another's job is not this test's leak.
                    let ours = own_scope.is_none_or(|scope| {
                        pools::written_in(&job.frames, &scope::label(scope))
                            || spawn_names(origin)
                                .is_some_and(|path| pools::grew_the_pool(&job.frames, &path))
                    });
                    jobs.insert(tid, job);
                    ours
                }
            }
        });
        let pool_named = own_scope
            .map(|_| registry::pool_named_threads())
            .unwrap_or_default();
        if let (Some(scope), false) = (own_scope, pool_named.is_empty()) {
            let test = scope::label(scope);
            for origin in pool_named {
                let Some(tid) = origin.tid() else { continue };
                if origin.scope == scope || tid == me || !threads::is_alive(tid) {
                    continue;
                }
                let now = threads::counters(tid);
                match pool_thread(tid, &origin, now.as_ref(), look) {
                    PoolThread::Job(job) if pools::written_in(&job.frames, &test) => {
                        counters.extend(now.map(|now| (tid, now)));
                        jobs.insert(tid, job);
                        found.push((Some(tid), Some(origin)));
                    }
                    // Woken for a job, maybe this test's, submitted just before it returned,
                    // or between a wait and a job: looked at again until it is seen in a job,
                    // or back in its wait (the final look takes it as it finds it).
                    PoolThread::Waking | PoolThread::Unknown if look != Look::Final => {
                        found.push((Some(tid), Some(origin)));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut stacks: HashMap<i32, Vec<Frame>> = HashMap::new();
    if rules.has_top_rules() && look != Look::Quick {
        found.retain(|(tid, _)| {
            let Some(tid) = *tid else { return true };
            let Some(stack) = current_stack(tid, look) else {
                return true;
            };
            let ignored = rules.ignores_top(&frames::shape_current_stack(&stack).top);
            if !ignored && look == Look::Final {
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
            counters: tid.and_then(|tid| counters.remove(&tid)),
            job: tid.and_then(|tid| jobs.remove(&tid)),
            tid,
            origin,
        })
        .collect()
}

/// A thread's current stack, as far as this look resolves it; `None` if it cannot be taken.
fn current_stack(tid: i32, look: Look) -> Option<Vec<Frame>> {
    let ips = threads::capture_stack(tid).ok()?;
    match look {
        Look::Final => Some(frames::resolve(&ips)),
        Look::First | Look::Quick => frames::resolve_cached(&ips).or_else(|| frames::names(&ips)),
    }
}

/// A thread's spawn path as names tell it: resolved frames where cached, else the symbol
/// table's names.
fn spawn_names(origin: &ThreadOrigin) -> Option<Vec<Frame>> {
    let ips = origin.spawn.unwind();
    frames::resolve_spawn_cached(ips).or_else(|| frames::names(ips))
}

/// A thread as a process-wide pool's (`filter::pools`).
enum PoolThread {
    /// Not a pool's thread.
    NotOne,
    /// Waiting for work: allowed.
    Waiting,
    /// Woken in its wait, not yet in a job: what it runs next is not known yet. The final
    /// look takes it as waiting.
    Waking,
    /// Running a job.
    Job(PoolJob),
    /// A pool's, doing what this look cannot tell.
    Unknown,
}

/// What a thread does, if it is a pool's: its spawn path says which pool; the system call
/// it waits in says it is still idle where it was last seen idle (no signal then); else its
/// current stack says whether it waits or runs a job.
fn pool_thread(
    tid: i32,
    origin: &ThreadOrigin,
    now: Option<&threads::Counters>,
    look: Look,
) -> PoolThread {
    let spawn_path = match look {
        Look::Final => Some(frames::resolve_spawn(origin.spawn.unwind())),
        Look::First | Look::Quick => spawn_names(origin),
    };
    let Some(pool) = spawn_path.as_deref().and_then(pools::pool_of) else {
        return PoolThread::NotOne;
    };
    let call = now.map(|now| now.call).filter(|&call| call != 0);
    if call.is_some_and(|call| call == origin.idle_call()) {
        return PoolThread::Waiting;
    }
    let Some(stack) = current_stack(tid, look) else {
        return PoolThread::Unknown;
    };
    let doing = match pools::doing(pool, &stack) {
        pools::Doing::Unknown if look == Look::Final => match threads::capture_stack(tid) {
            Ok(ips) => pools::doing(pool, &frames::resolve(&ips)),
            Err(_) => pools::Doing::Unknown,
        },
        doing => doing,
    };
    match doing {
        pools::Doing::Waiting => match call {
            Some(call) => {
                origin.set_idle_call(call);
                PoolThread::Waiting
            }
            // Runnable: woken (a job was just submitted), or between two waits.
            None if look != Look::Final => PoolThread::Waking,
            None => PoolThread::Waiting,
        },
        pools::Doing::Job(frames) => PoolThread::Job(PoolJob {
            krate: pool.krate,
            frames,
        }),
        pools::Doing::Unknown => PoolThread::Unknown,
    }
}

type FoundThread = (Option<i32>, Option<Arc<ThreadOrigin>>);

/// Every live thread of the process, with its origin where the hook saw it start;
/// `unscoped_only` leaves out the threads that belong to a scope.
fn process_threads(me: i32, unscoped_only: bool) -> Vec<FoundThread> {
    let Some(live) = threads::list() else {
        return Vec::new();
    };
    let startup = crate::init::startup_threads();
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
        let skipped = tid == me || startup.contains(&tid) || registry::is_own_thread(tid);
        if skipped || !threads::is_alive(tid) {
            continue;
        }
        let origin = registered.remove(&tid);
        if !origin.as_deref().is_some_and(left_out) {
            found.push((Some(tid), origin));
        }
    }
    found
}
