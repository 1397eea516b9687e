//! Platforms without the process hooks (non-Linux, a statically linked C library, Miri):
//! nothing is recorded, and every query answers "nothing".

use std::sync::Arc;

use super::{Child, Unrecorded};
use crate::registry::ProcessOrigin;
use crate::report::{EndedBy, OsState, OutputStream, ProcessRef};
use crate::scope::ScopeId;

pub(crate) fn survey(_records: &[Arc<ProcessOrigin>], _unrecorded: Unrecorded) -> Vec<Child> {
    Vec::new()
}

pub(crate) fn descendants(_pid: i32) -> Vec<ProcessRef> {
    Vec::new()
}

pub(crate) fn holds(_pid: i32, _descendants: &[ProcessRef]) -> Vec<OutputStream> {
    Vec::new()
}

pub(crate) fn was_signalled(_pid: i32) -> bool {
    false
}

pub(crate) fn end(_pid: i32, _start_time: u64, _descendants: &[ProcessRef]) -> EndedBy {
    EndedBy::NotEnded("processes are not tracked on this platform".to_owned())
}

pub(crate) fn look_at_ended_scopes() {}

pub(crate) fn forget_waited_for(_scope: ScopeId, _after_a_check: bool) {}

pub(crate) fn command_now(_pid: i32) -> Option<String> {
    None
}

pub(crate) fn command_as_started(_origin: &ProcessOrigin) -> Option<String> {
    None
}

pub(crate) fn program_as_started(_origin: &ProcessOrigin) -> Option<String> {
    None
}

pub(crate) fn os_state(_pid: i32) -> Option<OsState> {
    None
}

pub(crate) fn name_now(_pid: i32) -> Option<String> {
    None
}

pub(crate) fn program_now(_pid: i32) -> Option<String> {
    None
}

pub(crate) fn has_children() -> bool {
    false
}

pub(crate) fn lists_thread_children() -> bool {
    false
}

pub(crate) fn mark_the_process_level() {}
