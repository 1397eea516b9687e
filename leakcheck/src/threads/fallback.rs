//! Platforms without a thread spawn hook (non-Linux, Miri): nothing is tracked, and every
//! query answers "unknown". Tokio task checks do not depend on this module.

use super::OsThread;

pub(crate) const UNAVAILABLE: &str = "OS-thread leak checks need Linux: on this platform \
     thread spawns are not hooked, so threads are not checked";

pub(crate) fn current_tid() -> i32 {
    0
}

pub(crate) fn is_running(_tid: i32) -> bool {
    false
}

pub(crate) fn is_alive(_tid: i32) -> bool {
    false
}

pub(crate) fn list() -> Option<Vec<i32>> {
    None
}

pub(crate) fn os_state(_tid: i32) -> Option<OsThread> {
    None
}

pub(crate) fn release_current_thread() {}

pub(crate) fn counters(_tid: i32) -> Option<super::Counters> {
    None
}

pub(crate) fn capture_stack(_tid: i32) -> Result<Vec<usize>, &'static str> {
    Err("not captured (current stacks need Linux)")
}
