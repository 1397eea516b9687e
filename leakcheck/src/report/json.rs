//! `LEAKCHECK_REPORT=path`: one JSON object per leak-checked test, one line each, appended.
//! Tests write from parallel threads of one process and, under nextest, from parallel
//! processes: each line goes out in a single `write` on a file opened for appending, under
//! an exclusive `flock`, so lines are never interleaved or torn. The schema is
//! `leakcheck_schema::record`, written by its own writer (no serde_json: see that crate).

use std::io::Write;
use std::path::Path;

use leakcheck_schema::record::{self, Group as GroupRecord, Kind, Outcome, Record};

use super::{ActivityKind, Ending, Identity, Report, group, text};
use crate::config::Mode;
use crate::frames::Frame;

/// What one check found, for one JSON line.
pub(crate) struct Line<'a> {
    pub(crate) check: record::Check,
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

impl Line<'_> {
    /// The record of this line.
    pub(crate) fn record(&self) -> Record {
        let mut record = Record {
            schema_version: record::SCHEMA_VERSION,
            check: self.check,
            binary: binary().map(str::to_owned),
            test: self.test.map(str::to_owned),
            outcome: Outcome::Clean,
            mode: match self.mode {
                Mode::Warn => record::Mode::Warn,
                Mode::Fail | Mode::Off => record::Mode::Fail,
            },
            test_passed: self.test_passed,
            waited_ms: 0,
            ended: None,
            groups: Vec::new(),
            omitted: None,
        };
        let Err(report) = self.found else {
            return record;
        };
        let mut bytes = 0;
        let mut omitted = record::Omitted {
            groups: 0,
            leaks: 0,
        };
        for group in &group::groups(&report.leaks) {
            let group_record = group_record(group);
            let size = group_record.to_json().len();
            if !record.groups.is_empty() && bytes + size > GROUPS_BUDGET {
                omitted.groups += 1;
                omitted.leaks += group.count() as u64;
                continue;
            }
            bytes += size;
            record.groups.push(group_record);
        }
        record.omitted = (omitted.groups > 0).then_some(omitted);
        record.outcome = Outcome::Leaked;
        record.waited_ms = u64::try_from(report.waited.as_millis()).unwrap_or(u64::MAX);
        record.ended = report.ending.map(|ending| match ending {
            Ending::Stalled => record::Ended::Stalled,
            Ending::TimedOut(_) => record::Ended::TimedOut,
        });
        record
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
fn group_record(group: &group::Group<'_>) -> GroupRecord {
    let leak = group.first();
    let kind = match leak.identity {
        Identity::Thread { .. } => Kind::Thread,
        Identity::Task { .. } => Kind::Task,
        Identity::UntrackedTasks { .. } => Kind::UntrackedTasks,
        Identity::Process { .. } => Kind::Process,
        Identity::LostPanic { .. } => Kind::LostPanic,
    };
    let ids = group.ids();
    let rules = super::rules::of_group(group);
    GroupRecord {
        kind,
        count: group.count() as u64,
        ids_omitted: (ids.len() > IDS_LISTED).then(|| (ids.len() - IDS_LISTED) as u64),
        ids: ids.into_iter().take(IDS_LISTED).collect(),
        names: matches!(kind, Kind::Thread | Kind::LostPanic).then(|| {
            group
                .names()
                .into_iter()
                .take(NAMES_LISTED)
                .map(str::to_owned)
                .collect()
        }),
        owner: leak.owner.clone(),
        spawn: leak.spawn_site.as_ref().map(frame),
        spawned_by: leak.spawned_by.as_ref().map(ToString::to_string),
        // The line the report prints after its identity (the typed facts are the API).
        state: text::state_line(leak),
        spawn_backtrace: leak.spawn_backtrace.iter().map(frame).collect(),
        current_stack: leak.current_stack.iter().map(frame).collect(),
        awaiting: leak.awaiting.iter().map(frame).collect(),
        ignore_rules: rules.iter().map(ToString::to_string).collect(),
        rules: rules.iter().map(record::RuleRecord::from).collect(),
        test_thread: leak.is_test_thread,
        woken_during_grace: leak.woken_during_grace(),
        activity: leak.activity.map(|activity| match activity.kind() {
            ActivityKind::Stuck => record::Activity::Stuck,
            ActivityKind::Busy { .. } => record::Activity::Busy,
            ActivityKind::WaitingOnATimer | ActivityKind::Woken { .. } => record::Activity::Active,
        }),
        cpu_ms: leak.activity.and_then(|activity| match activity.kind() {
            ActivityKind::Busy { cpu } | ActivityKind::Woken { cpu: Some(cpu), .. } => {
                Some(millis(cpu))
            }
            ActivityKind::Stuck if leak.kind() == super::LeakKind::Thread => Some(0),
            _ => None,
        }),
        watched_ms: leak.activity.map(|activity| millis(activity.watched())),
        panic: leak.panic.as_ref().map(|panic| record::PanicRecord {
            message: panic.message.clone(),
            location: panic.location.clone(),
        }),
        ..process_fields(leak)
    }
}

/// A process group's own fields: its first process's pid, command line, descendants, the
/// output it holds, the child it came from, and whether it is a zombie or was ended.
fn process_fields(leak: &super::Leak) -> GroupRecord {
    let (Identity::Process { pid, command }, Some(process)) = (&leak.identity, &leak.process)
    else {
        return GroupRecord::default();
    };
    let named = |process: &super::ProcessRef| record::ProcessRecord {
        pid: u64::try_from(process.pid).unwrap_or_default(),
        command: process.command.clone(),
    };
    GroupRecord {
        pid: u64::try_from(*pid).ok(),
        command: command.clone(),
        descendants: Some(process.descendants.iter().map(named).collect()),
        holds: Some(process.holds.iter().map(ToString::to_string).collect()),
        orphan_of: process.orphan_of.as_ref().map(named),
        zombie: Some(process.zombie),
        killed: process
            .ended
            .as_ref()
            .map(|ended| matches!(ended, super::EndedBy::Terminate | super::EndedBy::Kill)),
        ..GroupRecord::default()
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A frame as the records write it.
pub(crate) fn frame(frame: &Frame) -> record::Frame {
    record::Frame {
        function: frame.function().map(str::to_owned),
        file: frame.file().map(str::to_owned),
        line: frame.line(),
        column: frame.column(),
    }
}

#[cfg(test)]
#[test]
fn a_binary_is_named_without_cargo_s_hash() {
    assert_eq!(without_hash("threads-0123456789abcdef"), "threads");
    assert_eq!(without_hash("my-tests-0123456789abcdef"), "my-tests");
    assert_eq!(without_hash("my-tests"), "my-tests");
    assert!(binary().is_some());
}

/// Appends `line`'s record to `path` as one line.
pub(crate) fn append(path: &Path, line: &Line<'_>) -> std::io::Result<()> {
    let mut line = line.record().to_json();
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
