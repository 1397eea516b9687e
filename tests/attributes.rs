//! `#[leakcheck::test]` stacked with rstest, test-case, test-log, serial_test and async-std's
//! test attribute, in every
//! order the README lists, and on tests returning `ExitCode`, as users see it: the fixture
//! binary `attributes` registers each test (each case) once, and exactly the leaky ones
//! fail, each with its own report.

use std::collections::BTreeMap;

use leakcheck_suite::{Run, assert_blames_no_other, assert_verdicts, rounds, run, spawn_site};

/// Each leaky test (each case) and the thread it leaks, whose spawn call is marked
/// `// spawn: NAME` in `fixtures/tests/attributes.rs`.
const LEAKS: &[(&str, &str)] = &[
    ("leaks_below_rstest::case_1", "below-rstest"),
    ("leaks_below_rstest::case_2", "below-rstest"),
    ("leaks_above_rstest::case_1", "above-rstest"),
    ("leaks_above_rstest::case_2", "above-rstest"),
    ("leaks_above_rstest_async::case_1", "above-rstest-async"),
    (
        "leaks_below_test_case::test_case_1_1_expects",
        "below-test-case",
    ),
    (
        "leaks_below_test_case::test_case_2_2_expects",
        "below-test-case",
    ),
    (
        "leaks_below_test_case_async::test_case_1_1_expects",
        "below-test-case-async",
    ),
    (
        "leaks_above_test_case::test_case_1_1_expects",
        "above-test-case",
    ),
    (
        "leaks_above_test_case::test_case_2_2_expects",
        "above-test-case",
    ),
    ("leaks_below_test_log", "below-test-log"),
    ("leaks_below_test_log_async", "below-test-log-async"),
    ("leaks_above_test_log", "above-test-log"),
    ("leaks_above_test_log_tokio", "above-test-log-tokio"),
    ("leaks_below_serial", "below-serial"),
    ("leaks_above_serial", "above-serial"),
    ("leaks_returning_exit_code", "exit-code"),
    ("leaks_async_returning_exit_code", "async-exit-code"),
    ("leaks_above_async_std_test", "above-async-std"),
];

/// The tests that must pass, or fail without leaking (`fails_*`).
const OTHERS: &[&str] = &[
    "clean_below_rstest::case_1",
    "clean_below_rstest::case_2",
    "clean_above_rstest::case_1",
    "clean_above_rstest::case_2",
    "clean_above_rstest_async::case_1",
    "clean_below_test_case::test_case_1_1_expects",
    "clean_below_test_case::test_case_2_2_expects",
    "clean_below_test_case_async::test_case_1_1_expects",
    "clean_above_test_case::test_case_1_1_expects",
    "clean_above_test_case::test_case_2_2_expects",
    "clean_below_test_log",
    "clean_below_test_log_async",
    "clean_above_test_log",
    "clean_above_test_log_tokio",
    "clean_below_serial",
    "clean_above_serial",
    "clean_returning_exit_code",
    "clean_async_returning_exit_code",
    "fails_returning_exit_code_failure",
    "clean_above_async_std_test",
];

fn all_tests() -> Vec<&'static str> {
    let mut all: Vec<&str> = LEAKS
        .iter()
        .map(|(test, _)| *test)
        .chain(OTHERS.iter().copied())
        .collect();
    all.sort_unstable();
    all
}

/// `--list`: every test and every case once, none missing, none twice.
#[test]
fn every_test_and_every_case_is_registered_once() {
    let listed = run("attributes", &["--list"]);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in listed
        .stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
    {
        *counts.entry(name).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "registered more than once: {twice:?}");
    let names: Vec<&str> = counts.into_keys().collect();
    assert_eq!(names, all_tests(), "{}", listed.stdout);
}

fn assert_reports(run: &Run) {
    for (test, thread) in LEAKS {
        let report = run.failure(test);
        let header = format!("leakcheck: `{test}` leaked 1 thread (");
        assert!(
            report.contains(&header),
            "`{test}`: no `{header}` in:\n{report}"
        );
        assert!(
            report.contains(&format!(" \"{thread}\"")),
            "`{test}`: no thread \"{thread}\" in:\n{report}"
        );
        let site = spawn_site("attributes.rs", thread);
        assert!(
            report.contains(&format!("spawned at {site}")),
            "`{test}`: spawn site {site} missing in:\n{report}"
        );
        let others: Vec<String> = LEAKS
            .iter()
            .filter(|(_, other)| other != thread)
            .flat_map(|(_, other)| {
                [
                    format!(" \"{other}\""),
                    format!("spawned at {}", spawn_site("attributes.rs", other)),
                ]
            })
            .collect();
        assert_blames_no_other(test, report, &others);
    }
}

#[test]
fn only_leaky_tests_fail_in_parallel_runs() {
    let all = all_tests();
    for round in rounds() {
        let run = run("attributes", &["--test-threads=8"]);
        assert_verdicts(&run, round, all.len());
        let mut ran = run.tests();
        ran.sort_unstable();
        assert_eq!(
            ran, all,
            "round {round}: each test runs once:\n{}",
            run.stdout
        );
        if round == 0 {
            assert_reports(&run);
        }
    }
}

/// libtest fails a test whose `ExitCode` is not `SUCCESS`; leakcheck, finding no leak,
/// adds nothing.
#[test]
fn a_failing_exit_code_fails_the_test_and_nothing_more() {
    let test = "fails_returning_exit_code_failure";
    let run = run("attributes", &["--exact", test]);
    assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
    assert!(!run.stdout.contains("leakcheck"), "{}", run.stdout);
    assert!(!run.stderr.contains("leakcheck"), "{}", run.stderr);
}

/// nextest runs one process per test (per case): the same verdicts.
#[test]
#[ignore = "needs cargo-nextest; .ci/run runs it with --include-ignored"]
fn only_leaky_tests_fail_under_nextest() {
    let (log, verdicts) = leakcheck_suite::nextest(&["attributes"], &[]);
    for (test, verdict) in &verdicts {
        let expected = match leakcheck_suite::expected_verdict(test) {
            "ok" => "PASS",
            _ => "FAIL",
        };
        assert_eq!(verdict, expected, "`{test}` under nextest:\n{log}");
    }
    let mut seen: Vec<&str> = verdicts.iter().map(|(test, _)| test.as_str()).collect();
    seen.sort_unstable();
    assert_eq!(seen, all_tests(), "{log}");
}

/// `#[async_std::test]` above `#[leakcheck::test]` registered the test already: a compile
/// error that names leakcheck and the order that works, rather than a test run twice.
#[test]
fn below_another_runtime_s_test_attribute_is_a_compile_error_naming_the_order() {
    let _heavy = leakcheck_suite::heavy();
    let output = std::process::Command::new(env!("CARGO"))
        .args(["test", "--no-run", "-p", "misplaced-attributes"])
        .arg("--manifest-path")
        .arg(leakcheck_suite::fixtures_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(leakcheck_suite::root().join("target").join("fixtures"))
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("error: put #[leakcheck::test] above #[async_std::test]"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("error:").count(),
        2,
        "one error, then cargo's: {stderr}"
    );
}
