//! The process hooks: this crate defines `posix_spawn`, `posix_spawnp`, `fork`, `execve`,
//! `execv`, `execvp`, `kill`, `killpg` and `popen`, and the linker binds the test binary's calls to them (std's
//! `Command` and so tokio's, C code, libraries). Each forwards to the C library's own
//! function, found with `dlsym(RTLD_NEXT)`, and records the child on the parent's thread
//! once it exists: its pid and start time, the scope, the thread and task that started it
//! and a copy of the spawn stack, unwound only for a report.
//!
//! Rules for everything here:
//! - never panic across the C boundary; a hook that cannot record forwards and says so once;
//! - std calls `posix_spawnp` and `fork` while it holds its environment lock: nothing here
//!   reads `std::env` (settings are read before `main`); a changed environment is built
//!   from the `envp` argument;
//! - in a fork child nothing allocates or takes a lock before `exec`: what the child needs
//!   (its environment with the marker, the shared page where it notes what it `exec`s) is
//!   built by the parent before the fork, and the child only stores pointers and copies
//!   bytes;
//! - `vfork` is not wrapped (a wrapper's frame would be the child's to return onto); children
//!   started by `vfork`, `_Fork`, raw `clone` or `system()` are found through `/proc` at
//!   check time instead;
//! - leakcheck never waits for a child: it reads `/proc`.
//!
//! One file an entry point's family: `spawn` (`posix_spawn`, `posix_spawnp`), `fork` (and
//! what its child is given), `exec` (`execve`, `execv`, `execvp`), `kill` (`kill`,
//! `killpg`), `popen`; here, what they share: a spawn's record, the marker, the real
//! functions.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::marker::{self, Marker};
use super::{command, procfs, signalled};
use crate::registry::{self, ExecNote, ExecNoteWriter, NewProcess, ProcessOrigin, StartWindow};
use crate::scope::{self, PROCESS, ScopeId};
use crate::threads;
use crate::unwind::{self, Registers};

mod exec;
mod fork;
mod kill;
mod popen;
mod spawn;

use exec::{ExecveFn, ExecvpFn};
use fork::ForkFn;
use kill::KillFn;
use popen::PopenFn;
use spawn::SpawnFn;

unsafe extern "C" {
    /// The process's environment, as the C library keeps it.
    static mut environ: *const *const c_char;
}

/// Whether children get the marker (`LEAKCHECK_MARK_CHILDREN`, read before `main`).
static MARKING: AtomicBool = AtomicBool::new(true);

/// Whether this process checks at exit what its plain tests started (`verify_test_main!`):
/// then what the process level starts is marked too.
static CHECKED_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// Records made before a check drops those of children the program waited for.
const PRUNE_EVERY: usize = 64;

/// Hooked spawns between their start and their record, and how many have started: where
/// the kernel lists no thread's children, the `popen` hook takes the children that appeared
/// during its call, and must not take one a hooked spawn on another thread has not recorded
/// yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static STARTED: AtomicU64 = AtomicU64::new(0);

/// A hooked spawn from before the real call until its child is recorded.
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        STARTED.fetch_add(1, Ordering::AcqRel);
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits (a second at most) until no hooked spawn is between its start and its record;
/// returns how many had started then.
fn settled_spawns() -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while IN_FLIGHT.load(Ordering::Acquire) != 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    STARTED.load(Ordering::Acquire)
}

pub(crate) fn stop_marking() {
    MARKING.store(false, Ordering::Relaxed);
}

pub(crate) fn mark_the_process_level() {
    CHECKED_AT_EXIT.store(true, Ordering::Relaxed);
}

/// Whether a child started in `scope` gets the marker: only where a check will look for
/// it (a test's scope, or the process level of a binary checked at exit). A service that
/// only takes snapshots starts its children exactly as it would without leakcheck.
fn marks(scope: ScopeId) -> bool {
    MARKING.load(Ordering::Relaxed) && (scope != PROCESS || CHECKED_AT_EXIT.load(Ordering::Relaxed))
}

/// A spawn about to happen, prepared on the parent's thread.
struct Spawning {
    key: u64,
    scope: ScopeId,
    spawn: unwind::SpawnStack,
    command: Option<Box<str>>,
    program: Option<Box<str>>,
    /// For a fork: where the child notes what it `exec`s.
    exec: Option<ExecNote>,
    marker: Option<CString>,
    /// The clock before the spawn: the child starts after it.
    after: u64,
}

impl Spawning {
    /// What the spawn records, its stack kept from `caller` up; `program` and `argv`, the
    /// spawn's (null for a fork).
    fn new(caller: Registers, program: *const c_char, argv: *const *const c_char) -> Spawning {
        static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let scope = scope::current();
        let marker = marks(scope).then(|| {
            let (pid, start_time) = procfs::this_process();
            Marker {
                pid,
                start_time,
                key,
            }
            .entry()
        });
        Spawning {
            key,
            scope,
            spawn: unwind::capture(caller, unwind::PROCESS),
            // SAFETY: the caller's `argv`, a null-terminated array of C strings (or null).
            command: unsafe { arguments(argv) }.map(|args| {
                command::command_line(args.iter().map(|arg| arg.as_ref())).into_boxed_str()
            }),
            program: (!program.is_null()).then(|| {
                // SAFETY: the caller's path or file name, a C string.
                unsafe { CStr::from_ptr(program) }.to_string_lossy().into()
            }),
            exec: None,
            marker,
            after: procfs::ticks_now(),
        }
    }

    /// The child exists: its record; `marked`, whether its environment has the marker.
    fn record(self, pid: i32, marked: bool) {
        let started = StartWindow {
            after: self.after,
            // A tick of slack: the clock is read in whole ticks.
            before: procfs::ticks_now() + 1,
        };
        self.record_started(pid, marked, started);
    }

    /// [`Spawning::record`], where when the child started is known.
    fn record_started(self, pid: i32, marked: bool, started: StartWindow) {
        let origin = ProcessOrigin::new(NewProcess {
            key: self.key,
            scope: self.scope,
            pid,
            started,
            command: self.command,
            program: self.program,
            exec: self.exec,
            marked,
            spawner: threads::current_origin(),
            spawning_task: scope::polled_task(),
            spawn: self.spawn,
        });
        let recorded = registry::add_process(Arc::new(origin));
        if recorded % PRUNE_EVERY == 0 {
            super::forget_waited_for(self.scope, false);
        }
    }
}

/// `argv` as strings, lossily.
///
/// # Safety
///
/// `argv` is null or a null-terminated array of C strings.
unsafe fn arguments(argv: *const *const c_char) -> Option<Vec<String>> {
    if argv.is_null() {
        return None;
    }
    let mut args = Vec::new();
    for at in 0.. {
        // SAFETY: the array is null-terminated, and read up to its terminator.
        let arg = unsafe { *argv.add(at) };
        if arg.is_null() {
            break;
        }
        // SAFETY: each entry is a C string.
        args.push(
            unsafe { CStr::from_ptr(arg) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    Some(args)
}

/// `envp` (null-terminated) without any marker, then `marker`, then the terminator: the
/// pointers of a new environment that borrows every string.
///
/// # Safety
///
/// `envp` is null or a null-terminated array of C strings.
unsafe fn with_marker(envp: *const *const c_char, marker: &CStr) -> Vec<*const c_char> {
    let mut entries = Vec::with_capacity(128);
    if !envp.is_null() {
        for at in 0.. {
            // SAFETY: read up to the terminator.
            let entry = unsafe { *envp.add(at) };
            if entry.is_null() {
                break;
            }
            // SAFETY: each entry is a C string.
            if !unsafe { marker::is_marker_c_entry(entry) } {
                entries.push(entry);
            }
        }
    }
    entries.push(marker.as_ptr());
    entries.push(std::ptr::null());
    entries
}

/// The C library's own functions behind the overrides, from the one table
/// (`interpose`), and what the hooks say once.
mod real {
    use crate::interpose::{self, Real, SayOnce};

    macro_rules! real {
        ($($name:ident = $real:ident: $type:ty),* $(,)?) => {$(
            pub(super) fn $name() -> Option<$type> {
                let address = interpose::address(Real::$real)?;
                // SAFETY: the C library's function of this name has exactly this signature.
                Some(unsafe { std::mem::transmute::<usize, $type>(address) })
            }
        )*};
    }

    real! {
        posix_spawn = PosixSpawn: super::SpawnFn,
        posix_spawnp = PosixSpawnp: super::SpawnFn,
        fork = Fork: super::ForkFn,
        execve = Execve: super::ExecveFn,
        execvp = Execvp: super::ExecvpFn,
        kill = Kill: super::KillFn,
        killpg = Killpg: super::KillFn,
        popen = Popen: super::PopenFn,
    }

    /// The C library has no such function: the call fails with `ENOSYS` (errno set; a
    /// spawn returns it), said once.
    pub(super) fn missing() {
        static SAID: SayOnce = SayOnce::new();
        SAID.say(
            b"leakcheck: a process function (posix_spawn, fork, exec, kill, killpg or popen) \
              was not found in the C library; the call fails with ENOSYS\n",
        );
        // SAFETY: errno is the calling thread's own.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
    }

    /// A child could not be recorded (leakcheck failed inside the hook): it runs, unchecked.
    pub(super) fn could_not_record() {
        static SAID: SayOnce = SayOnce::new();
        SAID.say(b"leakcheck: a child process could not be recorded; it is not checked\n");
    }
}
