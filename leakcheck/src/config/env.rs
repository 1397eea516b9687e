//! The environment a CI pipeline sets: `LEAKCHECK`, `LEAKCHECK_GRACE`, `LEAKCHECK_TIMEOUT`,
//! `LEAKCHECK_UNTRACKED_TASKS`, `LEAKCHECK_ZOMBIES`, `LEAKCHECK_LOST_PANICS`,
//! `LEAKCHECK_KILL_PROCESSES`, `LEAKCHECK_MARK_CHILDREN`, `LEAKCHECK_REPORT`,
//! `LEAKCHECK_CONFIG`, `LEAKCHECK_TASK_BACKTRACE`. All are read once, together, by one
//! reader; a value that is not understood is an error naming the variable, the value and
//! what is accepted, reported by the first check of any kind (a hook cannot fail, so it
//! keeps working as in the default mode).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// `LEAKCHECK`: what a leak does.
pub(crate) const MODE_VAR: &str = "LEAKCHECK";
/// `LEAKCHECK_GRACE`: the grace period of every check whose test sets none, over
/// `leakcheck.toml`'s.
pub(crate) const GRACE_VAR: &str = "LEAKCHECK_GRACE";
/// `LEAKCHECK_TIMEOUT`: end a test that has not returned by then, with a report.
pub(crate) const TIMEOUT_VAR: &str = "LEAKCHECK_TIMEOUT";
/// `LEAKCHECK_UNTRACKED_TASKS`: what task counts leakcheck cannot identify do.
pub(crate) const UNTRACKED_TASKS_VAR: &str = "LEAKCHECK_UNTRACKED_TASKS";
/// `LEAKCHECK_ZOMBIES`: what a child that exited and was never waited for does.
pub(crate) const ZOMBIES_VAR: &str = "LEAKCHECK_ZOMBIES";
/// `LEAKCHECK_LOST_PANICS`: what a panic nobody observed in a thread of the test does.
pub(crate) const LOST_PANICS_VAR: &str = "LEAKCHECK_LOST_PANICS";
/// `LEAKCHECK_KILL_PROCESSES`: end leaked child processes after the report.
pub(crate) const KILL_PROCESSES_VAR: &str = "LEAKCHECK_KILL_PROCESSES";
/// `LEAKCHECK_MARK_CHILDREN`: whether children inherit the marker that finds their orphans.
pub(crate) const MARK_CHILDREN_VAR: &str = "LEAKCHECK_MARK_CHILDREN";
/// `LEAKCHECK_REPORT`: the file JSON lines are appended to.
pub(crate) const REPORT_VAR: &str = "LEAKCHECK_REPORT";
/// `LEAKCHECK_CONFIG`: the shared allowlist file to use instead of looking for one.
pub(crate) const CONFIG_VAR: &str = "LEAKCHECK_CONFIG";
/// `LEAKCHECK_TASK_BACKTRACE`: record a backtrace at every task spawn.
pub(crate) const TASK_BACKTRACE_VAR: &str = "LEAKCHECK_TASK_BACKTRACE";
/// `LEAKCHECK_SPAWNED_BY`: the marker leakcheck itself puts in a child's environment (named
/// here, in the leaves, so that the one reader knows it; `processes::marker` writes it).
pub(crate) const SPAWNED_BY_VAR: &str = "LEAKCHECK_SPAWNED_BY";

/// Every variable leakcheck reads (the reference documents each).
pub(crate) const VARIABLES: &[&str] = &[
    MODE_VAR,
    GRACE_VAR,
    TIMEOUT_VAR,
    UNTRACKED_TASKS_VAR,
    ZOMBIES_VAR,
    LOST_PANICS_VAR,
    KILL_PROCESSES_VAR,
    MARK_CHILDREN_VAR,
    REPORT_VAR,
    CONFIG_VAR,
    TASK_BACKTRACE_VAR,
];

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

pub use leakcheck_schema::policy::Policy;
use leakcheck_schema::policy::{LOST_PANICS, UNTRACKED_TASKS, ZOMBIES};

/// The variables, parsed.
#[derive(Debug)]
pub(crate) struct Environment {
    pub(crate) mode: Mode,
    pub(crate) grace: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) untracked_tasks: Option<Policy>,
    pub(crate) zombies: Option<Policy>,
    pub(crate) lost_panics: Option<Policy>,
    pub(crate) kill_processes: Option<bool>,
    pub(crate) report: Option<PathBuf>,
    pub(crate) config_file: Option<PathBuf>,
    /// Whether task spawn hooks capture a backtrace (`LEAKCHECK_TASK_BACKTRACE=1`). Without
    /// it a leaked task is reported with its spawn line and parent, not its callers. The
    /// variable is checked on every build; it is kept only where the task hooks exist.
    #[cfg(tokio_unstable)]
    pub(crate) task_backtrace: bool,
}

/// The environment, read at the first check, or the first bad value in it. The one reader
/// of every `LEAKCHECK*` variable (the before-`main` hook switch parses `LEAKCHECK` with the
/// same [`parse_mode`]).
pub(crate) fn environment() -> Result<&'static Environment, &'static str> {
    static READ: OnceLock<Result<Environment, String>> = OnceLock::new();
    READ.get_or_init(read).as_ref().map_err(String::as_str)
}

/// The mode, `Fail` when `LEAKCHECK` is not understood (the check that reads it fails).
pub(crate) fn mode() -> Mode {
    environment().map_or(Mode::Fail, |environment| environment.mode)
}

/// `LEAKCHECK_MARK_CHILDREN` as the process hooks need it before `main`: `false` only when
/// it says so; a bad value counts as the default, and the first check reports it.
#[cfg(lc_process_hook)]
pub(crate) fn mark_children_before_main() -> bool {
    match variable(MARK_CHILDREN_VAR) {
        Ok(Some(value)) => parse_switch(&value).unwrap_or(true),
        _ => true,
    }
}

/// `LEAKCHECK` as the spawn hooks need it before `main`: read without caching (std's
/// runtime is not set up yet), parsed as [`environment`] parses it; a bad value counts as
/// the default, and the first check reports it.
#[cfg(any(lc_thread_hook, tokio_unstable))]
pub(crate) fn mode_before_main() -> Mode {
    match variable(MODE_VAR) {
        Ok(Some(value)) => parse_mode(&value).unwrap_or(Mode::Fail),
        _ => Mode::Fail,
    }
}

fn parse_mode(value: &str) -> Result<Mode, String> {
    match value.trim() {
        "" | "fail" => Ok(Mode::Fail),
        "warn" => Ok(Mode::Warn),
        "off" => Ok(Mode::Off),
        other => Err(format!(
            "leakcheck: {MODE_VAR}={other:?} is not understood: expected fail (a leak fails \
             the test, the default), warn (print the report, pass) or off (no checks)"
        )),
    }
}

fn read() -> Result<Environment, String> {
    let mode = match variable(MODE_VAR)? {
        Some(value) => parse_mode(&value)?,
        None => Mode::Fail,
    };
    // A misspelt setting would otherwise be a setting silently not applied. `LEAKCHECK=off`
    // stays the way out, whatever else is set.
    if mode != Mode::Off {
        if let Some(unknown) = unknown_variable(std::env::vars_os().map(|(name, _)| name)) {
            return Err(unknown);
        }
    }
    let duration = |name: &str| -> Result<Option<Duration>, String> {
        let Some(value) = variable(name)? else {
            return Ok(None);
        };
        leakcheck_schema::duration::parse(value.trim())
            .map(Some)
            .map_err(|error| {
                format!(
                    "leakcheck: {name}={value:?} is not a duration ({error}): expected \
                     something like 500ms, 2s or 1m"
                )
            })
    };
    let grace = duration(GRACE_VAR)?;
    let timeout = duration(TIMEOUT_VAR)?;
    let policy = |name: &str, accepted: &[Policy], meaning: &str| match variable(name)? {
        None => Ok(None),
        Some(value) => Policy::parse(&value, accepted).map(Some).ok_or_else(|| {
            format!(
                "leakcheck: {name}={value:?} is not understood: expected {} ({meaning})",
                Policy::expected(accepted).replace('"', "")
            )
        }),
    };
    let untracked_tasks = policy(
        UNTRACKED_TASKS_VAR,
        UNTRACKED_TASKS,
        "fail: task counts leakcheck cannot identify fail the test, the default; warn: they \
         are reported, and the test passes",
    )?;
    let zombies = policy(
        ZOMBIES_VAR,
        ZOMBIES,
        "warn: a child that exited and was never waited for is reported, the default; fail: \
         it fails the test; off: not reported",
    )?;
    let lost_panics = policy(
        LOST_PANICS_VAR,
        LOST_PANICS,
        "fail: a panic nobody observed in a thread of the test fails it, the default; warn: \
         it is reported; off: not looked for",
    )?;
    let switch = |name: &str, meaning: &str| -> Result<Option<bool>, String> {
        match variable(name)? {
            None => Ok(None),
            Some(value) => parse_switch(&value).map(Some).ok_or_else(|| {
                format!(
                    "leakcheck: {name}={value:?} is not understood: expected 1 or true \
                     ({meaning}), or 0 or false"
                )
            }),
        }
    };
    let kill_processes = switch(
        KILL_PROCESSES_VAR,
        "end leaked child processes and their descendants after the report",
    )?;
    // Read by the process hooks before `main`; checked here, where a bad value can be said.
    switch(
        MARK_CHILDREN_VAR,
        "children inherit LEAKCHECK_SPAWNED_BY, which finds them when they are orphaned, the \
         default",
    )?;
    let path = |name: &str| -> Result<Option<PathBuf>, String> {
        match variable(name)? {
            Some(value) if value.trim().is_empty() => Err(format!(
                "leakcheck: {name} is set but empty: expected a file path"
            )),
            value => Ok(value.map(PathBuf::from)),
        }
    };
    let task_backtrace = match variable(TASK_BACKTRACE_VAR)? {
        None => false,
        Some(value) => parse_switch(&value).ok_or_else(|| {
            format!(
                "leakcheck: {TASK_BACKTRACE_VAR}={value:?} is not understood: expected 1, \
                 true, yes or on (capture task spawn backtraces), or 0, false, no or off"
            )
        })?,
    };
    #[cfg(not(tokio_unstable))]
    let _ = task_backtrace;
    Ok(Environment {
        mode,
        grace,
        timeout,
        untracked_tasks,
        zombies,
        lost_panics,
        kill_processes,
        report: path(REPORT_VAR)?,
        config_file: path(CONFIG_VAR)?,
        #[cfg(tokio_unstable)]
        task_backtrace,
    })
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

/// The error for the first name in `names` that starts with `LEAKCHECK_` and is not one of
/// leakcheck's, naming the closest one that is.
fn unknown_variable(names: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    let name = names
        .filter_map(|name| name.into_string().ok())
        // What leakcheck reads, and the marker it sets in children (a test binary started by
        // a test inherits it).
        .filter(|name| {
            name.starts_with("LEAKCHECK_")
                && !VARIABLES.contains(&name.as_str())
                && name != SPAWNED_BY_VAR
        })
        .min()?;
    let closest = VARIABLES
        .iter()
        .min_by_key(|known| edit_distance(&name, known))
        .copied()
        .unwrap_or(MODE_VAR);
    Some(format!(
        "leakcheck: {name} is not a variable leakcheck knows: did you mean {closest}? \
         (a misspelt setting is never ignored; the variables are {})",
        VARIABLES.join(", ")
    ))
}

/// Levenshtein's distance between `a` and `b`, by bytes (the names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &from) in a.as_bytes().iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &to) in b.iter().enumerate() {
            let replaced = diagonal + usize::from(from != to);
            diagonal = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
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
    use super::{Mode, edit_distance, parse_mode, parse_switch, unknown_variable};

    #[test]
    fn modes_are_trimmed_like_every_other_value() {
        assert_eq!(parse_mode(" off "), Ok(Mode::Off));
        assert_eq!(parse_mode("warn"), Ok(Mode::Warn));
        assert_eq!(parse_mode(""), Ok(Mode::Fail));
        assert!(
            parse_mode("loud")
                .unwrap_err()
                .contains("LEAKCHECK=\"loud\"")
        );
    }

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

    #[test]
    fn an_unknown_variable_names_the_closest_known_one() {
        let names = |names: &[&str]| {
            names
                .iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
                .into_iter()
        };
        let error = unknown_variable(names(&[
            "PATH",
            "LEAKCHECK_GRACE",
            "LEAKCHECK_KILL_LEAKED_PROCESSES",
        ]))
        .unwrap();
        assert!(
            error.starts_with(
                "leakcheck: LEAKCHECK_KILL_LEAKED_PROCESSES is not a variable leakcheck \
                 knows: did you mean LEAKCHECK_KILL_PROCESSES?"
            ),
            "{error}"
        );
        let error = unknown_variable(names(&["LEAKCHECK_ZOMBIE"])).unwrap();
        assert!(error.contains("did you mean LEAKCHECK_ZOMBIES?"), "{error}");
        // What leakcheck reads or sets itself, and names outside the namespace, are fine.
        assert_eq!(
            unknown_variable(names(&[
                "LEAKCHECK",
                "LEAKCHECK_SPAWNED_BY",
                "LEAKCHECK_REPORT",
                "LEAKCHECKER",
                "MY_LEAKCHECK_X",
            ])),
            None
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
