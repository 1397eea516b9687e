//! leakcheck loaded into a test binary that does not link it: `cargo leakcheck`'s runner
//! starts each such binary with leakcheck built as a shared library in `LD_PRELOAD`, whose
//! constructor calls [`install`]. The hooks interpose the C library's entry points as they do
//! when linked; this installs the exit check `verify_test_main!` would.
//!
//! The injection reaches the test binary only: the runner gives it its own variables (the
//! records' file, the mode, where to say it was loaded, which binary is meant) and, in
//! `LEAKCHECK_PRELOAD_RESTORE`, what each of them and `LD_PRELOAD` were before. Here they
//! are read once, then put back as they were, so that what the test starts (a shell, a
//! nested cargo, its own binary) sees the environment it would see without leakcheck, but
//! for the marker of its children.
//!
//! What differs from a linked leakcheck: this library has its own copy of std, not the
//! test's, so the test's panic hook and thread names are out of reach. A lost panic's
//! message is read off the panic itself (`panics`), without where it panicked, and a
//! test's whole name comes from its function on the spawn path (`describe`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::config;
use crate::options::Options;

/// What the runner sets, besides leakcheck's own settings: the variables it added or
/// changed, each `NAME=value` as it was before, or `NAME` where it was not set, joined by
/// the unit separator (0x1f).
const RESTORE_VAR: &str = "LEAKCHECK_PRELOAD_RESTORE";
/// A file to create once the library is loaded: how `cargo leakcheck` learns which
/// binaries a wrapper kept it out of.
const LOADED_VAR: &str = "LEAKCHECK_PRELOAD_LOADED";
/// The test binary the runner meant: a runner of the user's that starts it as a child (an
/// emulator, a memory checker) is loaded into first, and passes everything on untouched.
const TARGET_VAR: &str = "LEAKCHECK_PRELOAD_TARGET";

/// Called by the preloaded library's constructor, before `main`: reads the runner's
/// settings, restores the environment, and installs the exit check (not for a listing,
/// `--list`, which nextest runs through the runner too).
pub fn install() {
    if !is_the_target() {
        return;
    }
    let _ = take(TARGET_VAR);
    let restore = take(RESTORE_VAR);
    let loaded = take(LOADED_VAR);
    // Every setting now, while the runner's values are in place (read once, kept).
    let environment = config::environment();
    if let Some(restore) = restore {
        put_back(&restore);
    }
    if let Some(loaded) = loaded.filter(|path| !path.is_empty()) {
        // Created empty: its name says which binary (or test) was reached.
        let _ = std::fs::File::create(loaded);
    }
    let listing = std::env::args_os().any(|arg| arg == "--list");
    if listing || environment.is_ok_and(|environment| environment.mode == config::Mode::Off) {
        return;
    }
    config::set_preloaded();
    crate::exit_gate::install(None, Options::new());
}

/// Whether this process is the test binary the runner started (or no runner said which):
/// not a runner of the user's between them.
fn is_the_target() -> bool {
    let Some(target) = std::env::var_os(TARGET_VAR) else {
        return true;
    };
    let same = |path: &std::path::Path| path.canonicalize().ok();
    match std::env::current_exe() {
        Ok(me) => same(&me) == same(target.as_ref()),
        Err(_) => true,
    }
}

/// The variable `name`, removed from the environment.
fn take(name: &str) -> Option<OsString> {
    let value = std::env::var_os(name)?;
    // SAFETY: before `main`, in the library's constructor: no other thread of the program
    // reads the environment yet.
    unsafe { std::env::remove_var(name) };
    Some(value)
}

/// Sets each variable of `restore` back to what it was (values as bytes: an environment
/// need not be UTF-8).
fn put_back(restore: &OsStr) {
    for entry in restore.as_bytes().split(|&byte| byte == 0x1f) {
        if entry.is_empty() {
            continue;
        }
        let (name, value) = match entry.iter().position(|&byte| byte == b'=') {
            Some(at) => (&entry[..at], Some(&entry[at + 1..])),
            None => (entry, None),
        };
        let name = OsStr::from_bytes(name);
        // SAFETY: as in `take`.
        unsafe {
            match value {
                Some(value) => std::env::set_var(name, OsStr::from_bytes(value)),
                None => std::env::remove_var(name),
            }
        }
    }
}
