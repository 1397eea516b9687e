//! Identical leaks, one paragraph. Leaks of one report that share their kind, owner, spawn
//! site, spawner and where they are now (state, current stack, await trace) are one group,
//! printed once with a count and their ids, as Go's goroutine profile groups identical
//! stacks: 500 copies of the same leaked task are one thing to fix, not 500. Groups come
//! biggest first; a report never groups leaks of different tests (a report is one test's).

use leakcheck_schema::rules::Rule;

use super::{Identity, Leak, LeakKind};

/// Ids shown of a group before the rest are counted.
const IDS_SHOWN: usize = 8;

/// Leaks a reader cannot tell apart but by their ids.
pub(crate) struct Group<'a> {
    pub(crate) leaks: Vec<&'a Leak>,
}

/// What makes two leaks the same to a reader: their facts, compared as data.
fn key(leak: &Leak) -> impl PartialEq + '_ {
    (
        (leak.kind(), leak.is_test_thread, leak.backtrace_recorded),
        leak.activity
            .map(|activity| std::mem::discriminant(&activity.did)),
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

    /// The paragraph's first words: the identity of a single leak as ever, else
    /// `500 tasks (ids 4-503)` or `100 threads (tids 20-119) "worker-0" … "worker-99"`.
    pub(crate) fn heading(&self) -> String {
        if self.leaks.len() == 1 {
            return self.first().identity.to_string();
        }
        let count = self.leaks.len();
        let ids = id_list(&self.ids());
        match self.first().kind() {
            LeakKind::Task => format!("{count} tasks (ids {ids})"),
            LeakKind::LostPanic => format!("{count} lost panics in threads (tids {ids})"),
            LeakKind::Process => match &self.first().identity {
                Identity::Process {
                    command: Some(command),
                    ..
                } => format!("{count} processes (pids {ids}) `{command}`"),
                _ => format!("{count} processes (pids {ids})"),
            },
            LeakKind::Thread => {
                let names = self.names();
                let named = match (names.first(), names.last()) {
                    _ if names.len() < count => String::new(),
                    (Some(first), Some(last)) if first == last => {
                        format!(" {}", super::text::quoted(first))
                    }
                    (Some(first), Some(last)) => format!(
                        " {} … {}",
                        super::text::quoted(first),
                        super::text::quoted(last)
                    ),
                    _ => String::new(),
                };
                format!("{count} threads (tids {ids}){named}")
            }
        }
    }

    /// The rules that would silence every leak of the group (`rules`).
    pub(crate) fn ignore_rules(&self) -> Vec<Rule> {
        super::rules::of_group(self)
    }
}

/// `4-503`, or `1, 3, 5-9 and 12 more`: sorted ids as runs, the first few shown.
pub(crate) fn id_list(ids: &[u64]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == id => *end = id,
            _ => runs.push((id, id)),
        }
    }
    let shown: Vec<String> = runs
        .iter()
        .take(IDS_SHOWN)
        .map(|&(start, end)| match end - start {
            0 => start.to_string(),
            _ => format!("{start}-{end}"),
        })
        .collect();
    let hidden: u64 = runs
        .iter()
        .skip(IDS_SHOWN)
        .map(|&(start, end)| end - start + 1)
        .sum();
    match hidden {
        0 => shown.join(", "),
        hidden => format!("{} and {hidden} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_as_runs() {
        assert_eq!(id_list(&[4, 5, 6, 7]), "4-7");
        assert_eq!(id_list(&[1, 3, 5, 6, 7]), "1, 3, 5-7");
        let scattered: Vec<u64> = (0..20).map(|n| n * 2).collect();
        assert_eq!(id_list(&scattered), "0, 2, 4, 6, 8, 10, 12, 14 and 12 more");
    }
}
