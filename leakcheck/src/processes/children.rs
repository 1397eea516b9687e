//! What became of the children a scope started, read from `/proc` at check time: running,
//! exited and never waited for (a zombie), waited for (forgotten), and the descendants
//! that outlived them (orphans, found by the marker they inherited). And, when a report
//! asks, each one's descendants, what it holds open, and ending it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::procfs::{self, ProcStat};
use super::{Child, Status, Unrecorded, signalled};
use crate::registry::{self, ProcessOrigin};
use crate::report::{EndedBy, OutputStream, ProcessRef};
use crate::scope::ScopeId;

/// Whether the program has waited for the child of `origin`: it is gone, or its pid now
/// names a later process. Remembered in the record, which is then not looked up again.
fn waited_for(origin: &ProcessOrigin, now: Option<&ProcStat>) -> bool {
    let waited = now.is_none_or(|now| !origin.started.holds(now.start_time));
    if waited {
        origin.set_waited_for();
    }
    waited
}

/// [`waited_for`], reading `/proc` only if no look found it already.
fn known_or_now_waited_for(origin: &ProcessOrigin) -> bool {
    origin.known_waited_for() || waited_for(origin, procfs::stat(origin.pid).as_ref())
}

/// Forgets the records of `scope`'s children the program waited for: after a check of the
/// scope (`after_a_check`), all of them; else (as records pile up) all but those with the
/// marker that a live process still carries (an orphan of the child, or a descendant on its
/// way to becoming one). Whether a record is kept depends on what it left running, never
/// on how many other children were started: a test that starts thousands of short-lived
/// programs keeps the records of the few that left something behind. A waited-for child
/// without a live marked descendant never gets one later: only a process that carries the
/// marker starts another that does. Records found to have one are kept without another
/// look, so that each look reads only the processes started since the records it decides.
pub(crate) fn forget_waited_for(scope: ScopeId, after_a_check: bool) {
    let mut forgotten = Vec::new();
    let mut undecided = Vec::new();
    for origin in registry::processes_of(scope) {
        if !known_or_now_waited_for(&origin) {
            continue;
        }
        if after_a_check || !origin.marked {
            forgotten.push(origin.key);
        } else if !origin.known_to_have_left_running() {
            undecided.push(origin);
        }
    }
    if !undecided.is_empty() {
        let left_running: HashSet<u64> = orphans(&procfs::all(), &undecided, &[])
            .into_iter()
            .filter_map(|orphan| Some(orphan.origin?.key))
            .collect();
        for origin in &undecided {
            if left_running.contains(&origin.key) {
                origin.set_left_running();
            } else {
                forgotten.push(origin.key);
            }
        }
    }
    registry::remove_processes(scope, &forgotten);
}

/// Looks again at the children of the scopes that have ended, so that a scope whose
/// children were all waited for can be forgotten (`registry::forget_finished_scopes`).
pub(crate) fn look_at_ended_scopes() {
    for scope in crate::scope::closed() {
        for origin in registry::processes_of(scope) {
            known_or_now_waited_for(&origin);
        }
    }
}

/// The children of `records` (one scope's, or the process's) that have not been waited
/// for, the orphans of those with the marker, and the children started past every hook
/// (`unrecorded`). A record of a child that was waited for is forgotten here, unless it has
/// the marker (its scope is forgotten with it).
pub(crate) fn survey(records: &[Arc<ProcessOrigin>], unrecorded: Unrecorded) -> Vec<Child> {
    let mut found = Vec::new();
    let mut marked = Vec::new();
    let mut forgotten = Vec::new();
    for origin in records {
        let now = if origin.known_waited_for() {
            None
        } else {
            procfs::stat(origin.pid)
        };
        if waited_for(origin, now.as_ref()) {
            if origin.marked {
                marked.push(origin.clone());
            } else {
                forgotten.push((origin.scope, origin.key));
            }
            continue;
        }
        if origin.marked {
            marked.push(origin.clone());
        }
        let Some(now) = now else { continue };
        found.push(Child {
            pid: origin.pid,
            start_time: now.start_time,
            origin: Some(origin.clone()),
            status: status(&now),
        });
    }
    forgotten.sort_unstable();
    for scope_keys in forgotten.chunk_by(|a, b| a.0 == b.0) {
        let keys: Vec<u64> = scope_keys.iter().map(|(_, key)| *key).collect();
        registry::remove_processes(scope_keys[0].0, &keys);
    }
    let table =
        (!marked.is_empty() || matches!(unrecorded, Unrecorded::OfTheProcess)).then(procfs::all);
    if let Some(table) = &table {
        found.extend(orphans(table, &marked, &found));
    }
    match unrecorded {
        Unrecorded::No => {}
        Unrecorded::OfThreads(tids) => {
            for tid in tids {
                for pid in procfs::children_of_thread(tid).unwrap_or_default() {
                    found.extend(procfs::stat(pid).and_then(unrecorded_child));
                }
            }
        }
        Unrecorded::OfTheProcess => {
            let (me, _) = procfs::this_process();
            let table = table.as_deref().unwrap_or_default();
            found.extend(
                table
                    .iter()
                    .filter(|process| process.ppid == me as i32)
                    .filter_map(|process| unrecorded_child(*process)),
            );
        }
    }
    found
}

fn status(now: &ProcStat) -> Status {
    if now.is_zombie() {
        Status::Zombie
    } else {
        Status::Running
    }
}

/// A child no hook recorded (`vfork`, `clone`, `system()`), unless a record has it.
fn unrecorded_child(now: ProcStat) -> Option<Child> {
    (!registry::is_recorded(now.pid, now.start_time)).then(|| Child {
        pid: now.pid,
        start_time: now.start_time,
        origin: None,
        status: status(&now),
    })
}

/// The processes of `table` outside the trees of the `live` children whose marker names
/// this process and one of the `marked` records: descendants reparented away when the
/// child they came from (or one between) exited. Only processes that started after the
/// earliest of those children are read: nothing older can descend from them.
fn orphans(table: &[ProcStat], marked: &[Arc<ProcessOrigin>], live: &[Child]) -> Vec<Child> {
    let Some(earliest) = marked.iter().map(|origin| origin.started.after).min() else {
        return Vec::new();
    };
    let (me, my_start) = procfs::this_process();
    let children = children_by_parent(table);
    let mut in_a_tree: HashSet<i32> = HashSet::new();
    for child in live {
        in_a_tree.insert(child.pid);
        in_a_tree.extend(
            tree(&children, child.pid)
                .into_iter()
                .map(|process| process.pid),
        );
    }
    let mut found = Vec::new();
    for process in table {
        // Not kernel threads either (kthreadd, pid 2, and its children): no environment.
        let candidate = process.start_time >= earliest
            && process.pid != me as i32
            && process.ppid != me as i32
            && process.pid != 2
            && process.ppid != 2
            && !process.is_zombie()
            && !in_a_tree.contains(&process.pid);
        if !candidate {
            continue;
        }
        let Some(marker) = procfs::marker(process) else {
            continue;
        };
        if marker.pid != me || marker.start_time != my_start {
            continue;
        }
        if let Some(origin) = marked.iter().find(|origin| origin.key == marker.key) {
            found.push(Child {
                pid: process.pid,
                start_time: process.start_time,
                origin: Some(origin.clone()),
                status: Status::Orphan,
            });
        }
    }
    found
}

fn children_by_parent(table: &[ProcStat]) -> HashMap<i32, Vec<ProcStat>> {
    let mut children: HashMap<i32, Vec<ProcStat>> = HashMap::new();
    for process in table {
        children.entry(process.ppid).or_default().push(*process);
    }
    children
}

/// Every descendant of `pid` in `children`, breadth first.
fn tree(children: &HashMap<i32, Vec<ProcStat>>, pid: i32) -> Vec<ProcStat> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for child in children.get(&parent).into_iter().flatten() {
            if child.pid != pid && !found.iter().any(|seen: &ProcStat| seen.pid == child.pid) {
                found.push(*child);
                next.push(child.pid);
            }
        }
    }
    found.sort_by_key(|process| process.start_time);
    found
}

/// `pid`'s live descendants, with their command lines.
pub(crate) fn descendants(pid: i32) -> Vec<ProcessRef> {
    let table = procfs::all();
    tree(&children_by_parent(&table), pid)
        .into_iter()
        .filter(|process| !process.is_zombie())
        .map(|process| ProcessRef {
            pid: process.pid,
            command: procfs::command(process.pid),
        })
        .collect()
}

/// Which of the test's output streams (where a reader waits for their end) `pid` or one of
/// `descendants` holds open.
pub(crate) fn holds(pid: i32, descendants: &[ProcessRef]) -> Vec<OutputStream> {
    let output = procfs::own_output();
    let mut held: Vec<OutputStream> = std::iter::once(pid)
        .chain(descendants.iter().map(|descendant| descendant.pid))
        .flat_map(|pid| procfs::holds(pid, &output))
        .collect();
    held.sort();
    held.dedup();
    held
}

/// Whether this process sent `pid` a signal lately, itself or its process group.
pub(crate) fn was_signalled(pid: i32) -> bool {
    signalled::was(pid)
        || procfs::stat(pid).is_some_and(|stat| stat.pgrp > 1 && signalled::was(-stat.pgrp))
}

/// How long ended processes get between `SIGTERM` and `SIGKILL`.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// Ends `pid` (started at `start_time`) and its descendants (those it has now, and those
/// the report named): `SIGTERM` to all, then `SIGKILL` to what still runs after
/// [`TERM_GRACE`]. Each is pinned first, by a pidfd where the kernel has them, else by its
/// start time, checked again before each signal: a pid freed meanwhile (a descendant ended
/// by the `SIGTERM` and reaped by its new parent) and given to another process is never
/// signalled. Never waits for them: a child of this process stays a zombie until the
/// program waits for it.
pub(crate) fn end(pid: i32, start_time: u64, descendants: &[ProcessRef]) -> EndedBy {
    let Some(leaked) = Pinned::new(pid, Some(start_time)) else {
        return EndedBy::AlreadyGone;
    };
    let mut all = vec![leaked];
    let now: Vec<i32> = tree(&children_by_parent(&procfs::all()), pid)
        .iter()
        .map(|process| process.pid)
        .collect();
    for pid in now
        .into_iter()
        .chain(descendants.iter().map(|descendant| descendant.pid))
    {
        if all.iter().any(|pinned| pinned.pid == pid) {
            continue;
        }
        // A descendant starts after its ancestor: an older process has another's pid.
        if let Some(pinned) =
            Pinned::new(pid, None).filter(|pinned| pinned.start_time >= start_time)
        {
            all.push(pinned);
        }
    }
    let send = |signal: i32| {
        let mut error = None;
        for pinned in &all {
            if let Err(failed) = pinned.signal(signal) {
                error.get_or_insert(failed);
            }
        }
        error
    };
    if let Some(error) = send(libc::SIGTERM) {
        if all[0].runs() {
            return EndedBy::NotEnded(error.to_string());
        }
    }
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        if !all.iter().any(Pinned::runs) {
            return EndedBy::Terminate;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    send(libc::SIGKILL);
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        if !all.iter().any(Pinned::runs) {
            return EndedBy::Kill;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    EndedBy::NotEnded("still running after SIGKILL".to_owned())
}

/// A process to signal, known for what it is, whatever its pid becomes: a pidfd (Linux
/// 5.3), and its start time.
struct Pinned {
    pid: i32,
    start_time: u64,
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl Pinned {
    /// `pid` as it is now, if it runs (and started at `start_time`, where that is known).
    fn new(pid: i32, start_time: Option<u64>) -> Option<Pinned> {
        // SAFETY: pidfd_open takes a pid and flags; a failure is -1 with errno.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = i32::try_from(fd).ok().filter(|&fd| fd >= 0).map(|fd| {
            // SAFETY: a descriptor pidfd_open just returned, owned by nothing else.
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
        });
        // Read after the pidfd is open: if it is the process that ran then, the pidfd is
        // that process's.
        let now = procfs::stat(pid).filter(|now| !now.is_zombie())?;
        if start_time.is_some_and(|start_time| start_time != now.start_time) {
            return None;
        }
        Some(Pinned {
            pid,
            start_time: now.start_time,
            pidfd,
        })
    }

    /// Whether it still runs: its pid is still its own, and it has not exited.
    fn runs(&self) -> bool {
        procfs::stat(self.pid)
            .is_some_and(|now| now.start_time == self.start_time && !now.is_zombie())
    }

    /// Sends `signal` to it, never to a process that took its pid: through its pidfd, else
    /// only while its pid is still its own. One that has ended already is no error.
    fn signal(&self, signal: i32) -> Result<(), std::io::Error> {
        let sent = match &self.pidfd {
            Some(pidfd) => {
                use std::os::fd::AsRawFd;
                // Past the `kill` hook: noted as it notes, so that a child of this process
                // ended here is not then reported as a zombie.
                signalled::note(self.pid);
                // SAFETY: a pidfd we own, a signal number, no siginfo, no flags.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        pidfd.as_raw_fd(),
                        signal,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                }
            }
            None if self.runs() => {
                // SAFETY: kill has no memory preconditions; the pid was its own just now.
                i64::from(unsafe { libc::kill(self.pid, signal) })
            }
            None => return Ok(()),
        };
        if sent == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            _ => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_process_is_the_one_that_ran_and_no_other() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let started = procfs::stat(pid).unwrap().start_time;
        // Another start time: another process that had this pid.
        assert!(Pinned::new(pid, Some(started + 1)).is_none());
        let pinned = Pinned::new(pid, Some(started)).expect("it runs");
        assert!(pinned.runs());
        pinned.signal(libc::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(!pinned.runs());
        // Gone: signalling it again is no error, and reaches nothing.
        pinned.signal(libc::SIGKILL).unwrap();
        assert!(Pinned::new(pid, Some(started)).is_none());
    }
}
