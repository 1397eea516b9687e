//! The JSON record: one object per line, appended to `LEAKCHECK_REPORT` for every
//! leak-checked test (clean ones too), every `verify_none*` call and the exit check of
//! `verify_test_main!`; what `cargo leakcheck` reads back and sums up.
//!
//! Parallel tests, and nextest's parallel processes, write whole lines: each line is one
//! `write` to a file opened for appending, under an exclusive `flock`. A line is at most
//! 64 KiB: groups that do not fit are counted in [`Record::omitted`].
//!
//! ```json
//! {"schema_version":2,"check":"test","binary":"threads","test":"leaks_thread_blocked_on_channel",
//!  "outcome":"leaked","mode":"fail","test_passed":true,"waited_ms":502,"ended":null,
//!  "groups":[{"kind":"thread","count":1,"ids":[20311],"names":["channel-waiter"],"owner":null,
//!    "spawn":{"function":"threads::leaks_thread_blocked_on_channel::{{closure}}",
//!             "file":"tests/threads.rs","line":22,"column":10},
//!    "spawned_by":null,"state":"sleeping, blocked in futex (a lock, condvar, channel or join)",
//!    "spawn_backtrace":[...],"current_stack":[...],"awaiting":[],
//!    "ignore_rules":["ignore_thread = \"channel-waiter\"","ignore_spawn = \"threads::leaks_thread_blocked_on_channel\""],
//!    "test_thread":false,"woken_during_grace":0,"activity":"stuck"}],
//!  "omitted":null}
//! ```
//!
//! # Versions
//!
//! [`SCHEMA_VERSION`] changes only when a field changes meaning or goes away. New fields
//! and new values of an enum are additions: a reader ignores fields it does not know, and
//! reads an enum value it does not know as `Unknown`. Version 2 replaced version 1's
//! `leaks[]` (one object per leak) with `groups[]` (one object per group of identical
//! leaks, with `count` and `ids`).
//!
//! With the `serde` feature, every type here derives `Serialize` and `Deserialize` to
//! exactly the text [`Record::to_json`] writes.

use crate::json::{Object, ToJson};

/// The version of the line format; see the module's docs, "Versions".
pub const SCHEMA_VERSION: u32 = 2;

/// One check's result: one line of the report file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Record {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Which kind of check this was.
    pub check: Check,
    /// The test binary's name without cargo's hash (`threads`), so that tests of two
    /// binaries that share a name stay two tests in a merged report.
    #[cfg_attr(feature = "serde", serde(default))]
    pub binary: Option<String>,
    /// The test's full name (for `verify_none`, the scope's name); `None` for the exit
    /// check and a process-wide call.
    pub test: Option<String>,
    /// Whether anything leaked.
    pub outcome: Outcome,
    /// What the leaks did to the test.
    pub mode: Mode,
    /// Whether the test passed on its own, before leaks were considered; `None` at exit.
    pub test_passed: Option<bool>,
    /// How long the leaks outlived the test body, in milliseconds (0 when clean).
    pub waited_ms: u64,
    /// Why the process was ended with this record, if it was.
    pub ended: Option<Ended>,
    /// Identical leaks, one group each, biggest first.
    #[cfg_attr(feature = "serde", serde(default))]
    pub groups: Vec<Group>,
    /// What was left out to keep the line under 64 KiB.
    pub omitted: Option<Omitted>,
}

/// Which kind of check a record is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Check {
    /// A `#[leakcheck::test]`.
    Test,
    /// A `verify_none*` (or `find`) call from code.
    VerifyNone,
    /// `verify_test_main!`'s check when the test binary exits.
    Exit,
    /// A kind this reader does not know (a later writer's).
    #[cfg_attr(feature = "serde", serde(other))]
    Unknown,
}

/// Whether a check found anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Outcome {
    /// Nothing leaked.
    Clean,
    /// Something leaked.
    Leaked,
    /// A value this reader does not know.
    #[cfg_attr(feature = "serde", serde(other))]
    Unknown,
}

/// What a leak does to its test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Mode {
    /// It fails the test (`LEAKCHECK=fail`, the default).
    Fail,
    /// It is reported and the test passes (`LEAKCHECK=warn`, or `untracked_tasks = "warn"`
    /// for a test whose only leaks are task counts).
    Warn,
    /// A value this reader does not know.
    #[cfg_attr(feature = "serde", serde(other))]
    Unknown,
}

/// Why a check ended the process instead of failing a test that returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Ended {
    /// The test's runtime thread was stuck inside one of its tasks.
    Stalled,
    /// The test body did not return within its `timeout`.
    TimedOut,
    /// A value this reader does not know.
    #[cfg_attr(feature = "serde", serde(other))]
    Unknown,
}

/// What was left out of a line to keep it bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Omitted {
    /// Groups left out.
    pub groups: u64,
    /// Leaks in them.
    pub leaks: u64,
}

/// Leaks a reader cannot tell apart but by their ids: same kind, spawn site, spawner and
/// place they are stuck.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Group {
    /// What leaked.
    pub kind: Kind,
    /// How many.
    pub count: u64,
    /// Thread ids or task ids, sorted, the first 64.
    #[cfg_attr(feature = "serde", serde(default))]
    pub ids: Vec<u64>,
    /// How many ids were left out of `ids`; absent when none were.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub ids_omitted: Option<u64>,
    /// Threads: their names, in id order, the first 16; absent for other kinds.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub names: Option<Vec<String>>,
    /// The owning scope or test, where the report names one (the exit check's plain
    /// `#[test]`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub owner: Option<String>,
    /// The spawn site: the user's frame that spawned it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub spawn: Option<Frame>,
    /// The thread or task that spawned it, as the report says it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub spawned_by: Option<String>,
    /// What it is doing now, as the report says it (a thread's OS state, notes).
    #[cfg_attr(feature = "serde", serde(default))]
    pub state: Option<String>,
    /// The spawn backtrace, the user's frames, innermost first.
    #[cfg_attr(feature = "serde", serde(default))]
    pub spawn_backtrace: Vec<Frame>,
    /// A thread's current stack, innermost first.
    #[cfg_attr(feature = "serde", serde(default))]
    pub current_stack: Vec<Frame>,
    /// A task's await trace, innermost first.
    #[cfg_attr(feature = "serde", serde(default))]
    pub awaiting: Vec<Frame>,
    /// The rules that would silence the group, as `leakcheck.toml` lines (and
    /// `#[leakcheck::test(..)]` arguments, the same text but for a control character).
    #[cfg_attr(feature = "serde", serde(default))]
    pub ignore_rules: Vec<String>,
    /// The same rules as data: which key, which pattern.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rules: Vec<RuleRecord>,
    /// Whether it is the test's own thread (a stuck test), not a leak.
    #[cfg_attr(feature = "serde", serde(default))]
    pub test_thread: bool,
    /// How many times it was woken during the grace period; `None` where not watched.
    #[cfg_attr(feature = "serde", serde(default))]
    pub woken_during_grace: Option<u64>,
    /// What it did during the grace period; `None` where not watched.
    #[cfg_attr(feature = "serde", serde(default))]
    pub activity: Option<Activity>,
    /// A thread's CPU time during the grace period, in milliseconds; `None` where not
    /// watched or not a thread.
    #[cfg_attr(feature = "serde", serde(default))]
    pub cpu_ms: Option<u64>,
    /// How long it was watched, in milliseconds (less than the grace period where a test's
    /// runtime shutdown spent some of it); `None` where not watched.
    #[cfg_attr(feature = "serde", serde(default))]
    pub watched_ms: Option<u64>,
    /// A process: its pid (the lowest of the group's, which `ids` lists); absent for other
    /// kinds.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub pid: Option<u64>,
    /// A process: its command line, one string (arguments joined by spaces, one holding
    /// whitespace in single quotes, at most 200 bytes with `…`); absent for other kinds.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub command: Option<String>,
    /// A process: its own live descendants, listed with it, not counted as leaks.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub descendants: Option<Vec<ProcessRecord>>,
    /// A process: which of the test's output streams it still holds open (`stdout`,
    /// `stderr`), which keeps whoever reads them waiting for their end.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub holds: Option<Vec<String>>,
    /// An orphan: the process the test started that it descends from, which has exited.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub orphan_of: Option<ProcessRecord>,
    /// A process that exited and was never waited for (a zombie): reported, and by default
    /// not failed.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub zombie: Option<bool>,
    /// A process leakcheck ended after the report (`kill_leaked_processes`).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub killed: Option<bool>,
    /// A lost panic: its message and where it panicked.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub panic: Option<PanicRecord>,
}

/// A process, as a record names it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProcessRecord {
    /// Its process id.
    pub pid: u64,
    /// Its command line, as [`Group::command`] writes one.
    #[cfg_attr(feature = "serde", serde(default))]
    pub command: Option<String>,
}

/// A panic that ended a thread and that nobody observed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PanicRecord {
    /// The panic's message: its payload when a string, `Box<dyn Any>` for another payload
    /// (as std's hook prints it); absent where leakcheck could not read it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub message: Option<String>,
    /// Where it panicked, `file:line:column`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub location: Option<String>,
}

/// A rule, as data: the key of `leakcheck.toml` (and of the attribute) and its pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RuleRecord {
    /// `ignore_thread`, `ignore_spawn` or `ignore_top`.
    pub key: String,
    /// The glob or substring, unescaped.
    pub pattern: String,
}

impl RuleRecord {
    /// The rule this record holds, checked by the grammar; `None` for a key this reader
    /// does not know, or a pattern the grammar refuses.
    pub fn rule(&self) -> Option<crate::rules::Rule> {
        crate::rules::RuleKind::from_key(&self.key)?
            .parse(&self.pattern)
            .ok()
    }
}

impl From<&crate::rules::Rule> for RuleRecord {
    fn from(rule: &crate::rules::Rule) -> RuleRecord {
        RuleRecord {
            key: rule.kind().key().to_owned(),
            pattern: rule.pattern().to_owned(),
        }
    }
}

/// What leaked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Kind {
    /// An OS thread.
    Thread,
    /// A tokio task.
    Task,
    /// Tasks counted without tokio's task hooks (no `--cfg tokio_unstable`).
    UntrackedTasks,
    /// A child process.
    Process,
    /// A panic that ended a thread of the test and that nobody observed.
    LostPanic,
    /// A kind this reader does not know.
    #[default]
    #[cfg_attr(feature = "serde", serde(other))]
    Unknown,
}

/// What a leak did during the grace period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Activity {
    /// Not woken, no timer pending: nothing it waits for happened.
    Stuck,
    /// Woken, or waiting on a timer: a loop or a timer keeps it going.
    Active,
    /// Never woken, yet on a CPU: a loop that never waits.
    Busy,
    /// A value this reader does not know.
    #[cfg_attr(feature = "serde", serde(other))]
    Unknown,
}

/// A frame of a backtrace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Frame {
    /// The function's path, without its hash.
    #[cfg_attr(feature = "serde", serde(default))]
    pub function: Option<String>,
    /// The source file, relative to the test crate's directory when it lies below it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub file: Option<String>,
    /// The line in `file`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub line: Option<u32>,
    /// The column in `file`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub column: Option<u32>,
}

macro_rules! words {
    ($($type:ty { $($variant:ident => $word:literal),* $(,)? })*) => {$(
        impl $type {
            /// The word the record uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$type>::$variant => $word,)*
                }
            }
        }

        impl ToJson for $type {
            fn write_json(&self, out: &mut String) {
                self.as_str().write_json(out);
            }
        }
    )*};
}

words! {
    Check { Test => "test", VerifyNone => "verify_none", Exit => "exit", Unknown => "unknown" }
    Outcome { Clean => "clean", Leaked => "leaked", Unknown => "unknown" }
    Mode { Fail => "fail", Warn => "warn", Unknown => "unknown" }
    Ended { Stalled => "stalled", TimedOut => "timed_out", Unknown => "unknown" }
    Kind {
        Thread => "thread",
        Task => "task",
        UntrackedTasks => "untracked_tasks",
        Process => "process",
        LostPanic => "lost_panic",
        Unknown => "unknown",
    }
    Activity { Stuck => "stuck", Active => "active", Busy => "busy", Unknown => "unknown" }
}

impl ToJson for Frame {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("function", &self.function)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("column", &self.column)
            .end();
    }
}

impl ToJson for RuleRecord {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("key", &self.key)
            .field("pattern", &self.pattern)
            .end();
    }
}

impl ToJson for ProcessRecord {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("pid", &self.pid)
            .field("command", &self.command)
            .end();
    }
}

impl ToJson for PanicRecord {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("message", &self.message)
            .field("location", &self.location)
            .end();
    }
}

impl ToJson for Omitted {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("groups", &self.groups)
            .field("leaks", &self.leaks)
            .end();
    }
}

impl ToJson for Group {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("kind", &self.kind)
            .field("count", &self.count)
            .field("ids", &self.ids)
            .field_if_some("ids_omitted", &self.ids_omitted)
            .field_if_some("names", &self.names)
            .field("owner", &self.owner)
            .field("spawn", &self.spawn)
            .field("spawned_by", &self.spawned_by)
            .field("state", &self.state)
            .field("spawn_backtrace", &self.spawn_backtrace)
            .field("current_stack", &self.current_stack)
            .field("awaiting", &self.awaiting)
            .field("ignore_rules", &self.ignore_rules)
            .field("rules", &self.rules)
            .field("test_thread", &self.test_thread)
            .field("woken_during_grace", &self.woken_during_grace)
            .field("activity", &self.activity)
            .field("cpu_ms", &self.cpu_ms)
            .field("watched_ms", &self.watched_ms)
            .field_if_some("pid", &self.pid)
            .field_if_some("command", &self.command)
            .field_if_some("descendants", &self.descendants)
            .field_if_some("holds", &self.holds)
            .field_if_some("orphan_of", &self.orphan_of)
            .field_if_some("zombie", &self.zombie)
            .field_if_some("killed", &self.killed)
            .field_if_some("panic", &self.panic)
            .end();
    }
}

impl ToJson for Record {
    fn write_json(&self, out: &mut String) {
        Object::start(out)
            .field("schema_version", &self.schema_version)
            .field("check", &self.check)
            .field("binary", &self.binary)
            .field("test", &self.test)
            .field("outcome", &self.outcome)
            .field("mode", &self.mode)
            .field("test_passed", &self.test_passed)
            .field("waited_ms", &self.waited_ms)
            .field("ended", &self.ended)
            .field("groups", &self.groups)
            .field("omitted", &self.omitted)
            .end();
    }
}

impl Record {
    /// The record as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        crate::json::to_string(self)
    }
}

impl Group {
    /// The group as JSON, as it appears in a record's `groups` (to measure a line's size
    /// before it is written).
    pub fn to_json(&self) -> String {
        crate::json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Record {
        let frame = |line| Frame {
            function: Some("threads::leaks::{{closure}}".into()),
            file: Some("tests/threads.rs".into()),
            line: Some(line),
            column: Some(10),
        };
        Record {
            schema_version: SCHEMA_VERSION,
            check: Check::Test,
            binary: Some("threads".into()),
            test: Some("leaks_thread_blocked_on_channel".into()),
            outcome: Outcome::Leaked,
            mode: Mode::Fail,
            test_passed: Some(true),
            waited_ms: 502,
            ended: Some(Ended::TimedOut),
            groups: vec![
                Group {
                    kind: Kind::Thread,
                    count: 2,
                    ids: vec![20311, 20312],
                    ids_omitted: Some(3),
                    names: Some(vec!["we\"ird\\name".into(), "pool-✓".into()]),
                    owner: None,
                    spawn: Some(frame(22)),
                    spawned_by: Some("thread 7 \"spawner\" (exited)".into()),
                    state: Some("sleeping, blocked in futex".into()),
                    spawn_backtrace: vec![frame(22), Frame::default()],
                    current_stack: vec![frame(23)],
                    awaiting: Vec::new(),
                    ignore_rules: vec!["ignore_thread = \"pool-*\"".into()],
                    rules: vec![RuleRecord {
                        key: "ignore_thread".into(),
                        pattern: "pool-*".into(),
                    }],
                    test_thread: false,
                    woken_during_grace: Some(0),
                    activity: Some(Activity::Stuck),
                    cpu_ms: Some(0),
                    watched_ms: Some(500),
                    ..Group::default()
                },
                Group {
                    kind: Kind::Process,
                    count: 1,
                    ids: vec![4242],
                    pid: Some(4242),
                    command: Some("sh -c 'sleep 600 & exit 0'".into()),
                    descendants: Some(vec![ProcessRecord {
                        pid: 4243,
                        command: Some("sleep 600".into()),
                    }]),
                    holds: Some(vec!["stdout".into()]),
                    zombie: Some(false),
                    ..Group::default()
                },
                Group {
                    kind: Kind::LostPanic,
                    count: 1,
                    panic: Some(PanicRecord {
                        message: Some("boom".into()),
                        location: Some("tests/panics.rs:9:5".into()),
                    }),
                    ..Group::default()
                },
                Group {
                    kind: Kind::UntrackedTasks,
                    count: 3,
                    ids: Vec::new(),
                    ids_omitted: None,
                    names: None,
                    owner: Some("a test".into()),
                    spawn: None,
                    spawned_by: None,
                    state: None,
                    spawn_backtrace: Vec::new(),
                    current_stack: Vec::new(),
                    awaiting: Vec::new(),
                    ignore_rules: Vec::new(),
                    rules: Vec::new(),
                    test_thread: false,
                    woken_during_grace: None,
                    activity: None,
                    cpu_ms: None,
                    watched_ms: None,
                    ..Group::default()
                },
            ],
            omitted: Some(Omitted {
                groups: 1,
                leaks: 7,
            }),
        }
    }

    #[test]
    fn the_writer_writes_one_line_of_json() {
        let line = sample().to_json();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["schema_version"], 2);
        assert_eq!(value["groups"][0]["names"][0], "we\"ird\\name");
        assert_eq!(value["groups"][0]["ids_omitted"], 3);
        assert!(value["groups"][3].get("names").is_none());
        assert!(value["groups"][3].get("ids_omitted").is_none());
        assert_eq!(value["ended"], "timed_out");
        assert_eq!(value["groups"][1]["kind"], "process");
        assert_eq!(value["groups"][1]["descendants"][0]["pid"], 4243);
        assert!(value["groups"][0].get("pid").is_none());
        assert_eq!(value["groups"][2]["panic"]["message"], "boom");
    }

    /// What the writer writes is what serde's derives read and write: one schema.
    #[test]
    #[cfg(feature = "serde")]
    fn a_record_round_trips_through_serde() {
        let record = sample();
        let line = record.to_json();
        let read: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(read, record);
        let by_serde = serde_json::to_value(&record).unwrap();
        let by_writer: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(by_writer, by_serde);
    }

    #[test]
    fn a_rule_record_reads_back_as_its_rule() {
        let rule = crate::rules::Rule::thread_named("we\"ird[1]");
        let record = RuleRecord::from(&rule);
        assert_eq!(record.rule(), Some(rule));
        let unknown = RuleRecord {
            key: "ignore_planet".into(),
            pattern: "mars".into(),
        };
        assert_eq!(unknown.rule(), None);
    }

    #[test]
    #[cfg(feature = "serde")]
    fn a_reader_ignores_what_it_does_not_know() {
        let line = sample()
            .to_json()
            .replace("\"kind\":\"thread\"", "\"kind\":\"submarine\",\"depth\":7")
            .replace(
                "\"check\":\"test\"",
                "\"check\":\"test\",\"new_field\":[1,2]",
            );
        let read: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(read.groups[0].kind, Kind::Unknown);
        assert_eq!(read.check, Check::Test);
    }
}
