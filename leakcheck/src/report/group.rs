//! Identical leaks, one paragraph. Leaks of one report that share their kind, owner, spawn
//! site, spawner and where they are now (state, current stack, await trace) are one group,
//! printed once with a count and their ids, as Go's goroutine profile groups identical
//! stacks: 500 copies of the same leaked task are one thing to fix, not 500. Groups come
//! biggest first; a report never groups leaks of different tests (a report is one test's).
//! Data only: `text` words a group, `rules` finds what silences it.

use super::{Identity, Leak};

/// Leaks a reader cannot tell apart but by their ids.
pub(crate) struct Group<'a> {
    pub(crate) leaks: Vec<&'a Leak>,
}

/// What makes two leaks the same to a reader: their facts, compared as data.
fn key(leak: &Leak) -> impl PartialEq + '_ {
    (
        (leak.kind(), leak.is_test_thread, leak.backtrace_recorded),
        leak.activity
            .map(|activity| std::mem::discriminant(&activity.kind)),
        matches!(leak.identity, Identity::UntrackedTasks { .. }),
        (&leak.owner, &leak.spawned_by, &leak.os, &leak.notes),
        &leak.spawn_site,
        (&leak.current_stack, &leak.awaiting),
        (&leak.spawn_backtrace, leak.spawn_backtrace_cut),
        process_key(leak),
        &leak.panic,
    )
}

/// What makes two processes the same to a reader: their command line and their facts, but
/// not their pids (nor their descendants', or the start time).
fn process_key(leak: &Leak) -> impl PartialEq + '_ {
    let command = match &leak.identity {
        Identity::Process { command, .. } => command.as_ref(),
        _ => None,
    };
    let facts = leak.process.as_ref().map(|process| {
        (
            (&process.program, &process.holds, process.zombie),
            process.orphan_of.as_ref().map(|parent| parent.pid),
            process.descendants.len(),
            &process.ended,
        )
    });
    (command, facts)
}

/// `leaks` grouped, biggest groups first, ties in the order the leaks came.
pub(crate) fn groups(leaks: &[Leak]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for leak in leaks {
        // Counts without identities, and the test's own thread, stand alone.
        let alone = leak.is_test_thread || matches!(leak.identity, Identity::UntrackedTasks { .. });
        let same = (!alone)
            .then(|| {
                groups
                    .iter_mut()
                    .find(|group| key(group.leaks[0]) == key(leak))
            })
            .flatten();
        match same {
            Some(group) => group.leaks.push(leak),
            None => groups.push(Group { leaks: vec![leak] }),
        }
    }
    groups.sort_by_key(|group| std::cmp::Reverse(group.leaks.len()));
    groups
}

impl<'a> Group<'a> {
    /// The leak that speaks for the group.
    pub(crate) fn first(&self) -> &'a Leak {
        self.leaks[0]
    }

    /// How many threads or tasks the group stands for.
    pub(crate) fn count(&self) -> usize {
        self.leaks.iter().map(|leak| leak.identity.count()).sum()
    }

    /// The thread, task or process ids, in order; a thread still starting has none.
    pub(crate) fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .leaks
            .iter()
            .filter_map(|leak| match leak.identity {
                Identity::Thread { tid, .. } => tid.and_then(|tid| u64::try_from(tid).ok()),
                Identity::Task { id } => Some(id),
                Identity::Process { pid, .. } => u64::try_from(pid).ok(),
                Identity::LostPanic { tid, .. } => u64::try_from(tid).ok(),
                Identity::UntrackedTasks { .. } => None,
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The threads' names, in id order (empty for tasks).
    pub(crate) fn names(&self) -> Vec<&'a str> {
        self.leaks
            .iter()
            .filter_map(|leak| match &leak.identity {
                Identity::Thread { name, .. } | Identity::LostPanic { name, .. } => name.as_deref(),
                _ => None,
            })
            .collect()
    }
}
