//! Who spawned a leak: the parent thread or task, the test behind it (by its whole name),
//! and what the process keeps on purpose (an initialiser's, a blocking pool's).

use super::*;

/// Functions of one-time initialisers: a thread started inside one is started once for
/// the whole process (a static's, a `OnceLock`'s, a `lazy_static`'s).
pub(super) const INITIALISERS: &[&str] = &[
    "std::sync::once::Once::call_once",
    "std::sync::poison::once::Once::call_once",
    "std::sync::once_lock::OnceLock<T>::",
    "std::sync::lazy_lock::LazyLock<T,F>::force",
    "once_cell::",
    "lazy_static::",
];

/// Whether a thread was started inside a one-time initialiser.
pub(super) fn started_by_an_initialiser(spawn_path: &[Frame]) -> bool {
    spawn_path.iter().any(|frame| {
        frame.function().is_some_and(|function| {
            INITIALISERS
                .iter()
                .any(|initialiser| function.contains(initialiser))
        })
    })
}

/// A thread started by a one-time initialiser is kept for the process only if it waits
/// (stuck, or on a timer): one that runs or is woken is doing work, and the usual words fit.
pub(super) fn mark_what_is_kept_for_the_process(leaks: &mut [Leak]) {
    for leak in leaks {
        let waits = leak.activity.is_some_and(|activity| {
            matches!(
                activity.kind(),
                ActivityKind::Stuck | ActivityKind::WaitingOnATimer
            )
        });
        if !waits {
            leak.notes.retain(|note| *note != Note::KeptForTheProcess);
        }
    }
}

/// Whether tokio started the thread for a `spawn_blocking` call (the pool starts a thread
/// on the caller's stack when none is idle).
pub(super) fn spawned_by_spawn_blocking(frames: &[Frame]) -> bool {
    frames.iter().any(|frame| {
        frame
            .function()
            .is_some_and(|function| function.contains("blocking::pool::Spawner::spawn_blocking"))
    })
}

/// For a thread of tokio's blocking pool (its current stack runs the pool's loop), the
/// user's closure it runs now: the outermost of the user's frames on its stack.
pub(super) fn blocking_pool_closure(stack: &[Frame]) -> Option<Frame> {
    let in_pool = stack.iter().any(|frame| {
        frame
            .function()
            .is_some_and(|function| function.contains("runtime::blocking::pool::Inner::run"))
    });
    in_pool
        .then(|| frames::user_frames(stack).last().cloned())
        .flatten()
}

/// Whether a spawn path is the one that submitted `closure`: its frames include the
/// function the closure is defined in.
pub(super) fn spawned_for(spawn_backtrace: &[Frame], closure: &Frame) -> bool {
    let Some(defined_in) = closure
        .function()
        .and_then(|function| function.strip_suffix("::{{closure}}"))
    else {
        return false;
    };
    spawn_backtrace
        .iter()
        .any(|frame| frame.function() == Some(defined_in))
}

/// The spawning task, if a task spawned the thread; else the spawning thread, when it
/// belongs to the same scope (the test thread itself is not worth a line).
pub(super) fn parent_thread(origin: &ThreadOrigin) -> Option<SpawnedBy> {
    if let Some(task) = origin.spawning_task {
        return Some(parent_task(task));
    }
    spawner_thread(&*origin.parent()?, origin.scope)
}

/// A thread that spawned something of `scope`, when it is of the same scope and not the
/// test's own thread: `thread 812 "spawner" (exited), itself spawned at ...`.
pub(super) fn spawner_thread(spawner: &ThreadOrigin, scope: ScopeId) -> Option<SpawnedBy> {
    if spawner.scope != scope || is_libtest_thread(spawner) {
        return None;
    }
    let site = frames::user_frames(&frames::resolve_spawn(spawner.spawn.unwind()))
        .into_iter()
        .next();
    Some(SpawnedBy::Thread {
        tid: spawner.tid(),
        name: spawner.name(),
        site,
        alive: spawner.tid().is_some_and(threads::is_alive),
    })
}

/// For a thread outside every scope, the plain `#[test]` that spawned it, directly or
/// through other threads: libtest runs each test on a thread named after it, which it
/// spawns from the main thread (so the hook saw no parent) in `test::run_test`.
pub(super) fn spawning_test(origin: &ThreadOrigin) -> Option<String> {
    let root = origin.root.as_deref()?;
    let name = is_libtest_thread(root).then(|| root.name()).flatten()?;
    Some(whole_test_name(&name, &origin.spawn, Some(origin)).unwrap_or(name))
}

/// The whole name of the test whose thread is named `name` where the kernel cut it to its
/// 15 bytes (preloaded, leakcheck's std cannot read the test's own thread handle), from the
/// test's function on the spawn path `spawn`, or on that of `thread` or a thread between it
/// and the test: libtest names a test by its function's path without the crate.
pub(super) fn whole_test_name(
    name: &str,
    spawn: &SpawnStack,
    thread: Option<&ThreadOrigin>,
) -> Option<String> {
    const KERNEL_NAME_BYTES: usize = 15;
    if name.len() != KERNEL_NAME_BYTES {
        return None;
    }
    let test_of = |frames: Vec<Frame>| {
        frames.iter().find_map(|frame| {
            let function = frame.function()?.split("::{{closure}}").next()?;
            let (_crate, path) = function.split_once("::")?;
            path.starts_with(name).then(|| path.to_owned())
        })
    };
    let on_the_path = |spawn: &SpawnStack| {
        let ips = spawn.unwind();
        frames::names(ips)
            .and_then(test_of)
            .or_else(|| test_of(frames::resolve_spawn(ips)))
    };
    if let Some(found) = on_the_path(spawn) {
        return Some(found);
    }
    let mut next = thread.and_then(ThreadOrigin::parent);
    while let Some(between) = next {
        if let Some(found) = on_the_path(&between.spawn) {
            return Some(found);
        }
        next = between.parent();
    }
    None
}

pub(super) fn is_libtest_thread(thread: &ThreadOrigin) -> bool {
    let runs_tests = |frames: Vec<Frame>| {
        frames.iter().any(|frame| {
            frame
                .function()
                .is_some_and(|function| function.starts_with("test::run_test"))
        })
    };
    // The symbol table's names first, at no cost; the debug info (the C library's too, on
    // this path) only where they do not tell: `run_test` may be inlined.
    let ips = thread.spawn.unwind();
    thread.is_root()
        && (frames::names(ips).is_some_and(runs_tests) || runs_tests(frames::resolve_spawn(ips)))
}

/// Whether a spawn backtrace is cut short before the test harness: a copy that ends past
/// the harness lost nothing a report shows.
pub(super) fn cut_short(spawn: &SpawnStack) -> bool {
    spawn.cut_short() && !frames::reaches_the_harness(&frames::resolve(spawn.unwind()))
}
