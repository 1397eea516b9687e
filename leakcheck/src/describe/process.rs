//! A leaked child process, described: its command, state, descendants, the output it holds
//! and who started it.

use super::*;

/// A child process: what it runs, its state, its descendants and what of the test's output
/// it holds, whom it descends from if it is an orphan, and its spawn path and spawner.
pub(super) fn process_leak(found: FoundProcess, target: Target) -> Leak {
    let FoundProcess {
        child,
        program,
        command,
    } = found;
    let origin = child.origin.as_deref();
    let zombie = child.status == Status::Zombie;
    let descendants = if zombie {
        Vec::new()
    } else {
        processes::descendants(child.pid)
    };
    let holds = processes::holds(child.pid, &descendants);
    let orphan_of = origin
        .filter(|_| child.status == Status::Orphan)
        .map(|origin| ProcessRef {
            pid: origin.pid,
            command: processes::command_as_started(origin),
        });
    let spawn_backtrace = origin
        .map(|origin| frames::user_frames(&frames::resolve_spawn(origin.spawn.unwind())))
        .unwrap_or_default();
    Leak {
        identity: Identity::Process {
            pid: child.pid,
            command,
        },
        owner: match (origin, target) {
            (Some(origin), _) => owner(origin.scope).or_else(|| process_spawning_test(origin)),
            (None, Target::Scope(scope)) => owner(scope),
            (None, Target::Process | Target::Exit) => None,
        },
        spawn_site: frames::spawn_site(&spawn_backtrace).cloned(),
        spawn_backtrace,
        spawn_backtrace_cut: origin.is_some_and(|origin| cut_short(&origin.spawn)),
        spawned_by: origin.and_then(process_spawner),
        os: (!zombie).then(|| processes::os_state(child.pid)).flatten(),
        process: Some(ProcessFacts {
            program,
            start_time: child.start_time,
            descendants,
            holds,
            orphan_of,
            zombie,
            ended: None,
        }),
        ..Leak::known_only_by(Identity::Process {
            pid: 0,
            command: None,
        })
    }
}

/// The task or thread of the same scope that started a child, when worth a line.
pub(super) fn process_spawner(origin: &ProcessOrigin) -> Option<SpawnedBy> {
    if let Some(task) = origin.spawning_task {
        return Some(parent_task(task));
    }
    spawner_thread(origin.spawner.as_deref()?, origin.scope)
}

/// For a child started outside every scope, the plain `#[test]` whose thread (or a thread
/// it spawned) started it.
pub(super) fn process_spawning_test(origin: &ProcessOrigin) -> Option<String> {
    let spawner = origin.spawner.as_deref()?;
    if is_libtest_thread(spawner) {
        let name = spawner.name()?;
        return Some(whole_test_name(&name, &origin.spawn, None).unwrap_or(name));
    }
    let name = spawning_test(spawner)?;
    Some(whole_test_name(&name, &origin.spawn, None).unwrap_or(name))
}
