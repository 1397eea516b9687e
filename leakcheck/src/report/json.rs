//! `LEAKCHECK_REPORT=path`: one JSON object per leak-checked test, one line each, appended.
//! Tests write from parallel threads of one process and, under nextest, from parallel
//! processes: each line goes out in a single `write` on a file opened for appending, under
//! an exclusive `flock`, so lines are never interleaved or torn. The schema is in the README;
//! `schema_version` changes when a field changes meaning or goes away.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::{Ending, Identity, Report, group};
use crate::config::Mode;
use crate::frames::Frame;

/// The version of the line format.
/// 2: leaks come as groups of identical leaks (`groups`, each with a `count` and `ids`)
/// where version 1 had one object per leak (`leaks`); lines are bounded (`omitted`).
pub(crate) const SCHEMA_VERSION: u32 = 2;

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

/// The most bytes of groups one line carries: with the rest of the line, under 64 KiB,
/// whatever leaks; what does not fit is counted in `omitted`.
const GROUPS_BUDGET: usize = 56 * 1024;

/// Ids and names listed per group before the rest are counted.
const IDS_LISTED: usize = 64;
const NAMES_LISTED: usize = 16;

impl Record<'_> {
    pub(crate) fn to_json(&self) -> Value {
        let Err(report) = self.found else {
            return self.line("clean", 0, Vec::new(), None, None);
        };
        let mut groups = Vec::new();
        let mut bytes = 0;
        let all = group::groups(&report.leaks);
        let mut omitted = (0, 0);
        for group in &all {
            let value = group_json(group);
            let size = value.to_string().len();
            if !groups.is_empty() && bytes + size > GROUPS_BUDGET {
                omitted = (omitted.0 + 1, omitted.1 + group.count());
                continue;
            }
            bytes += size;
            groups.push(value);
        }
        let omitted = (omitted.0 > 0).then(|| json!({"groups": omitted.0, "leaks": omitted.1}));
        let ended = report.ending.map(|ending| match ending {
            Ending::Stalled => "stalled",
            Ending::TimedOut(_) => "timed_out",
        });
        self.line("leaked", report.waited.as_millis(), groups, omitted, ended)
    }

    fn line(
        &self,
        outcome: &str,
        waited_ms: u128,
        groups: Vec<Value>,
        omitted: Option<Value>,
        ended: Option<&str>,
    ) -> Value {
        json!({
            "schema_version": SCHEMA_VERSION,
            "check": self.check,
            "binary": binary(),
            "test": self.test,
            "outcome": outcome,
            "mode": self.mode.as_str(),
            "test_passed": self.test_passed,
            "waited_ms": waited_ms,
            "ended": ended,
            "groups": groups,
            "omitted": omitted,
        })
    }
}

/// The test binary's name without cargo's hash (`threads-1a2b…` → `threads`): tests of two
/// binaries may share a name, and a merged report must tell them apart.
fn binary() -> Option<&'static str> {
    static BINARY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            let stem = exe.file_stem()?.to_str()?;
            Some(without_hash(stem).to_owned())
        })
        .as_deref()
}

/// `name-<16 hex digits>` → `name`; anything else as it is.
fn without_hash(stem: &str) -> &str {
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => stem,
    }
}

/// One group of identical leaks: their count and ids, and what the first says for all.
fn group_json(group: &group::Group<'_>) -> Value {
    let leak = group.first();
    let kind = match leak.identity {
        Identity::Thread { .. } => "thread",
        Identity::Task { .. } => "task",
        Identity::UntrackedTasks { .. } => "untracked_tasks",
    };
    let ids = group.ids();
    let names = group.names();
    let mut object = json!({
        "kind": kind,
        "count": group.count(),
        "ids": ids.iter().take(IDS_LISTED).collect::<Vec<_>>(),
        "owner": leak.owner,
        "spawn": leak.spawn_site.as_ref().map(frame),
        "spawned_by": leak.spawned_by,
        "state": leak.state,
        "spawn_backtrace": leak.spawn_backtrace.iter().map(frame).collect::<Vec<_>>(),
        "current_stack": leak.current_stack.iter().map(frame).collect::<Vec<_>>(),
        "awaiting": leak.awaiting.iter().map(frame).collect::<Vec<_>>(),
        "ignore_rules": group.ignore_rules(),
        "test_thread": leak.is_test_thread,
        "woken_during_grace": leak.woken_during_grace(),
        "activity": leak.is_stuck().map(|stuck| if stuck { "stuck" } else { "active" }),
    });
    if let Value::Object(object) = &mut object {
        if ids.len() > IDS_LISTED {
            object.insert("ids_omitted".into(), json!(ids.len() - IDS_LISTED));
        }
        if kind == "thread" {
            object.insert(
                "names".into(),
                json!(names.iter().take(NAMES_LISTED).collect::<Vec<_>>()),
            );
        }
    }
    object
}

pub(crate) fn frame(frame: &Frame) -> Value {
    json!({
        "function": frame.function(),
        "file": frame.file(),
        "line": frame.line(),
        "column": frame.column(),
    })
}

#[cfg(test)]
#[test]
fn a_binary_is_named_without_cargo_s_hash() {
    assert_eq!(without_hash("threads-0123456789abcdef"), "threads");
    assert_eq!(without_hash("my-tests-0123456789abcdef"), "my-tests");
    assert_eq!(without_hash("my-tests"), "my-tests");
    assert!(binary().is_some());
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
