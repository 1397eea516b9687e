//! Two snapshots compared site by site: what grew, and whether what was already there
//! then has run since (a site whose old members never run again is leaking them).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{Member, MemberId, SiteGroup, Snapshot};
use crate::frames::Frame;
use crate::report::LeakKind;

/// How each spawn site changed between two snapshots, from
/// [`Snapshot::growth_since`](super::Snapshot::growth_since). Sites that grew most come
/// first; its `Display` lists the sites that changed.
#[derive(Clone, Debug)]
pub struct Growth {
    pub(super) between: Duration,
    pub(super) sites: Vec<SiteGrowth>,
}

/// One spawn site in two snapshots.
#[derive(Clone, Debug)]
pub struct SiteGrowth {
    pub(super) kind: LeakKind,
    pub(super) site: Option<Frame>,
    pub(super) parent: Option<Frame>,
    pub(super) names: Vec<String>,
    pub(super) then: usize,
    pub(super) now: usize,
    pub(super) survivors: usize,
    pub(super) idle: usize,
    pub(crate) key: String,
}

pub(super) fn between(earlier: &Snapshot, later: &Snapshot) -> Growth {
    let before: HashMap<String, &SiteGroup> = earlier
        .groups
        .iter()
        .map(|group| (group.key(), group))
        .collect();
    let mut sites: Vec<SiteGrowth> = later
        .groups
        .iter()
        .map(|group| {
            let key = group.key();
            let then = before.get(&key).copied();
            let (survivors, idle) =
                then.map_or((0, 0), |then| survivors(&then.members, &group.members));
            SiteGrowth {
                kind: group.kind,
                site: group.site.clone(),
                parent: group.parent.clone(),
                names: group.names.clone(),
                then: then.map_or(0, |then| then.count),
                now: group.count,
                survivors,
                idle,
                key,
            }
        })
        .collect();
    let present: HashSet<&str> = sites.iter().map(|site| site.key.as_str()).collect();
    let gone: Vec<SiteGrowth> = earlier
        .groups
        .iter()
        .filter(|group| !present.contains(group.key().as_str()))
        .map(|group| SiteGrowth {
            kind: group.kind,
            site: group.site.clone(),
            parent: group.parent.clone(),
            names: group.names.clone(),
            then: group.count,
            now: 0,
            survivors: 0,
            idle: 0,
            key: group.key(),
        })
        .collect();
    sites.extend(gone);
    sites.sort_by(|a, b| {
        b.change()
            .cmp(&a.change())
            .then_with(|| b.now.cmp(&a.now))
            .then_with(|| a.key.cmp(&b.key))
    });
    Growth {
        between: later.uptime.saturating_sub(earlier.uptime),
        sites,
    }
}

/// Of the members alive in both, how many, and how many of those did not run in between.
fn survivors(then: &[Member], now: &[Member]) -> (usize, usize) {
    let ran_then: HashMap<MemberId, u64> =
        then.iter().map(|member| (member.id, member.ran)).collect();
    now.iter()
        .filter_map(|member| ran_then.get(&member.id).map(|&ran| ran == member.ran))
        .fold((0, 0), |(survivors, idle), was_idle| {
            (survivors + 1, idle + usize::from(was_idle))
        })
}

impl Growth {
    /// Every site in either snapshot, those that grew most first.
    pub fn sites(&self) -> &[SiteGrowth] {
        &self.sites
    }

    /// The sites with more alive now than then.
    pub fn growing(&self) -> impl Iterator<Item = &SiteGrowth> {
        self.sites.iter().filter(|site| site.now > site.then)
    }

    /// The time between the two snapshots.
    pub fn between(&self) -> Duration {
        self.between
    }
}

impl SiteGrowth {
    /// Threads or tasks.
    pub fn kind(&self) -> LeakKind {
        self.kind
    }

    /// Where they were spawned (see [`SiteGroup::site`](super::SiteGroup::site)).
    pub fn site(&self) -> Option<&Frame> {
        self.site.as_ref()
    }

    /// Where their spawner was spawned.
    pub fn parent_site(&self) -> Option<&Frame> {
        self.parent.as_ref()
    }

    /// Threads: their names (at most eight).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// How many were alive in the earlier snapshot.
    pub fn then(&self) -> usize {
        self.then
    }

    /// How many are alive in the later one.
    pub fn now(&self) -> usize {
        self.now
    }

    /// How many of those alive now were alive then too.
    pub fn survivors(&self) -> usize {
        self.survivors
    }

    /// How many of the survivors did not run at all in between (a task not polled, a
    /// thread not woken and using no CPU): stuck, if the time between was long.
    pub fn idle(&self) -> usize {
        self.idle
    }

    /// `now - then`, negative when the site shrank.
    pub fn change(&self) -> i64 {
        i64::try_from(self.now).unwrap_or(i64::MAX) - i64::try_from(self.then).unwrap_or(i64::MAX)
    }
}
