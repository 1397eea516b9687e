//! `verify_test_main!()`: a whole test binary checked once, when it exits, after libtest has
//! printed its results (goleak's `VerifyTestMain`). A constructor installed by the macro
//! registers an `atexit` handler; the handler checks every thread and task outside a
//! `#[leakcheck::test]` scope, names the plain `#[test]` that spawned each, and ends the
//! process with status 101 if anything leaked. An exit hook cannot unwind or return an
//! error, so it prints and calls `_exit`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use crate::config;
use crate::describe;
use crate::options::Options;
use crate::outcome::{self, Check, Policies, Verdict};
use crate::verify::Target;

/// libtest's exit status for a failed run.
const FAILED: i32 = 101;

static OPTIONS: OnceLock<Options> = OnceLock::new();

/// The process that installed the check: a child it forks inherits the `atexit` handler,
/// but the check and its JSON record are the parent's alone.
static INSTALLED_BY: OnceLock<u32> = OnceLock::new();

/// Called before `main` by the constructor `verify_test_main!` expands to.
pub fn install(manifest_dir: Option<&'static str>, options: Options) {
    if let Some(dir) = manifest_dir {
        config::remember_manifest_dir(dir);
    }
    if OPTIONS.set(options).is_err() {
        // A second `verify_test_main!` in the same binary: one check is enough.
        return;
    }
    let _ = INSTALLED_BY.set(std::process::id());
    // What the plain tests start is checked at exit: their children carry the marker that
    // finds them when they are orphaned, and their threads' panics are seen with their
    // messages.
    crate::processes::mark_the_process_level();
    crate::panics::watch();
    register();
}

#[cfg(unix)]
fn register() {
    // SAFETY: registering a handler that never unwinds (see `check_at_exit`).
    if unsafe { libc::atexit(check_at_exit) } != 0 {
        eprintln!("leakcheck: verify_test_main!: atexit failed, the binary is not checked");
    }
}

#[cfg(not(unix))]
fn register() {
    eprintln!("leakcheck: verify_test_main! needs a Unix platform; the binary is not checked");
}

#[cfg(unix)]
extern "C" fn check_at_exit() {
    if INSTALLED_BY.get() != Some(&std::process::id()) {
        // A forked child leaving through `exit()`: not the binary's check.
        return;
    }
    let status = catch_unwind(AssertUnwindSafe(check)).unwrap_or_else(|_| {
        eprintln!("leakcheck: the exit check panicked; failing the binary");
        Some(FAILED)
    });
    if let Some(status) = status {
        // SAFETY: ending the process now is the point; buffers we wrote are flushed
        // (stderr is unbuffered, libtest flushed stdout before exiting).
        unsafe { libc::_exit(status) };
    }
}

/// The exit check; `Some(status)` to end the process with.
fn check() -> Option<i32> {
    crate::panics::watch();
    let base = OPTIONS.get().cloned().unwrap_or_default();
    let settings = match config::effective(base.settings()) {
        Ok(settings) => settings?,
        Err(message) => {
            eprintln!("{message}");
            return Some(FAILED);
        }
    };
    let found = describe::check(Target::Exit, &settings);
    match outcome::conclude(Check::Exit, found, Policies::of(&settings)) {
        Err(message) => {
            eprintln!("{message}");
            Some(FAILED)
        }
        Ok(Verdict::Clean | Verdict::Warned) => None,
        Ok(Verdict::Fail(report)) => {
            let by = if config::preloaded() {
                "cargo leakcheck"
            } else {
                "verify_test_main!"
            };
            eprintln!("\n{report}\nleakcheck: the test binary fails ({by})");
            Some(FAILED)
        }
    }
}
