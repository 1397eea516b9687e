//! Builds the fixture binaries once and runs them as child processes, the way a user's
//! `cargo test` would, so tests can assert on exit status and report text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The fixtures crate, where fixture binaries run (as `cargo test` would run them).
pub fn fixtures_dir() -> PathBuf {
    root().join("fixtures")
}

/// The executable of a fixture test target, built (once per process) with the same
/// `RUSTFLAGS` as the suite itself, so both builds (plain and `tokio_unstable`) are covered.
pub fn fixture(target: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args([
                "test",
                "--no-run",
                "--message-format=json-render-diagnostics",
            ])
            .arg("--manifest-path")
            .arg(fixtures_dir().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(root().join("target").join("fixtures"))
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building the fixtures failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|message| {
                let executable = message.get("executable")?.as_str()?;
                let name = message.get("target")?.get("name")?.as_str()?;
                Some((name.to_owned(), PathBuf::from(executable)))
            })
            .collect()
    });
    built
        .get(target)
        .unwrap_or_else(|| {
            panic!(
                "no fixture test target `{target}`; built: {:?}",
                built.keys()
            )
        })
        .clone()
}

/// One run of a fixture binary.
pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

/// Whether the suite (and so the fixtures, built with the same `RUSTFLAGS`) has tokio's
/// task hooks.
pub const TOKIO_UNSTABLE: bool = cfg!(tokio_unstable);

/// What libtest must say of a fixture test, read off its name: `leaks_*` fail;
/// `hooked_leaks_*` fail only where tokio's hooks exist (`--cfg tokio_unstable`);
/// `ignored_when_hooked_*` leak something only the hooks let a rule ignore, so they fail
/// without them; `clean_ignored_test` and `alone_*` are `#[ignore]`; everything else passes.
pub fn expected_verdict(test: &str) -> &'static str {
    if test == "clean_ignored_test" || test.starts_with("alone_") {
        return "ignored";
    }
    let leaks = test.starts_with("leaks_")
        || (TOKIO_UNSTABLE && test.starts_with("hooked_leaks_"))
        || (!TOKIO_UNSTABLE && test.starts_with("ignored_when_hooked_"));
    if leaks { "FAILED" } else { "ok" }
}

/// Asserts every test's verdict in a run of a fixture binary (round `round` of a repeated
/// run), and that at least `at_least` tests ran.
pub fn assert_verdicts(run: &Run, round: usize, at_least: usize) {
    let tests = run.tests();
    assert!(
        tests.len() >= at_least,
        "round {round}: too few tests ran:\n{}",
        run.stdout
    );
    for test in tests {
        let verdict = run.verdict(&test).unwrap();
        let expected = expected_verdict(&test);
        assert_eq!(
            verdict, expected,
            "round {round}: `{test}` was {verdict}, expected {expected}:\n{}",
            run.stdout
        );
    }
    assert!(!run.output.status.success());
}

/// How many times the parallel runs repeat (`LEAKCHECK_SUITE_REPEAT`, default 3).
pub fn repeat() -> usize {
    match std::env::var("LEAKCHECK_SUITE_REPEAT") {
        Ok(value) => value.parse().unwrap_or_else(|_| {
            panic!("LEAKCHECK_SUITE_REPEAT={value:?}: expected a whole number")
        }),
        Err(_) => 3,
    }
}

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(purpose: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "leakcheck-suite-{}-{purpose}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON lines a run appended to a `LEAKCHECK_REPORT` file, each parsed (a torn or
/// interleaved line fails to parse).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not one JSON object ({error}): {line:?}"))
        })
        .collect()
}

/// Runs `cargo nextest run` on fixture test targets (all tests, ignored ones too), with
/// extra environment variables; returns nextest's log and each test's `PASS` or `FAIL`.
pub fn nextest(targets: &[&str], env: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut command = Command::new(env!("CARGO"));
    command.args(["nextest", "run", "--no-fail-fast", "--run-ignored", "all"]);
    for target in targets {
        command.args(["--test", target]);
    }
    let output = command
        .arg("--manifest-path")
        .arg(fixtures_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(root().join("target").join("fixtures"))
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().copied())
        .output()
        .expect("cargo nextest runs");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let mut verdicts: Vec<(String, String)> = Vec::new();
    for line in log.lines() {
        let line = line.trim_start();
        let verdict = line.split_whitespace().next().unwrap_or_default();
        let test = line.rsplit(' ').next().unwrap_or_default();
        // The summary at the end repeats the failures: keep each test's first verdict.
        if matches!(verdict, "PASS" | "FAIL") && !verdicts.iter().any(|(seen, _)| seen == test) {
            verdicts.push((test.to_owned(), verdict.to_owned()));
        }
    }
    (log, verdicts)
}

/// Runs a fixture binary with libtest arguments, from the fixtures directory.
pub fn run(target: &str, args: &[&str]) -> Run {
    run_with_env(target, args, &[])
}

/// [`run`] with extra environment variables.
pub fn run_with_env(target: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(fixture(target))
        .args(args)
        .current_dir(fixtures_dir())
        .env_remove("RUST_BACKTRACE")
        // As cargo sets it for the fixtures (the suite's own would be inherited otherwise).
        .env("CARGO_MANIFEST_DIR", fixtures_dir())
        .envs(env.iter().copied())
        .output()
        .expect("the fixture runs");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

impl Run {
    /// libtest's verdict for one test: `ok`, `FAILED` or `ignored`.
    pub fn verdict(&self, test: &str) -> Option<&str> {
        let prefix = format!("test {test} ... ");
        let prefix_should_panic = format!("test {test} - should panic ... ");
        self.stdout.lines().find_map(|line| {
            let verdict = line
                .strip_prefix(&prefix)
                .or_else(|| line.strip_prefix(&prefix_should_panic))?;
            Some(verdict.split([',', ' ']).next().unwrap_or(verdict))
        })
    }

    /// What a failed test printed (libtest's `---- NAME stdout ----` section).
    pub fn failure(&self, test: &str) -> &str {
        let header = format!("---- {test} stdout ----\n");
        let Some(start) = self.stdout.find(&header) else {
            panic!("no failure output for `{test}` in:\n{}", self.stdout)
        };
        let section = &self.stdout[start + header.len()..];
        let end = ["\n---- ", "\nfailures:\n", "\nsuccesses:\n"]
            .iter()
            .filter_map(|marker| section.find(marker))
            .min()
            .unwrap_or(section.len());
        &section[..end]
    }

    /// The test names libtest ran.
    pub fn tests(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix("test "))
            .filter_map(|rest| Some(rest.split_once(" ... ")?.0))
            .map(|name| name.trim_end_matches(" - should panic").to_owned())
            .collect()
    }
}

/// `tests/FILE.rs:LINE:` of the spawn call marked `// spawn: NAME` in a fixture source
/// file, as the report prints it: the nearest line at or above the marker that calls
/// `spawn(`, `spawn_blocking(`, `spawn_local(`, the C helper, or a library call that starts
/// a thread for the caller (a rayon pool's `.build()`, `tracing_appender::non_blocking(`,
/// `rayon::join(`), so that rustfmt moving the comment changes nothing.
pub fn spawn_site(file: &str, thread: &str) -> String {
    let source = std::fs::read_to_string(fixtures_dir().join("tests").join(file)).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let marker = format!("// spawn: {thread}");
    let marked = lines
        .iter()
        .position(|line| line.trim_end().ends_with(&marker))
        .unwrap_or_else(|| panic!("no `{marker}` in {file}"));
    let call = (0..=marked)
        .rev()
        .find(|&index| {
            [
                "spawn(",
                "spawn_blocking(",
                "spawn_local(",
                "c_start_thread(",
                ".build()",
                "non_blocking(",
                "rayon::join(",
            ]
            .iter()
            .any(|call| lines[index].contains(call))
        })
        .unwrap_or_else(|| panic!("no spawn call at or above `{marker}` in {file}"));
    format!("tests/{file}:{}:", call + 1)
}
