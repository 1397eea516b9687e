//! Running the suite: `cargo test` or `cargo nextest run` with the user's arguments, in
//! `<target dir>/leakcheck` (the user's own build cache untouched), with the user's rustflags
//! plus `--cfg tokio_unstable`, and `LEAKCHECK_REPORT` pointing at a file of our own. Unless
//! the user chose otherwise, `--no-fail-fast`: a summary of the suite needs all of it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::args::Tool;
use crate::cargo_config;
use crate::error::Error;
use crate::rustflags;

/// The name of the directory under the workspace's target directory.
pub const TARGET_SUBDIR: &str = "leakcheck";

/// One run of the suite.
pub struct Run<'a> {
    pub tool: Tool,
    pub cargo_args: &'a [OsString],
    pub test_args: Option<&'a [OsString]>,
    /// `LEAKCHECK=warn`
    pub warn: bool,
}

/// What a run left.
pub struct Ran {
    pub status: ExitStatus,
    /// The file the tests wrote their records to.
    pub report: PathBuf,
}

/// The cargo to run: the one that ran us (cargo sets `CARGO` for subcommands).
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

impl Run<'_> {
    /// Runs the suite to the end; its output goes to ours.
    pub fn run(&self) -> Result<Ran, Error> {
        let cwd = std::env::current_dir().map_err(|source| Error::Io {
            doing: "read the working directory".into(),
            source,
        })?;
        let target_dir = self.target_dir(&cwd)?.join(TARGET_SUBDIR);
        std::fs::create_dir_all(&target_dir)
            .map_err(|error| Error::io("create", &target_dir, error))?;
        let report = target_dir.join(format!("report-{}.jsonl", std::process::id()));
        std::fs::write(&report, "").map_err(|error| Error::io("create", &report, error))?;
        let plan = rustflags::plan(&cargo_config::sources(&cwd, self.cargo_args)?);

        let mut command = Command::new(cargo());
        match self.tool {
            Tool::Test => command.arg("test"),
            Tool::Nextest => command.args(["nextest", "run"]),
        };
        if self.adds_no_fail_fast() {
            // Every test binary and every test, for a summary of the whole suite.
            command.arg("--no-fail-fast");
        }
        command
            .args(without_option(self.cargo_args, "--target-dir"))
            .arg("--target-dir")
            .arg(&target_dir);
        for config in &plan.config_args {
            command.arg("--config").arg(config);
        }
        if let Some(test_args) = self.test_args {
            command.arg("--").args(test_args);
        }
        command
            .envs(plan.env.iter().map(|(name, value)| (name, value)))
            .env("LEAKCHECK_REPORT", &report);
        if self.warn {
            command.env("LEAKCHECK", "warn");
        }
        let status = command.status().map_err(cannot_run)?;
        Ok(Ran { status, report })
    }

    /// The workspace's target directory: `--target-dir` if the user gave it, else cargo's
    /// answer (which follows `CARGO_TARGET_DIR` and `build.target-dir`).
    fn target_dir(&self, cwd: &Path) -> Result<PathBuf, Error> {
        if let Some(dir) = cargo_config::option_values(self.cargo_args, "--target-dir").pop() {
            return Ok(cwd.join(dir));
        }
        let mut command = Command::new(cargo());
        command.args(["metadata", "--no-deps", "--format-version", "1"]);
        for option in ["--manifest-path", "--config"] {
            for value in cargo_config::option_values(self.cargo_args, option) {
                command.arg(option).arg(value);
            }
        }
        let output = command.output().map_err(cannot_run)?;
        let metadata_failed = |why: String| Error::Cargo {
            doing: "`cargo metadata` could not find the workspace's target directory".into(),
            why,
        };
        if !output.status.success() {
            return Err(metadata_failed(
                String::from_utf8_lossy(&output.stderr)
                    .trim_end()
                    .to_owned(),
            ));
        }
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| metadata_failed(format!("it printed no JSON ({error})")))?;
        metadata["target_directory"]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| metadata_failed("it gave no target_directory".into()))
    }
}

/// cargo could not be started.
fn cannot_run(error: std::io::Error) -> Error {
    Error::Cargo {
        doing: format!("cannot run {}", cargo().to_string_lossy()),
        why: error.to_string(),
    }
}

impl Run<'_> {
    /// Whether `--no-fail-fast` goes on the command line: unless the user said how a
    /// failure stops the run (`--no-fail-fast`, `--fail-fast`, `--max-fail`), or asked for
    /// no run at all (`--no-run`, which nextest refuses beside `--no-fail-fast`).
    fn adds_no_fail_fast(&self) -> bool {
        let chooses = has_option(
            self.cargo_args,
            &["--no-fail-fast", "--fail-fast", "--max-fail"],
        );
        let runs_nothing = self.tool == Tool::Nextest && has_option(self.cargo_args, &["--no-run"]);
        !chooses && !runs_nothing
    }
}

/// Whether one of `options` (`--name` or `--name=value`) is among the arguments before `--`.
fn has_option(args: &[OsString], options: &[&str]) -> bool {
    args.iter()
        .filter_map(|arg| arg.to_str())
        .take_while(|arg| *arg != "--")
        .any(|arg| {
            options.iter().any(|option| {
                arg.strip_prefix(option)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
            })
        })
}

/// `args` without `--name VALUE` / `--name=VALUE` before `--`.
fn without_option<'a>(args: &'a [OsString], name: &str) -> Vec<&'a OsStr> {
    let mut kept = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--") => {
                kept.push(arg.as_os_str());
                kept.extend(args.by_ref().map(OsString::as_os_str));
            }
            Some(text) if text == name => {
                args.next();
            }
            Some(text) if text.strip_prefix(name).is_some_and(|v| v.starts_with('=')) => {}
            _ => kept.push(arg.as_os_str()),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_fast_is_the_user_s_choice_if_made() {
        let adds = |tool, words: &[&str]| {
            let args: Vec<OsString> = words.iter().map(OsString::from).collect();
            Run {
                tool,
                cargo_args: &args,
                test_args: None,
                warn: false,
            }
            .adds_no_fail_fast()
        };
        assert!(adds(Tool::Test, &["-p", "a", "--max-failures"]));
        assert!(adds(Tool::Test, &["-p", "a", "--no-run"]));
        assert!(adds(Tool::Nextest, &["--", "--no-run"]));
        for tool in [Tool::Test, Tool::Nextest] {
            assert!(!adds(tool, &["--fail-fast"]));
            assert!(!adds(tool, &["--max-fail=3"]));
            assert!(!adds(tool, &["--max-fail", "3"]));
        }
        // nextest refuses `--no-fail-fast` with `--no-run`.
        assert!(!adds(Tool::Nextest, &["--no-run"]));
    }

    #[test]
    fn the_user_s_target_dir_is_taken_out() {
        let args: Vec<OsString> = [
            "-p",
            "a",
            "--target-dir",
            "t",
            "--target-dir=u",
            "--test",
            "x",
        ]
        .map(OsString::from)
        .to_vec();
        assert_eq!(
            without_option(&args, "--target-dir"),
            ["-p", "a", "--test", "x"]
        );
    }
}
