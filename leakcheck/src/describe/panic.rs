//! A lost panic, described: the thread it ended, its message and who spawned the thread.

use super::*;

/// A lost panic: the thread it ended, where that thread was spawned, and the panic.
pub(super) fn lost_panic_leak(panic: LostPanic) -> Leak {
    let thread = &panic.thread;
    let spawn_backtrace = frames::user_frames(&frames::resolve_spawn(thread.spawn.unwind()));
    Leak {
        owner: owner(thread.scope).or_else(|| spawning_test(thread)),
        spawn_site: frames::spawn_site(&spawn_backtrace).cloned(),
        spawn_backtrace,
        spawn_backtrace_cut: cut_short(&thread.spawn),
        spawned_by: parent_thread(thread),
        panic: Some(PanicFacts {
            message: panic.message,
            location: panic.location,
            resumed: panic.resumed,
        }),
        ..Leak::known_only_by(Identity::LostPanic {
            tid: panic.tid,
            name: threads::name_of(Some(panic.tid), Some(thread)),
        })
    }
}
