//! `/proc/self/task`: which threads are alive and what each is doing. Liveness is read only
//! for threads a check already suspects; the full description only when reporting.

use std::fs;

use std::time::Duration;

use super::{Counters, OsThread};
use crate::report::{OpenFile, OsState, SystemCall, ThreadState};

pub(crate) fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Every thread of this process, or `None` if `/proc` is not mounted.
pub(crate) fn list() -> Option<Vec<i32>> {
    let tids = fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    Some(tids)
}

/// Whether the kernel still runs `tid`: listed, and not a zombie on its way out.
pub(crate) fn is_alive(tid: i32) -> bool {
    read_state(tid).is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// Whether `tid` is on a CPU or ready to run (`R`): not waiting for anything.
pub(crate) fn is_running(tid: i32) -> bool {
    read_state(tid) == Some('R')
}

fn read_state(tid: i32) -> Option<char> {
    state_in(&format!("/proc/self/task/{tid}"))
}

/// The state letter of `<dir>/stat`.
fn state_in(dir: &str) -> Option<char> {
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The name in parentheses may itself contain spaces and parentheses: the state is the
    // first field after the *last* ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

pub(crate) fn os_state(tid: i32) -> Option<OsThread> {
    let dir = format!("/proc/self/task/{tid}");
    let os = os_state_in(&dir, "/proc/self/fd")?;
    let comm = fs::read_to_string(format!("{dir}/comm"))
        .map(|comm| comm.trim_end().to_owned())
        .unwrap_or_default();
    Some(OsThread { comm, os })
}

/// What the OS says another process (its main thread) is doing: its state, the call it
/// is blocked in, with the file that call waits on, and the kernel function it waits in.
/// Reading another process's call needs the right to trace it (a child, or the same
/// user): without it, the state alone.
pub(crate) fn process_os_state(pid: i32) -> Option<OsState> {
    os_state_in(&format!("/proc/{pid}"), &format!("/proc/{pid}/fd"))
}

/// `dir`'s state, wait channel and system call; `fds`, the directory its descriptors are in.
fn os_state_in(dir: &str, fds: &str) -> Option<OsState> {
    let state = state_in(dir)?;
    let wchan = fs::read_to_string(format!("{dir}/wchan"))
        .ok()
        .filter(|wchan| !wchan.is_empty() && wchan != "0");
    let syscall = fs::read_to_string(format!("{dir}/syscall")).unwrap_or_default();
    Some(OsState {
        state: ThreadState::from_letter(state),
        wchan,
        blocked_in: system_call(&syscall, fds),
        timed: has_timeout(&syscall),
    })
}

/// How much `tid` has run so far: wake-ups from `status`, CPU ticks from `stat`, and
/// while it is blocked in a read, the bytes it has read from `io`.
pub(crate) fn counters(tid: i32) -> Option<Counters> {
    let dir = format!("/proc/self/task/{tid}");
    let syscall = fs::read_to_string(format!("{dir}/syscall")).unwrap_or_default();
    // `running`, or `-1 sp pc` outside a system call: no call to tell apart.
    let number = syscall
        .split_whitespace()
        .next()
        .and_then(|number| number.parse::<libc::c_long>().ok())
        .filter(|number| *number >= 0);
    let call = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        syscall.hash(&mut hasher);
        if number.is_some() {
            hasher.finish().max(1)
        } else {
            0
        }
    };
    let bytes_read = number
        .filter(|number| is_read(*number))
        .and_then(|_| bytes_read(&dir));
    let status = fs::read_to_string(format!("{dir}/status")).ok()?;
    let wakeups = status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()?;
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    // After the last ')': state is field 3, utime and stime fields 14 and 15.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Counters {
        wakeups,
        cpu: Duration::from_secs_f64((user + system) as f64 / clock_ticks_per_second()),
        call,
        bytes_read,
    })
}

/// The calls whose data the kernel counts in `rchar` when they return: a read, and only a
/// read, ends when data comes. (`recv` and its kin are not counted there.)
fn is_read(number: libc::c_long) -> bool {
    matches!(
        number,
        libc::SYS_read | libc::SYS_readv | libc::SYS_pread64 | libc::SYS_preadv | libc::SYS_preadv2
    )
}

/// `rchar` of `<dir>/io`: the bytes the thread's reads have returned so far.
fn bytes_read(dir: &str) -> Option<u64> {
    fs::read_to_string(format!("{dir}/io"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("rchar:"))?
        .trim()
        .parse()
        .ok()
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        ticks if ticks > 0 => ticks as f64,
        _ => 100.0,
    }
}

/// Whether the system call in `/proc/<tid>/syscall` waits with a timeout, so that the
/// thread wakes by itself: a sleep, a futex wait with a timeout, a poll with one.
fn has_timeout(line: &str) -> bool {
    let mut fields = line.split_whitespace();
    let Some(Ok(number)) = fields.next().map(str::parse::<libc::c_long>) else {
        return false;
    };
    let args: Vec<u64> = fields
        .take(6)
        .filter_map(|arg| u64::from_str_radix(arg.trim_start_matches("0x"), 16).ok())
        .collect();
    let arg = |at: usize| args.get(at).copied().unwrap_or(0);
    // A C `int` timeout of -1 arrives as its 64-bit register value.
    let forever = |value: u64| value as u32 == u32::MAX;
    match number {
        libc::SYS_nanosleep | libc::SYS_clock_nanosleep => true,
        libc::SYS_futex => arg(3) != 0,
        libc::SYS_ppoll => arg(2) != 0,
        libc::SYS_pselect6 => arg(4) != 0,
        libc::SYS_epoll_pwait => !forever(arg(3)),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_poll => !forever(arg(2)),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_epoll_wait => !forever(arg(3)),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_select => arg(4) != 0,
        _ => false,
    }
}

/// `/proc/<tid>/syscall` is `NR arg1 .. arg6 sp pc` while blocked in a system call,
/// `-1 sp pc` outside one and `running` while on a CPU.
fn system_call(line: &str, fds: &str) -> Option<SystemCall> {
    let mut fields = line.split_whitespace();
    let number: libc::c_long = fields.next()?.parse().ok()?;
    let first_arg = fields
        .next()
        .and_then(|arg| i64::from_str_radix(arg.trim_start_matches("0x"), 16).ok());
    let (name, uses_fd) = syscall_name(number)?;
    let file = first_arg.filter(|_| uses_fd).map(|fd| OpenFile {
        fd,
        target: fs::read_link(format!("{fds}/{fd}"))
            .map(|path| path.display().to_string())
            .unwrap_or_else(|_| "?".into()),
    });
    Some(SystemCall { name, file })
}

/// A readable name for the system calls threads block in, and whether the first argument
/// is a file descriptor worth resolving.
fn syscall_name(number: libc::c_long) -> Option<(&'static str, bool)> {
    let named = match number {
        libc::SYS_futex => ("futex (a lock, condvar, channel or join)", false),
        libc::SYS_nanosleep | libc::SYS_clock_nanosleep => ("sleep", false),
        libc::SYS_read | libc::SYS_readv | libc::SYS_pread64 => ("read", true),
        libc::SYS_write | libc::SYS_writev | libc::SYS_pwrite64 => ("write", true),
        libc::SYS_recvfrom | libc::SYS_recvmsg => ("receive", true),
        libc::SYS_sendto | libc::SYS_sendmsg => ("send", true),
        libc::SYS_accept | libc::SYS_accept4 => ("accept", true),
        libc::SYS_connect => ("connect", true),
        libc::SYS_ppoll => ("poll", false),
        libc::SYS_pselect6 => ("select", false),
        libc::SYS_epoll_pwait => ("epoll_wait", true),
        libc::SYS_wait4 | libc::SYS_waitid => ("wait for a child process", false),
        libc::SYS_rt_sigsuspend | libc::SYS_rt_sigtimedwait => ("wait for a signal", false),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_poll => ("poll", false),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_select => ("select", false),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_epoll_wait => ("epoll_wait", true),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_pause => ("wait for a signal", false),
        _ => return Some(("a system call", false)).filter(|_| number >= 0),
    };
    Some(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe_syscall(line: &str) -> Option<String> {
        system_call(line, "/proc/self/fd").map(|call| call.to_string())
    }

    #[test]
    fn outside_a_syscall_says_nothing() {
        assert_eq!(describe_syscall("running"), None);
        assert_eq!(describe_syscall("-1 0x7ffd 0x7f00"), None);
    }

    #[test]
    fn names_common_blocking_calls() {
        let futex = format!(
            "{} 0x7f00 0x80 0x2 0x0 0x0 0x0 0x7ffd 0x7f00",
            libc::SYS_futex
        );
        assert_eq!(
            describe_syscall(&futex).as_deref(),
            Some("futex (a lock, condvar, channel or join)")
        );
        let sleep = format!(
            "{} 0x0 0x0 0x7ffd 0x7ffd 0x0 0x0 0x7ffd 0x7f00",
            libc::SYS_clock_nanosleep
        );
        assert_eq!(describe_syscall(&sleep).as_deref(), Some("sleep"));
    }

    #[test]
    fn resolves_the_fd_of_a_pipe_read() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let line = format!(
            "{} {:#x} 0x0 0x1 0x0 0x0 0x0 0x7ffd 0x7f00",
            libc::SYS_read,
            fds[0]
        );
        let text = describe_syscall(&line).unwrap();
        assert!(
            text.starts_with(&format!("pipe read on fd {} (pipe:[", fds[0])),
            "{text}"
        );
        // SAFETY: both descriptors were opened above and are closed once.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    #[test]
    fn sleeps_and_timed_waits_have_a_timeout_and_plain_waits_do_not() {
        let line = |number: libc::c_long, args: &str| format!("{number} {args} 0x7ffd 0x7f00");
        assert!(has_timeout(&line(
            libc::SYS_clock_nanosleep,
            "0x1 0x0 0x7ffd 0x0 0x0 0x0"
        )));
        assert!(has_timeout(&line(
            libc::SYS_futex,
            "0x7f00 0x189 0x0 0x7ffd 0x0 0xffffffff"
        )));
        assert!(!has_timeout(&line(
            libc::SYS_futex,
            "0x7f00 0x80 0x2 0x0 0x0 0x0"
        )));
        assert!(!has_timeout(&line(
            libc::SYS_epoll_pwait,
            "0x3 0x7ffd 0x400 0xffffffff 0x0 0x8"
        )));
        assert!(has_timeout(&line(
            libc::SYS_epoll_pwait,
            "0x3 0x7ffd 0x400 0x1f4 0x0 0x8"
        )));
        assert!(!has_timeout("running"));
    }

    #[test]
    fn counts_its_own_wakeups_and_cpu() {
        let before = counters(current_tid()).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let after = counters(current_tid()).unwrap();
        assert!(after.wakeups > before.wakeups, "{before:?} {after:?}");
    }

    #[test]
    fn counts_the_bytes_a_thread_blocked_in_a_read_has_read() {
        use std::io::{Read, Write};
        let (mut reader, mut writer) = std::io::pipe().unwrap();
        let (tid_sender, tid) = std::sync::mpsc::channel();
        let reading = std::thread::spawn(move || {
            tid_sender.send(current_tid()).unwrap();
            let mut byte = [0; 1];
            reader.read_exact(&mut byte).unwrap();
            reader.read_exact(&mut byte).unwrap();
        });
        let tid = tid.recv().unwrap();
        let blocked = || loop {
            let counters = counters(tid).unwrap();
            if let Some(bytes) = counters.bytes_read {
                break (counters.call, bytes);
            }
            std::thread::yield_now();
        };
        let (call, before) = blocked();
        writer.write_all(b"x").unwrap();
        // Blocked again in the same read (same buffer, same stack), one byte later.
        let (call_after, after) = loop {
            let found = blocked();
            if found.1 != before {
                break found;
            }
        };
        assert_eq!((call_after, after), (call, before + 1));
        writer.write_all(b"x").unwrap();
        reading.join().unwrap();
    }

    #[test]
    fn reads_its_own_state() {
        let me = os_state(current_tid()).unwrap();
        assert_eq!(me.os.state, ThreadState::Running);
        assert!(is_alive(current_tid()));
        assert!(list().unwrap().contains(&current_tid()));
        assert!(!is_alive(i32::MAX));
    }
}
