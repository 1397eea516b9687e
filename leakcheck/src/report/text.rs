//! The report as a person reads it in a CI log: a headline, then one paragraph per group of
//! identical leaks, biggest first, bounded in size however much leaks.

use std::fmt::{self, Write};

use leakcheck_schema::duration::{self, round_to_ms};
use leakcheck_schema::rules::Rule;

use super::group::{self, Group};
use super::rules;
use super::{Ending, Identity, Leak, LeakKind, Note, ProcessFacts, Report, Subject};
use crate::config::TASK_BACKTRACE_VAR;

/// The most text a report prints after its first paragraph, whatever leaks: the paragraphs
/// beyond it are counted, not printed.
const TEXT_BUDGET: usize = 16 * 1024 - 512;

/// What the report says when tasks cannot be told apart, how to see them, and what the
/// choice to live with them costs.
const HOW_TO_HOOK: &str = "\
tokio tells leakcheck which tasks and where they were spawned only with `--cfg tokio_unstable`;
  add to .cargo/config.toml:
      [build]
      rustflags = [\"--cfg\", \"tokio_unstable\"]
  (or run RUSTFLAGS=\"--cfg tokio_unstable\" cargo test): then each task has its id and spawn
  line, and a rule in leakcheck.toml can silence a task that is meant to live.
  To live with such counts on this build, untracked_tasks = \"warn\" in leakcheck.toml (or
  LEAKCHECK_UNTRACKED_TASKS=warn) reports them without failing; it lets a new task leak of
  any test pass too (threads and identified tasks still fail).";

/// A name as a report quotes it: in double quotes, with a quote, a backslash or a control
/// character escaped as Rust writes them.
pub(super) fn quoted(name: &str) -> String {
    format!("{name:?}")
}

/// `1 thread`, `2 tasks`, `3 processes`.
pub(crate) fn count(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        count if noun.ends_with('s') => format!("{count} {noun}es"),
        count => format!("{count} {noun}s"),
    }
}

/// A leak's state line: what the OS says, then the notes, `; `-separated.
pub(super) fn state_line(leak: &Leak) -> Option<String> {
    let zombie = leak
        .is_zombie()
        .then(|| "exited, never waited for (a zombie)".to_owned());
    let parts: Vec<String> = zombie
        .into_iter()
        .chain(leak.panic.iter().map(ToString::to_string))
        .chain(leak.os.iter().map(ToString::to_string))
        .chain(leak.notes.iter().map(ToString::to_string))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

impl Report {
    /// What still runs: `1 thread`, `2 tasks and 1 thread`, `1 process`; zombies are not
    /// in it (they no longer run: [`Report::zombies`]).
    fn what_leaked(&self) -> String {
        let of = |kind| {
            self.leaks
                .iter()
                .filter(|leak| leak.kind() == kind && !leak.is_test_thread)
                .filter(|leak| !leak.is_zombie())
                .map(|leak| leak.identity.count())
                .sum::<usize>()
        };
        let parts: Vec<String> = [
            (of(LeakKind::Task), "task"),
            (of(LeakKind::Thread), "thread"),
            (of(LeakKind::Process), "process"),
        ]
        .into_iter()
        .filter(|(number, _)| *number > 0)
        .map(|(number, noun)| count(number, noun))
        .collect();
        match parts.split_last() {
            None => "nothing else".to_owned(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }

    /// `1 zombie process (a child that exited and was never waited for)`; `None` when none.
    fn zombies(&self) -> Option<String> {
        let zombies: usize = self
            .leaks
            .iter()
            .filter(|leak| leak.is_zombie())
            .map(|leak| leak.identity.count())
            .sum();
        let what = if zombies == 1 {
            "a child that exited and was never waited for"
        } else {
            "children that exited and were never waited for"
        };
        (zombies > 0).then(|| format!("{} ({what})", count(zombies, "zombie process")))
    }

    /// `1 panic lost`, `2 panics lost`: in threads it started, ended by a panic nobody
    /// observed; `None` when none.
    fn lost_panics(&self) -> Option<String> {
        let lost = self
            .leaks
            .iter()
            .filter(|leak| leak.kind() == LeakKind::LostPanic)
            .count();
        (lost > 0).then(|| {
            format!(
                "{} lost (threads that ended by a panic nobody observed: no join)",
                count(lost, "panic")
            )
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.what_leaked();
        let waited = duration::format(round_to_ms(self.waited));
        let only_lost = self.only(|leak| leak.panic.is_some());
        // A check that found lost panics: said after what leaked, or alone.
        let lost = match self.lost_panics() {
            Some(lost) if only_lost => {
                let whose = match &self.subject {
                    Subject::Scope(name) => format!("`{name}`: "),
                    Subject::Process => "at the process-wide check: ".to_owned(),
                    Subject::Exit => "when the test binary exited: ".to_owned(),
                };
                return self.write_all(f, &format!("leakcheck: {whose}{lost}"));
            }
            Some(lost) => format!("; {lost}"),
            None => String::new(),
        };
        let zombies = self.zombies();
        // Zombies alone: nothing runs, nothing was waited for (they are decided at once).
        if let Some(zombies) = &zombies {
            if self.only(|leak| leak.is_zombie() || leak.panic.is_some()) {
                let headline = match &self.subject {
                    Subject::Scope(name) => format!("leakcheck: `{name}` left {zombies}{lost}"),
                    Subject::Process => {
                        format!("leakcheck: at the process-wide check: {zombies}{lost}")
                    }
                    Subject::Exit => {
                        format!("leakcheck: when the test binary exited: {zombies}{lost}")
                    }
                };
                return self.write_all(f, &headline);
            }
        }
        let lost = match zombies {
            Some(zombies) => format!("; and {zombies}{lost}"),
            None => lost,
        };
        let headline = match (&self.subject, self.ending) {
            (Subject::Scope(name), Some(Ending::Stalled)) => format!(
                "leakcheck: `{name}` cannot be checked: its runtime's only thread, the test's, \
                 is blocked inside one of its tasks ({waited} after the test returned); it runs \
                 {what}"
            ),
            (Subject::Scope(name), Some(Ending::TimedOut(timeout))) => format!(
                "leakcheck: `{name}` has not returned within its timeout of {}; it runs {what}",
                duration::format(timeout)
            ),
            (Subject::Scope(name), None) if self.waited.is_zero() => {
                format!("leakcheck: `{name}` left {what}{lost}")
            }
            (Subject::Scope(name), None) => format!(
                "leakcheck: `{name}` leaked {what} (still running {waited} after it \
                 returned){lost}"
            ),
            (Subject::Process, _) => format!(
                "leakcheck: {what} still running at the process-wide check (waited \
                 {waited}){lost}"
            ),
            (Subject::Exit, _) => format!(
                "leakcheck: {what} still running when the test binary exited (waited \
                 {waited}){lost}"
            ),
        };
        self.write_all(f, &headline)
    }
}

impl Report {
    /// The headline, then the groups' paragraphs, bounded.
    fn write_all(&self, f: &mut fmt::Formatter<'_>, headline: &str) -> fmt::Result {
        writeln!(f, "{headline}")?;
        let groups = group::groups(&self.leaks);
        let mut written = 0;
        for (shown, group) in groups.iter().enumerate() {
            let mut paragraph = String::new();
            // Writing to a String cannot fail.
            let _ = self.write_paragraph(&mut paragraph, group);
            if shown > 0 && written + paragraph.len() > TEXT_BUDGET {
                let rest = &groups[shown..];
                let leaks: usize = rest.iter().map(Group::count).sum();
                return writeln!(
                    f,
                    "\n… and {} more groups ({leaks} more threads, tasks and processes) not \
                     shown: the report is kept under 16 KiB (`Report::leaks()` has every leak, \
                     the JSON line every group that fits in 64 KiB)",
                    rest.len(),
                );
            }
            written += paragraph.len();
            f.write_str(&paragraph)?;
        }
        Ok(())
    }
}

/// What only a process's paragraph says: the test's output it holds, its descendants, and
/// whether leakcheck ended it.
fn write_process(f: &mut String, process: &ProcessFacts) -> fmt::Result {
    if !process.holds.is_empty() {
        let streams: Vec<String> = process.holds.iter().map(ToString::to_string).collect();
        let them = if streams.len() > 1 { "them" } else { "it" };
        writeln!(
            f,
            "  holds the test's {} open: whoever reads {them} (nextest, a CI runner) waits \
             until it exits",
            streams.join(" and ")
        )?;
    }
    if !process.descendants.is_empty() {
        writeln!(f, "  its descendants (not counted as leaks):")?;
        for descendant in &process.descendants {
            writeln!(f, "    {descendant}")?;
        }
    }
    if let Some(ended) = &process.ended {
        writeln!(f, "  {ended}")?;
    }
    Ok(())
}

impl Report {
    /// One group's paragraph, a blank line first.
    fn write_paragraph(&self, f: &mut String, group: &Group<'_>) -> fmt::Result {
        let leak = group.first();
        writeln!(f)?;
        write!(f, "{}", heading(group))?;
        if let Some(state) = state_line(leak) {
            write!(f, ": {state}")?;
        }
        writeln!(f)?;
        if let Identity::UntrackedTasks { .. } = leak.identity {
            return writeln!(f, "  {HOW_TO_HOOK}");
        }
        if leak.is_test_thread {
            writeln!(f, "  the test's own thread, stuck here:")?;
            for frame in &leak.current_stack {
                writeln!(f, "    {frame}")?;
            }
            return Ok(());
        }
        let kept = leak.notes.contains(&Note::KeptForTheProcess);
        if let Some(activity) = &leak.activity {
            let line = activity.line(leak.kind().noun());
            if kept && activity.is_stuck() {
                let several = if group.leaks.len() > 1 {
                    "a pool"
                } else {
                    "a singleton"
                };
                writeln!(
                    f,
                    "  waiting for work: not woken {}: the shape of {several} kept for the whole \
                     process, which nothing closes (if it is one, the rule below is the fix)",
                    activity.during()
                )?;
            } else {
                writeln!(f, "  {line}")?;
            }
        }
        match (&self.subject, &leak.owner) {
            (Subject::Scope(_), _) => {}
            (_, Some(owner)) => writeln!(f, "  owner: `{owner}`")?,
            (Subject::Process, None) => {
                writeln!(f, "  owner: none (spawned outside any leakcheck scope)")?;
            }
            (Subject::Exit, None) => writeln!(
                f,
                "  owner: none (spawned outside every test: from main, a static \
                 initialiser or a C library helper)"
            )?,
        }
        if leak.panic.is_some() {
            writeln!(
                f,
                "  nobody observed it: the panic ended the thread, and nothing joined the \
                 thread, caught the panic in it or started a replacement while it unwound \
                 (join it and handle the Err, or catch the panic in the thread; a pool that \
                 only counts its workers' panics: the rule below accepts them)"
            )?;
        }
        if let Some(process) = &leak.process {
            if let Some(parent) = &process.orphan_of {
                writeln!(
                    f,
                    "  orphaned: it descends from {parent}, which the test started (the line \
                     below), and was reparented away from the test when its parent exited"
                )?;
            }
        }
        match leak.spawn_site() {
            Some(site) => writeln!(
                f,
                "  spawned at {}",
                site.location().unwrap_or_else(|| site.to_string())
            )?,
            None if leak.kind() == LeakKind::Process && leak.spawn_backtrace.is_empty() => {
                writeln!(
                    f,
                    "  started: not seen (by vfork, clone or system(), past leakcheck's hooks)"
                )?;
            }
            None if leak.spawn_backtrace.is_empty() && leak.owner.is_none() => writeln!(
                f,
                "  spawned: not seen (a C library helper, or a thread from before start-up)"
            )?,
            None => writeln!(f, "  spawned at: no frame of yours on the spawn path")?,
        }
        if let Some(parent) = &leak.spawned_by {
            writeln!(f, "  spawned by {parent}")?;
        }
        if let Some(process) = &leak.process {
            write_process(f, process)?;
        }
        if !leak.current_stack.is_empty() {
            writeln!(f, "  current stack:")?;
            for frame in &leak.current_stack {
                writeln!(f, "    {frame}")?;
            }
        }
        if !leak.awaiting.is_empty() {
            writeln!(f, "  awaiting now:")?;
            for frame in &leak.awaiting {
                writeln!(f, "    {frame}")?;
            }
        }
        if !leak.backtrace_recorded {
            writeln!(
                f,
                "  spawn backtrace: not recorded ({TASK_BACKTRACE_VAR}=1 records it)"
            )?;
        }
        // Recorded, yet none of the user's frames in it: say where it was cut, never nothing.
        #[cfg(tokio_unstable)]
        if leak.backtrace_recorded
            && leak.kind() == LeakKind::Task
            && leak.spawn_backtrace.is_empty()
            && !leak.spawn_backtrace_cut
        {
            writeln!(
                f,
                "  spawn backtrace: no frame of yours in the {} kept at the spawn (in a \
                 debug build tokio's spawn path keeps a copy of the future in each of its \
                 frames: a large future pushes your frames past it)",
                crate::unwind::TASK
            )?;
        }
        if !leak.spawn_backtrace.is_empty() || leak.spawn_backtrace_cut {
            writeln!(f, "  spawn backtrace:")?;
            for frame in &leak.spawn_backtrace {
                writeln!(f, "    {frame}")?;
            }
            if leak.spawn_backtrace_cut {
                writeln!(
                    f,
                    "    … cut short: the spawn was deeper than what leakcheck keeps of the \
                     spawner's stack"
                )?;
            }
        }
        let rules = rules::of_group(group);
        if !rules.is_empty() {
            let them = if group.leaks.len() == 1 { "it" } else { "them" };
            // A panic is accepted, not ignored: the thread is still checked.
            let ignore = if leak.panic.is_some() {
                "accept"
            } else {
                "ignore"
            };
            let shown: Vec<String> = rules.iter().map(Rule::suggestion).collect();
            writeln!(f, "  to {ignore} {them}: {}", shown.join("  or  "))?;
        }
        Ok(())
    }
}

/// A group's paragraph's first words: the identity of a single leak as ever, else
/// `500 tasks (ids 4-503)` or `100 threads (tids 20-119) "worker-0" … "worker-99"`.
fn heading(group: &Group<'_>) -> String {
    if group.leaks.len() == 1 {
        return group.first().identity.to_string();
    }
    let count = group.leaks.len();
    let ids = id_list(&group.ids());
    match group.first().kind() {
        LeakKind::Task => format!("{count} tasks (ids {ids})"),
        LeakKind::LostPanic => format!("{count} lost panics in threads (tids {ids})"),
        LeakKind::Process => match &group.first().identity {
            Identity::Process {
                command: Some(command),
                ..
            } => format!("{count} processes (pids {ids}) `{command}`"),
            _ => format!("{count} processes (pids {ids})"),
        },
        LeakKind::Thread => {
            let names = group.names();
            let named = match (names.first(), names.last()) {
                _ if names.len() < count => String::new(),
                (Some(first), Some(last)) if first == last => {
                    format!(" {}", quoted(first))
                }
                (Some(first), Some(last)) => format!(" {} … {}", quoted(first), quoted(last)),
                _ => String::new(),
            };
            format!("{count} threads (tids {ids}){named}")
        }
    }
}

/// Ids shown of a group before the rest are counted.
const IDS_SHOWN: usize = 8;

/// `4-503`, or `1, 3, 5-9 and 12 more`: sorted ids as runs, the first few shown.
fn id_list(ids: &[u64]) -> String {
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
