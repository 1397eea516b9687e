//! Debug info loaded ahead of a report, on a thread of leakcheck's own, while a check waits
//! out its grace period. The first report of a process reads the debug info of the binary
//! and, for a thread's current stack, of the C library (which Debian's `libc6-dbg` ships
//! compressed): ~0.1 s in a release build, half a second to a second in a debug test
//! binary, where the symbolising code is itself unoptimised. Done after the grace period,
//! that time is added to every first failing test; done during it, it mostly is not.
//!
//! The thread starts with the first check that finds something still running, belongs to
//! no scope, and is never reported; it only resolves addresses, which fills the caches the
//! report then reads (`frames`' and the symboliser's own). It is started by the caller's
//! spawner, so that `frames` stays a leaf.

use std::sync::{LazyLock, OnceLock};

use parking_lot::{Condvar, Mutex};

use crate::unwind::SpawnStack;

/// What to load: the spawn stacks of what a check found, and whether threads were among
/// it (their current stacks end in the C library).
#[derive(Default)]
struct Work {
    stacks: Vec<SpawnStack>,
    c_library: bool,
}

impl Work {
    fn is_empty(&self) -> bool {
        self.stacks.is_empty() && !self.c_library
    }
}

static WORK: LazyLock<Mutex<Work>> = LazyLock::new(Default::default);
static READY: Condvar = Condvar::new();

/// How leakcheck starts a thread of its own (`threads::spawn_own`: outside every scope,
/// never reported), handed in by the caller: `frames` imports nothing above it.
pub(crate) type SpawnOwn = fn(&'static str, fn()) -> bool;

/// Starts loading what a report of these would read, and returns at once.
pub(crate) fn warm_symbols(stacks: Vec<SpawnStack>, threads: bool, spawn_own: SpawnOwn) {
    if !started(spawn_own) {
        return;
    }
    let mut work = WORK.lock();
    work.stacks.extend(stacks);
    work.c_library |= threads;
    READY.notify_one();
}

/// Whether the thread runs, starting it the first time: outside every scope, and marked as
/// leakcheck's own before any check can see it.
fn started(spawn_own: SpawnOwn) -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| spawn_own("leakcheck-symbols", load_forever))
}

fn load_forever() {
    let mut c_library_loaded = false;
    // The binary's own debug info, which every report reads (spawn sites, task dumps).
    // (`resolve` reads an address as a return address: one past the instruction.)
    super::resolve(&[load_forever as fn() as usize + 1]);
    loop {
        let work = {
            let mut work = WORK.lock();
            while work.is_empty() {
                READY.wait(&mut work);
            }
            std::mem::take(&mut *work)
        };
        if work.c_library && !c_library_loaded {
            c_library_loaded = true;
            load_c_library();
        }
        for stack in work.stacks {
            let ips = stack.unwind();
            if super::resolve_spawn_cached(ips).is_none() {
                super::resolve_spawn(ips);
            }
        }
    }
}

/// The C library's debug info, where a blocked thread's current stack starts (`syscall`,
/// `futex` waits, `nanosleep`, `read`): resolving one of its functions loads it.
fn load_c_library() {
    #[cfg(unix)]
    super::resolve(&[libc::syscall as *const () as usize + 1]);
}
