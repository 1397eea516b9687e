//! A leaked task, described: its id, spawn site and where it awaits (a tokio task dump).

use super::*;

/// A task: tokio's spawn location (with the function, when a backtrace was recorded), its
/// parent, and where it awaits from the runtime's dump when there is one.
pub(super) fn task_leak(origin: &LiveTask, awaiting: Option<&Awaiting>) -> Leak {
    let spawn_backtrace = frames::user_frames(&frames::resolve_spawn(origin.spawn_ips()));
    let (note, awaiting) = match awaiting {
        Some(Ok(dump)) => match dump.get(&origin.id) {
            Some(frames) if !frames.is_empty() => (None, frames.clone()),
            Some(_) => (Some(Note::AwaitingUntraceable), Vec::new()),
            None => (Some(Note::NotInTheDump), Vec::new()),
        },
        Some(Err(why)) => (Some(Note::AwaitingUnknown(why)), Vec::new()),
        None => (None, Vec::new()),
    };
    Leak {
        identity: Identity::Task {
            id: task_number(origin.id),
        },
        owner: owner(origin.scope),
        spawn_site: Some(frames::location_frame(
            origin.spawned_at,
            spawn_backtrace.first(),
        )),
        spawn_backtrace,
        backtrace_recorded: origin.spawn.is_some(),
        spawned_by: origin.parent.map(parent_task),
        notes: note.into_iter().collect(),
        awaiting,
        ..Leak::known_only_by(Identity::Task { id: 0 })
    }
}

/// tokio's task ids display as their number.
pub(super) fn task_number(id: tokio::task::Id) -> u64 {
    id.to_string().parse().unwrap_or(0)
}

/// The spawning task: `task 7 (finished), itself spawned at tests/tasks.rs:40:5`.
pub(super) fn parent_task(TaskRef { id, spawned_at }: TaskRef) -> SpawnedBy {
    SpawnedBy::Task {
        id: task_number(id),
        site: frames::location_frame(spawned_at, None),
        alive: registry::task_alive(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_read_as_their_number() {
        // `Identity::Task` holds the number tokio's `Id` displays; a format change must fail
        // here, not turn every id into 0.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let id = runtime.block_on(async { tokio::spawn(async {}).id() });
        assert_ne!(task_number(id), 0);
        assert_eq!(task_number(id).to_string(), id.to_string());
    }
}
