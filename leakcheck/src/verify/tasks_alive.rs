//! What a look finds of the target's tasks: those leakcheck's hooks know, less what the
//! rules ignore.

use super::{Look, Suspect, Target, spawn_ignored};
use crate::filter::Rules;
use crate::frames;
use crate::registry;
use crate::scope::PROCESS;

pub(super) fn alive_tasks(target: Target, rules: &Rules<'_>, look: Look) -> Vec<Suspect> {
    let mut found = match target {
        Target::Scope(scope) => registry::tasks_of(scope),
        Target::Process => registry::all_tasks(),
        Target::Exit => registry::tasks_of(PROCESS),
    };
    if found.is_empty() {
        return Vec::new();
    }
    if rules.has_spawn_rules() {
        found.retain(|task| {
            // tokio's record of the spawn line needs no symbols: a `file:line` rule matches
            // it at every look.
            let line = frames::location_frame(task.spawned_at, None);
            if rules.ignores_spawn(std::slice::from_ref(&line)) {
                return false;
            }
            task.spawn.is_none() || !spawn_ignored(rules, task.spawn_ips(), look)
        });
    }
    found.sort_by_key(|origin| origin.id);
    found.into_iter().map(Suspect::Task).collect()
}
