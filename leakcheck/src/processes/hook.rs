//! The process hooks: this crate defines `posix_spawn`, `posix_spawnp`, `fork`, `execve`,
//! `execvp`, `kill` and `popen`, and the linker binds the test binary's calls to them (std's
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

type SpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    *const *const c_char,
    *const *const c_char,
) -> c_int;

/// The override of `posix_spawn(3)`.
///
/// # Safety
///
/// The contract of `posix_spawn(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    file_actions: *const libc::posix_spawn_file_actions_t,
    attributes: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let Some(real) = real::posix_spawn() else {
        real::missing();
        return libc::ENOSYS;
    };
    // SAFETY: the caller's arguments, with the real function.
    unsafe { spawn(real, pid, path, file_actions, attributes, argv, envp) }
}

/// The override of `posix_spawnp(3)`, which std's `Command::spawn` calls.
///
/// # Safety
///
/// The contract of `posix_spawnp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    file_actions: *const libc::posix_spawn_file_actions_t,
    attributes: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let Some(real) = real::posix_spawnp() else {
        real::missing();
        return libc::ENOSYS;
    };
    // SAFETY: the caller's arguments, with the real function.
    unsafe { spawn(real, pid, file, file_actions, attributes, argv, envp) }
}

/// Both spawns: prepare (on the parent's thread, before the child exists), spawn with the
/// marked environment, record.
///
/// # Safety
///
/// The contract of `posix_spawn(3)`; `real` is the C library's.
unsafe fn spawn(
    real: SpawnFn,
    pid: *mut libc::pid_t,
    path: *const c_char,
    file_actions: *const libc::posix_spawn_file_actions_t,
    attributes: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    if !registry::hooks_on() {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(pid, path, file_actions, attributes, argv, envp) };
    }
    let caller = Registers::here();
    let prepared = catch_unwind(AssertUnwindSafe(|| {
        let spawning = Spawning::new(caller, path, argv);
        let environment = spawning
            .marker
            .as_deref()
            // SAFETY: the caller's `envp` and the C library's `environ`, null-terminated
            // arrays (or null); std holds its environment lock around the spawn.
            .filter(|_| unsafe { marker::inherits(envp, environ) })
            // SAFETY: the caller's `envp`, a null-terminated array (or null).
            .map(|marker| unsafe { with_marker(envp, marker) });
        (spawning, environment)
    }));
    let Ok((spawning, environment)) = prepared else {
        real::could_not_record();
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(pid, path, file_actions, attributes, argv, envp) };
    };
    let envp = environment
        .as_ref()
        .map_or(envp, |entries| entries.as_ptr());
    let _in_flight = InFlight::start();
    let mut child: libc::pid_t = 0;
    // SAFETY: the caller's arguments, the environment a copy of theirs with the marker
    // (which lives until the call returns), and our own pid slot.
    let status = unsafe { real(&mut child, path, file_actions, attributes, argv, envp) };
    if status == 0 {
        if !pid.is_null() {
            // SAFETY: the caller's slot for the pid.
            unsafe { *pid = child };
        }
        let marked = environment.is_some();
        let record = || spawning.record(child, marked);
        if catch_unwind(AssertUnwindSafe(record)).is_err() {
            real::could_not_record();
        }
    }
    status
}

/// What a fork child's `exec` hooks use, prepared by the parent before the fork: the child
/// only stores pointers and copies bytes.
struct ForkChild {
    /// Its environment with the marker, where children are marked.
    environment: Option<ForkEnvironment>,
    /// Where it notes what it `exec`s, for its record.
    note: Option<ExecNoteWriter>,
}

/// A fork child's environment with the marker, built by the parent before the fork: the
/// child stores pointers, and copies an `exec`'s own environment into room made here.
struct ForkEnvironment {
    /// Kept alive for the pointers below.
    marker: CString,
    /// The C library's environment at the fork, which the child inherits as it is.
    inherited: *const *const c_char,
    /// The environment at the fork, with the marker.
    at_fork: Vec<*const c_char>,
    /// Room for an `exec`'s own environment (std's `Command` with changed variables sets
    /// it just before `execvp`), with the marker.
    room: Vec<*const c_char>,
}

/// Entries of room left for an `exec`'s own environment beyond the one at the fork.
const ROOM_BEYOND: usize = 256;

thread_local! {
    /// In a fork child, until it `exec`s: what the parent prepared for it. `const` and a
    /// `Cell`, no destructor: read in the child without allocating.
    static FORKED: Cell<*mut ForkChild> = const { Cell::new(std::ptr::null_mut()) };
}

impl ForkEnvironment {
    fn new(marker: CString) -> ForkEnvironment {
        // SAFETY: the C library's environment, read on the forking thread; std's `fork`
        // path holds its environment lock, so no `set_var` runs meanwhile.
        // SAFETY: as above.
        let inherited = unsafe { environ };
        // SAFETY: as above.
        let at_fork = unsafe { with_marker(inherited, &marker) };
        let room = Vec::with_capacity(at_fork.len() + ROOM_BEYOND);
        ForkEnvironment {
            marker,
            inherited,
            at_fork,
            room,
        }
    }

    /// The environment an `exec` in the child runs with: the environment at the fork with
    /// the marker, where the child inherited it; a copy of `envp` with the marker in the
    /// room, where `envp` inherits it with changes (if it fits, else `envp`); `envp` as it
    /// is, where the child's caller built or cut it ([`marker::inherits`]). No allocation.
    ///
    /// # Safety
    ///
    /// `envp` is null or a null-terminated array of C strings; called in the fork child.
    unsafe fn marked(&mut self, envp: *const *const c_char) -> *const *const c_char {
        if envp == self.inherited {
            return self.at_fork.as_ptr();
        }
        if envp == self.at_fork.as_ptr() || envp == self.room.as_ptr() {
            return envp;
        }
        // SAFETY: the caller's `envp`; `inherited` is the child's copy of the parent's
        // environment at the fork, which nothing in the child has freed.
        if !unsafe { marker::inherits(envp, self.inherited) } {
            return envp;
        }
        let capacity = self.room.capacity();
        let room = self.room.as_mut_ptr();
        let mut len = 0;
        for at in 0.. {
            // SAFETY: read up to the terminator.
            let entry = unsafe { *envp.add(at) };
            if entry.is_null() {
                break;
            }
            // SAFETY: a C string; reading it allocates nothing.
            if unsafe { marker::is_marker_c_entry(entry) } {
                continue;
            }
            if len + 2 >= capacity {
                return envp;
            }
            // SAFETY: `len` is within the room's capacity.
            unsafe { room.add(len).write(entry) };
            len += 1;
        }
        // SAFETY: within capacity, checked above.
        unsafe {
            room.add(len).write(self.marker.as_ptr());
            room.add(len + 1).write(std::ptr::null());
        }
        room.cast_const()
    }
}

type ForkFn = unsafe extern "C" fn() -> libc::pid_t;

/// The override of `fork(2)`: the child is recorded in the parent when `fork` returns
/// there; the child only switches to the environment with the marker, prepared before, and
/// its `exec` notes what it runs in a page shared with the parent (a zombie's `/proc`
/// keeps no command line).
///
/// # Safety
///
/// The contract of `fork(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fork() -> libc::pid_t {
    let Some(real) = real::fork() else {
        real::missing();
        return -1;
    };
    if !registry::hooks_on() {
        // SAFETY: forwarding.
        return unsafe { real() };
    }
    let caller = Registers::here();
    let prepared = catch_unwind(AssertUnwindSafe(|| {
        let mut spawning = Spawning::new(caller, std::ptr::null(), std::ptr::null());
        spawning.exec = ExecNote::new();
        let child = ForkChild {
            environment: spawning.marker.take().map(ForkEnvironment::new),
            note: spawning.exec.as_ref().map(ExecNote::writer),
        };
        (spawning, Box::into_raw(Box::new(child)))
    }))
    .ok();
    let child = prepared
        .as_ref()
        .map_or(std::ptr::null_mut(), |(_, child)| *child);
    let before = FORKED.try_with(|forked| forked.replace(child)).ok();
    let in_flight = InFlight::start();
    // SAFETY: forwarding.
    let pid = unsafe { real() };
    if pid == 0 {
        // The child: nothing is freed or stored here. What the parent prepared is the
        // child's copy, kept for its `exec`; until then (and for ever, in a child that never
        // execs) it sees its environment as it was, without the marker.
        std::mem::forget(prepared);
        std::mem::forget(in_flight);
        // The count is the parent's, of spawns on threads this child does not have.
        IN_FLIGHT.store(0, Ordering::Release);
        return 0;
    }
    if let Some(before) = before {
        let _ = FORKED.try_with(|forked| forked.set(before));
    }
    let marked = !child.is_null() && {
        // SAFETY: made by `Box::into_raw` above; the parent's copy, no longer pointed to.
        let child = unsafe { Box::from_raw(child) };
        child.environment.is_some()
    };
    match prepared {
        Some((spawning, _)) if pid > 0 => {
            let record = || spawning.record(pid, marked);
            if catch_unwind(AssertUnwindSafe(record)).is_err() {
                real::could_not_record();
            }
        }
        Some(_) => {}
        None => real::could_not_record(),
    }
    drop(in_flight);
    pid
}

type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type ExecvpFn = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;

/// In a fork child: notes `program` and `argv` for the parent, and gives the environment
/// with the marker for the `exec`; elsewhere `envp` as it is.
///
/// # Safety
///
/// `program` is null or a C string; `argv` and `envp` are null or null-terminated arrays of
/// C strings.
unsafe fn forked_exec(
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> *const *const c_char {
    let forked = FORKED.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    if forked.is_null() {
        return envp;
    }
    // SAFETY: the child's copy of what its parent prepared; the child has one thread.
    let forked = unsafe { &mut *forked };
    if let Some(note) = forked.note {
        // SAFETY: in the fork child the note was made for, before its `exec`; the caller's
        // C strings.
        unsafe { note.write(program, argv) };
    }
    match &mut forked.environment {
        // SAFETY: the caller's environment.
        Some(environment) => unsafe { environment.marked(envp) },
        None => envp,
    }
}

/// The override of `execve(2)`: in a fork child, what it runs is noted for the parent and
/// the environment it is given gets the marker; elsewhere it is forwarded as it is.
///
/// # Safety
///
/// The contract of `execve(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let Some(real) = real::execve() else {
        real::missing();
        return -1;
    };
    // SAFETY: the caller's arguments; then forwarding.
    unsafe { real(path, argv, forked_exec(path, argv, envp)) }
}

/// The override of `execv(3)` (what `nix::unistd::execv` calls, and C code after a
/// `fork`): glibc runs it on its internal `execve`, past the hook above, so it is followed
/// here as `execvp` is: with `environ`, which gets the marker in a fork child.
///
/// # Safety
///
/// The contract of `execv(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    let Some(real) = real::execve() else {
        real::missing();
        return -1;
    };
    // SAFETY: the caller's arguments and the child's own environment (with the marker in a
    // fork child); `execv` is `execve` with `environ`.
    unsafe { real(path, argv, forked_exec(path, argv, environ)) }
}

/// The override of `execvp(3)`, which std's `Command` calls in a fork child after it has
/// set `environ` to the command's environment: in a fork child, that gets the marker, and
/// what it runs is noted for the parent.
///
/// # Safety
///
/// The contract of `execvp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    let Some(real) = real::execvp() else {
        real::missing();
        return -1;
    };
    // SAFETY: the child's own environment pointer, replaced by one with the marker in a
    // fork child only (a process's `environ` is its own, never stored here elsewhere); then
    // forwarding.
    unsafe {
        let marked = forked_exec(file, argv, environ);
        if marked != environ {
            environ = marked;
        }
        real(file, argv)
    }
}

type KillFn = unsafe extern "C" fn(libc::pid_t, c_int) -> c_int;

/// The override of `kill(2)`: a child this process signalled (`Child::kill`, tokio's
/// `kill_on_drop`) and that has not been waited for yet is not reported as a zombie.
///
/// # Safety
///
/// The contract of `kill(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kill(pid: libc::pid_t, signal: c_int) -> c_int {
    let Some(real) = real::kill() else {
        real::missing();
        return -1;
    };
    // A pid, or a process group as `-pgid` (`kill(-pgid, ..)`; not 0 or -1, this
    // process's own group and every process).
    if !(-1..=0).contains(&pid) && signal != 0 {
        signalled::note(pid);
    }
    // SAFETY: forwarding.
    unsafe { real(pid, signal) }
}

/// The override of `killpg(3)`, which the C library sends through its internal `kill`,
/// past the hook above: a group ended this way is noted as `-pgid`, as `kill` notes it.
///
/// # Safety
///
/// The contract of `killpg(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn killpg(group: libc::pid_t, signal: c_int) -> c_int {
    let Some(real) = real::killpg() else {
        real::missing();
        return -1;
    };
    if group > 1 && signal != 0 {
        signalled::note(-group);
    }
    // SAFETY: forwarding.
    unsafe { real(group, signal) }
}

type PopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut libc::FILE;

/// The override of `popen(3)`: the C library starts the shell itself, past any hook, so
/// the children that appeared during the call are recorded right after it.
///
/// # Safety
///
/// The contract of `popen(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn popen(command: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    let Some(real) = real::popen() else {
        real::missing();
        return std::ptr::null_mut();
    };
    if !registry::hooks_on() {
        // SAFETY: forwarding.
        return unsafe { real(command, mode) };
    }
    let caller = Registers::here();
    // glibc starts the shell from the calling thread: the new child is the one its list of
    // children gains during the call, whatever other threads start meanwhile.
    let me = threads::current_tid();
    let children_before = procfs::children_of_thread(me);
    // Without that list, one `popen` at a time, from the call to the record: otherwise two
    // calls would each take the other's child. (A fork meanwhile leaves this held in the
    // child, whose own `popen` would then wait for ever: a child that forks and calls
    // `popen` before it `exec`s is beyond what a fork child may do anyway.)
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = children_before.is_none().then(|| {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    });
    let before = procfs::ticks_now();
    // SAFETY: forwarding.
    let stream = unsafe { real(command, mode) };
    if !stream.is_null() {
        let recorded = catch_unwind(AssertUnwindSafe(|| {
            let new = match &children_before {
                Some(children_before) => procfs::children_of_thread(me)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|pid| !children_before.contains(pid))
                    .filter_map(procfs::stat)
                    .collect(),
                None => children_started_since(before),
            };
            for child in new {
                if registry::is_recorded(child.pid, child.start_time) {
                    continue;
                }
                let mut spawning = Spawning::new(caller, std::ptr::null(), std::ptr::null());
                spawning.command = procfs::command(child.pid).map(String::into_boxed_str);
                // The C library's shell inherits `environ`, unmarked.
                let started = StartWindow {
                    after: child.start_time,
                    before: child.start_time,
                };
                spawning.record_started(child.pid, false, started);
            }
        }));
        if recorded.is_err() {
            real::could_not_record();
        }
    }
    stream
}

/// Where the kernel keeps no list of a thread's children: the children of this process
/// that started since `before`, taken once no hooked spawn on another thread is between
/// its start and its record, and looked at again (a few times at most) if one started
/// meanwhile. Each look reads `/proc/<pid>/stat` of every process of the host.
fn children_started_since(before: u64) -> Vec<procfs::ProcStat> {
    let (me, _) = procfs::this_process();
    let mut new = Vec::new();
    for _ in 0..3 {
        let started = settled_spawns();
        new = procfs::all()
            .into_iter()
            .filter(|child| child.ppid == me as i32 && child.start_time >= before)
            .collect();
        if STARTED.load(Ordering::Acquire) == started {
            break;
        }
    }
    new
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
