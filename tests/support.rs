//! Builds the fixture binaries once and runs them as child processes, the way a user's
//! `cargo test` would, so tests can assert on exit status and report text.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

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
/// With `SUITE_FIXTURE_PROFILE=release` or `fat-lto`, each target is built alone in that
/// profile (`.ci/run` runs the panics and processes suites so: what inlining removes from
/// symbol tables must not change a verdict).
pub fn fixture(target: &str) -> PathBuf {
    if let Some(profile) = optimised() {
        return optimised_fixture(target, &profile);
    }
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

/// `SUITE_FIXTURE_PROFILE`: `release`, `fat-lto` (release with `lto = "fat"` and one
/// codegen unit), or unset for the suite's own debug build.
fn optimised() -> Option<String> {
    let profile = std::env::var("SUITE_FIXTURE_PROFILE").ok()?;
    assert!(
        matches!(profile.as_str(), "release" | "fat-lto"),
        "SUITE_FIXTURE_PROFILE={profile:?}: expected release or fat-lto"
    );
    Some(profile)
}

/// A fixture target built alone, in `profile`, once per process.
fn optimised_fixture(target: &str, profile: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Option<HashMap<String, PathBuf>>> = std::sync::Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(executable) = built.get(target) {
        return executable.clone();
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["test", "--no-run", "--release", "--test", target])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(fixtures_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(root().join("target").join(format!("fixtures-{profile}")));
    if profile == "fat-lto" {
        cargo
            .env("CARGO_PROFILE_RELEASE_LTO", "fat")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the fixture {target} ({profile}) failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| {
            let name = message.get("target")?.get("name")?.as_str()?;
            let executable = message.get("executable")?.as_str()?;
            (name == target).then(|| PathBuf::from(executable))
        })
        .unwrap_or_else(|| panic!("no executable for the fixture {target} ({profile})"));
    built.insert(target.to_owned(), executable.clone());
    executable
}

/// The example service's own workspace, `examples/service`.
pub fn example_dir() -> PathBuf {
    root().join("examples").join("service")
}

/// The line of the example service's `src/main.rs` that holds `needle`.
pub fn example_line_of(needle: &str) -> usize {
    let source = std::fs::read_to_string(example_dir().join("src").join("main.rs")).unwrap();
    source
        .lines()
        .position(|line| line.contains(needle))
        .expect("the line is in the example")
        + 1
}

/// The example service (`examples/service`), built once per process from its own
/// directory, so that its `.cargo/config.toml` (`--cfg tokio_unstable`) applies, with the
/// suite's own `RUSTFLAGS` when it has any (the same cfg in CI).
pub fn example_service() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target_dir = root().join("target").join("service");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--target-dir"])
            .arg(&target_dir)
            .current_dir(example_dir())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the example service failed");
        target_dir.join("debug").join("leakcheck-service-example")
    })
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
/// without them; `fails_*` fail on their own, leaking nothing; `clean_ignored_test` and
/// `alone_*` are `#[ignore]`; everything else passes.
pub fn expected_verdict(test: &str) -> &'static str {
    if test == "clean_ignored_test" || test.starts_with("alone_") {
        return "ignored";
    }
    let fails = test.starts_with("leaks_")
        || test.starts_with("fails_")
        || (TOKIO_UNSTABLE && test.starts_with("hooked_leaks_"))
        || (!TOKIO_UNSTABLE && test.starts_with("ignored_when_hooked_"));
    if fails { "FAILED" } else { "ok" }
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

/// The rounds of a repeated parallel run, `0..repeat()`, holding [`heavy`] while they run:
/// `for round in rounds() { .. }`.
pub fn rounds() -> Rounds {
    Rounds {
        _heavy: heavy(),
        rounds: 0..repeat(),
    }
}

/// The rounds of one repeated run; see [`rounds`].
pub struct Rounds {
    _heavy: MutexGuard<'static, ()>,
    rounds: Range<usize>,
}

impl Iterator for Rounds {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.rounds.next()
    }
}

/// The suite's one heavy run at a time: a fixture binary repeated at `--test-threads=8`, or
/// a nested cargo build. libtest runs the suite's tests two at a time (one per core here);
/// a light test may run beside a heavy one, never a second heavy one, so the load a clean
/// fixture meets stays what one such run makes. A test that failed holding it leaves it
/// usable.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many times the parallel runs repeat (`SUITE_REPEAT`, default 3).
pub fn repeat() -> usize {
    match std::env::var("SUITE_REPEAT") {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("SUITE_REPEAT={value:?}: expected a whole number")),
        Err(_) => 3,
    }
}

/// The ```text block of README.md right after `marker` (an HTML comment), without its
/// fences: a pasted report that a test compares with a real run.
pub fn readme_block(marker: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    readme
        .split_once(&format!("{marker}\n```text\n"))
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block.to_owned())
        .unwrap_or_else(|| panic!("no ```text block after {marker} in README.md"))
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

/// [`run_with_env`] with `LEAKCHECK_REPORT` set to a fresh file: the run, and the JSON lines
/// it appended.
pub fn run_reporting(
    target: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Run, Vec<serde_json::Value>) {
    let path = temp_dir(target).join("leaks.jsonl");
    let mut env = env.to_vec();
    env.push(("LEAKCHECK_REPORT", path.to_str().unwrap()));
    let run = run_with_env(target, args, &env);
    (run, json_lines(&path))
}

/// Runs `cargo nextest run` on fixture test targets (all tests, ignored ones too), with
/// extra environment variables; returns nextest's log and each test's `PASS` or `FAIL`.
pub fn nextest(targets: &[&str], env: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let _heavy = heavy();
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
    fixture_command(target, args, env)
        .output()
        .expect("the fixture runs")
        .into()
}

/// [`run_with_env`] for a fixture that might hang: killed after `limit`, which fails the
/// calling test. A bound on a hang, not a measure of speed: `limit` is far above the time
/// the fixture needs.
pub fn run_bounded(target: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut child = fixture_command(target, args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fixture runs");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "`{target} {args:?}` still running after {limit:?}, killed:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap().into()
}

/// A fixture binary as `cargo test` starts it: from the fixtures directory, with cargo's
/// `CARGO_MANIFEST_DIR` for it (the suite's own would be inherited otherwise), without the
/// suite's `RUST_BACKTRACE`.
fn fixture_command(target: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(fixture(target));
    command
        .args(args)
        .current_dir(fixtures_dir())
        .env_remove("RUST_BACKTRACE")
        .env("CARGO_MANIFEST_DIR", fixtures_dir())
        .envs(env.iter().copied());
    command
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
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

/// Where the report must place a child process's spawn: the line of `file` (a fixture)
/// marked `// child: KEY`, as `tests/FILE:LINE:`.
pub fn child_site(file: &str, key: &str) -> String {
    let line = marked_line(
        &fixtures_dir().join("tests").join(file),
        &format!("// child: {key}"),
    );
    format!("tests/{file}:{line}:")
}

/// The line number (from 1) of the line of `path` that ends with `marker`.
pub fn marked_line(path: &Path, marker: &str) -> usize {
    let source = std::fs::read_to_string(path).unwrap();
    let index = source
        .lines()
        .position(|line| line.trim_end().ends_with(marker))
        .unwrap_or_else(|| panic!("no `{marker}` in {}", path.display()));
    index + 1
}

/// `tests/FILE.rs:LINE:` of the spawn call marked `// spawn: NAME` in a fixture source
/// file, as the report prints it: the nearest line at or above the marker that calls
/// `spawn(`, `spawn_blocking(`, `spawn_local(`, the C helper, or a library call that starts
/// a thread for the caller (a rayon pool's `.build()`, `tracing_appender::non_blocking(`,
/// `rayon::join(`, a pool's `unblock(`), so that rustfmt moving the comment changes nothing.
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
                "unblock(",
            ]
            .iter()
            .any(|call| lines[index].contains(call))
        })
        .unwrap_or_else(|| panic!("no spawn call at or above `{marker}` in {file}"));
    format!("tests/{file}:{}:", call + 1)
}

/// Asserts that the report of `test` mentions none of `others`: the thread names and spawn
/// sites of the other leaky tests. A leak is blamed on the test that leaked it, and only on
/// it, however many leak beside it.
pub fn assert_blames_no_other(test: &str, report: &str, others: &[String]) {
    for other in others {
        assert!(
            !report.contains(other.as_str()),
            "`{test}` is blamed for another test's leak ({other}):\n{report}"
        );
    }
}

/// A report as it reads in any run on any machine, for whole-report snapshots and the
/// README's pasted run. Redacted: kernel thread ids (`thread [tid] "name"`, also libtest's
/// `thread 'test' ([tid]) panicked`), task ids (`task [id]`), process ids (`process [pid]`),
/// durations (`[duration]`),
/// column numbers (`file.rs:LINE`), the kernel's wait channel (`(kernel: [wchan])`, a kernel
/// function whose name changes between kernel versions), glibc's source path
/// (`syscall at [glibc]`) and std's line numbers (`std/src/sync/mpsc.rs:[line]`), which
/// change with the toolchain. Line numbers of the fixtures and of tokio (pinned by
/// `fixtures/Cargo.lock`, its version in the path) stay: they are what the user reads.
/// Trailing blank lines go (libtest's spacing depends on where a section falls), and so
/// does libtest's "note: run with `RUST_BACKTRACE=1`" line: libtest prints it once a
/// process, after the first panic, so which test's section holds it depends on which test
/// fails first.
pub fn normalize(report: &str) -> String {
    let lines: Vec<String> = report
        .lines()
        .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE=1`"))
        .map(normalize_line)
        .collect();
    lines.join("\n").trim_end().to_owned()
}

fn normalize_line(line: &str) -> String {
    let mut line = without_columns(line);
    let wchan = line
        .find("(kernel: ")
        .and_then(|start| Some(start..start + line[start..].find(')')? + 1));
    if let Some(wchan) = wchan {
        line.replace_range(wchan, "(kernel: [wchan])");
    }
    if let Some(at) = line.rfind(" at ") {
        let location = &line[at + 4..];
        let toolchain = ["std/src/", "core/src/", "alloc/src/"]
            .iter()
            .any(|toolchain| location.starts_with(toolchain));
        if location.contains("sysdeps/") {
            line.replace_range(at + 4.., "[glibc]");
        } else if let Some(colon) = line[at..].rfind(':').filter(|_| toolchain) {
            line.replace_range(at + colon.., ":[line]");
        }
    }
    let mut line = if line.starts_with("thread '") {
        number_after(&line, "' (", "[tid]")
    } else {
        line
    };
    // A group's ids: `(tids 20-22)`, `(ids 4-503)`, `(pids 7, 9)`.
    for ids in ["(tids ", "(ids ", "(pids "] {
        let group = line
            .find(ids)
            .and_then(|start| Some((start, start + line[start..].find(')')?)));
        if let Some((start, end)) = group {
            line.replace_range(start + ids.len()..end, "[ids]");
        }
    }
    let line = number_after(&line, "thread ", "[tid]");
    let line = number_after(&line, "task ", "[id]");
    let line = number_after(&line, "process ", "[pid]");
    without_durations(&line)
}

/// `text` with the number that directly follows each `word` replaced by `with` (a word
/// that starts with a letter must start a word in `text` too: `subtask 3` stays).
fn number_after(text: &str, word: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(found) = rest.find(word) {
        let previous = rest[..found]
            .chars()
            .next_back()
            .or(out.chars().next_back());
        let starts_word = !word.starts_with(char::is_alphanumeric)
            || !previous.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..found + word.len()]);
        rest = &rest[found + word.len()..];
        let digits = leading_digits(rest);
        if starts_word && digits > 0 {
            out.push_str(with);
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

fn leading_digits(text: &str) -> usize {
    text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len()
}

/// `file:LINE:COLUMN` as `file:LINE`.
fn without_columns(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(colon) = rest.find(':') {
        let (before, after) = rest.split_at(colon);
        out.push_str(before);
        let line_digits = leading_digits(&after[1..]);
        let tail = &after[1 + line_digits..];
        let column_digits = tail.strip_prefix(':').map_or(0, leading_digits);
        if before.ends_with(|c: char| c.is_ascii_alphanumeric())
            && line_digits > 0
            && column_digits > 0
        {
            out.push_str(&after[..1 + line_digits]);
            rest = &tail[1 + column_digits..];
        } else {
            out.push(':');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Durations as humantime prints them (`500ms`, `1s 2ms`) as one `[duration]`.
fn without_durations(line: &str) -> String {
    const UNITS: &[&str] = &[
        "ns", "us", "µs", "ms", "s", "m", "h", "day", "days", "month", "months", "year", "years",
    ];
    let mut words: Vec<String> = Vec::new();
    for word in line.split(' ') {
        let core = word.trim_start_matches(['(', '"']);
        let core = core.trim_end_matches([')', '"', ',', ';', ':', '.']);
        let digits = leading_digits(core);
        if digits == 0 || !UNITS.contains(&&core[digits..]) {
            words.push(word.to_owned());
            continue;
        }
        let redacted = word.replacen(core, "[duration]", 1);
        // `1s 2ms` is one duration, `(4s 200ms)` too.
        let previous = words.last_mut().filter(|last| last.ends_with("[duration]"));
        if let Some(previous) = previous.filter(|_| word.starts_with(core)) {
            previous.push_str(&redacted["[duration]".len()..]);
            continue;
        }
        words.push(redacted);
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalize_redacts_what_changes_between_runs_and_machines() {
        let report = "\
thread 'pool_shuts_down' (24279) panicked at tests/demo.rs:41:1:
leakcheck: `pool_shuts_down` leaked 1 thread (still running 1s 2ms after it returned)

thread 24281 \"pool-worker-0\": sleeping, blocked in futex (kernel: futex_do_wait)
  spawned by thread 7 \"spawner\" (exited), itself spawned at tests/demo.rs:22:18
    syscall at ./misc/../sysdeps/unix/sysv/linux/x86_64/syscall.S:36:0
    <std::sync::mpsc::Iter<T> as Iterator>::next at std/src/sync/mpsc.rs:1048:17
    tokio::sync::mpsc::chan::Rx<T,S>::recv at tokio-1.54.1/src/sync/mpsc/chan.rs:308:16
task 4: awaiting
  spawned by task 3 (finished), itself spawned at tests/demo.rs:62:27
leakcheck: 2 threads still running when the test binary exited (waited 500ms)
leakcheck: `t` cannot be checked: its runtime's only thread, the test's, is blocked (4s 200ms after)
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

";
        let expected = "\
thread 'pool_shuts_down' ([tid]) panicked at tests/demo.rs:41:
leakcheck: `pool_shuts_down` leaked 1 thread (still running [duration] after it returned)

thread [tid] \"pool-worker-0\": sleeping, blocked in futex (kernel: [wchan])
  spawned by thread [tid] \"spawner\" (exited), itself spawned at tests/demo.rs:22
    syscall at [glibc]
    <std::sync::mpsc::Iter<T> as Iterator>::next at std/src/sync/mpsc.rs:[line]
    tokio::sync::mpsc::chan::Rx<T,S>::recv at tokio-1.54.1/src/sync/mpsc/chan.rs:308
task [id]: awaiting
  spawned by task [id] (finished), itself spawned at tests/demo.rs:62
leakcheck: 2 threads still running when the test binary exited (waited [duration])
leakcheck: `t` cannot be checked: its runtime's only thread, the test's, is blocked ([duration] after)";
        assert_eq!(normalize(report), expected);
    }
}
