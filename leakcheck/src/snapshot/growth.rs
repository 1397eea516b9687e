//! Two snapshots compared site by site: what grew, and whether what was already there
//! then has run since (a site whose old members never run again is leaking them).

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use super::{Member, MemberId, Site, SiteGroup, Snapshot};

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
    site: Site,
    then: usize,
    now: usize,
    survivors: usize,
    idle: usize,
}

pub(super) fn between(earlier: &Snapshot, later: &Snapshot) -> Growth {
    let before: HashMap<String, &SiteGroup> = earlier
        .groups
        .iter()
        .map(|group| (group.site.key(), group))
        .collect();
    let mut sites: Vec<SiteGrowth> = later
        .groups
        .iter()
        .map(|group| {
            let then = before.get(&group.site.key()).copied();
            let (survivors, idle) =
                then.map_or((0, 0), |then| survivors(&then.members, &group.members));
            SiteGrowth {
                site: group.site.clone(),
                then: then.map_or(0, |then| then.count),
                now: group.count,
                survivors,
                idle,
            }
        })
        .collect();
    let present: HashSet<String> = sites.iter().map(|site| site.site.key()).collect();
    sites.extend(
        earlier
            .groups
            .iter()
            .filter(|group| !present.contains(&group.site.key()))
            .map(|group| SiteGrowth {
                site: group.site.clone(),
                then: group.count,
                now: 0,
                survivors: 0,
                idle: 0,
            }),
    );
    sites.sort_by(|a, b| {
        b.change()
            .cmp(&a.change())
            .then_with(|| b.now.cmp(&a.now))
            .then_with(|| a.site.key().cmp(&b.site.key()))
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
    /// The spawn site.
    pub fn site(&self) -> &Site {
        &self.site
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

impl Display for SiteGrowth {
    /// `tasks spawned at src/main.rs:61:9: 40 -> 80 (+40); 40 alive both times, 40 of them
    /// idle in between`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} -> {} ({:+})",
            self.site,
            self.then,
            self.now,
            self.change()
        )?;
        if self.survivors > 0 {
            write!(
                f,
                "; {} alive both times, {} of them idle in between",
                self.survivors, self.idle
            )?;
        }
        Ok(())
    }
}
