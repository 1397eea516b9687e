//! The thread spawn hook: this crate defines `pthread_create` (and `pthread_setname_np`),
//! and the linker binds every call of the test binary to it (std, tokio, C code, libraries
//! loaded later). The hook records the new thread's origin in the registry *before* the real
//! create, so a check right after a spawn cannot miss it, and starts the thread through a
//! trampoline that gives it its parent's scope and unregisters it when it exits.
//!
//! Rules for everything here: never panic across the C boundary, never take a lock a spawn
//! could already hold, and pass straight through when re-entered.

use std::cell::{Cell, RefCell};
#[cfg(lc_name_hook)]
use std::ffi::{CStr, c_char};
use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::procfs::current_tid;
use crate::registry::{self, ThreadOrigin};
use crate::scope;
use crate::unwind::{self, Registers};

use crate::registry::{Launch, StartRoutine};
type CreateFn = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartRoutine,
    *mut c_void,
) -> c_int;

thread_local! {
    // Set while this thread runs hook bookkeeping: a spawn from inside it passes through.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    // This thread's own origin, if the hook started it. Its destructor unregisters the
    // thread; it is the first TLS destructor a hooked thread registers, so it runs last.
    static THIS_THREAD: RefCell<Option<Registration>> = const { RefCell::new(None) };
}

struct Registration(Arc<ThreadOrigin>);

impl Drop for Registration {
    fn drop(&mut self) {
        // In a forked child, whose `exit()` runs the forking thread's TLS destructors, the
        // record is the parent's, and the registry's lock may have been held by another
        // thread of the parent at the fork, in the child for ever: leave it alone.
        if self.0.in_this_process() {
            registry::remove_thread(self.0.scope, self.0.key);
            self.0.forget_parent();
        }
    }
}

/// Whether spawns are being attributed, or why not.
pub(crate) fn status() -> Result<(), &'static str> {
    if real::create().is_none() {
        return Err(
            "the system's pthread_create could not be found, so thread spawns are \
                    not hooked; threads are not checked",
        );
    }
    #[cfg(lc_name_hook)]
    {
        // SAFETY: dlsym with a valid C string; a null result is handled.
        let bound = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"pthread_create".as_ptr()) };
        if !std::ptr::eq(bound.cast_const().cast::<()>(), pthread_create as *const ()) {
            return Err(
                "pthread_create resolves to another library than leakcheck (is \
                        leakcheck loaded as a shared object, or is a sanitizer interposing \
                        it?), so thread spawns are not hooked; threads are not checked",
            );
        }
    }
    Ok(())
}

// The override of the C library's `pthread_create`, where spawns keep a copy of the
// spawner's stack: four instructions of assembly that hand the caller's stack pointer
// and frame pointer (and link register) to [`create_from`], untouched, and jump there. So
// the copy starts exactly at the caller's frame: the entry has no frame of its own (a
// Rust function's would be ~50 bytes, ~180 in a debug build, of every spawn's copy), and
// the unwind tables describe it as a plain function entry.
#[cfg(all(lc_stack_copy, target_arch = "x86_64"))]
std::arch::global_asm!(
    ".pushsection .text.pthread_create,\"ax\",@progbits",
    ".globl pthread_create",
    ".type pthread_create,@function",
    ".p2align 4",
    "pthread_create:",
    ".cfi_startproc",
    // The caller's stack pointer, past the return address; then its frame pointer.
    "lea r8, [rsp + 8]",
    "mov r9, rbp",
    "jmp {create_from}",
    ".cfi_endproc",
    ".size pthread_create, . - pthread_create",
    ".popsection",
    create_from = sym create_from,
);

// As above: the caller's stack pointer, frame pointer and return address (the link
// register) as they are at the call.
#[cfg(all(lc_stack_copy, target_arch = "aarch64"))]
std::arch::global_asm!(
    ".pushsection .text.pthread_create,\"ax\",@progbits",
    ".globl pthread_create",
    ".type pthread_create,@function",
    ".p2align 4",
    "pthread_create:",
    ".cfi_startproc",
    "mov x4, sp",
    "mov x5, x29",
    "mov x6, x30",
    "b {create_from}",
    ".cfi_endproc",
    ".size pthread_create, . - pthread_create",
    ".popsection",
    create_from = sym create_from,
);

#[cfg(all(lc_stack_copy, lc_name_hook))]
unsafe extern "C" {
    /// The assembly above, for [`status`] to compare with what the loader binds.
    fn pthread_create(
        thread: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        start: StartRoutine,
        arg: *mut c_void,
    ) -> c_int;
}

/// What the assembly entry jumps to, with the registers of `pthread_create`'s caller.
///
/// # Safety
///
/// The contract of `pthread_create(3)`; the rest as the entry passes them.
#[cfg(all(lc_stack_copy, target_arch = "x86_64"))]
unsafe extern "C" fn create_from(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
    sp: usize,
    fp: usize,
) -> c_int {
    // SAFETY: the entry passes the caller's stack pointer, with the return address below it.
    let caller = unsafe { Registers::at_call(sp, fp, 0) };
    // SAFETY: the caller's arguments.
    unsafe { create(thread, attr, start, arg, caller) }
}

/// As above, with the return address in the link register.
///
/// # Safety
///
/// As above.
#[cfg(all(lc_stack_copy, target_arch = "aarch64"))]
unsafe extern "C" fn create_from(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
    sp: usize,
    fp: usize,
    lr: usize,
) -> c_int {
    // SAFETY: the entry passes the caller's registers at the call.
    let caller = unsafe { Registers::at_call(sp, fp, lr) };
    // SAFETY: the caller's arguments.
    unsafe { create(thread, attr, start, arg, caller) }
}

/// The override of the C library's `pthread_create`, where the system unwinder walks the
/// spawner's stack at spawn.
///
/// # Safety
///
/// The contract of `pthread_create(3)`.
#[cfg(not(lc_stack_copy))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { create(thread, attr, start, arg, Registers::here()) }
}

/// The hook's work. `caller`: the registers of `pthread_create`'s caller, whose frame and
/// those above it are still running.
///
/// # Safety
///
/// The contract of `pthread_create(3)`.
unsafe fn create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
    caller: Registers,
) -> c_int {
    let Some(real_create) = real::create() else {
        real::complain_once();
        return libc::EAGAIN;
    };
    // `LEAKCHECK=off`, or a spawn from inside the hook: pass straight through.
    let pass_through =
        !registry::hooks_on() || IN_HOOK.try_with(|flag| flag.replace(true)).unwrap_or(true);
    if pass_through {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real_create(thread, attr, start, arg) };
    }
    let origin = catch_unwind(AssertUnwindSafe(|| register_spawn(start, arg, caller))).ok();
    let _ = IN_HOOK.try_with(|flag| flag.set(false));
    let Some(origin) = origin else {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real_create(thread, attr, start, arg) };
    };
    // The new thread's reference, which it takes over; ours stays for the code below (the
    // thread may exit and drop its own before the create returns).
    let launch = Arc::into_raw(origin.clone());
    // SAFETY: the caller's arguments, with our trampoline and a pointer it takes ownership
    // of if (and only if) the thread is created.
    let status = unsafe { real_create(thread, attr, trampoline, launch.cast_mut().cast()) };
    if status != 0 {
        // SAFETY: no thread was created, so the reference was never handed over.
        drop(unsafe { Arc::from_raw(launch) });
        registry::remove_thread(origin.scope, origin.key);
    } else if !thread.is_null() {
        // SAFETY: a successful create wrote the handle.
        origin.set_handle(unsafe { *thread } as usize);
    }
    status
}

/// The key of the next thread the hook records: keys only grow, so a record whose key is
/// at least a value read earlier is of a thread spawned since.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The key the next spawned thread will get: a join or detach that reads it first concerns
/// only threads spawned before it (`panics`).
#[cfg(lc_panic_hook)]
pub(crate) fn next_key() -> u64 {
    NEXT_KEY.load(Ordering::Acquire)
}

/// The new thread's origin, registered: its spawn stack kept from `caller` up, and what it
/// will run.
fn register_spawn(start: StartRoutine, arg: *mut c_void, caller: Registers) -> Arc<ThreadOrigin> {
    let spawn = unwind::capture(caller, unwind::THREAD);
    let parent = current_origin();
    // A thread that starts another while a panic unwinds out of it is a pool replacing the
    // worker the panic ends (threadpool's drop guard counts the panic and respawns): the
    // pool saw the panic. One relaxed load when no panic was ever lost.
    #[cfg(lc_panic_hook)]
    if registry::any_lost_panic() && std::thread::panicking() {
        if let Some(parent) = &parent {
            registry::replaced(parent.key);
        }
    }
    let origin = Arc::new(ThreadOrigin::new(
        NEXT_KEY.fetch_add(1, Ordering::Relaxed),
        scope::current(),
        parent,
        scope::polled_task(),
        spawn,
        Launch { start, arg },
    ));
    registry::add_thread(origin.clone());
    origin
}

/// The calling thread's own origin, if the hook started it in this process (in a forked
/// child, the forking thread's record is its parent's: not touched). The process hooks
/// record it as the thread that started a child.
pub(crate) fn current_origin() -> Option<Arc<ThreadOrigin>> {
    THIS_THREAD
        .try_with(|this| {
            this.borrow()
                .as_ref()
                .filter(|own| own.0.in_this_process())
                .map(|own| own.0.clone())
        })
        .ok()
        .flatten()
}

/// First code of every hooked thread: note where its stack's frames begin, adopt the
/// parent's scope, then run the real start routine. The bookkeeping is a call of its own,
/// so that nothing of this frame is alive while `start` runs (it may end in a forced
/// unwind, `pthread_exit`) and the call to it can be a tail call.
unsafe extern "C-unwind" fn trampoline(launch: *mut c_void) -> *mut c_void {
    unwind::note_thread_start();
    // SAFETY: `pthread_create` above passes a reference to the origin it no longer owns.
    let (start, arg) = unsafe { adopt(launch) };
    // SAFETY: the start routine and argument the spawner gave `pthread_create`.
    unsafe { start(arg) }
}

/// The new thread takes its origin: its tid, its parent's scope, and the registration that
/// unregisters it when it exits.
///
/// # Safety
///
/// `launch` is an `Arc<ThreadOrigin>` turned into a raw pointer, owned by nobody else.
#[inline(never)]
unsafe fn adopt(launch: *mut c_void) -> (StartRoutine, *mut c_void) {
    // SAFETY: the caller hands over the reference.
    let origin = unsafe { Arc::from_raw(launch.cast_const().cast::<ThreadOrigin>()) };
    let Launch { start, arg } = origin.launch();
    origin.set_tid(current_tid());
    scope::set_current(origin.scope);
    let registration = Registration(origin);
    // At thread start TLS is always available; if it were not, dropping the registration
    // here unregisters the thread rather than leaving it behind.
    let _ = THIS_THREAD.try_with(|this| *this.borrow_mut() = Some(registration));
    (start, arg)
}

/// Hands the calling thread over from the scope that spawned it to the process level: it
/// belongs to a shared runtime, not to the test that happened to start it. What it runs
/// for a test is attributed by task instead.
pub(crate) fn release_current_thread() {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        scope::set_current(scope::PROCESS);
        let _ = THIS_THREAD.try_with(|this| {
            let mut this = this.borrow_mut();
            let Some(Registration(owned)) = this.as_ref() else {
                return;
            };
            if owned.scope == scope::PROCESS {
                return;
            }
            let released = Arc::new(owned.with_scope(scope::PROCESS));
            registry::remove_thread(owned.scope, owned.key);
            registry::add_thread(released.clone());
            // The old registration's drop removes an entry that is already gone.
            *this = Some(Registration(released));
        });
    }));
}

/// The override of `pthread_setname_np`: the kernel keeps 15 bytes of a name, so the hook
/// remembers the whole one for reports.
///
/// # Safety
///
/// The contract of `pthread_setname_np(3)`.
#[cfg(lc_name_hook)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_setname_np(thread: libc::pthread_t, name: *const c_char) -> c_int {
    let Some(real_setname) = real::setname() else {
        return libc::ENOSYS;
    };
    // SAFETY: forwarding the caller's arguments unchanged.
    let status = unsafe { real_setname(thread, name) };
    if status == 0 && !name.is_null() {
        // SAFETY: the real call accepted `name` as a C string.
        let name = unsafe { CStr::from_ptr(name) };
        let _ = catch_unwind(AssertUnwindSafe(|| remember_name(thread, name)));
    }
    status
}

#[cfg(lc_name_hook)]
fn remember_name(thread: libc::pthread_t, kernel_name: &CStr) {
    let short = kernel_name.to_string_lossy();
    // SAFETY: pthread_self has no preconditions.
    if thread != unsafe { libc::pthread_self() } {
        // Named by another thread (C code often names a thread right after creating it).
        if let Some(origin) = registry::thread_by_handle(thread as usize) {
            registry::name_thread(&origin, &short);
        }
        return;
    }
    let Some(origin) = current_origin() else {
        return;
    };
    // std cuts a longer name to the kernel's 15 bytes before it calls us, after it has set
    // the thread's own handle (so since Rust 1.84, and always at this crate's MSRV of 1.85):
    // take the full name from there. A shorter name is complete as it is.
    if short.len() >= 15 {
        if let Some(full) = std::thread::current().name() {
            if full.starts_with(short.as_ref()) {
                registry::name_thread(&origin, full);
                return;
            }
        }
    }
    registry::name_thread(&origin, &short);
}

/// The C library's own functions behind the overrides.
mod real {
    use super::CreateFn;
    use crate::interpose::SayOnce;

    #[cfg(lc_name_hook)]
    type SetNameFn =
        unsafe extern "C" fn(libc::pthread_t, *const std::ffi::c_char) -> std::ffi::c_int;

    /// Dynamically linked: the next definition after ours, found once.
    #[cfg(lc_name_hook)]
    pub(super) fn create() -> Option<CreateFn> {
        let address = crate::interpose::address(crate::interpose::Real::PthreadCreate)?;
        // SAFETY: the C library's pthread_create has exactly this signature.
        Some(unsafe { std::mem::transmute::<usize, CreateFn>(address) })
    }

    /// Statically linked (musl, or glibc with crt-static): dlsym cannot see past us, but
    /// the C library's internal name for the function is linkable.
    #[cfg(not(lc_name_hook))]
    pub(super) fn create() -> Option<CreateFn> {
        unsafe extern "C" {
            fn __pthread_create(
                thread: *mut libc::pthread_t,
                attr: *const libc::pthread_attr_t,
                start: super::StartRoutine,
                arg: *mut std::ffi::c_void,
            ) -> std::ffi::c_int;
        }
        Some(__pthread_create)
    }

    #[cfg(lc_name_hook)]
    pub(super) fn setname() -> Option<SetNameFn> {
        let address = crate::interpose::address(crate::interpose::Real::PthreadSetname)?;
        // SAFETY: the C library's pthread_setname_np has exactly this signature.
        Some(unsafe { std::mem::transmute::<usize, SetNameFn>(address) })
    }

    /// The system's `pthread_create` is missing: said once.
    pub(super) fn complain_once() {
        static SAID: SayOnce = SayOnce::new();
        SAID.say(
            b"leakcheck: the system's pthread_create was not found; thread creation fails \
              with EAGAIN\n",
        );
    }
}
