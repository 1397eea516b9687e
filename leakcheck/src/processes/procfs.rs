//! `/proc`: which processes exist, whose children they are, when they started, what they
//! run, what they hold open and what they inherited. Read by checks, snapshots and the
//! `popen` hook, never inside `posix_spawn` or `fork` but for one start time, after the
//! child exists.

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::marker::Marker;
use crate::report::OutputStream;

/// One process as `/proc/<pid>/stat` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) pid: i32,
    pub(crate) ppid: i32,
    /// Its process group.
    pub(crate) pgrp: i32,
    /// `R`, `S`, `D`, `Z`, ...
    pub(crate) state: char,
    /// Clock ticks after boot: with the pid, what tells a process from a later one that
    /// reuses its pid.
    pub(crate) start_time: u64,
}

impl ProcStat {
    /// Exited and not yet waited for.
    pub(crate) fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// `/proc/<pid>/stat`, or `None` if there is no such process.
pub(crate) fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<ProcStat> {
    let pid = stat.split(' ').next()?.parse().ok()?;
    // The name in parentheses may hold spaces and parentheses: fields count from the last
    // ')'. After it: state (field 3), ppid (4), pgrp (5), ..., starttime (22), each after
    // one space.
    // (Split on the space, not on any whitespace: a look at every process reads them all.)
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let start_time = fields.nth(16)?.trim_end().parse().ok()?;
    Some(ProcStat {
        pid,
        ppid,
        pgrp,
        state,
        start_time,
    })
}

/// Every process this one can see, as `stat` reads it.
pub(crate) fn all() -> Vec<ProcStat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The children `tid` (a thread of this process) started, where the kernel lists them
/// (`CONFIG_PROC_CHILDREN`); `None` where it does not.
pub(crate) fn children_of_thread(tid: i32) -> Option<Vec<i32>> {
    let text = fs::read_to_string(format!("/proc/self/task/{tid}/children")).ok()?;
    Some(
        text.split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect(),
    )
}

/// Whether this process has any child at all, running or not yet waited for: one system
/// call (`waitid` with `WNOWAIT`, which never reaps), so that a process-wide check of a
/// process that started none reads no `/proc` for children no hook saw. The kernel visits
/// every thread of the process for it: not a call for each test's check.
pub(crate) fn has_children() -> bool {
    // SAFETY: waitid writes the siginfo it is given; WNOHANG returns at once and WNOWAIT
    // leaves every child waitable.
    let status = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    status == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD)
}

/// Whether the kernel lists each thread's children (`/proc/<pid>/task/<tid>/children`).
pub(crate) fn lists_thread_children() -> bool {
    static LISTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTS.get_or_init(|| {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        children_of_thread(tid).is_some()
    })
}

/// What the OS says it (its main thread) is doing: its state, the call it is blocked in,
/// the kernel function it waits in.
pub(crate) fn os_state(pid: i32) -> Option<crate::report::OsState> {
    crate::threads::process_os_state(pid)
}

/// Its command line, as reports show one; `None` for a zombie (the kernel keeps none) or
/// a process that is gone.
pub(crate) fn command(pid: i32) -> Option<String> {
    super::command::from_cmdline(&fs::read(format!("/proc/{pid}/cmdline")).ok()?)
}

/// The kernel's name for it (15 bytes at most): what a zombie still has.
pub(crate) fn comm(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|comm| comm.trim_end().to_owned())
}

/// Its program: the first argument of its command line (a path or a bare name).
pub(crate) fn program(pid: i32) -> Option<String> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|&byte| byte == 0).next()?;
    (!first.is_empty()).then(|| String::from_utf8_lossy(first).into_owned())
}

/// The leakcheck marker in its environment, if it has one (reading another process's
/// environment needs the right to trace it: a child, or a process of the same user).
pub(crate) fn marker(process: &ProcStat) -> Option<Marker> {
    let pid = process.pid;
    // Another user's process: its environment cannot be read, and it is none of ours.
    // SAFETY: geteuid has no preconditions.
    if fs::metadata(format!("/proc/{pid}")).ok()?.uid() != unsafe { libc::geteuid() } {
        return None;
    }
    // While a process `exec`s, its new program's environment and arguments are being put in
    // place: the environment reads empty, or a part of it, and the arguments read empty. So a
    // read without the marker is the environment's answer only once the arguments read
    // whole; until then it is read again. Its age tells nothing: a shell's background job
    // may exec long after its fork, and on a loaded machine the exec itself can take long; a
    // check that took it for one without a marker would pass before its grace (nothing alive
    // to wait for).
    let environ = || fs::read(format!("/proc/{pid}/environ"));
    for attempt in 0..EXEC_READS {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        match environ() {
            Ok(environ) => {
                if let Some(marker) = Marker::in_environ(&environ) {
                    return Some(marker);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(_) => {}
        }
        if !in_exec(pid) {
            // The arguments are read after the environment: an exec that ended in between
            // shows its whole environment now.
            return Marker::in_environ(&environ().ok()?);
        }
    }
    None
}

/// How many times [`marker`] reads the environment of a process in the middle of an
/// `exec` (a millisecond apart): an exec that takes longer is not waited for.
const EXEC_READS: usize = 500;

/// Whether `pid` is in the middle of an `exec`: alive, not a zombie, and its arguments
/// read empty (every program has at least its name, once its exec is done).
fn in_exec(pid: i32) -> bool {
    stat(pid).is_some_and(|stat| !stat.is_zombie())
        && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|arguments| arguments.is_empty())
}

/// This process's stdout and stderr where a reader waits for their end (a pipe or a
/// socket, as nextest and CI runners give a test): device and inode of each.
pub(crate) fn own_output() -> Vec<(OutputStream, u64, u64)> {
    [(OutputStream::Stdout, 1), (OutputStream::Stderr, 2)]
        .into_iter()
        .filter_map(|(stream, fd)| {
            let meta = fs::metadata(format!("/proc/self/fd/{fd}")).ok()?;
            let kind = meta.mode() & libc::S_IFMT;
            (kind == libc::S_IFIFO || kind == libc::S_IFSOCK)
                .then(|| (stream, meta.dev(), meta.ino()))
        })
        .collect()
}

/// Which of `output` (this process's streams, [`own_output`]) `pid` holds open.
pub(crate) fn holds(pid: i32, output: &[(OutputStream, u64, u64)]) -> Vec<OutputStream> {
    if output.is_empty() {
        return Vec::new();
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut held = Vec::new();
    for fd in fds.flatten() {
        let Ok(meta) = fs::metadata(fd.path()) else {
            continue;
        };
        for &(stream, dev, ino) in output {
            if meta.dev() == dev && meta.ino() == ino && !held.contains(&stream) {
                held.push(stream);
            }
        }
    }
    held.sort();
    held
}

/// This process: its pid and start time, as markers name it. Read again in a forked
/// child, which is another process.
pub(crate) fn this_process() -> (u32, u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CACHED: AtomicU64 = AtomicU64::new(0);
    static START: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    if CACHED.load(Ordering::Acquire) == u64::from(pid) {
        return (pid, START.load(Ordering::Relaxed));
    }
    let start = stat(pid as i32).map_or(0, |stat| stat.start_time);
    START.store(start, Ordering::Relaxed);
    CACHED.store(u64::from(pid), Ordering::Release);
    (pid, start)
}

/// Now, in the clock ticks after boot that start times count.
pub(crate) fn ticks_now() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    // SAFETY: sysconf has no preconditions.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        hz if hz > 0 => hz as u64,
        _ => 100,
    };
    now.tv_sec as u64 * hz + now.tv_nsec as u64 * hz / 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_reads_past_a_name_with_spaces_and_parentheses() {
        let line = "4242 (we (ird) name) S 17 4240 4242 0 -1 4194304 100 0 0 0 3 1 0 0 20 0 1 0 \
                    987654 1000 200 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                pid: 4242,
                ppid: 17,
                pgrp: 4240,
                state: 'S',
                start_time: 987_654,
            })
        );
    }

    #[test]
    fn a_child_not_yet_waited_for_counts_as_one() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        assert!(has_children());
        child.wait().unwrap();
    }

    #[test]
    fn this_process_is_listed_with_its_start_time() {
        let (pid, start) = this_process();
        let me = stat(pid as i32).unwrap();
        assert_eq!(me.start_time, start);
        assert!(all().iter().any(|process| process.pid == pid as i32));
        assert!(start <= ticks_now());
        assert!(command(pid as i32).is_some());
    }

    /// A marked shell that execs its last command 30 ms after its fork (15 clock ticks and
    /// more): every look, the ones that land inside that exec included, finds its marker.
    /// Before, a look inside the exec of a process over 2 ticks old found none.
    #[test]
    fn a_process_in_the_middle_of_an_exec_keeps_its_marker() {
        let _scope = crate::scope::Scope::enter_named("execs late");
        let (me, my_start) = this_process();
        for _ in 0..40 {
            let mut child = std::process::Command::new("sh")
                .args(["-c", "sleep 0.03; exec sleep 5"])
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let mut looks = 0;
            while command(pid).as_deref() != Some("sleep 5") {
                let marker = marker(&stat(pid).unwrap());
                assert!(
                    marker.is_some_and(|marker| (marker.pid, marker.start_time) == (me, my_start)),
                    "look {looks} at {pid} ({:?}) found no marker",
                    command(pid)
                );
                looks += 1;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Once its exec is done, a program with no environment has one that reads empty and
    /// arguments that do not: no marker, read once (not waited on as if it were in an
    /// exec), and so for a zombie, whose arguments are gone too.
    #[test]
    fn an_empty_environment_is_told_from_an_exec_in_progress() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env_clear()
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Until the exec is done, the child is std's fork, with this process's arguments.
        while command(pid).as_deref() != Some("sleep 30") {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!in_exec(pid));
        assert!(marker(&stat(pid).unwrap()).is_none());
        child.kill().unwrap();
        while !stat(pid).unwrap().is_zombie() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!in_exec(pid));
        child.wait().unwrap();
        assert!(!in_exec(pid));
    }
}
