//! Running the suite: `cargo test` or `cargo nextest run` with the user's arguments, and
//! leakcheck's runner (`runner`) as cargo's target runner, given as a `--config` argument so
//! that it reaches the test binaries and nothing else. Where no crate of the workspace uses
//! leakcheck, that is all: the user's own target directory and flags, so a run after
//! `cargo test` compiles nothing. Where one does, its attributes need `--cfg tokio_unstable`:
//! the suite is built in `<target dir>/leakcheck` (the user's own build cache untouched), with
//! the user's rustflags plus that cfg. Unless the user chose otherwise, `--no-fail-fast`: a
//! summary of the suite needs all of it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::args::Tool;
use crate::cargo_config;
use crate::error::Error;
use crate::nextest_config;
use crate::preload;
use crate::runner;
use crate::rustflags;
use crate::toolchain::{Compiler, cargo};

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
    /// The runner's notes of what it did with each binary.
    pub state: PathBuf,
    /// What the run's configuration kept unchecked (nextest's wrapper scripts).
    pub notes: Vec<String>,
}

/// What `cargo metadata` says of the workspace.
struct Workspace {
    root: PathBuf,
    target_dir: PathBuf,
    /// A crate to be tested depends on leakcheck (its attributes want task hooks).
    uses_leakcheck: bool,
}

impl Run<'_> {
    /// Runs the suite to the end; its output goes to ours.
    pub fn run(&self) -> Result<Ran, Error> {
        let cwd = std::env::current_dir().map_err(|source| Error::Io {
            doing: "read the working directory".into(),
            source,
        })?;
        // The two questions before the run, asked at once: each is a process of its own,
        // and together they are most of what `cargo leakcheck` adds to a small suite's time.
        let (workspace, compiler) = std::thread::scope(|scope| {
            let compiler = scope.spawn(Compiler::find);
            let workspace = self.workspace(&cwd);
            (workspace, compiler.join())
        });
        let workspace = workspace?;
        let compiler = compiler.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let own_dir = workspace.target_dir.join(TARGET_SUBDIR);
        std::fs::create_dir_all(&own_dir).map_err(|error| Error::io("create", &own_dir, error))?;
        let report = own_dir.join(format!("report-{}.jsonl", std::process::id()));
        std::fs::write(&report, "").map_err(|error| Error::io("create", &report, error))?;
        let state = own_dir.join(format!("state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).map_err(|error| Error::io("create", &state, error))?;

        let triple = cargo_config::option_values(self.cargo_args, "--target")
            .pop()
            .unwrap_or_else(|| compiler.host.clone());
        let users_runner = cargo_config::runner(&cwd, self.cargo_args, &triple)?;
        let settings = runner::Settings {
            library: preload::library(&compiler)?,
            report: report.clone(),
            state: state.clone(),
            warn: self.warn,
            chain: users_runner
                .as_ref()
                .map(|runner| runner.words.clone())
                .unwrap_or_default(),
        };
        let program = std::env::current_exe().map_err(|source| Error::Io {
            doing: "find cargo-leakcheck's own executable".into(),
            source,
        })?;
        let runner_config = runner_config(
            &triple,
            &settings.words(&program),
            users_runner.is_some_and(|runner| runner.string_in_config),
        )?;

        let mut command = Command::new(cargo());
        match self.tool {
            Tool::Test => command.arg("test"),
            Tool::Nextest => command.args(["nextest", "run"]),
        };
        if self.adds_no_fail_fast() {
            // Every test binary and every test, for a summary of the whole suite.
            command.arg("--no-fail-fast");
        }
        if workspace.uses_leakcheck {
            let plan = rustflags::plan(&cargo_config::sources(&cwd, self.cargo_args)?);
            command
                .args(without_option(self.cargo_args, "--target-dir"))
                .arg("--target-dir")
                .arg(&own_dir);
            for config in &plan.config_args {
                command.arg("--config").arg(config);
            }
            command.envs(plan.env.iter().map(|(name, value)| (name, value)));
        } else {
            command.args(self.cargo_args);
        }
        command.arg("--config").arg(runner_config);
        if let Some(test_args) = self.test_args {
            command.arg("--").args(test_args);
        }
        let status = command.status().map_err(cannot_run)?;
        let notes = match self.tool {
            Tool::Nextest => nextest_config::bypasses(&workspace.root, self.cargo_args)
                .iter()
                .map(nextest_config::Bypass::note)
                .collect(),
            Tool::Test => Vec::new(),
        };
        Ok(Ran {
            status,
            report,
            state,
            notes,
        })
    }

    /// The workspace's target directory (`--target-dir` if the user gave it, else cargo's
    /// answer, which follows `CARGO_TARGET_DIR` and `build.target-dir`), and whether a
    /// crate to be tested (the `-p` ones, else every member) depends on leakcheck.
    fn workspace(&self, cwd: &Path) -> Result<Workspace, Error> {
        let mut command = Command::new(cargo());
        command.args(["metadata", "--no-deps", "--format-version", "1"]);
        for option in ["--manifest-path", "--config"] {
            for value in cargo_config::option_values(self.cargo_args, option) {
                command.arg(option).arg(value);
            }
        }
        let output = command.output().map_err(cannot_run)?;
        let metadata_failed = |why: String| Error::Cargo {
            doing: "`cargo metadata` could not describe the workspace".into(),
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
        let target_dir = match cargo_config::option_values(self.cargo_args, "--target-dir").pop() {
            Some(dir) => cwd.join(dir),
            None => metadata["target_directory"]
                .as_str()
                .map(PathBuf::from)
                .ok_or_else(|| metadata_failed("it gave no target_directory".into()))?,
        };
        let mut selected = cargo_config::option_values(self.cargo_args, "--package");
        selected.extend(cargo_config::option_values(self.cargo_args, "-p"));
        let uses_leakcheck = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|package| {
                selected.is_empty()
                    || package["name"]
                        .as_str()
                        .is_some_and(|name| selected.iter().any(|chosen| chosen == name))
            })
            .any(|package| {
                package["dependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|dependency| dependency["name"] == "leakcheck")
            });
        let root = metadata["workspace_root"]
            .as_str()
            .map_or_else(|| cwd.to_owned(), PathBuf::from);
        Ok(Workspace {
            root,
            target_dir,
            uses_leakcheck,
        })
    }
}

/// The `--config` argument that makes `words` the runner for `triple`: an array, or one
/// string where the user's config file wrote its runner as one (cargo merges only alike).
fn runner_config(triple: &str, words: &[String], as_string: bool) -> Result<String, Error> {
    let value = if as_string {
        if let Some(word) = words.iter().find(|word| word.contains(char::is_whitespace)) {
            return Err(Error::BadConfig(format!(
                "the runner for {triple} in cargo's config is one string, so leakcheck's must                  be too, and {word:?} has a space in it: write the config's runner as an array"
            )));
        }
        serde_json::Value::from(words.join(" "))
    } else {
        serde_json::Value::from(words)
    };
    Ok(format!("target.{triple}.runner={value}"))
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
    fn the_runner_is_given_as_the_user_s_config_wrote_theirs() {
        let words = ["/bin/cargo-leakcheck".to_owned(), "__runner".to_owned()];
        assert_eq!(
            runner_config("x86_64-unknown-linux-gnu", &words, false).unwrap(),
            r#"target.x86_64-unknown-linux-gnu.runner=["/bin/cargo-leakcheck","__runner"]"#
        );
        assert_eq!(
            runner_config("x86_64-unknown-linux-gnu", &words, true).unwrap(),
            r#"target.x86_64-unknown-linux-gnu.runner="/bin/cargo-leakcheck __runner""#
        );
        let spaced = ["/my tools/cargo-leakcheck".to_owned()];
        assert!(runner_config("x86_64-unknown-linux-gnu", &spaced, true).is_err());
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
