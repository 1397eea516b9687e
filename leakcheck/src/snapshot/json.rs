//! The snapshot as one JSON object, for a service's debug endpoint: the schema is
//! `leakcheck_schema::snapshot` (and in `Snapshot`'s docs).

use leakcheck_schema::record::Kind;
use leakcheck_schema::snapshot::{SCHEMA_VERSION, SiteRecord, SnapshotRecord};

use super::SiteKind;
use super::{SiteGroup, Snapshot};
use crate::report::json::frame;

impl Snapshot {
    /// The snapshot as one line of JSON (the schema is in [`Snapshot`]'s docs).
    ///
    /// ```
    /// let json = leakcheck::service::Snapshot::take().to_json();
    /// assert!(json.contains("\"schema_version\":1"));
    /// ```
    pub fn to_json(&self) -> String {
        SnapshotRecord {
            schema_version: SCHEMA_VERSION,
            uptime_ms: millis(self.uptime),
            threads: self.threads as u64,
            tasks: self.tasks.map(|tasks| tasks as u64),
            tasks_not_tracked: self.tasks_not_tracked.map(str::to_owned),
            processes: self.processes as u64,
            groups: self.groups.iter().map(group).collect(),
        }
        .to_json()
    }
}

fn group(group: &SiteGroup) -> SiteRecord {
    let site = &group.site;
    SiteRecord {
        kind: match site.kind() {
            SiteKind::Threads => Kind::Thread,
            SiteKind::Tasks => Kind::Task,
            SiteKind::Processes => Kind::Process,
        },
        count: group.count as u64,
        site: site.spawned_at().map(frame),
        parent: site.parent().map(frame),
        oldest_ms: group.oldest.map(millis),
        newest_ms: group.newest.map(millis),
        never_woken: group.never_woken.map(|count| count as u64),
        names: site.names().to_vec(),
        states: group
            .states
            .iter()
            .map(|waiting| (waiting.to_string(), waiting.count() as u64))
            .collect(),
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
