//! What a look finds of the target's child processes: still running, orphans of them found
//! by their marker, zombies, and children started past every hook; less what the rules
//! ignore.

use super::{Look, Suspect, Target, spawn_ignored};
use crate::filter::Rules;
use crate::processes::{self, Child, Status, Unrecorded};
use crate::registry;
use crate::scope::PROCESS;
use crate::threads;

/// A child process a look found, with what it runs as the look read it.
#[derive(Clone)]
pub(crate) struct FoundProcess {
    pub(crate) child: Child,
    /// Its program, as its first argument names it.
    pub(crate) program: Option<String>,
    /// Its command line, as reports show it.
    pub(crate) command: Option<String>,
}

/// The child processes of `target` whose status `wanted` takes, less those the rules
/// ignore and the zombies of children this process signalled (being reaped, not leaked).
/// A target that started no process costs one look at the registry.
pub(super) fn alive_processes(
    target: Target,
    rules: &Rules<'_>,
    look: Look,
    wanted: impl Fn(Status) -> bool,
) -> Vec<Suspect> {
    let records = match target {
        Target::Scope(scope) => registry::processes_of(scope),
        Target::Process => registry::all_processes(),
        Target::Exit => registry::processes_of(PROCESS),
    };
    // Children started past every hook (`vfork`, `system()`) that still run: a scope's, by
    // its threads, where the kernel lists each thread's children (a file a thread: a clean
    // test's check reads its own thread's); the process's, all, when it has any child at all
    // (one system call, but one that visits every thread: not for each test's check).
    let past_the_hooks = wanted(Status::Running)
        && match target {
            Target::Scope(_) => processes::lists_thread_children(),
            Target::Process | Target::Exit => processes::has_children(),
        };
    if records.is_empty() && !past_the_hooks {
        return Vec::new();
    }
    let unrecorded = match target {
        _ if !past_the_hooks => Unrecorded::No,
        Target::Scope(scope) => {
            let mut tids: Vec<i32> = registry::threads_of(scope)
                .iter()
                .filter_map(|origin| origin.tid())
                .collect();
            tids.push(threads::current_tid());
            Unrecorded::OfThreads(tids)
        }
        Target::Process | Target::Exit => Unrecorded::OfTheProcess,
    };
    let mut found: Vec<FoundProcess> = processes::survey(&records, unrecorded)
        .into_iter()
        .filter(|child| wanted(child.status))
        .filter(|child| child.status != Status::Zombie || !processes::was_signalled(child.pid))
        .map(|child| {
            // An orphan's record is the child it came from, not its own.
            let origin = child
                .origin
                .as_deref()
                .filter(|_| child.status != Status::Orphan);
            let recorded = || processes::command_as_started(origin?);
            // A zombie has no command line left: the one it was started with, else the
            // kernel's short name.
            FoundProcess {
                program: processes::program_now(child.pid)
                    .or_else(|| processes::program_as_started(origin?)),
                command: processes::command_now(child.pid)
                    .or_else(recorded)
                    .or_else(|| processes::name_now(child.pid)),
                child,
            }
        })
        .collect();
    found.retain(|process| {
        let program = process.program.as_deref().unwrap_or_default();
        let command = process.command.as_deref().unwrap_or_default();
        if rules.ignores_process(program, command) {
            return false;
        }
        let origin = process.child.origin.as_deref();
        !(rules.has_spawn_rules()
            && origin.is_some_and(|origin| spawn_ignored(rules, origin.spawn.unwind(), look)))
    });
    found.sort_by_key(|process| process.child.pid);
    found.into_iter().map(Suspect::Process).collect()
}
