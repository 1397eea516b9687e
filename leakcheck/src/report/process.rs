//! What a report says of a child process, as facts: its descendants, the test's output it
//! holds open, the child it came from if it is an orphan, whether it is a zombie, and what
//! leakcheck did to end it.

use std::fmt::{self, Display, Formatter};

/// One of the test's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Display for OutputStream {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        })
    }
}

/// A process a report names: its pid and command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRef {
    pub(crate) pid: i32,
    pub(crate) command: Option<String>,
}

impl ProcessRef {
    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its command line, one string (see [`Identity::Process`](super::Identity::Process)).
    pub fn command(&self) -> Option<&str> {
        self.command.as_deref()
    }
}

/// `process 4243 `sleep 601``
impl Display for ProcessRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "process {}", self.pid)?;
        match &self.command {
            Some(command) => write!(f, " `{command}`"),
            None => Ok(()),
        }
    }
}

/// What leakcheck did to a leaked process after describing it (`kill_leaked_processes`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndedBy {
    /// It (and its descendants) ended on `SIGTERM`.
    Terminate,
    /// It did not end on `SIGTERM` within half a second: `SIGKILL` ended it.
    Kill,
    /// It had exited by then.
    AlreadyGone,
    /// It could not be ended, and why.
    NotEnded(String),
}

impl Display for EndedBy {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            EndedBy::Terminate => f.write_str(
                "ended by leakcheck after this report (kill_leaked_processes): SIGTERM to it and \
                 its descendants",
            ),
            EndedBy::Kill => f.write_str(
                "ended by leakcheck after this report (kill_leaked_processes): SIGTERM, then \
                 SIGKILL after 500ms, to it and its descendants",
            ),
            EndedBy::AlreadyGone => {
                f.write_str("it had exited when leakcheck came to end it (kill_leaked_processes)")
            }
            EndedBy::NotEnded(why) => write!(
                f,
                "leakcheck could not end it (kill_leaked_processes): {why}"
            ),
        }
    }
}

/// What a report says of a child process beyond what every leak has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    /// The program, as its first argument names it (a path or a bare name).
    pub(crate) program: Option<String>,
    /// When it started (clock ticks after boot): with the pid, what ending it checks.
    pub(crate) start_time: u64,
    pub(crate) descendants: Vec<ProcessRef>,
    pub(crate) holds: Vec<OutputStream>,
    pub(crate) orphan_of: Option<ProcessRef>,
    pub(crate) zombie: bool,
    pub(crate) ended: Option<EndedBy>,
}

impl ProcessFacts {
    /// The program it runs, as its first argument names it.
    pub fn program(&self) -> Option<&str> {
        self.program.as_deref()
    }

    /// Its own live descendants, listed with it (not counted as leaks).
    pub fn descendants(&self) -> &[ProcessRef] {
        &self.descendants
    }

    /// The test's output streams (where a reader waits for their end: a pipe, as nextest
    /// and CI runners give a test) that it or a descendant holds open.
    pub fn holds(&self) -> &[OutputStream] {
        &self.holds
    }

    /// For an orphan (reparented away from the test process when the child it came from,
    /// or one between, exited): that child.
    pub fn orphan_of(&self) -> Option<&ProcessRef> {
        self.orphan_of.as_ref()
    }

    /// Whether it exited and was never waited for.
    pub fn is_zombie(&self) -> bool {
        self.zombie
    }

    /// What leakcheck did to end it, with `kill_leaked_processes`.
    pub fn ended(&self) -> Option<&EndedBy> {
        self.ended.as_ref()
    }
}

/// What a report says of a lost panic: a panic that ended a thread of the test, and that
/// nobody observed (the thread was never joined).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PanicFacts {
    pub(crate) message: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) resumed: bool,
}

impl PanicFacts {
    /// The panic's message (a `&str` or `String` payload), as the panic hook saw it or as
    /// read off the panic where no hook of leakcheck's ran; `Box<dyn Any>` for a payload that
    /// is not a string, as std's hook prints it; `None` where it could not be read.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// Where it panicked, `file:line:column`, as the panic hook saw it.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// Whether the thread ended by `resume_unwind` (the message and location are then the
    /// last panic the thread's hook saw, the one resumed in the usual `catch_unwind`, then
    /// `resume_unwind`).
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }
}

/// `panicked at tests/panics.rs:12:9: boom`
impl Display for PanicFacts {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.resumed {
            f.write_str("resumed with resume_unwind, ")?;
        }
        f.write_str("panicked")?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        match &self.message {
            Some(message) => write!(f, ": {message}"),
            None if self.location.is_none() && crate::config::preloaded() => f.write_str(
                " (its message not seen: `cargo leakcheck` checks this binary from outside \
                 the test's std, and could not read it off the panic; #[leakcheck::test] \
                 shows it)",
            ),
            None if self.location.is_none() => f.write_str(
                " (its message not seen: leakcheck's panic hook was not in place then, and it \
                 could not be read off the panic)",
            ),
            None => Ok(()),
        }
    }
}
