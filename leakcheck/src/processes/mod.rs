//! Child processes: the spawn hooks, and what `/proc` says of the children they recorded.
//!
//! The one platform boundary for processes. Linux with a dynamically linked C library
//! (`lc_process_hook`) gets the full set: `posix_spawn`, `posix_spawnp`, `fork` (and the
//! `exec` calls after it), `kill` and `popen` are hooked, so children are owned by scopes
//! and carry a spawn backtrace; children carry a marker in their environment that finds
//! them after they are reparented; `/proc` tells what each runs, its state and its
//! descendants. Elsewhere the fallback records nothing, and checks say so once.

// Without the hooks (`lc_process_hook`) nothing is recorded: records and findings are
// types only.
#![cfg_attr(not(lc_process_hook), allow(dead_code))]

#[cfg(lc_process_hook)]
mod children;
#[cfg(lc_process_hook)]
mod command;
#[cfg(lc_process_hook)]
mod hook;
#[cfg(lc_process_hook)]
mod marker;
#[cfg(lc_process_hook)]
mod procfs;
#[cfg(lc_process_hook)]
mod signalled;

#[cfg(lc_process_hook)]
pub(crate) use children::{
    descendants, end, forget_waited_for, holds, look_at_ended_scopes, survey, was_signalled,
};
#[cfg(lc_process_hook)]
pub(crate) use command::{as_started as command_as_started, program_as_started};
#[cfg(lc_process_hook)]
pub(crate) use hook::{mark_the_process_level, stop_marking};
#[cfg(lc_process_hook)]
pub(crate) use procfs::{
    comm as name_now, command as command_now, has_children, lists_thread_children, os_state,
    program as program_now,
};

#[cfg(not(lc_process_hook))]
mod fallback;
#[cfg(not(lc_process_hook))]
pub(crate) use fallback::{
    command_as_started, command_now, descendants, end, forget_waited_for, has_children, holds,
    lists_thread_children, look_at_ended_scopes, mark_the_process_level, name_now, os_state,
    program_as_started, program_now, survey, was_signalled,
};

use std::sync::Arc;

use crate::registry::ProcessOrigin;

/// A child process a check found.
#[derive(Clone)]
pub(crate) struct Child {
    pub(crate) pid: i32,
    pub(crate) start_time: u64,
    /// Its record: for an orphan, the record of the child it descends from. `None` for a
    /// child no hook saw start.
    pub(crate) origin: Option<Arc<ProcessOrigin>>,
    pub(crate) status: Status,
}

/// What a found child is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Still running.
    Running,
    /// Exited, never waited for.
    Zombie,
    /// A descendant reparented away from this process: the child it came from (or one
    /// between) exited.
    Orphan,
}

impl Status {
    /// Whether it runs: a child, or an orphan of one (not a zombie).
    pub(crate) fn is_running(self) -> bool {
        self != Status::Zombie
    }
}

/// Which children no hook saw start a survey also looks for.
#[derive(Clone, Debug)]
pub(crate) enum Unrecorded {
    /// None.
    No,
    /// Those these threads started, where the kernel lists each thread's children.
    OfThreads(Vec<i32>),
    /// Every child of this process.
    OfTheProcess,
}

/// Whether children are recorded on this build, and if not, why. Decided once.
pub(crate) fn tracking() -> Result<(), &'static str> {
    if cfg!(lc_process_hook) {
        Ok(())
    } else {
        Err(
            "child processes are checked on Linux with a dynamically linked C library: \
             on this platform their spawns are not hooked, so processes are not checked",
        )
    }
}

#[cfg(all(test, lc_process_hook))]
mod tests {
    use std::process::Command;

    use super::marker::{self, Marker};

    /// The marker in the environment `env` prints.
    fn marker_of(output: &[u8]) -> Option<Marker> {
        output
            .split(|&byte| byte == b'\n')
            .find_map(Marker::from_entry)
    }

    #[test]
    fn a_child_of_the_process_level_starts_as_it_would_without_leakcheck() {
        let output = Command::new("env").output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(!text.contains(marker::VAR), "{text}");
    }

    #[test]
    fn a_child_of_a_scope_carries_this_process_s_marker() {
        let _scope = crate::scope::Scope::enter_named("marks its children");
        let output = Command::new("env").env("EXTRA", "1").output().unwrap();
        let (pid, start_time) = super::procfs::this_process();
        let marker = marker_of(&output.stdout).expect("a marker");
        assert_eq!((marker.pid, marker.start_time), (pid, start_time));
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(text.matches(marker::VAR).count(), 1, "{text}");
    }

    #[test]
    fn a_marker_the_caller_sets_is_theirs() {
        let _scope = crate::scope::Scope::enter_named("opts a command out");
        let output = Command::new("env").env(marker::VAR, "").output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let opted_out = format!("{}=", marker::VAR);
        assert!(text.lines().any(|line| line == opted_out), "{text}");
        assert_eq!(marker_of(&output.stdout), None, "{text}");
    }
}
