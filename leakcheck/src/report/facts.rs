//! What a report says of a leak, as facts: the OS's state of a thread, what it did during the
//! grace period, who spawned it, and notes. Each has a `Display` that writes the report's
//! words; nothing decides from those words.

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use leakcheck_schema::duration::{self, round_to_ms};

use crate::frames::Frame;

/// What the OS says a thread is doing (Linux: `/proc/self/task/<tid>/{stat,syscall,wchan}`),
/// read when the report is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsState {
    pub(crate) state: ThreadState,
    pub(crate) blocked_in: Option<SystemCall>,
    pub(crate) wchan: Option<String>,
    pub(crate) timed: bool,
}

/// A thread's scheduling state, as `/proc/<pid>/stat` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThreadState {
    /// `R`: on a CPU, or ready to run.
    Running,
    /// `S`: waiting for something (a lock, I/O, a timer), woken by it.
    Sleeping,
    /// `D`: waiting in the kernel, not interruptible.
    UninterruptibleWait,
    /// `T`, `t`: stopped (a signal, a debugger).
    Stopped,
    /// `Z`: exited, not yet joined.
    Zombie,
    /// Any other letter.
    Other(char),
}

/// The system call a thread is blocked in, and the file it waits on when the call has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemCall {
    pub(crate) name: &'static str,
    pub(crate) file: Option<OpenFile>,
}

/// A file descriptor and what it is (`pipe:[7668]`, `socket:[123]`, a path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFile {
    pub(crate) fd: i64,
    pub(crate) target: String,
}

impl ThreadState {
    #[cfg(lc_thread_hook)]
    pub(crate) fn from_letter(letter: char) -> ThreadState {
        match letter {
            'R' => ThreadState::Running,
            'S' => ThreadState::Sleeping,
            'D' => ThreadState::UninterruptibleWait,
            'T' | 't' => ThreadState::Stopped,
            'Z' => ThreadState::Zombie,
            other => ThreadState::Other(other),
        }
    }
}

impl Display for ThreadState {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThreadState::Running => "running",
            ThreadState::Sleeping => "sleeping",
            ThreadState::UninterruptibleWait => "in uninterruptible wait",
            ThreadState::Stopped => "stopped",
            ThreadState::Zombie => "exited (zombie)",
            ThreadState::Other(_) => "in an unknown state",
        })
    }
}

impl OsState {
    /// Its scheduling state.
    pub fn state(&self) -> ThreadState {
        self.state
    }

    /// The system call it is blocked in, if it is.
    pub fn blocked_in(&self) -> Option<&SystemCall> {
        self.blocked_in.as_ref()
    }

    /// The kernel function it sleeps in (its wait channel), when the kernel tells.
    pub fn wchan(&self) -> Option<&str> {
        self.wchan.as_deref()
    }

    /// Whether the call it waits in has a timeout (a sleep, a timed wait): it wakes by
    /// itself.
    pub fn is_timed(&self) -> bool {
        self.timed
    }
}

/// `sleeping, blocked in futex (a lock, condvar, channel or join) (kernel: futex_do_wait)`
impl Display for OsState {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.state)?;
        if let Some(call) = &self.blocked_in {
            write!(f, ", blocked in {call}")?;
        }
        if let Some(wchan) = &self.wchan {
            write!(f, " (kernel: {wchan})")?;
        }
        Ok(())
    }
}

impl SystemCall {
    /// What the call is, in words (`futex (a lock, condvar, channel or join)`, `read`).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The file it waits on, for a call that takes one.
    pub fn file(&self) -> Option<&OpenFile> {
        self.file.as_ref()
    }
}

/// `futex (a lock, condvar, channel or join)`, `pipe read on fd 5 (pipe:[7668])`
impl Display for SystemCall {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.file {
            None => f.write_str(self.name),
            Some(file) => match file.kind() {
                Some(kind) => write!(
                    f,
                    "{kind} {} on fd {} ({})",
                    self.name, file.fd, file.target
                ),
                None => write!(f, "{} on fd {} ({})", self.name, file.fd, file.target),
            },
        }
    }
}

impl OpenFile {
    /// The descriptor.
    pub fn fd(&self) -> i64 {
        self.fd
    }

    /// What it is open on, as `/proc/self/fd` says (`?` when unknown).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `pipe` or `socket`, for those.
    fn kind(&self) -> Option<&str> {
        let (kind, _) = self.target.split_once(':')?;
        matches!(kind, "pipe" | "socket").then_some(kind)
    }
}

/// What a leak did while it was watched (from the check's first look that saw it to the
/// last): whether it can ever end is the first thing a reader asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activity {
    pub(crate) kind: ActivityKind,
    /// How long it was watched.
    pub(crate) watched: Duration,
    /// The grace period the check had: `watched` is less where a test's runtime shutdown
    /// spent some of it.
    pub(crate) grace: Duration,
}

/// What it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActivityKind {
    /// Not woken, no timer pending, no CPU used: nothing it waits for happened.
    Stuck,
    /// Not woken, waiting on a timer, which wakes it by itself.
    WaitingOnATimer,
    /// Woken this many times (a thread's wake-ups, a task's polls); `cpu`: the CPU time a
    /// thread used meanwhile.
    Woken {
        /// Times it was woken.
        times: u64,
        /// CPU time it used, for a thread.
        cpu: Option<Duration>,
    },
    /// Never woken, yet on a CPU: a loop that never waits (spinning at end of file, say).
    Busy {
        /// CPU time it used.
        cpu: Duration,
    },
}

impl Activity {
    /// What it did.
    pub fn kind(&self) -> ActivityKind {
        self.kind
    }

    /// How long it was watched.
    pub fn watched(&self) -> Duration {
        self.watched
    }

    /// Whether it was stuck: not woken, no timer, no CPU: it can never end by itself.
    pub fn is_stuck(&self) -> bool {
        self.kind == ActivityKind::Stuck
    }

    /// Times it was woken (0 when stuck, busy or on a timer).
    pub fn woken(&self) -> u64 {
        match self.kind {
            ActivityKind::Woken { times, .. } => times,
            ActivityKind::Stuck | ActivityKind::WaitingOnATimer | ActivityKind::Busy { .. } => 0,
        }
    }

    /// `during the 500ms grace period`, or how long of it the leak was watched.
    pub(crate) fn during(&self) -> String {
        let watched = duration::format(round_to_ms(self.watched));
        let grace = duration::format(round_to_ms(self.grace));
        // A few milliseconds short of the grace period is the backoff's last step.
        if self.watched + Duration::from_millis(5) >= self.grace {
            format!("during the {grace} grace period")
        } else {
            format!("during the {watched} it was watched (of the {grace} grace period)")
        }
    }

    /// The report's line about it, for a thread or task (`what`).
    pub(crate) fn line(&self, what: &str) -> String {
        let during = self.during();
        let why = match self.kind {
            ActivityKind::Stuck => {
                return format!(
                    "stuck: not woken {during}: nothing it waits for happened (look for a \
                     missing close, drop or cancel)"
                );
            }
            ActivityKind::WaitingOnATimer => {
                format!("waiting on a timer, not woken {during}: it wakes when the timer fires")
            }
            ActivityKind::Woken { times, cpu } => {
                let cpu = match cpu {
                    Some(cpu) if cpu >= Duration::from_millis(1) => {
                        format!(", using {} of CPU", duration::format(round_to_ms(cpu)))
                    }
                    _ => String::new(),
                };
                let times = if times == 1 {
                    "once".to_owned()
                } else {
                    format!("{times} times")
                };
                format!("woken {times} {during}{cpu}: a timer, I/O or a loop keeps it running")
            }
            ActivityKind::Busy { cpu } => {
                return format!(
                    "busy: {} on CPU in the {} it was watched, never waiting: a loop that does \
                     not stop (at the end of its input, say); it ends only if the loop does (if \
                     it is meant to live, a rule silences this {what})",
                    duration::format(round_to_ms(cpu)),
                    duration::format(round_to_ms(self.watched))
                );
            }
        };
        format!(
            "active: {why}; it may end later, or never (if it ends by itself, a longer grace \
             lets it; if it is meant to live, a rule silences this {what})"
        )
    }
}

/// The thread or task that spawned a leak, when it is worth a line: a task, or a thread of
/// the same scope (not the test's own).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnedBy {
    /// A task spawned it.
    Task {
        /// tokio's task id.
        id: u64,
        /// Where that task was spawned.
        site: Frame,
        /// Whether that task still runs.
        alive: bool,
    },
    /// A thread of the same scope spawned it.
    Thread {
        /// The kernel thread id; `None` if it was still starting.
        tid: Option<i32>,
        /// Its name, if it has one.
        name: Option<String>,
        /// Where that thread was spawned, when a frame of the user's says.
        site: Option<Frame>,
        /// Whether that thread still runs.
        alive: bool,
    },
}

/// `task 3 (finished), itself spawned at tests/demo.rs:62:27`,
/// `thread 812 "spawner" (exited), itself spawned at tests/threads.rs:40:9`
impl Display for SpawnedBy {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (site, alive) = match self {
            SpawnedBy::Task { id, site, alive } => {
                write!(f, "task {id}")?;
                (Some(site), (*alive, "still running", "finished"))
            }
            SpawnedBy::Thread {
                tid,
                name,
                site,
                alive,
            } => {
                let identity = super::Identity::Thread {
                    tid: *tid,
                    name: name.clone(),
                };
                write!(f, "{identity}")?;
                (site.as_ref(), (*alive, "still running", "exited"))
            }
        };
        let (alive, yes, no) = alive;
        write!(f, " ({})", if alive { yes } else { no })?;
        if let Some(location) = site.and_then(Frame::location) {
            write!(f, ", itself spawned at {location}")?;
        }
        Ok(())
    }
}

/// Something more the report says of a leak, after its state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// A thread of tokio's blocking pool, running a `spawn_blocking` closure that has not
    /// returned.
    BlockingPoolClosure,
    /// A thread of a process-wide pool of the default allowlist, running a job that has
    /// not returned.
    PoolJob {
        /// The pool's crate.
        krate: &'static str,
    },
    /// The spawn site is the closure (or job) the thread runs now, from its current stack:
    /// the pool made the thread for earlier work.
    SiteFromCurrentStack,
    /// The thread's current stack was not captured, and why.
    CurrentStackNotCaptured(&'static str),
    /// A task whose last poll reached none of the task dump's trace points: one of tokio's
    /// own socket waits (tokio 1.54 has no trace point in `accept`, `connect`, `recv_from`,
    /// `send_to`, `readable`, `writable` or `AsyncFd`), or a future not built on tokio's.
    AwaitingUntraceable,
    /// A task not in its runtime's dump: on another runtime, or (tokio >= 1.54) running or
    /// just woken when the dump was taken, which tokio leaves out.
    NotInTheDump,
    /// Where a task awaits is not known, and why.
    AwaitingUnknown(&'static str),
    /// Started by a one-time initialiser (`Once`, `OnceLock`, `LazyLock`, `lazy_static`,
    /// `once_cell`) and waiting: the shape of a singleton (one thread) or a pool (several)
    /// kept for the whole process on purpose, which nothing closes: a rule is the fix.
    KeptForTheProcess,
    /// A panic is still in progress on the thread: its panic hook still runs (a slow
    /// message or backtrace), or it is unwinding out of the thread (a slow or blocked
    /// `Drop`), past the grace period and the wait for it.
    PanicInProgress,
}

impl Display for Note {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Note::BlockingPoolClosure => f.write_str(
                "a tokio blocking-pool thread: its spawn_blocking closure has not returned",
            ),
            Note::PoolJob { krate } => write!(
                f,
                "a thread of {krate}'s process-wide pool, running a job that has not returned"
            ),
            Note::SiteFromCurrentStack => f.write_str(
                "spawn site: the closure it runs, from its current stack (the pool reused the \
                 thread)",
            ),
            Note::CurrentStackNotCaptured(why) => write!(f, "current stack {why}"),
            Note::AwaitingUntraceable => f.write_str(
                "awaiting something tokio's task dump does not trace: a socket wait of tokio's \
                 own (`accept`, `connect`, `recv_from`, `send_to`, `readable`, `writable`, \
                 `AsyncFd`: tokio 1.54 has no trace point in them), or a future not built on \
                 tokio's (`future::pending`, another crate's)",
            ),
            Note::NotInTheDump => f.write_str(
                "awaiting: not in the task dump (on another runtime, or running or just woken \
                 when the dump was taken, which tokio leaves out)",
            ),
            Note::AwaitingUnknown(why) => f.write_str(why),
            Note::KeptForTheProcess => f.write_str(
                "started by a one-time initialiser (a static, `OnceLock`, `lazy_static`), for \
                 the whole process",
            ),
            Note::PanicInProgress => f.write_str(
                "panicking: a panic in progress, not over when the check gave up waiting for \
                 it (its panic hook still runs, a slow message or backtrace, or a Drop blocks \
                 while it unwinds); when it ends, the panic is lost unless something joins \
                 the thread",
            ),
        }
    }
}
