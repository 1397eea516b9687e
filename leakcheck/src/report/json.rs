//! `LEAKCHECK_REPORT=path`: one JSON object per leak-checked test, one line each, appended.
//! Tests write from parallel threads of one process and, under nextest, from parallel
//! processes: each line goes out in a single `write` on a file opened for appending, under
//! an exclusive `flock`, so lines are never interleaved or torn. The schema is in the README;
//! `schema_version` changes when a field changes meaning or goes away.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::{Identity, Leak, Report};
use crate::config::Mode;
use crate::frames::Frame;

/// The version of the line format.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// What one check found, for one JSON line.
pub(crate) struct Record<'a> {
    /// `"test"` for a test's own check, `"verify_none"` for a call from code, `"exit"` for
    /// `verify_test_main!`'s.
    pub(crate) check: &'static str,
    /// The test's full name (a call's scope name); `None` for the exit check and a
    /// process-wide call.
    pub(crate) test: Option<&'a str>,
    pub(crate) mode: Mode,
    /// Whether the test itself passed, before leaks were considered; `None` at exit.
    pub(crate) test_passed: Option<bool>,
    pub(crate) found: Result<(), &'a Report>,
}

impl Record<'_> {
    pub(crate) fn to_json(&self) -> Value {
        let (outcome, waited_ms, leaks) = match self.found {
            Ok(()) => ("clean", 0, Vec::new()),
            Err(report) => (
                "leaked",
                report.waited.as_millis(),
                report.leaks.iter().map(leak).collect(),
            ),
        };
        json!({
            "schema_version": SCHEMA_VERSION,
            "check": self.check,
            "test": self.test,
            "outcome": outcome,
            "mode": self.mode.as_str(),
            "test_passed": self.test_passed,
            "waited_ms": waited_ms,
            "leaks": leaks,
        })
    }
}

fn leak(leak: &Leak) -> Value {
    let mut object = json!({
        "owner": leak.owner,
        "spawn": leak.spawn_site.as_ref().map(frame),
        "spawned_by": leak.spawned_by,
        "state": leak.state,
        "spawn_backtrace": leak.spawn_backtrace.iter().map(frame).collect::<Vec<_>>(),
        "current_stack": leak.current_stack.iter().map(frame).collect::<Vec<_>>(),
        "awaiting": leak.awaiting.iter().map(frame).collect::<Vec<_>>(),
        "ignore_rules": leak.ignore_rules(),
    });
    let identity = match &leak.identity {
        Identity::Thread { tid, name } => json!({"kind": "thread", "tid": tid, "name": name}),
        Identity::Task { id } => json!({"kind": "task", "task_id": id}),
        Identity::UntrackedTasks { count } => json!({"kind": "untracked_tasks", "count": count}),
    };
    if let (Value::Object(object), Value::Object(identity)) = (&mut object, identity) {
        object.extend(identity);
    }
    object
}

fn frame(frame: &Frame) -> Value {
    json!({
        "function": frame.function(),
        "file": frame.file(),
        "line": frame.line(),
        "column": frame.column(),
    })
}

/// Appends `record` to `path` as one line.
pub(crate) fn append(path: &Path, record: &Record<'_>) -> std::io::Result<()> {
    let mut line = record.to_json().to_string();
    line.push('\n');
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let _lock = lock(&file)?;
    (&file).write_all(line.as_bytes())
}

/// An exclusive lock on the whole file, released on drop (and when the file is closed). The
/// guard borrows the file, so it cannot outlive the descriptor it unlocks.
#[cfg(unix)]
fn lock(file: &std::fs::File) -> std::io::Result<impl Drop + '_> {
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
    struct Locked<'a>(BorrowedFd<'a>);
    impl Drop for Locked<'_> {
        fn drop(&mut self) {
            // SAFETY: flock on a descriptor borrowed from an open file for the guard's life.
            unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
        }
    }
    let fd = file.as_fd();
    // SAFETY: flock on an open descriptor; it blocks until other writers are done.
    if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Locked(fd))
}

/// Elsewhere, the append mode alone keeps whole lines together for small writes.
#[cfg(not(unix))]
fn lock(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}
