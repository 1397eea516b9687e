//! A leaked thread, described: its owner, spawn site, what the OS says it is doing, its
//! current stack and its pool's job, if any.

use super::*;

/// A thread: its spawn path resolved, what `/proc` says, its current stack (the one an
/// `ignore_top` rule already captured, else a fresh capture), its owner and spawner; for a
/// pool's thread, the closure or job it runs.
pub(super) fn thread_leak(
    tid: Option<i32>,
    origin: Option<&ThreadOrigin>,
    stack: Option<Vec<Frame>>,
    job: Option<PoolJob>,
) -> Leak {
    let all_frames = origin
        .map(|origin| frames::resolve_spawn(origin.spawn.unwind()))
        .unwrap_or_default();
    let mut spawn_backtrace = frames::user_frames(&all_frames);
    let mut spawn_backtrace_cut = origin.is_some_and(|origin| cut_short(&origin.spawn));
    let mut spawn_site = frames::spawn_site(&spawn_backtrace).cloned();
    let mut notes = Vec::new();
    // Read before the stack is captured: the capture's signal wakes the thread.
    let os = tid.and_then(threads::os_state).map(|thread| thread.os);
    let stack = match (stack, tid) {
        (Some(stack), _) => Some(Ok(stack)),
        (None, Some(tid)) => Some(threads::capture_stack(tid).map(|ips| frames::resolve(&ips))),
        (None, None) => None,
    };
    if let Some(job) = job {
        notes.push(Note::PoolJob { krate: job.krate });
        if let Some(frame) = pools::job_site(&job.frames) {
            notes.push(Note::SiteFromCurrentStack);
            spawn_site = Some(frame);
            // The pool grew for another job: the path of this one is its own frames.
            spawn_backtrace = job.frames;
            spawn_backtrace_cut = false;
        }
    } else if let Some(closure) = stack.as_ref().and_then(|stack| match stack {
        Ok(stack) => blocking_pool_closure(stack),
        Err(_) => None,
    }) {
        notes.push(Note::BlockingPoolClosure);
        // The pool runs a closure on whichever of its threads is idle: the thread's own
        // spawn path is then an earlier spawn's (or the runtime's start), so the closure
        // running now says where the work came from.
        if !spawned_for(&spawn_backtrace, &closure) {
            notes.push(Note::SiteFromCurrentStack);
            spawn_site = Some(closure);
        }
    } else if spawned_by_spawn_blocking(&all_frames) {
        notes.push(Note::BlockingPoolClosure);
    }
    // Panicking: its record says it unwinds, or its stack is in std's panic machinery.
    let in_a_panic = matches!(&stack, Some(Ok(stack)) if frames::is_panicking(stack));
    if in_a_panic || origin.is_some_and(ThreadOrigin::is_panicking) {
        notes.push(Note::PanicInProgress);
    }
    let current_stack = match stack {
        Some(Ok(stack)) => frames::shape_current_stack(&stack).shown,
        Some(Err(why)) => {
            notes.push(Note::CurrentStackNotCaptured(why));
            Vec::new()
        }
        None => Vec::new(),
    };
    if started_by_an_initialiser(&all_frames) {
        notes.push(Note::KeptForTheProcess);
    }
    Leak {
        identity: Identity::Thread {
            tid,
            name: threads::name_of(tid, origin),
        },
        owner: origin.and_then(|origin| owner(origin.scope).or_else(|| spawning_test(origin))),
        spawn_site,
        spawn_backtrace,
        spawn_backtrace_cut,
        spawned_by: origin.and_then(parent_thread),
        os,
        notes,
        current_stack,
        ..Leak::known_only_by(Identity::Thread {
            tid: None,
            name: None,
        })
    }
}
