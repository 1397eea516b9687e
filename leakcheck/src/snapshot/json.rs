//! The snapshot as one JSON object, for a service's debug endpoint; the schema is in
//! `Snapshot`'s docs (and `schema_version` changes when a field changes meaning).

use serde_json::{Value, json};

use super::{SiteGroup, Snapshot};
use crate::report::LeakKind;
use crate::report::json::frame;

/// The version of the object's format.
const SCHEMA_VERSION: u32 = 1;

impl Snapshot {
    /// The snapshot as one line of JSON (the schema is in [`Snapshot`]'s docs).
    ///
    /// ```
    /// let json = leakcheck::Snapshot::take().to_json();
    /// assert!(json.contains("\"schema_version\":1"));
    /// ```
    pub fn to_json(&self) -> String {
        let groups: Vec<Value> = self.groups.iter().map(group).collect();
        json!({
            "schema_version": SCHEMA_VERSION,
            "uptime_ms": millis(self.uptime),
            "threads": self.threads,
            "tasks": self.tasks,
            "tasks_not_tracked": self.tasks_not_tracked,
            "groups": groups,
        })
        .to_string()
    }
}

fn group(group: &SiteGroup) -> Value {
    let site = &group.site;
    json!({
        "kind": match site.kind() {
            LeakKind::Thread => "thread",
            LeakKind::Task => "task",
        },
        "count": group.count,
        "site": site.spawned_at().map(frame),
        "parent": site.parent().map(frame),
        "oldest_ms": group.oldest.map(millis),
        "newest_ms": group.newest.map(millis),
        "never_woken": group.never_woken,
        "names": site.names(),
        "states": group.states,
    })
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
