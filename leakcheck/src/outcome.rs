//! What a check's result does, decided in one place for the three kinds of check (a
//! `#[leakcheck::test]`, a `verify_none*` call, `verify_test_main!`'s exit check): append
//! its JSON record when `LEAKCHECK_REPORT` asks for one, then fail, or under
//! `LEAKCHECK=warn` (or `untracked_tasks = "warn"` for task counts alone) print the report
//! and pass. (`LEAKCHECK=off` never gets here: the check does not run.) How to fail is each
//! caller's own: a test or a call fails through [`fail`], or resumes the test's own panic;
//! the exit check ends the process; a test that cannot be returned from ends it through
//! [`end_process`].

use std::io::Write;

use crate::config::{self, Mode, Policy, Settings};
use crate::report::json;
use crate::report::{Identity, Leak, Report};

/// What a report under `LEAKCHECK=warn` ends with.
const WARN_ONLY: &str =
    "leakcheck: LEAKCHECK=warn: reported, not failed (LEAKCHECK=fail, the default, fails on leaks)";

/// What a report of tasks leakcheck cannot identify ends with, under `untracked_tasks = "warn"`.
const UNTRACKED_WARN_ONLY: &str = "leakcheck: untracked_tasks = \"warn\": task counts \
    leakcheck cannot identify are reported, not failed (threads and identified tasks still fail)";

/// What a report of zombies alone ends with, under `zombies = "warn"`.
const ZOMBIES_WARN_ONLY: &str = "leakcheck: zombies = \"warn\" (the default): a child that \
    exited and was never waited for is reported, not failed (wait for it: `Child::wait`; \
    zombies = \"fail\" or LEAKCHECK_ZOMBIES=fail fails the test)";

/// What a report of lost panics alone ends with, under `lost_panics = "warn"`.
const LOST_PANICS_WARN_ONLY: &str = "leakcheck: lost_panics = \"warn\": a panic nobody \
    observed in a thread of the test is reported, not failed";

/// The policies that make a kind of leak only warn, from a check's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policies {
    untracked_tasks: Policy,
    zombies: Policy,
    lost_panics: Policy,
}

impl Policies {
    pub(crate) fn of(settings: &Settings) -> Policies {
        Policies {
            untracked_tasks: settings.untracked_tasks(),
            zombies: settings.zombies(),
            lost_panics: settings.lost_panics(),
        }
    }

    /// What `leak` does by its kind's policy.
    fn of_leak(&self, leak: &Leak) -> Policy {
        if matches!(leak.identity(), Identity::UntrackedTasks { .. }) {
            self.untracked_tasks
        } else if leak.is_zombie() {
            self.zombies
        } else if leak.panic().is_some() {
            self.lost_panics
        } else {
            Policy::Fail
        }
    }

    /// Why a report whose every leak only warns passes: a line per policy it relies on.
    fn why_it_passes(&self, report: &Report) -> String {
        let mut lines = Vec::new();
        if report
            .leaks()
            .iter()
            .any(|leak| matches!(leak.identity(), Identity::UntrackedTasks { .. }))
        {
            lines.push(UNTRACKED_WARN_ONLY);
        }
        if report.leaks().iter().any(Leak::is_zombie) {
            lines.push(ZOMBIES_WARN_ONLY);
        }
        if report.leaks().iter().any(|leak| leak.panic().is_some()) {
            lines.push(LOST_PANICS_WARN_ONLY);
        }
        lines.join("\n")
    }
}

/// Which check a result is of, for its JSON record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Check<'a> {
    /// A `#[leakcheck::test]`: its full name, and whether it passed before leaks counted.
    Test { name: &'a str, passed: bool },
    /// `verify_none*` or `find`-and-fail from code: the scope's name, `None` process-wide.
    Call { scope: Option<&'a str> },
    /// `verify_test_main!` when the binary exits.
    Exit,
}

impl<'a> Check<'a> {
    /// The JSON line of this check's result.
    fn line(self, mode: Mode, found: Result<(), &'a Report>) -> json::Line<'a> {
        use leakcheck_schema::record::Check as Kind;
        let (check, test, test_passed) = match self {
            Check::Test { name, passed } => (Kind::Test, Some(name), Some(passed)),
            Check::Call { scope } => (Kind::VerifyNone, scope, None),
            Check::Exit => (Kind::Exit, None, None),
        };
        json::Line {
            check,
            test,
            mode,
            test_passed,
            found,
        }
    }
}

/// What the caller does next.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Nothing leaked.
    Clean,
    /// Something leaked and the report is printed, under `LEAKCHECK=warn`: carry on.
    Warned,
    /// Something leaked: fail with this report.
    Fail(Report),
}

/// Records `found` and decides what it does: under `LEAKCHECK=warn`, or when every leak is
/// of a kind whose policy is warn (task counts leakcheck cannot identify under
/// `untracked_tasks = "warn"`, zombies under `zombies = "warn"`, lost panics under
/// `lost_panics = "warn"`), it is a warning. An error
/// is a JSON record that could not be written, said with the file: the caller fails with
/// it.
pub(crate) fn conclude(
    check: Check<'_>,
    found: Result<(), Report>,
    policies: Policies,
) -> Result<Verdict, String> {
    let mut mode = config::mode();
    let mut warn_only = WARN_ONLY.to_owned();
    if let (Mode::Fail, Err(report)) = (mode, &found) {
        if report.only(|leak| policies.of_leak(leak) == Policy::Warn) {
            mode = Mode::Warn;
            warn_only = policies.why_it_passes(report);
        }
    }
    write_json(&check.line(mode, found.as_ref().map(|_| ())))?;
    let Err(report) = found else {
        return Ok(Verdict::Clean);
    };
    Ok(match mode {
        Mode::Fail => Verdict::Fail(report),
        Mode::Warn => {
            // At exit, a blank line parts the report from libtest's summary.
            let lead = if matches!(check, Check::Exit) {
                "\n"
            } else {
                ""
            };
            let warning = format!("{lead}{report}\n{warn_only}\n");
            if matches!(check, Check::Test { passed: false, .. }) {
                // Captured, and shown with the test's own failure, after it.
                eprint!("{warning}");
            } else {
                // Straight to the process's stderr, past libtest's capture: a passing
                // test's captured output is thrown away, and a warning nobody sees is no
                // warning. One write, so that parallel tests' warnings do not interleave.
                let _ = std::io::stderr().lock().write_all(warning.as_bytes());
            }
            Verdict::Warned
        }
        // Under `LEAKCHECK=off` no check runs; were one to, it would say nothing.
        Mode::Off => Verdict::Clean,
    })
}

/// Appends a check to `LEAKCHECK_REPORT`, if it is set; the error says which file failed.
fn write_json(line: &json::Line<'_>) -> Result<(), String> {
    let Ok(environment) = config::environment() else {
        return Ok(());
    };
    let Some(path) = &environment.report else {
        return Ok(());
    };
    json::append(path, line).map_err(|error| {
        format!(
            "leakcheck: cannot append to {}={}: {error}",
            config::REPORT_VAR,
            path.display()
        )
    })
}

/// Fails the calling test (or program) with `message`, as a panic would, but without
/// running the panic hook: the message is printed once, as the failure's text, with no
/// "panicked at" line pointing into leakcheck and no backtrace of leakcheck's frames under
/// `RUST_BACKTRACE=1`. The unwinding payload is the message, so `#[should_panic(expected)]`
/// and `catch_unwind` see it as they would a panic's.
pub(crate) fn fail(message: String) -> ! {
    // A blank line first, as the panic hook's message has, to part it from the test's output.
    eprintln!("\n{message}");
    std::panic::resume_unwind(Box::new(message))
}

/// Ends the process with `report`, for a test that cannot be returned from (its thread is
/// stuck): the JSON record, the report straight to stderr (the stuck test's captured output
/// would never be printed), then exit status 101 at once, as `go test -timeout` does. No
/// `atexit` handler runs: the exit check would find the stuck test's threads.
pub(crate) fn end_process(check: Check<'_>, report: Report) -> ! {
    let record_error = write_json(&check.line(config::mode(), Err(&report))).err();
    let text = format!(
        "\n{report}\n{}leakcheck: the test cannot be returned from; the process ends here\n",
        record_error
            .map(|error| format!("{error}\n"))
            .unwrap_or_default()
    );
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    exit_now(101)
}

/// Ends the process without running `atexit` handlers.
#[cfg(unix)]
fn exit_now(status: i32) -> ! {
    // SAFETY: ending the process now is the point; stderr is unbuffered and was written.
    unsafe { libc::_exit(status) }
}

#[cfg(not(unix))]
fn exit_now(status: i32) -> ! {
    std::process::exit(status)
}
