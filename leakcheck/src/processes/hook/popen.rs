//! `popen`: the C library starts the shell past every other hook, so its child is taken
//! from the calling thread's new children.

use super::*;

pub(super) type PopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut libc::FILE;

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
