//! The environment a CI pipeline sets: `LEAKCHECK`, `LEAKCHECK_GRACE`, `LEAKCHECK_REPORT`,
//! `LEAKCHECK_CONFIG`, `LEAKCHECK_TASK_BACKTRACE`. Each is read once; a value that is not
//! understood is an error naming the variable, the value and what is accepted, reported by
//! the first check (a hook cannot fail, so it keeps working as in the default mode).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `LEAKCHECK`: what a leak does.
pub(crate) const MODE_VAR: &str = "LEAKCHECK";
/// `LEAKCHECK_GRACE`: the grace period, over every other setting.
pub(crate) const GRACE_VAR: &str = "LEAKCHECK_GRACE";
/// `LEAKCHECK_REPORT`: the file JSON lines are appended to.
pub(crate) const REPORT_VAR: &str = "LEAKCHECK_REPORT";
/// `LEAKCHECK_CONFIG`: the shared allowlist file to use instead of looking for one.
pub(crate) const CONFIG_VAR: &str = "LEAKCHECK_CONFIG";
/// `LEAKCHECK_TASK_BACKTRACE`: record a backtrace at every task spawn.
pub(crate) const TASK_BACKTRACE_VAR: &str = "LEAKCHECK_TASK_BACKTRACE";

/// What a leak does to the test that leaked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The default: the test fails with the report.
    Fail,
    /// The report is printed and the test passes: a team's first step in CI.
    Warn,
    /// No hook work, no check, no report.
    Off,
}

impl Mode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Fail => "fail",
            Mode::Warn => "warn",
            Mode::Off => "off",
        }
    }
}

/// The variables, parsed.
#[derive(Debug)]
pub(crate) struct Environment {
    pub(crate) mode: Mode,
    pub(crate) grace: Option<Duration>,
    pub(crate) report: Option<PathBuf>,
    pub(crate) config_file: Option<PathBuf>,
}

/// The environment, read at the first check, or the first bad value in it.
pub(crate) fn environment() -> Result<&'static Environment, &'static str> {
    static READ: OnceLock<Result<Environment, String>> = OnceLock::new();
    READ.get_or_init(read).as_ref().map_err(String::as_str)
}

/// The mode, `Fail` when `LEAKCHECK` is not understood (the check that reads it fails).
pub(crate) fn mode() -> Mode {
    environment().map_or(Mode::Fail, |environment| environment.mode)
}

/// Whether `LEAKCHECK=off`, for the spawn hooks: set before `main` and read with one atomic
/// load, since `pthread_create` can run where reading the environment is not safe.
#[cfg_attr(
    not(any(all(target_os = "linux", not(miri)), tokio_unstable)),
    allow(dead_code)
)]
pub(crate) fn hooks_off() -> bool {
    HOOKS_OFF.load(Ordering::Relaxed)
}

static HOOKS_OFF: AtomicBool = AtomicBool::new(false);

#[ctor::ctor(unsafe)]
fn read_mode_before_main() {
    let off = std::env::var_os(MODE_VAR).is_some_and(|value| value == "off");
    HOOKS_OFF.store(off, Ordering::Relaxed);
}

fn read() -> Result<Environment, String> {
    let mode = match variable(MODE_VAR)?.as_deref().map(str::trim) {
        None | Some("") | Some("fail") => Mode::Fail,
        Some("warn") => Mode::Warn,
        Some("off") => Mode::Off,
        Some(other) => {
            return Err(format!(
                "leakcheck: {MODE_VAR}={other:?} is not understood: expected fail (a leak fails \
                 the test, the default), warn (print the report, pass) or off (no checks)"
            ));
        }
    };
    let grace = match variable(GRACE_VAR)? {
        None => None,
        Some(value) => Some(humantime::parse_duration(value.trim()).map_err(|error| {
            format!(
                "leakcheck: {GRACE_VAR}={value:?} is not a duration ({error}): expected \
                 something like 500ms, 2s or 1m"
            )
        })?),
    };
    let path = |name: &str| -> Result<Option<PathBuf>, String> {
        match variable(name)? {
            Some(value) if value.trim().is_empty() => Err(format!(
                "leakcheck: {name} is set but empty: expected a file path"
            )),
            value => Ok(value.map(PathBuf::from)),
        }
    };
    Ok(Environment {
        mode,
        grace,
        report: path(REPORT_VAR)?,
        config_file: path(CONFIG_VAR)?,
    })
}

/// Whether task spawn hooks capture a backtrace (`LEAKCHECK_TASK_BACKTRACE=1`), read once.
/// Without it a leaked task is reported with its spawn line and parent, not its callers.
pub(crate) fn task_backtraces() -> Result<bool, String> {
    static VALUE: OnceLock<Result<bool, String>> = OnceLock::new();
    VALUE
        .get_or_init(|| match variable(TASK_BACKTRACE_VAR)? {
            None => Ok(false),
            Some(value) => parse_switch(&value).ok_or_else(|| {
                format!(
                    "leakcheck: {TASK_BACKTRACE_VAR}={value:?} is not understood: expected 1, \
                     true, yes or on (capture task spawn backtraces), or 0, false, no or off"
                )
            }),
        })
        .clone()
}

/// A variable's value; `None` when unset; an error when it is not UTF-8.
fn variable(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(format!("leakcheck: {name}={value:?} is not valid UTF-8"))
        }
    }
}

fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_switch;

    #[test]
    fn switches_read_like_people_write_them() {
        for on in ["1", "true", "YES", " on "] {
            assert_eq!(parse_switch(on), Some(true), "{on:?}");
        }
        for off in ["0", "false", "No", "off", ""] {
            assert_eq!(parse_switch(off), Some(false), "{off:?}");
        }
        for bad in ["2", "enabled", "tru"] {
            assert_eq!(parse_switch(bad), None, "{bad:?}");
        }
    }
}
