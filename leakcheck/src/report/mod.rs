//! The report's facts: what a failed check hands back ([`Report`]), each [`Leak`] with who
//! owns it, where it was spawned, what it is doing now ([`OsState`], [`Activity`],
//! [`ProcessFacts`], [`PanicFacts`], ...) and the [`Rule`]s that would silence
//! it. [`Report`], [`Leak`] and [`LeakKind`] are at the crate root too.
//!
//! ```
//! use leakcheck::report::{Identity, ThreadState};
//!
//! fn describe(report: &leakcheck::Report) {
//!     for leak in report.leaks() {
//!         if let Identity::Thread { name, .. } = leak.identity() {
//!             let asleep = leak.os_state().map(|os| os.state()) == Some(ThreadState::Sleeping);
//!             println!("{name:?} asleep: {asleep}");
//!         }
//!     }
//! }
//! ```
//!
//! Inside: the facts (`facts`, `process`), the text a person reads in a CI log (`text`),
//! and the JSON lines a pipeline reads (`json`). Pure data: everything a report says was
//! decided when its leaks were described (`describe`), so `Display` is a function of the
//! fields alone, whatever the process's environment is when it is printed.

mod facts;
mod group;
pub(crate) mod json;
mod process;
mod rules;
mod text;

use std::fmt;
use std::time::Duration;

use leakcheck_schema::rules::Rule;

pub use crate::frames::Frame;
pub use facts::{
    Activity, ActivityKind, Note, OpenFile, OsState, SpawnedBy, SystemCall, ThreadState,
};
pub use leakcheck_schema::rules::RuleKind;
pub use process::{EndedBy, OutputStream, PanicFacts, ProcessFacts, ProcessRef};

/// What leaked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeakKind {
    /// An OS thread.
    Thread,
    /// A tokio task.
    Task,
    /// A child process (or a descendant of one).
    Process,
    /// A panic that ended a thread, and that nobody observed.
    LostPanic,
}

impl LeakKind {
    /// `thread`, `task`, `process`: the word reports use.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            LeakKind::Thread => "thread",
            LeakKind::Task => "task",
            LeakKind::Process => "process",
            LeakKind::LostPanic => "lost panic",
        }
    }
}

/// Which thread (or task) leaked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// An OS thread.
    #[non_exhaustive]
    Thread {
        /// The kernel thread id; `None` while the thread was still being created.
        tid: Option<i32>,
        /// The full name the thread gave itself, or the kernel's (15 bytes at most) for a
        /// thread leakcheck did not see start; `None` if it has none.
        name: Option<String>,
    },
    /// A tokio task, known by the hooks leakcheck installs under `--cfg tokio_unstable`.
    #[non_exhaustive]
    Task {
        /// tokio's task id, as `tokio::task::Id` displays it.
        id: u64,
    },
    /// Tasks a test's runtime still runs, counted but not told apart: without
    /// `--cfg tokio_unstable` tokio gives leakcheck the number, not the tasks.
    #[non_exhaustive]
    UntrackedTasks {
        /// How many.
        count: usize,
    },
    /// A child process the test started, or a descendant of one.
    #[non_exhaustive]
    Process {
        /// Its process id.
        pid: i32,
        /// Its command line as one string: the arguments joined by single spaces, one that
        /// holds whitespace in single quotes, at most 200 bytes (cut with `…`); the JSON
        /// record's `command` is the same string. `None` when the kernel keeps none and no
        /// hook saw it start.
        command: Option<String>,
    },
    /// The thread a lost panic ended.
    #[non_exhaustive]
    LostPanic {
        /// Its kernel thread id.
        tid: i32,
        /// Its full name, if it had one.
        name: Option<String>,
    },
}

impl Identity {
    /// How many threads or tasks this identity stands for.
    fn count(&self) -> usize {
        match self {
            Identity::UntrackedTasks { count } => *count,
            Identity::Thread { .. }
            | Identity::Task { .. }
            | Identity::Process { .. }
            | Identity::LostPanic { .. } => 1,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Thread { tid, name } => {
                match tid {
                    Some(tid) => write!(f, "thread {tid}")?,
                    None => f.write_str("thread (still starting)")?,
                }
                match name {
                    Some(name) => write!(f, " {}", text::quoted(name)),
                    None => f.write_str(" <unnamed>"),
                }
            }
            Identity::Task { id } => write!(f, "task {id}"),
            Identity::UntrackedTasks { count: 1 } => {
                f.write_str("1 task still alive on the test's runtime")
            }
            Identity::UntrackedTasks { count } => {
                write!(f, "{count} tasks still alive on the test's runtime")
            }
            Identity::Process { pid, command } => ProcessRef {
                pid: *pid,
                command: command.clone(),
            }
            .fmt(f),
            Identity::LostPanic { tid, name } => {
                let thread = Identity::Thread {
                    tid: Some(*tid),
                    name: name.clone(),
                };
                write!(f, "lost panic in {thread}")
            }
        }
    }
}

/// One thread or task that outlived the check.
#[derive(Clone, Debug)]
pub struct Leak {
    pub(crate) identity: Identity,
    pub(crate) owner: Option<String>,
    pub(crate) spawn_site: Option<Frame>,
    pub(crate) spawn_backtrace: Vec<Frame>,
    /// Whether the spawn backtrace is cut short: the spawner's stack went on past what
    /// leakcheck kept of it at the spawn.
    pub(crate) spawn_backtrace_cut: bool,
    /// Whether a spawn backtrace was recorded at all: a task's is only with
    /// `LEAKCHECK_TASK_BACKTRACE=1`, and the report says so when it was not.
    pub(crate) backtrace_recorded: bool,
    pub(crate) spawned_by: Option<SpawnedBy>,
    pub(crate) os: Option<OsState>,
    pub(crate) notes: Vec<Note>,
    pub(crate) awaiting: Vec<Frame>,
    pub(crate) current_stack: Vec<Frame>,
    /// What it did during the grace period, where that was watched.
    pub(crate) activity: Option<Activity>,
    /// The test's own thread, shown where it is stuck when the test cannot return: not a
    /// leak, so no spawn site and no rule.
    pub(crate) is_test_thread: bool,
    /// For a process, what only processes have.
    pub(crate) process: Option<ProcessFacts>,
    /// For a lost panic, the panic.
    pub(crate) panic: Option<PanicFacts>,
}

impl Leak {
    /// A leak known by its identity alone: nothing of where it came from or what it does.
    pub(crate) fn known_only_by(identity: Identity) -> Leak {
        Leak {
            identity,
            owner: None,
            spawn_site: None,
            spawn_backtrace: Vec::new(),
            spawn_backtrace_cut: false,
            backtrace_recorded: true,
            spawned_by: None,
            os: None,
            notes: Vec::new(),
            awaiting: Vec::new(),
            current_stack: Vec::new(),
            activity: None,
            is_test_thread: false,
            process: None,
            panic: None,
        }
    }

    /// Thread, task, process or lost panic.
    pub fn kind(&self) -> LeakKind {
        match self.identity {
            Identity::Thread { .. } => LeakKind::Thread,
            Identity::Task { .. } | Identity::UntrackedTasks { .. } => LeakKind::Task,
            Identity::Process { .. } => LeakKind::Process,
            Identity::LostPanic { .. } => LeakKind::LostPanic,
        }
    }

    /// For a lost panic: its message and where it panicked.
    pub fn panic(&self) -> Option<&PanicFacts> {
        self.panic.as_ref()
    }

    /// For a child process: its descendants, the test's output it holds, the child it came
    /// from if it is an orphan, whether it is a zombie, and whether leakcheck ended it.
    pub fn process(&self) -> Option<&ProcessFacts> {
        self.process.as_ref()
    }

    /// Whether it is a child that exited and was never waited for: reported, and by
    /// default not failed (`zombies = "fail"` fails it).
    pub(crate) fn is_zombie(&self) -> bool {
        self.process.as_ref().is_some_and(|process| process.zombie)
    }

    /// Which one, by id and name.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The scope that owns it (a test's full name under `#[leakcheck::test]`), or `None`
    /// for what was spawned outside every scope or not seen being spawned.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The user's line that spawned it: for a thread the innermost frame of the spawn
    /// backtrace in the workspace's own code (a dependency's frame only when there is no
    /// other: a thread a library starts for you points at your call); for a thread of a
    /// pool that runs a closure or job of the user's, that closure; for a task the call to
    /// `tokio::spawn` (or `JoinSet::spawn`, `Builder::spawn`, ...) as tokio recorded it.
    pub fn spawn_site(&self) -> Option<&Frame> {
        self.spawn_site.as_ref()
    }

    /// The spawn backtrace, trimmed to the user's frames, innermost first.
    pub fn spawn_backtrace(&self) -> &[Frame] {
        &self.spawn_backtrace
    }

    /// Whether the spawn backtrace is cut short: the spawn was deeper than what leakcheck
    /// keeps of the spawner's stack, so its outer frames (the test's among them, perhaps)
    /// are missing, and the spawn site may be a dependency's frame.
    pub fn spawn_backtrace_cut(&self) -> bool {
        self.spawn_backtrace_cut
    }

    /// For a thread spawned by another thread of the same scope, or by a task, the spawner
    /// and where it was spawned itself.
    pub fn spawned_by(&self) -> Option<&SpawnedBy> {
        self.spawned_by.as_ref()
    }

    /// What the OS says a thread is doing (Linux): its state, the system call it is blocked
    /// in, the kernel function it waits in.
    pub fn os_state(&self) -> Option<&OsState> {
        self.os.as_ref()
    }

    /// What more the report says of it: why [`Leak::awaiting`] is empty, that a pool's
    /// thread runs a closure that has not returned, and so on.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// For a task, where it is awaiting now (from a tokio task dump, with leakcheck's
    /// `taskdump` feature): the tokio future it waits on, then the user's frames that
    /// await it, innermost first. Empty when unknown; then [`Leak::notes`] say why.
    pub fn awaiting(&self) -> &[Frame] {
        &self.awaiting
    }

    /// For a thread on Linux, where it is now: the function it is stopped in, the library
    /// call your code made (`Condvar::wait`, `thread::sleep`, ...), then your frames,
    /// innermost first. Captured when the report is made. Empty when unknown; then
    /// [`Leak::notes`] say why.
    pub fn current_stack(&self) -> &[Frame] {
        &self.current_stack
    }

    /// What it did during the grace period, where that was watched.
    pub fn activity(&self) -> Option<&Activity> {
        self.activity.as_ref()
    }

    /// How many times it was woken during the grace period (a thread's wake-ups, a task's
    /// polls), where that was watched: `Some(0)` and not waiting on a timer is a leak that
    /// can never end by itself.
    pub fn woken_during_grace(&self) -> Option<u64> {
        self.activity.map(|activity| activity.woken())
    }

    /// Whether it was stuck during the grace period (not woken, no timer pending, no CPU
    /// used), where that was watched.
    pub fn is_stuck(&self) -> Option<bool> {
        self.activity.map(|activity| activity.is_stuck())
    }

    /// The rules that would silence this leak, most precise first. Each prints as a line
    /// of `leakcheck.toml` (its `Display`) and as a `#[leakcheck::test(..)]` argument
    /// ([`Rule::attribute`]); [`Options`](crate::Options) takes the same pattern.
    pub fn ignore_rules(&self) -> Vec<Rule> {
        rules::of_leak(self)
    }
}

/// Why a report ends the process rather than fail a test that returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The test's check cannot run: the runtime's only thread, the test's, is blocked
    /// inside a task of its own.
    Stalled,
    /// The test body has not returned within its timeout.
    TimedOut(Duration),
}

/// Whose check this was.
#[derive(Clone, Debug)]
pub(crate) enum Subject {
    Scope(String),
    Process,
    /// `verify_test_main!`'s check when the test binary exits.
    Exit,
}

/// The leaks one check found. Its `Display` is the human report.
///
/// ```
/// use std::time::Duration;
///
/// let scope = leakcheck::Scope::enter_named("report demo");
/// let (stop, stopped) = std::sync::mpsc::channel::<()>();
/// std::thread::Builder::new()
///     .name("waits-for-stop".into())
///     .spawn(move || stopped.recv())
///     .unwrap();
/// let report = scope.find(&leakcheck::Options::new().grace(Duration::ZERO)).unwrap_err();
/// assert_eq!(report.scope(), Some("report demo"));
/// assert_eq!(report.leaks().len(), 1);
/// assert!(report.to_string().contains("\"waits-for-stop\""));
/// drop(stop); // the thread returns
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    pub(crate) subject: Subject,
    pub(crate) leaks: Vec<Leak>,
    pub(crate) waited: Duration,
    /// Set when the test cannot be returned from and the process ends with this report.
    pub(crate) ending: Option<Ending>,
}

impl Report {
    /// The leaks, in spawn order where it is known.
    pub fn leaks(&self) -> &[Leak] {
        &self.leaks
    }

    /// The scope that was checked (the test's full name), or `None` for a process-wide check.
    pub fn scope(&self) -> Option<&str> {
        match &self.subject {
            Subject::Scope(name) => Some(name),
            Subject::Process | Subject::Exit => None,
        }
    }

    /// How long the check waited for what it reports.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// One report of two checks of the same subject (a test's tasks, then its threads).
    pub(crate) fn merge(mut self, later: Report) -> Report {
        self.leaks.extend(later.leaks);
        self.waited = self.waited.max(later.waited);
        self
    }

    /// Whether every leak it holds is one that `warns` says only warns.
    pub(crate) fn only(&self, warns: impl Fn(&Leak) -> bool) -> bool {
        self.leaks.iter().all(warns)
    }

    /// The wait the headline reports: everything since the test body returned.
    pub(crate) fn waited_since(mut self, returned: std::time::Instant) -> Report {
        self.waited = returned.elapsed();
        self
    }
}

impl std::error::Error for Report {}

#[cfg(test)]
mod tests {
    //! Reports built by hand, printed whole: `Display` reads nothing but the data.
    use super::*;

    fn frame(function: &str, file: &str, line: u32) -> Frame {
        Frame::new(
            Some(function.into()),
            Some(file.into()),
            Some(line),
            Some(9),
        )
    }

    fn leak(identity: Identity) -> Leak {
        Leak::known_only_by(identity)
    }

    fn sleeping_in_futex() -> Option<OsState> {
        Some(OsState {
            state: ThreadState::Sleeping,
            blocked_in: Some(SystemCall {
                name: "futex",
                file: None,
            }),
            wchan: None,
            timed: false,
        })
    }

    fn report(subject: Subject, leaks: Vec<Leak>) -> String {
        Report {
            subject,
            leaks,
            waited: Duration::from_micros(501_400),
            ending: None,
        }
        .to_string()
    }

    #[test]
    fn a_test_whose_runtime_thread_is_stuck_in_a_task() {
        let mut text = Report {
            subject: test_scope(),
            leaks: vec![
                Leak {
                    is_test_thread: true,
                    os: sleeping_in_futex(),
                    current_stack: vec![frame("demo::stuck::{{closure}}", "tests/demo.rs", 9)],
                    ..leak(Identity::Thread {
                        tid: Some(11),
                        name: Some("pool_shuts_down".into()),
                    })
                },
                leak(Identity::Task { id: 2 }),
            ],
            waited: Duration::from_secs(5),
            ending: Some(Ending::Stalled),
        }
        .to_string();
        text.truncate(text.find("\ntask 2").unwrap());
        assert_eq!(
            text,
            "\
leakcheck: `pool_shuts_down` cannot be checked: its runtime's only thread, the test's, is \
blocked inside one of its tasks (5s after the test returned); it runs 1 task

thread 11 \"pool_shuts_down\": sleeping, blocked in futex
  the test's own thread, stuck here:
    demo::stuck::{{closure}} at tests/demo.rs:9:9
"
        );
    }

    fn test_scope() -> Subject {
        Subject::Scope("pool_shuts_down".into())
    }

    #[test]
    fn a_thread_leak() {
        let site = frame("demo::Pool::start", "tests/demo.rs", 22);
        let text = report(
            test_scope(),
            vec![Leak {
                owner: Some("pool_shuts_down".into()),
                spawn_site: Some(site.clone()),
                spawn_backtrace: vec![site, frame("demo::pool_shuts_down", "tests/demo.rs", 43)],
                os: sleeping_in_futex(),
                current_stack: vec![
                    Frame::new(Some("syscall".into()), None, None, None),
                    frame("demo::Pool::start::{{closure}}", "tests/demo.rs", 22),
                ],
                ..leak(Identity::Thread {
                    tid: Some(4242),
                    name: Some("pool-worker-0".into()),
                })
            }],
        );
        assert_eq!(
            text,
            "\
leakcheck: `pool_shuts_down` leaked 1 thread (still running 501ms after it returned)

thread 4242 \"pool-worker-0\": sleeping, blocked in futex
  spawned at tests/demo.rs:22:9
  current stack:
    syscall
    demo::Pool::start::{{closure}} at tests/demo.rs:22:9
  spawn backtrace:
    demo::Pool::start at tests/demo.rs:22:9
    demo::pool_shuts_down at tests/demo.rs:43:9
  to ignore it: ignore_thread = \"pool-worker-0\"  or  ignore_spawn = \"demo::Pool::start\"
"
        );
    }

    #[test]
    fn a_task_leak_spawned_by_a_task_without_a_recorded_backtrace() {
        let text = report(
            test_scope(),
            vec![Leak {
                spawn_site: Some(Frame::new(
                    None,
                    Some("tests/demo.rs".into()),
                    Some(68),
                    Some(25),
                )),
                backtrace_recorded: false,
                spawned_by: Some(SpawnedBy::Task {
                    id: 3,
                    site: Frame::new(None, Some("tests/demo.rs".into()), Some(62), Some(27)),
                    alive: false,
                }),
                awaiting: vec![
                    frame(
                        "tokio::sync::mpsc::chan::Rx<T,S>::recv",
                        "tokio-1.54.1/src/sync/mpsc/chan.rs",
                        308,
                    ),
                    frame(
                        "demo::Server::start::{{closure}}::{{closure}}",
                        "tests/demo.rs",
                        69,
                    ),
                ],
                ..leak(Identity::Task { id: 4 })
            }],
        );
        assert_eq!(
            text,
            "\
leakcheck: `pool_shuts_down` leaked 1 task (still running 501ms after it returned)

task 4
  spawned at tests/demo.rs:68:25
  spawned by task 3 (finished), itself spawned at tests/demo.rs:62:27
  awaiting now:
    tokio::sync::mpsc::chan::Rx<T,S>::recv at tokio-1.54.1/src/sync/mpsc/chan.rs:308:9
    demo::Server::start::{{closure}}::{{closure}} at tests/demo.rs:69:9
  spawn backtrace: not recorded (LEAKCHECK_TASK_BACKTRACE=1 records it)
  to ignore it: ignore_spawn = \"tests/demo.rs:68\"
"
        );
    }

    /// A recorded spawn backtrace that holds none of the user's frames says where it was cut
    /// rather than print nothing.
    #[cfg(tokio_unstable)]
    #[test]
    fn a_task_backtrace_without_a_frame_of_the_users_says_where_it_was_cut() {
        let text = report(
            test_scope(),
            vec![Leak {
                spawn_site: Some(Frame::new(
                    None,
                    Some("tests/demo.rs".into()),
                    Some(68),
                    Some(25),
                )),
                ..leak(Identity::Task { id: 4 })
            }],
        );
        assert!(
            text.contains(
                "\n  spawn backtrace: no frame of yours in the 40 KiB of the spawner's stack kept \
                 at the spawn (in a debug build tokio's spawn path keeps a copy of the future in \
                 each of its frames: a large future pushes your frames past it)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_stable_build_task_count_says_how_to_see_the_tasks() {
        let text = report(
            test_scope(),
            vec![leak(Identity::UntrackedTasks { count: 2 })],
        );
        assert_eq!(
            text,
            "\
leakcheck: `pool_shuts_down` leaked 2 tasks (still running 501ms after it returned)

2 tasks still alive on the test's runtime
  tokio tells leakcheck which tasks and where they were spawned only with `--cfg tokio_unstable`;
  add to .cargo/config.toml:
      [build]
      rustflags = [\"--cfg\", \"tokio_unstable\"]
  (or run RUSTFLAGS=\"--cfg tokio_unstable\" cargo test): then each task has its id and spawn
  line, and a rule in leakcheck.toml can silence a task that is meant to live.
  To live with such counts on this build, untracked_tasks = \"warn\" in leakcheck.toml (or
  LEAKCHECK_UNTRACKED_TASKS=warn) reports them without failing; it lets a new task leak of
  any test pass too (threads and identified tasks still fail).
"
        );
    }

    #[test]
    fn a_leak_with_no_frame_of_the_users() {
        let text = report(
            test_scope(),
            vec![Leak {
                owner: Some("pool_shuts_down".into()),
                ..leak(Identity::Thread {
                    tid: None,
                    name: None,
                })
            }],
        );
        assert_eq!(
            text,
            "\
leakcheck: `pool_shuts_down` leaked 1 thread (still running 501ms after it returned)

thread (still starting) <unnamed>
  spawned at: no frame of yours on the spawn path
"
        );
    }

    #[test]
    fn at_exit_each_leak_names_its_owner_or_says_it_has_none() {
        let text = report(
            Subject::Exit,
            vec![
                Leak {
                    owner: Some("plain_test_leaks".into()),
                    ..leak(Identity::Thread {
                        tid: Some(7),
                        name: Some("gate".into()),
                    })
                },
                leak(Identity::Thread {
                    tid: Some(8),
                    name: Some("from-main".into()),
                }),
            ],
        );
        assert_eq!(
            text,
            "\
leakcheck: 2 threads still running when the test binary exited (waited 501ms)

thread 7 \"gate\"
  owner: `plain_test_leaks`
  spawned at: no frame of yours on the spawn path
  to ignore it: ignore_thread = \"gate\"

thread 8 \"from-main\"
  owner: none (spawned outside every test: from main, a static initialiser or a C library helper)
  spawned: not seen (a C library helper, or a thread from before start-up)
  to ignore it: ignore_thread = \"from-main\"
"
        );
    }

    #[test]
    fn a_process_wide_check_counts_tasks_and_threads() {
        let text = report(
            Subject::Process,
            vec![
                leak(Identity::Task { id: 1 }),
                leak(Identity::Thread {
                    tid: Some(9),
                    name: None,
                }),
            ],
        );
        assert!(
            text.starts_with(
                "leakcheck: 1 task and 1 thread still running at the process-wide check (waited 501ms)\n"
            ),
            "{text}"
        );
        assert!(text.contains("  owner: none (spawned outside any leakcheck scope)\n"));
    }
}
