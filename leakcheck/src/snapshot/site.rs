//! Where a group of threads or tasks comes from: what identifies it from one snapshot to
//! the next, and what a person reads first.

use std::fmt::{self, Display, Formatter};

use crate::frames::Frame;

/// What a site's group is: threads, or tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SiteKind {
    /// OS threads.
    Threads,
    /// tokio tasks.
    Tasks,
    /// Child processes.
    Processes,
}

/// Names kept per site; the rest are left out.
const NAMES_LISTED: usize = 8;

/// A spawn site: threads or tasks, the line that spawned them, and the site of the task
/// or thread that ran that line. `Display` reads `tasks spawned at src/main.rs:48:9`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    kind: SiteKind,
    spawned_at: Option<Frame>,
    parent: Option<Frame>,
    /// Whether a spawn hook saw them start: a thread with no `spawned_at` was spawned by
    /// std or tokio alone, or before leakcheck could see it.
    seen: bool,
    names: Vec<String>,
}

impl Site {
    pub(super) fn new(kind: SiteKind, spawned_at: Option<Frame>, parent: Option<Frame>) -> Site {
        Site {
            kind,
            spawned_at,
            parent,
            seen: true,
            names: Vec::new(),
        }
    }

    /// Threads the hook did not see start: the main thread, or threads started before
    /// leakcheck was loaded.
    pub(super) fn unseen() -> Site {
        Site {
            seen: false,
            ..Site::new(SiteKind::Threads, None, None)
        }
    }

    /// Child processes no hook saw start (`vfork`, `clone`, `system()`).
    pub(super) fn unseen_process() -> Site {
        Site {
            seen: false,
            ..Site::new(SiteKind::Processes, None, None)
        }
    }

    /// Whether a spawn hook saw them start.
    pub(super) fn seen(&self) -> bool {
        self.seen
    }

    pub(super) fn add_name(&mut self, name: Option<String>) {
        if let Some(name) = name {
            if self.names.len() < NAMES_LISTED && !self.names.contains(&name) {
                self.names.push(name);
            }
        }
    }

    /// Threads or tasks.
    pub fn kind(&self) -> SiteKind {
        self.kind
    }

    /// The spawn call: for a thread, the innermost frame of the workspace's own code on its
    /// spawn path; for a task, the call tokio recorded. `None` for threads the hook did not
    /// see start (the main thread, threads started before leakcheck was loaded) and threads
    /// started by std or tokio alone (a runtime's blocking pool): those are grouped by name.
    pub fn spawned_at(&self) -> Option<&Frame> {
        self.spawned_at.as_ref()
    }

    /// Where their spawner was spawned: the task (or thread) that ran the spawn call.
    pub fn parent(&self) -> Option<&Frame> {
        self.parent.as_ref()
    }

    /// Threads: their distinct names; processes: their command lines (at most eight).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// What identifies the site from one snapshot to the next: the spawn line and the
    /// parent's, and for threads with no spawn line, their names. Never what they are
    /// doing: a thread that wakes up must not look like one group shrinking and another
    /// growing.
    pub(crate) fn key(&self) -> String {
        let place = |frame: Option<&Frame>| {
            frame.map_or_else(String::new, |frame| {
                frame
                    .location()
                    .or_else(|| frame.function().map(str::to_owned))
                    .unwrap_or_default()
            })
        };
        let names = if self.spawned_at.is_none() {
            self.names.join(",")
        } else {
            String::new()
        };
        format!(
            "{:?}|{}|{}|{names}",
            self.kind,
            place(self.spawned_at.as_ref()),
            place(self.parent.as_ref())
        )
    }
}

impl Display for Site {
    /// `tasks spawned at src/main.rs:48:9`, `threads named main`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            SiteKind::Threads => "threads",
            SiteKind::Tasks => "tasks",
            SiteKind::Processes => "processes",
        };
        match &self.spawned_at {
            Some(frame) => write!(f, "{what} spawned at {}", place(frame)),
            None if self.names.is_empty() => write!(f, "{what} of unknown origin"),
            None => write!(f, "{what} named {}", self.names.join(", ")),
        }
    }
}

/// `file:line:column (function)`, or as much as is known.
pub(crate) fn place(frame: &Frame) -> String {
    match (frame.location(), frame.function()) {
        (Some(location), Some(function)) => format!("{location} ({function})"),
        (Some(location), None) => location,
        (None, Some(function)) => function.to_owned(),
        (None, None) => "an unknown place".to_owned(),
    }
}
