//! The JSON object of a `leakcheck::service::Snapshot` (`Snapshot::to_json`), for a service's debug
//! endpoint: every live thread and task of the process, grouped by spawn site.
//!
//! ```text
//! { "schema_version": 1,
//!   "uptime_ms": 133000,            // since leakcheck's clock started (process start)
//!   "threads": 7,                   // live threads, leakcheck's own left out
//!   "tasks": 1200,                  // live tasks on hooked runtimes; null if not tracked
//!   "tasks_not_tracked": null,      // why tasks are not tracked on this build, if so
//!   "processes": 1,                 // live child processes (and orphans of them)
//!   "groups": [                     // biggest first
//!     { "kind": "task",             // or "thread", "process"
//!       "count": 1150,
//!       "site":   { "function": null, "file": "src/main.rs", "line": 61, "column": 9 },
//!       "parent": { ... } | null,   // where the spawning task (or thread) was spawned
//!       "oldest_ms": 130000, "newest_ms": 200,   // ages; null where unknown
//!       "never_woken": 1150,        // tasks: polled once at most since spawned
//!       "names": ["worker"],        // threads: distinct names; processes: command lines; at most 8
//!       "states": [["sleeping in futex_wait_queue", 12]]   // threads: where they wait
//!     } ] }
//! ```
//!
//! [`SCHEMA_VERSION`] changes when a field changes meaning or goes away; new fields may
//! appear.

use crate::json::{Object, ToJson};
use crate::record::{Frame, Kind};

/// The version of the object's format.
pub const SCHEMA_VERSION: u32 = 1;

/// A snapshot of the live threads and tasks of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotRecord {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Since leakcheck's clock started (the process's start), in milliseconds.
    pub uptime_ms: u64,
    /// Live threads, leakcheck's own left out.
    pub threads: u64,
    /// Live tasks on runtimes with leakcheck's hooks; `None` where tasks are not tracked.
    pub tasks: Option<u64>,
    /// Why tasks are not tracked on this build, if they are not.
    pub tasks_not_tracked: Option<String>,
    /// Live child processes the hooks recorded, and orphans of them.
    #[cfg_attr(feature = "serde", serde(default))]
    pub processes: u64,
    /// The groups, biggest first.
    pub groups: Vec<SiteRecord>,
}

/// The live threads or tasks of one spawn site.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SiteRecord {
    /// Threads or tasks.
    pub kind: Kind,
    /// How many are alive.
    pub count: u64,
    /// The spawn call.
    pub site: Option<Frame>,
    /// Where their spawner was spawned.
    pub parent: Option<Frame>,
    /// The age of the oldest, in milliseconds.
    pub oldest_ms: Option<u64>,
    /// The age of the newest, in milliseconds.
    pub newest_ms: Option<u64>,
    /// Tasks: how many were polled once at most since spawned.
    pub never_woken: Option<u64>,
    /// Threads: their distinct names; processes: their command lines; at most 8.
    pub names: Vec<String>,
    /// Threads: where they wait, and how many wait there, most first.
    pub states: Vec<(String, u64)>,
}

impl ToJson for (String, u64) {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        self.0.write_json(out);
        out.push(',');
        self.1.write_json(out);
        out.push(']');
    }
}

impl ToJson for SiteRecord {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("kind", &self.kind)
            .field("count", &self.count)
            .field("site", &self.site)
            .field("parent", &self.parent)
            .field("oldest_ms", &self.oldest_ms)
            .field("newest_ms", &self.newest_ms)
            .field("never_woken", &self.never_woken)
            .field("names", &self.names)
            .field("states", &self.states)
            .end();
    }
}

impl ToJson for SnapshotRecord {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("schema_version", &self.schema_version)
            .field("uptime_ms", &self.uptime_ms)
            .field("threads", &self.threads)
            .field("tasks", &self.tasks)
            .field("tasks_not_tracked", &self.tasks_not_tracked)
            .field("processes", &self.processes)
            .field("groups", &self.groups)
            .end();
    }
}

impl SnapshotRecord {
    /// The snapshot as one line of JSON.
    pub fn to_json(&self) -> String {
        crate::json::to_string(self)
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_through_serde() {
        let snapshot = SnapshotRecord {
            schema_version: SCHEMA_VERSION,
            uptime_ms: 133_000,
            threads: 7,
            tasks: None,
            processes: 2,
            tasks_not_tracked: Some("needs --cfg tokio_unstable".into()),
            groups: vec![SiteRecord {
                kind: Kind::Thread,
                count: 2,
                site: Some(Frame::default()),
                parent: None,
                oldest_ms: Some(1),
                newest_ms: None,
                never_woken: None,
                names: vec!["worker".into()],
                states: vec![("sleeping in futex_wait_queue".into(), 2)],
            }],
        };
        let line = snapshot.to_json();
        assert_eq!(
            serde_json::from_str::<SnapshotRecord>(&line).unwrap(),
            snapshot
        );
        let by_writer: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(by_writer, serde_json::to_value(&snapshot).unwrap());
    }
}
