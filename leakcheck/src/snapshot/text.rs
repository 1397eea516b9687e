//! The text a person reads at 3 a.m.: biggest groups first, one or two lines each, and a
//! bounded number of groups whatever the process runs.

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use super::SiteKind;
use super::site::place;
use super::{Growth, SiteGroup, SiteGrowth, Snapshot};

/// Groups printed before the rest are summed up in one line.
const GROUPS_SHOWN: usize = 20;

impl Display for Snapshot {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leakcheck snapshot at {} uptime: {}",
            human(self.uptime),
            count(self.threads, "thread")
        )?;
        match self.tasks {
            Some(tasks) => write!(f, ", {}", count(tasks, "task"))?,
            None => write!(f, " (tasks not tracked)")?,
        }
        if self.processes > 0 {
            let noun = if self.processes == 1 {
                "process"
            } else {
                "processes"
            };
            write!(f, ", {} child {noun}", self.processes)?;
        }
        let sites = self
            .groups
            .iter()
            .filter(|group| group.site.spawned_at().is_some())
            .count();
        writeln!(f, ", {}", count(sites, "spawn site"))?;
        for group in self.groups.iter().take(GROUPS_SHOWN) {
            write!(f, "{group}")?;
        }
        if let Some(rest) = self
            .groups
            .get(GROUPS_SHOWN..)
            .filter(|rest| !rest.is_empty())
        {
            let alive: usize = rest.iter().map(|group| group.count).sum();
            let groups = if rest.len() == 1 { "group" } else { "groups" };
            writeln!(f, "  ... and {} more {groups} ({alive} alive)", rest.len())?;
        }
        if let Some(why) = self.tasks_not_tracked {
            writeln!(f, "  note: {why}")?;
        }
        Ok(())
    }
}

impl Display for SiteGroup {
    /// `  1150 tasks   spawned at src/main.rs:61:9`, then what is known about them.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let site = &self.site;
        let what = noun(site.kind(), self.count);
        write!(f, "{:>7} {what:<8} ", self.count)?;
        match site.spawned_at() {
            Some(frame) => write!(f, "spawned at {}", place(frame))?,
            None if site.seen() => write!(f, "spawned by std or tokio, no frame of yours")?,
            None if site.kind() == SiteKind::Processes => write!(
                f,
                "not seen started (by vfork, clone or system(), past leakcheck's hooks)"
            )?,
            None => write!(
                f,
                "not seen spawned (the main thread, or started before leakcheck)"
            )?,
        }
        writeln!(f)?;
        let mut details = Vec::new();
        if let Some(parent) = site.parent() {
            let by = match site.kind() {
                SiteKind::Tasks => "by a task",
                SiteKind::Threads | SiteKind::Processes => "by a thread or task",
            };
            details.push(format!("{by} spawned at {}", place(parent)));
        }
        if let (Some(oldest), Some(newest)) = (self.oldest, self.newest) {
            details.push(if self.count == 1 {
                format!("age {}", human(oldest))
            } else {
                format!("ages {} to {}", human(newest), human(oldest))
            });
        }
        match self.never_woken {
            Some(1) if self.count == 1 => details.push("never woken since its first poll".into()),
            Some(n) if n > 0 => details.push(format!("{n} never woken since their first poll")),
            _ => {}
        }
        if !site.names().is_empty() {
            details.push(format!("named {}", site.names().join(", ")));
        }
        if !self.states.is_empty() {
            let states: Vec<String> = self
                .states
                .iter()
                .take(3)
                .map(|waiting| format!("{} {waiting}", waiting.count()))
                .collect();
            details.push(states.join(", "));
        }
        if !details.is_empty() {
            writeln!(f, "{:17}{}", "", details.join("; "))?;
        }
        Ok(())
    }
}

impl Display for Growth {
    /// The sites that changed, most growth first; nothing for two equal snapshots.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let changed: Vec<&SiteGrowth> = self
            .sites
            .iter()
            .filter(|site| site.change() != 0)
            .collect();
        writeln!(
            f,
            "leakcheck growth over {}: {} changed",
            human(self.between),
            count(changed.len(), "site")
        )?;
        for site in changed.iter().take(GROUPS_SHOWN) {
            writeln!(f, "  {site}")?;
        }
        if changed.len() > GROUPS_SHOWN {
            writeln!(
                f,
                "  ... and {} more",
                count(changed.len() - GROUPS_SHOWN, "site")
            )?;
        }
        Ok(())
    }
}

fn noun(kind: SiteKind, n: usize) -> &'static str {
    match (kind, n) {
        (SiteKind::Threads, 1) => "thread",
        (SiteKind::Threads, _) => "threads",
        (SiteKind::Tasks, 1) => "task",
        (SiteKind::Tasks, _) => "tasks",
        (SiteKind::Processes, 1) => "process",
        (SiteKind::Processes, _) => "processes",
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `0.25s`, `12.3s`, `2m 10s`, `3h 12m`, `2d 4h`.
pub(crate) fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..10 => format!("{:.2}s", duration.as_secs_f64()),
        10..60 => format!("{:.1}s", duration.as_secs_f64()),
        60..3600 => format!("{}m {}s", seconds / 60, seconds % 60),
        3600..86400 => format!("{}h {}m", seconds / 3600, seconds / 60 % 60),
        _ => format!("{}d {}h", seconds / 86400, seconds / 3600 % 24),
    }
}
