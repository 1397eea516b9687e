//! `cargo leakcheck` as a user runs it, over the fixture workspace `fixtures/cli` (its own
//! workspace: a test crate whose tests leak a thread, a task spawned in a path dependency's
//! pool, and nothing; with a rustflag of the user's in `.cargo/config.toml`): exit statuses,
//! the summary, its files, the rules it prints, CI shards merged by `report`, bad input.
//!
//! The fixture workspace builds into `target/cli-fixtures/leakcheck` (kept between runs),
//! with no `RUSTFLAGS` in the environment on both of CI's builds: the command must add
//! `--cfg tokio_unstable` itself. Runs that build it are serialised (one target directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use leakcheck_suite::{
    child_site, marked_line, readme_block, repeat, root, run_with_env, spawn_site, temp_dir,
};

/// The first line of a summary with leaks.
const SUMMARY_START: &str = "leakcheck: leaks across the suite, by spawn site";

/// The fixture workspace.
fn workspace() -> PathBuf {
    root().join("fixtures").join("cli")
}

/// The cargo-leakcheck executable cargo built for this test run, with the run's own flags.
fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cargo-leakcheck"))
}

/// One build of the fixture workspace at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Ran {
    output: Output,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// What cargo-leakcheck printed after the run: from its header, or its one line.
    fn summary(&self) -> &str {
        match self.stdout.find(SUMMARY_START) {
            Some(start) => &self.stdout[start..],
            None => self
                .stdout
                .trim_end()
                .rsplit('\n')
                .next()
                .unwrap_or_default(),
        }
        .trim_end()
    }

    fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// `command` without the suite's own rustflags, backtraces and leakcheck settings.
fn as_a_user_runs_it(command: &mut Command) -> &mut Command {
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUST_BACKTRACE",
        "LEAKCHECK",
        "LEAKCHECK_REPORT",
    ] {
        command.env_remove(variable);
    }
    command
}

/// Runs `cargo leakcheck ARGS` in `dir`, the way cargo runs a subcommand, with no
/// rustflags or leakcheck settings from the suite's own environment.
fn cargo_leakcheck(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let output = as_a_user_runs_it(Command::new(binary()).arg("leakcheck"))
        .args(args)
        .current_dir(dir)
        .env("CARGO", env!("CARGO"))
        .env(
            "CARGO_TARGET_DIR",
            root().join("target").join("cli-fixtures"),
        )
        // The library it preloads, built once for the whole suite.
        .env(
            "XDG_CACHE_HOME",
            root().join("target").join("preload-cache"),
        )
        .envs(env.iter().copied())
        .output()
        .expect("cargo-leakcheck runs");
    Ran {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

/// `pool/src/lib.rs:LINE` of the reaper's `tokio::spawn`, read off the source.
fn reaper_site() -> String {
    let source = std::fs::read_to_string(workspace().join("pool/src/lib.rs")).unwrap();
    let line = source
        .lines()
        .position(|line| line.contains("tokio::spawn("))
        .expect("the reaper's spawn");
    format!("pool/src/lib.rs:{}", line + 1)
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The records of a `--json` file, each line one JSON object.
fn json_records(path: &Path) -> Vec<serde_json::Value> {
    leakcheck_suite::json_lines(path)
}

/// The whole suite: three leaks from two spawn sites, one of them in the path dependency,
/// named with its line on a plain build; cargo's failure status; the files it writes; the
/// README's copy of the summary.
#[test]
fn a_leaky_suite_fails_with_its_leaks_by_spawn_site() {
    let _serial = serial();
    let dir = temp_dir("cli-leaky");
    let json = dir.join("leaks.jsonl");
    let markdown = dir.join("summary.md");
    let ran = cargo_leakcheck(
        &workspace(),
        &[
            "--json",
            path_str(&json),
            "--summary-md",
            path_str(&markdown),
        ],
        &[],
    );
    assert_eq!(
        ran.code(),
        Some(101),
        "cargo test's status:\n{}",
        ran.describe()
    );
    let summary = ran.summary();
    assert!(
        summary.contains(&format!(
            "2 tasks spawned at {}, active, in 2 tests:",
            reaper_site()
        )),
        "{}",
        ran.describe()
    );
    assert!(
        summary.contains("1 thread \"cli-worker\" spawned at app/tests/suite.rs:"),
        "{summary}"
    );
    insta::assert_snapshot!("leaky_suite", summary);

    // The user's rustflag from .cargo/config.toml survived next to tokio_unstable.
    // Six tests' records, and two exit checks of the unit-test binaries that do not link
    // leakcheck (checked by the preloaded library).
    let records = json_records(&json);
    let verdicts: Vec<(&str, bool)> = records
        .iter()
        .filter(|record| record["check"] == "test")
        .map(|record| {
            (
                record["test"].as_str().unwrap(),
                record["test_passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(records.len(), 8, "{records:?}");
    assert_eq!(verdicts.len(), 6, "{records:?}");
    assert!(
        verdicts.contains(&("clean_user_rustflags_are_kept", true)),
        "{verdicts:?}"
    );
    insta::assert_snapshot!(
        "leaky_suite_markdown",
        std::fs::read_to_string(&markdown).unwrap()
    );

    // The merged file reads back to the same summary, with the same verdict.
    let report = cargo_leakcheck(&workspace(), &["report", path_str(&json)], &[]);
    assert_eq!(report.code(), Some(1), "{}", report.describe());
    assert_eq!(report.summary(), summary);

    // README.md's quick start shows this summary.
    assert_eq!(
        readme_block("<!-- cli summary -->"),
        summary,
        "README.md's summary no longer matches a run (left: README, right: run)"
    );
}

/// A clean run prints one line and passes; a `LEAKCHECK_REPORT` of the user's own gets the
/// records too.
#[test]
fn a_clean_run_prints_one_line_and_passes() {
    let _serial = serial();
    let own = temp_dir("cli-own-report").join("mine.jsonl");
    let ran = cargo_leakcheck(
        &workspace(),
        &["--", "clean_"],
        &[("LEAKCHECK_REPORT", path_str(&own))],
    );
    assert_eq!(ran.code(), Some(0), "{}", ran.describe());
    // The crates' own unit-test binaries, which do not link leakcheck, are checked by the
    // preloaded library as they exit.
    assert_eq!(
        ran.summary(),
        "leakcheck: 3 tests checked and 2 test processes checked as they exited, none leaked"
    );
    assert!(!ran.stdout.contains(SUMMARY_START), "{}", ran.stdout);
    assert_eq!(json_records(&own).len(), 5);
}

/// `--warn`: leaks reported, the run passes; a test's own failure still fails it.
#[test]
fn warn_reports_leaks_without_failing_on_them() {
    let _serial = serial();
    let ran = cargo_leakcheck(&workspace(), &["--warn"], &[]);
    assert_eq!(ran.code(), Some(0), "{}", ran.describe());
    assert!(
        ran.summary().ends_with(
            "leakcheck: 6 tests checked and 2 test processes checked as they exited, 3 leaked: \
             3 leaks from 2 spawn sites; \
             warn mode: reported, not failed"
        ),
        "{}",
        ran.describe()
    );
    // The reports are on stderr, past libtest's capture, as under LEAKCHECK=warn.
    assert!(ran.stderr.contains("LEAKCHECK=warn: reported, not failed"));

    let failing = cargo_leakcheck(&workspace(), &["--warn"], &[("CLI_FIXTURE_FAIL", "1")]);
    assert_eq!(failing.code(), Some(101), "{}", failing.describe());
    assert!(
        failing
            .summary()
            .ends_with("; 1 failed on its own; warn mode: reported, not failed"),
        "{}",
        failing.describe()
    );
}

/// The rules the summary prints, pasted into the workspace's `leakcheck.toml`, make the run
/// pass: on a copy of the fixture workspace.
#[test]
fn the_printed_rules_silence_the_leaks() {
    let _serial = serial();
    let leaky = cargo_leakcheck(&workspace(), &[], &[]);
    let rules: Vec<&str> = leaky
        .summary()
        .lines()
        .filter_map(|line| line.strip_prefix("  in leakcheck.toml: "))
        .map(|rules| rules.split("  or  ").next().unwrap())
        .collect();
    assert_eq!(rules.len(), 2, "{}", leaky.describe());

    let copy = temp_dir("cli-rules").join("cli");
    copy_dir(&workspace(), &copy);
    for member in ["app", "pool"] {
        let manifest = copy.join(member).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .unwrap()
            // The copy depends on the repository's leakcheck where the original does.
            .replace(
                "path = \"../../../leakcheck\"",
                &format!("path = {:?}", path_str(&root().join("leakcheck"))),
            )
            // cargo names a workspace's artifacts by paths relative to the workspace, so in
            // the shared target directory the copy's would overwrite the original's, and be
            // taken as fresh by the original's next run: another version keeps them apart.
            .replace("version = \"0.0.0\"", "version = \"0.0.1\"");
        std::fs::write(&manifest, text).unwrap();
    }
    std::fs::write(copy.join("leakcheck.toml"), rules.join("\n") + "\n").unwrap();

    let ran = cargo_leakcheck(&copy, &[], &[]);
    assert_eq!(ran.code(), Some(0), "{}", ran.describe());
    assert_eq!(
        ran.summary(),
        "leakcheck: 6 tests checked and 2 test processes checked as they exited, none leaked"
    );
    std::fs::remove_dir_all(copy.parent().unwrap()).unwrap();
}

/// A summary without its last line, the count.
fn without_count(summary: &str) -> String {
    let summary = summary.trim_end();
    summary
        .rsplit_once('\n')
        .map_or(summary, |(leaks, _)| leaks)
        .to_owned()
}

/// The body of this suite's snapshot `name` (`snapshots/cargo_leakcheck__NAME.snap`).
fn insta_snapshot(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
        .join(format!("cargo_leakcheck__{name}.snap"));
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.splitn(3, "---\n").nth(2).unwrap_or_default();
    body.to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `cargo leakcheck nextest`, whole and in two CI shards whose files `report` merges: the
/// same leaks as `cargo test`'s summary, by the same sites; only the count differs, as
/// nextest starts no binary that has no test (cargo test starts each, and checks it as it
/// exits).
#[test]
#[ignore = "needs cargo-nextest; .ci/run runs it with --include-ignored"]
fn nextest_and_its_shards_merged_give_the_same_summary() {
    let _serial = serial();
    let whole = cargo_leakcheck(&workspace(), &["nextest"], &[]);
    // nextest's status for failing tests.
    assert_eq!(whole.code(), Some(100), "{}", whole.describe());
    insta::assert_snapshot!("leaky_suite_nextest", whole.summary());
    assert_eq!(
        without_count(whole.summary()),
        without_count(&insta_snapshot("leaky_suite")),
        "nextest's leaks differ from cargo test's"
    );
    // Built, not run: nextest refuses `--no-fail-fast` beside `--no-run`, so none is added.
    let built = cargo_leakcheck(&workspace(), &["nextest", "--no-run"], &[]);
    assert_eq!(built.code(), Some(0), "{}", built.describe());
    assert!(
        !built.stdout.contains(SUMMARY_START),
        "{}",
        built.describe()
    );

    let dir = temp_dir("cli-shards");
    let mut files = Vec::new();
    for shard in ["1/2", "2/2"] {
        let file = dir.join(format!("shard-{}.jsonl", &shard[..1]));
        let partition = format!("count:{shard}");
        let ran = cargo_leakcheck(
            &workspace(),
            &[
                "nextest",
                "--partition",
                &partition,
                "--json",
                path_str(&file),
            ],
            &[],
        );
        assert!(
            matches!(ran.code(), Some(0 | 100)),
            "shard {shard}:\n{}",
            ran.describe()
        );
        let records = json_records(&file);
        assert!(
            !records.is_empty() && records.len() < 6,
            "shard {shard}: {records:?}"
        );
        files.push(file);
    }
    let markdown = dir.join("summary.md");
    let json = dir.join("merged.jsonl");
    let merged = cargo_leakcheck(
        &workspace(),
        &[
            "report",
            path_str(&files[0]),
            path_str(&files[1]),
            "--summary-md",
            path_str(&markdown),
            "--json",
            path_str(&json),
        ],
        &[],
    );
    assert_eq!(merged.code(), Some(1), "{}", merged.describe());
    assert_eq!(json_records(&json).len(), 6);
    insta::assert_snapshot!("leaky_suite_nextest", merged.summary());
    insta::assert_snapshot!(
        "leaky_suite_nextest_markdown",
        std::fs::read_to_string(&markdown).unwrap()
    );
}

/// What a case of [`the_user_s_rustflags_stay_wherever_they_come_from`] is: its name, the
/// probe's `.cargo/config.toml`, environment variables, arguments.
type RustflagsCase<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Vec<&'a str>);

/// The user's rustflags stay, wherever cargo takes them from, and `--cfg tokio_unstable`
/// joins them: each case builds a probe crate (no dependencies, so each build is short) whose
/// test fails unless both cfgs are set, under a config or environment of its own.
#[test]
fn the_user_s_rustflags_stay_wherever_they_come_from() {
    let host = host_triple();
    let host_var = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        host.to_uppercase().replace(['-', '.'], "_")
    );
    let lost = "--cfg lost";
    let cases: Vec<RustflagsCase> = vec![
        (
            "build.rustflags, an array",
            "[build]\nrustflags = [\"--cfg\", \"user_flag\"]\n".into(),
            vec![],
            vec![],
        ),
        (
            "build.rustflags, a string",
            "[build]\nrustflags = \"--cfg user_flag\"\n".into(),
            vec![],
            vec![],
        ),
        (
            "a matching target.cfg table, over build.rustflags",
            format!(
                "[build]\nrustflags = \"{lost}\"\n\
                 [target.'cfg(all())']\nrustflags = [\"--cfg\", \"user_flag\"]\n"
            ),
            vec![],
            vec![],
        ),
        (
            "a target.cfg table that does not match, so build.rustflags",
            "[build]\nrustflags = [\"--cfg\", \"user_flag\"]\n\
             [target.'cfg(any())']\nrustflags = [\"--cfg\", \"never\"]\n"
                .into(),
            vec![],
            vec![],
        ),
        (
            "the host's target table",
            format!("[target.{host}]\nrustflags = [\"--cfg\", \"user_flag\"]\n"),
            vec![],
            vec![],
        ),
        (
            "CARGO_TARGET_<HOST>_RUSTFLAGS, over build.rustflags",
            format!("[build]\nrustflags = [\"{lost}\"]\n"),
            vec![(host_var.as_str(), "--cfg user_flag")],
            vec![],
        ),
        (
            "CARGO_BUILD_RUSTFLAGS",
            String::new(),
            vec![("CARGO_BUILD_RUSTFLAGS", "--cfg user_flag")],
            vec![],
        ),
        (
            "RUSTFLAGS, over the config",
            format!("[build]\nrustflags = \"{lost}\"\n"),
            vec![("RUSTFLAGS", "--cfg user_flag")],
            vec![],
        ),
        (
            "CARGO_ENCODED_RUSTFLAGS, over RUSTFLAGS",
            String::new(),
            vec![
                ("CARGO_ENCODED_RUSTFLAGS", "--cfg\x1fuser_flag"),
                ("RUSTFLAGS", lost),
            ],
            vec![],
        ),
        (
            "a --config argument",
            String::new(),
            vec![],
            vec!["--config", "build.rustflags=['--cfg', 'user_flag']"],
        ),
    ];
    let target_dir = root().join("target").join("cli-fixtures").join("probe");
    let target_dir = path_str(&target_dir);
    for (case, config, env, args) in cases {
        let dir = probe_crate(&config);
        let mut env = env;
        env.push(("CARGO_TARGET_DIR", target_dir));
        let ran = cargo_leakcheck(&dir, &args, &env);
        assert_eq!(ran.code(), Some(0), "{case}:\n{}", ran.describe());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A crate whose test needs `--cfg user_flag` and `--cfg tokio_unstable`, with `config` as
/// its `.cargo/config.toml`.
fn probe_crate(config: &str) -> PathBuf {
    let dir = temp_dir("cli-rustflags");
    std::fs::create_dir_all(dir.join(".cargo")).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        // leakcheck, declared but never built (an optional dependency): a crate that uses
        // leakcheck gets `--cfg tokio_unstable` added to the user's flags.
        format!(
            "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             [dependencies]\nleakcheck = {{ path = {:?}, optional = true }}\n\
             [lints.rust]\nunexpected_cfgs = \"allow\"\n[workspace]\n",
            root().join("leakcheck").display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "#[test]\nfn both_flags() {\n    \
         #[cfg(not(user_flag))]\n    panic!(\"the user's flag was lost\");\n    \
         #[cfg(not(tokio_unstable))]\n    panic!(\"no --cfg tokio_unstable\");\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join(".cargo/config.toml"), config).unwrap();
    dir
}

fn host_triple() -> String {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// Bad input: a clear error naming what was wrong, status 2, and nothing run.
#[test]
fn bad_input_is_named() {
    let dir = temp_dir("cli-bad-input");
    let malformed = dir.join("malformed.jsonl");
    let clean = r#"{"schema_version":2,"check":"test","test":"a","outcome":"clean","mode":"fail","test_passed":true,"waited_ms":0,"ended":null,"groups":[],"omitted":null}"#;
    std::fs::write(
        &malformed,
        format!("{clean}\n{{\"schema_version\":2,\"check\n"),
    )
    .unwrap();
    let old = dir.join("old.jsonl");
    std::fs::write(
        &old,
        clean.replace("\"schema_version\":2", "\"schema_version\":1"),
    )
    .unwrap();
    let missing = dir.join("missing.jsonl");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["report", "--sumary-md", "x.md", path_str(&old)],
            "error: unknown option `--sumary-md` for `cargo leakcheck report`".into(),
        ),
        (
            vec!["report"],
            "error: `cargo leakcheck report` needs the report files to merge".into(),
        ),
        (
            vec!["report", path_str(&missing)],
            format!("error: cannot read the report file {}: ", missing.display()),
        ),
        (
            vec!["report", path_str(&malformed)],
            format!(
                "error: {}:2: not a JSON line of a leakcheck report",
                malformed.display()
            ),
        ),
        (
            vec!["report", path_str(&old)],
            format!(
                "error: {}:1: a record of schema_version 1: this cargo-leakcheck reads version 2",
                old.display()
            ),
        ),
        (
            vec!["--json"],
            "error: --json needs a file path: --json PATH".into(),
        ),
        (
            vec![
                "report",
                "--json",
                "a.jsonl",
                "--json",
                "b.jsonl",
                path_str(&old),
            ],
            "error: --json is given twice (a.jsonl and b.jsonl): it takes one file".into(),
        ),
    ];
    for (args, expected) in cases {
        let ran = cargo_leakcheck(&dir, &args, &[]);
        assert_eq!(ran.code(), Some(2), "{args:?}: {}", ran.describe());
        assert!(
            ran.stderr.starts_with(&expected),
            "{args:?}: expected `{expected}`:\n{}",
            ran.describe()
        );
        assert_eq!(ran.stdout, "", "{args:?}");
    }
}

/// Causes other than bad input have statuses of their own: a cargo that cannot be run is 3,
/// a file that cannot be written is 4.
#[test]
fn cargo_missing_and_files_unwritable_have_their_own_statuses() {
    let dir = temp_dir("cli-statuses");
    let clean = dir.join("clean.jsonl");
    std::fs::write(
        &clean,
        r#"{"schema_version":2,"check":"test","test":"a","outcome":"clean","mode":"fail","test_passed":true,"waited_ms":0,"ended":null,"groups":[],"omitted":null}"#,
    )
    .unwrap();
    let unwritable = dir.join("no-such-dir").join("summary.md");
    let ran = cargo_leakcheck(
        &dir,
        &[
            "report",
            path_str(&clean),
            "--summary-md",
            path_str(&unwritable),
        ],
        &[],
    );
    assert_eq!(ran.code(), Some(4), "{}", ran.describe());
    assert!(
        ran.stderr
            .starts_with(&format!("error: cannot write {}: ", unwritable.display())),
        "{}",
        ran.describe()
    );
    let ran = cargo_leakcheck(&dir, &[], &[("CARGO", "/nonexistent/cargo")]);
    assert_eq!(ran.code(), Some(3), "{}", ran.describe());
    assert!(
        ran.stderr
            .starts_with("error: cannot run /nonexistent/cargo: "),
        "{}",
        ran.describe()
    );
}

/// The summary of fixtures' records (`cargo leakcheck report`), 8 tests at a time, repeated:
/// a zombie is said as what it is (exited, never waited for), apart from the leaks, and
/// "warn mode" only under `--warn`; a line that started two programs (through duct) is
/// offered only rules that silence both, and they do; lost panics of three threads, one of
/// them named, are labelled by their spawn site, not by that name. Each beside its clean
/// twin, which adds nothing.
#[test]
fn the_summary_of_fixtures_says_what_each_site_is_and_silences_all_of_it() {
    let mixed = [
        "leaks_a_sleep_started_through_duct",
        "leaks_a_tail_started_through_duct",
    ];
    let kill = ("LEAKCHECK_KILL_PROCESSES", "1");
    let at = |site: String| site.trim_end_matches(':').to_owned();
    for round in 0..repeat() {
        let dir = temp_dir("cli-fixture-records");
        let records = dir.join("leaks.jsonl");
        let reporting = ("LEAKCHECK_REPORT", path_str(&records));
        let mut args = vec!["--exact", "--test-threads=8"];
        args.extend(mixed);
        args.extend([
            "clean_duct_children_waited_for",
            "zombie_is_reported_without_failing",
            "clean_spawn_and_wait",
        ]);
        run_with_env("processes", &args, &[reporting, kill]);
        run_with_env(
            "panics",
            &[
                "--exact",
                "--test-threads=8",
                "leaks_panics_of_threads_one_of_them_named",
                "clean_panics_of_threads_one_of_them_named_joined",
            ],
            &[reporting],
        );
        let ran = cargo_leakcheck(&workspace(), &["report", path_str(&records)], &[]);
        assert_eq!(ran.code(), Some(1), "round {round}: {}", ran.describe());
        let summary = ran.summary();
        let paragraph = |start: &str| {
            summary
                .split("\n\n")
                .find(|paragraph| paragraph.starts_with(start))
                .unwrap_or_else(|| panic!("round {round}: no {start:?} in:\n{summary}"))
                .to_owned()
        };

        let zombie = paragraph("1 zombie process ");
        let site = at(child_site("processes.rs", "zombie"));
        assert!(
            zombie.contains(&format!(
                " spawned at {site}, exited, never waited for, in 1 test:\n    \
                 zombie_is_reported_without_failing"
            )),
            "round {round}: {zombie}"
        );

        // The site is the fixture's line, or shared_child's where the spawn backtrace is
        // cut before it (every duct child starts there): either way, one site, two programs.
        let duct = paragraph("2 processes `sleep 631` `tail -f /dev/null` spawned at ");
        assert!(duct.contains(", in 2 tests:"), "round {round}: {duct}");
        let rules: Vec<String> = duct
            .rsplit_once("  in leakcheck.toml: ")
            .unwrap_or_else(|| panic!("round {round}: no rule in:\n{duct}"))
            .1
            .split("  or  ")
            .map(str::to_owned)
            .collect();
        assert!(
            rules.iter().all(|rule| !rule.starts_with("ignore_process")),
            "round {round}: a program rule silences part of the site:\n{duct}"
        );
        assert!(!rules.is_empty(), "round {round}: {duct}");

        let panics = paragraph("3 lost panics ");
        let site = at(spawn_site("panics.rs", "the-named-one"));
        assert!(
            panics.starts_with(&format!("3 lost panics spawned at {site}, in 1 test:")),
            "round {round}: {panics}"
        );

        let totals = summary.lines().last().unwrap();
        assert_eq!(
            totals,
            "leakcheck: 7 tests checked, 3 leaked: 5 leaks from 2 spawn sites; 1 test left 1 \
             zombie process (exited, never waited for: reported, not failed, by zombies = \
             \"warn\", the default)",
            "round {round}"
        );
        let warned = cargo_leakcheck(&workspace(), &["report", "--warn", path_str(&records)], &[]);
        assert!(
            warned
                .summary()
                .ends_with("; warn mode: reported, not failed"),
            "{}",
            warned.describe()
        );

        // Each offered rule silences the whole site: both programs.
        for rule in &rules {
            let config = dir.join("leakcheck.toml");
            std::fs::write(&config, format!("{rule}\n")).unwrap();
            let mut args = vec!["--exact", "--test-threads=8"];
            args.extend(mixed);
            let run = run_with_env(
                "processes",
                &args,
                &[kill, ("LEAKCHECK_CONFIG", path_str(&config))],
            );
            for test in mixed {
                assert_eq!(
                    run.verdict(test),
                    Some("ok"),
                    "round {round}: {rule}: {}",
                    run.stdout
                );
            }
        }
    }
}

/// The workspace nobody changed for leakcheck (`fixtures/zero-edit`): `plain` has plain
/// `#[test]`s and `#[tokio::test]`s and no leakcheck dependency; `attributed` uses the
/// attribute.
fn zero_edit() -> PathBuf {
    root().join("fixtures").join("zero-edit")
}

/// Its target directory, kept between runs (the same on both of CI's builds: the suite's
/// rustflags are not passed on).
fn zero_edit_target() -> PathBuf {
    root().join("target").join("zero-edit")
}

/// `cargo leakcheck ARGS` in the zero-edit workspace, leaked processes ended after their
/// report.
fn zero_edit_leakcheck(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let target = zero_edit_target();
    let mut all = vec![
        ("CARGO_TARGET_DIR", path_str(&target)),
        ("LEAKCHECK_KILL_PROCESSES", "1"),
    ];
    all.extend(env.iter().copied());
    cargo_leakcheck(&zero_edit(), args, &all)
}

/// Plain cargo, as the user runs it, in the zero-edit workspace.
fn zero_edit_cargo(args: &[&str], env: &[(&str, &str)]) -> Output {
    as_a_user_runs_it(&mut Command::new(env!("CARGO")))
        .args(args)
        .current_dir(zero_edit())
        .env("CARGO_TARGET_DIR", zero_edit_target())
        .envs(env.iter().copied())
        .output()
        .expect("cargo runs")
}

/// `plain/FILE:LINE` of the spawn marked `// spawn: KEY` in the zero-edit crate `plain`.
fn zero_edit_site(file: &str, key: &str) -> String {
    let line = marked_line(
        &zero_edit().join("plain").join(file),
        &format!("// spawn: {key}"),
    );
    format!("plain/{file}:{line}")
}

/// The tests of `plain` that leak, each with its leak's spawn site, as the summary names
/// them: whole names, longer than the 15 bytes the kernel keeps of a thread's.
fn plain_leaks() -> [(&'static str, String); 5] {
    [
        (
            "tests::unit_test_leaks_a_thread",
            format!(
                "1 thread \"unit-leak\" spawned at {}",
                zero_edit_site("src/lib.rs", "unit-leak")
            ),
        ),
        (
            "leaks_a_named_thread_from_a_test_whose_name_is_long",
            format!(
                "1 thread \"zero-edit-leak\" spawned at {}",
                zero_edit_site("tests/suite.rs", "zero-edit-leak")
            ),
        ),
        (
            "leaks_a_running_child",
            format!(
                "1 process `sleep 651` spawned at {}",
                zero_edit_site("tests/suite.rs", "child")
            ),
        ),
        (
            "leaks_an_orphaned_grandchild",
            format!(
                "1 process `sleep 652` spawned at {}",
                zero_edit_site("tests/suite.rs", "orphan")
            ),
        ),
        (
            "leaks_a_lost_panic",
            format!(
                "1 lost panic spawned at {}",
                zero_edit_site("tests/suite.rs", "zero-edit-panic")
            ),
        ),
    ]
}

/// Under `cargo test`, in a crate that does not depend on leakcheck: each test binary that
/// leaked fails as it exits, with its report naming each test that leaked by its whole name
/// and the line that spawned the leak, unit tests in `src/` included; the summary has every
/// leak once; the doctest and tokio's tasks are said to be unchecked; and after the user's
/// own `cargo test`, nothing is compiled again. Repeated, with 8 test threads.
#[test]
fn a_workspace_nobody_changed_fails_the_binaries_whose_tests_leaked() {
    let _serial = serial();
    let built = zero_edit_cargo(&["test", "-p", "plain", "--no-run"], &[]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    for round in 0..repeat() {
        let ran = zero_edit_leakcheck(&["-p", "plain", "--", "--test-threads=8"], &[]);
        assert_eq!(ran.code(), Some(101), "round {round}: {}", ran.describe());
        assert!(
            !ran.stderr.contains("Compiling "),
            "round {round}: `cargo leakcheck` compiled after `cargo test`:\n{}",
            ran.stderr
        );
        let summary = ran.summary();
        for (test, site) in plain_leaks() {
            let paragraph = summary
                .split("\n\n")
                .find(|paragraph| paragraph.starts_with(&site))
                .unwrap_or_else(|| panic!("round {round}: no {site:?} in:\n{summary}"));
            assert!(
                paragraph.contains(&format!(", in 1 test:\n    {test}\n")),
                "round {round}: {paragraph}"
            );
        }
        // Each binary's own report, as it exits, names the whole test.
        assert!(
            ran.stdout
                .contains("  owner: `leaks_a_named_thread_from_a_test_whose_name_is_long`")
                || ran
                    .stderr
                    .contains("  owner: `leaks_a_named_thread_from_a_test_whose_name_is_long`"),
            "round {round}: {}",
            ran.describe()
        );
        assert_eq!(
            ran.describe()
                .matches("leakcheck: the test binary fails (cargo leakcheck)")
                .count(),
            2,
            "round {round}: the unit tests' and the suite's binaries: {}",
            ran.describe()
        );
        for clean in ["clean_", "tokio"] {
            assert!(
                !summary
                    .lines()
                    .any(|line| line.starts_with("    ") && line.contains(clean)),
                "round {round}: a clean test is blamed:\n{summary}"
            );
        }
        insta::assert_snapshot!("zero_edit_summary", summary);
        assert_eq!(
            readme_block("<!-- zero-edit summary -->"),
            summary,
            "README.md's summary no longer matches a run (left: README, right: run)"
        );
    }
}

/// Under `cargo leakcheck nextest`, one process a test: each test that leaked fails, alone,
/// and every clean one passes (a joined panicking thread, scoped threads, a
/// `#[tokio::test]` that awaits what it spawns, a waited child).
#[test]
fn under_nextest_each_test_that_leaked_fails_alone() {
    let _serial = serial();
    for round in 0..repeat() {
        let ran = zero_edit_leakcheck(&["nextest", "-p", "plain"], &[]);
        assert_eq!(ran.code(), Some(100), "round {round}: {}", ran.describe());
        let mut verdicts: Vec<(String, String)> = Vec::new();
        for line in ran.stderr.lines() {
            let line = line.trim_start();
            let verdict = line.split_whitespace().next().unwrap_or_default();
            let test = line.rsplit(' ').next().unwrap_or_default();
            if matches!(verdict, "PASS" | "FAIL") && !verdicts.iter().any(|(seen, _)| seen == test)
            {
                verdicts.push((test.to_owned(), verdict.to_owned()));
            }
        }
        assert_eq!(verdicts.len(), 13, "round {round}: {}", ran.describe());
        for (test, verdict) in &verdicts {
            let leaks = plain_leaks().iter().any(|(leaky, _)| leaky == test);
            assert_eq!(
                verdict,
                if leaks { "FAIL" } else { "PASS" },
                "round {round}: `{test}`: {}",
                ran.describe()
            );
        }
        let summary = ran.summary();
        for (test, site) in plain_leaks() {
            assert!(
                summary.contains(&site) && summary.contains(&format!("    {test}\n")),
                "round {round}: no {test} at {site} in:\n{summary}"
            );
        }
        // The lost panic's message, read off the panic: the test's hook is out of reach.
        assert!(
            summary.contains("  panicked: \"boom, nobody joins me\"\n"),
            "round {round}: {summary}"
        );
    }
}

/// A workspace with a member that uses the attribute: that member's tests fail by their
/// own checks, the other member's by the preloaded library's, and no leak is in the summary
/// twice.
#[test]
fn a_member_with_the_attribute_keeps_its_own_checks() {
    let _serial = serial();
    let ran = zero_edit_leakcheck(&[], &[]);
    assert_eq!(ran.code(), Some(101), "{}", ran.describe());
    assert!(
        ran.stdout
            .contains("leakcheck: `leaks_a_thread_under_the_attribute` leaked 1 thread"),
        "{}",
        ran.describe()
    );
    let summary = ran.summary();
    assert_eq!(
        summary.matches("1 thread \"attr-leak\" spawned").count(),
        1,
        "{summary}"
    );
    assert!(
        summary.contains("in 1 test:\n    leaks_a_thread_under_the_attribute\n"),
        "{summary}"
    );
    for (test, site) in plain_leaks() {
        assert_eq!(summary.matches(&site).count(), 1, "{test}: {summary}");
    }
}

/// A program a test starts sees the environment it sees under plain `cargo test`: no
/// `LD_PRELOAD` of leakcheck's, none of the runner's variables; only the marker that finds
/// its orphans.
#[test]
fn a_program_a_test_starts_sees_no_trace_of_the_injection() {
    let _serial = serial();
    let dir = temp_dir("zero-edit-env");
    let plain = dir.join("plain.env");
    let checked = dir.join("checked.env");
    let test = [
        "--test",
        "suite",
        "--",
        "--exact",
        "clean_child_sees_the_environment",
    ];
    let mut args = vec!["test", "-p", "plain"];
    args.extend(test);
    // What the suite gives cargo-leakcheck, the plain run gets too.
    let cache = root().join("target").join("preload-cache");
    let ran = zero_edit_cargo(
        &args,
        &[
            ("ZERO_EDIT_ENV_OUT", path_str(&plain)),
            ("LEAKCHECK_KILL_PROCESSES", "1"),
            ("XDG_CACHE_HOME", path_str(&cache)),
        ],
    );
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let mut args = vec!["-p", "plain"];
    args.extend(test);
    let ran = zero_edit_leakcheck(&args, &[("ZERO_EDIT_ENV_OUT", path_str(&checked))]);
    assert_eq!(ran.code(), Some(0), "{}", ran.describe());
    let environment = |path: &Path| -> Vec<String> {
        let mut variables: Vec<String> = std::fs::read(path)
            .unwrap()
            .split(|&byte| byte == 0)
            .filter(|variable| !variable.is_empty())
            .map(|variable| String::from_utf8_lossy(variable).into_owned())
            .collect();
        variables.sort();
        variables
    };
    let (plain, checked) = (environment(&plain), environment(&checked));
    // Where each run wrote this, aside.
    let written = |variables: Vec<String>| -> Vec<String> {
        variables
            .into_iter()
            .filter(|variable| !variable.starts_with("ZERO_EDIT_ENV_OUT="))
            .collect()
    };
    let (marker, rest): (Vec<String>, Vec<String>) = written(checked)
        .into_iter()
        .partition(|variable| variable.starts_with("LEAKCHECK_SPAWNED_BY="));
    assert_eq!(marker.len(), 1, "{marker:?}");
    assert_eq!(rest, written(plain));
}

/// A runner of the user's keeps working: leakcheck's runner starts the binary through it,
/// and one that runs the binary as its own child (as an emulator or a memory checker does)
/// passes the preloaded library on to it.
#[test]
fn the_user_s_own_runner_is_chained() {
    let _serial = serial();
    let dir = temp_dir("zero-edit-runner");
    let log = dir.join("runner.log");
    let script = dir.join("user-runner.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\n\"$@\"\nexit $?\n",
            log.display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script, permissions).unwrap();
    let config = format!("target.{}.runner=[{:?}]", host_triple(), path_str(&script));
    let test = "leaks_a_named_thread_from_a_test_whose_name_is_long";
    let ran = zero_edit_leakcheck(
        &[
            "-p", "plain", "--test", "suite", "--config", &config, "--", "--exact", test,
        ],
        &[],
    );
    assert_eq!(ran.code(), Some(101), "{}", ran.describe());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("/deps/suite-"), "{logged}");
    assert!(
        ran.summary().contains(&format!("in 1 test:\n    {test}\n")),
        "{}",
        ran.describe()
    );
}
