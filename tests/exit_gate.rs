//! `verify_test_main!`: a whole binary of plain `#[test]`s checked at exit, as a pipeline
//! sees it: libtest's results first, then the report, and the binary's exit status.

use leakcheck_suite::{normalize, run, run_reporting, run_with_env, spawn_site};

/// The exit report: what the binary printed after libtest's results.
fn exit_report(stderr: &str) -> &str {
    let start = stderr
        .find("still running when the test binary exited")
        .unwrap_or_else(|| panic!("no exit report in:\n{stderr}"));
    &stderr[stderr[..start].rfind("leakcheck:").unwrap()..]
}

#[test]
fn a_binary_whose_plain_tests_leak_fails_at_exit_naming_each_test() {
    for threads in ["--test-threads=8", "--test-threads=1"] {
        let run = run("exit_gate", &[threads]);
        for test in [
            "plain_test_leaks_a_thread",
            "plain_test_leaks_through_a_helper_thread",
            "plain_test_is_clean",
            "plain_test_uses_the_rayon_global_pool",
        ] {
            assert_eq!(run.verdict(test), Some("ok"), "{threads} {test}");
        }
        assert_eq!(run.verdict("leaks_checked_by_its_own_test"), Some("FAILED"));
        assert_eq!(run.output.status.code(), Some(101));
        let report = exit_report(&run.stderr);
        assert!(
            report.contains("leakcheck: 2 threads still running"),
            "{report}"
        );
        for (thread, owner) in [
            ("gate-leak", "plain_test_leaks_a_thread"),
            (
                "gate-grandchild",
                "plain_test_leaks_through_a_helper_thread",
            ),
        ] {
            let paragraph = report
                .split("\n\n")
                .find(|paragraph| paragraph.contains(&format!("\"{thread}\"")))
                .unwrap_or_else(|| panic!("{threads}: no `{thread}` in:\n{report}"));
            assert!(
                paragraph.contains(&format!("  owner: `{owner}`")),
                "{paragraph}"
            );
            let site = spawn_site("exit_gate.rs", thread);
            assert!(
                paragraph.contains(&format!("  spawned at {site}")),
                "{paragraph}"
            );
            assert!(paragraph.contains("  current stack:"), "{paragraph}");
        }
        // Checked, and failed, by its own test: not reported again.
        assert!(!report.contains("own-check-leak"), "{report}");
        assert!(report.contains("the test binary fails (verify_test_main!)"));
    }
}

/// The whole exit report, one test at a time so that its paragraphs come in the order the
/// tests ran.
#[test]
fn the_exit_report_reads_like_this() {
    let run = run("exit_gate", &["--test-threads=1"]);
    insta::assert_snapshot!("exit_report", normalize(exit_report(&run.stderr)));
}

/// The one JSON line of the exit check among a run's lines.
fn the_exit_record(lines: &[serde_json::Value]) -> &serde_json::Value {
    let exit: Vec<_> = lines
        .iter()
        .filter(|line| line["check"] == "exit")
        .collect();
    assert_eq!(exit.len(), 1, "{lines:?}");
    exit[0]
}

/// A binary whose tests leave nothing passes, and its exit check ran and found nothing, not
/// none ran.
fn assert_clean_exit(target: &str) {
    let (run, lines) = run_reporting(target, &["--test-threads=8"], &[]);
    assert!(
        run.output.status.success(),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(!run.stderr.contains("leakcheck"), "{}", run.stderr);
    assert_eq!(the_exit_record(&lines)["outcome"], "clean");
}

#[test]
fn a_binary_whose_tests_clean_up_passes() {
    assert_clean_exit("exit_gate_clean");
}

/// `verify_test_main!` in a file under `#![forbid(unsafe_code)]` (crossbeam-channel's tests
/// have one) compiles, and its exit check runs.
#[test]
fn the_exit_check_works_in_a_file_that_forbids_unsafe_code() {
    assert_clean_exit("forbid_unsafe");
}

#[test]
fn a_leak_from_main_is_unattributed() {
    let run = run("exit_gate_main", &[]);
    assert_eq!(run.output.status.code(), Some(101));
    let report = exit_report(&run.stderr);
    assert!(report.contains("\"main-leak\""), "{report}");
    assert!(
        report.contains("  owner: none (spawned outside every test"),
        "{report}"
    );
    let site = spawn_site("exit_gate_main.rs", "main-leak");
    assert!(report.contains(&format!("  spawned at {site}")), "{report}");
}

#[test]
fn modes_apply_at_exit() {
    let warn = run_with_env("exit_gate_main", &[], &[("LEAKCHECK", "warn")]);
    assert!(warn.output.status.success(), "{}", warn.stderr);
    assert!(exit_report(&warn.stderr).contains("LEAKCHECK=warn: reported, not failed"));

    let off = run_with_env("exit_gate_main", &[], &[("LEAKCHECK", "off")]);
    assert!(off.output.status.success(), "{}", off.stderr);
    assert!(!off.stderr.contains("leakcheck"), "{}", off.stderr);

    let bad = run_with_env("exit_gate_main", &[], &[("LEAKCHECK", "strict")]);
    assert_eq!(bad.output.status.code(), Some(101));
    assert!(
        bad.stderr
            .contains("leakcheck: LEAKCHECK=\"strict\" is not understood"),
        "{}",
        bad.stderr
    );
}

#[test]
fn the_exit_check_appends_its_json_line() {
    let (_, lines) = run_reporting("exit_gate", &[], &[]);
    let exit = the_exit_record(&lines);
    assert_eq!(exit["outcome"], "leaked");
    assert!(exit["test"].is_null());
    assert!(exit["test_passed"].is_null());
    let mut owners: Vec<&str> = exit["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|leak| leak["owner"].as_str().unwrap())
        .collect();
    owners.sort();
    assert_eq!(
        owners,
        [
            "plain_test_leaks_a_thread",
            "plain_test_leaks_through_a_helper_thread"
        ]
    );
    // The one #[leakcheck::test] wrote its own line.
    assert!(
        lines
            .iter()
            .any(|line| line["test"] == "leaks_checked_by_its_own_test")
    );
}

/// nextest runs each test in its own process: the exit check fails exactly the tests whose
/// process leaked.
#[test]
#[ignore = "needs cargo-nextest; .ci/run runs it with --include-ignored"]
fn under_nextest_the_exit_check_fails_exactly_the_leaking_tests() {
    let (log, verdicts) = leakcheck_suite::nextest(&["exit_gate", "exit_gate_clean"], &[]);
    let expected = [
        ("plain_test_leaks_a_thread", "FAIL"),
        ("plain_test_leaks_through_a_helper_thread", "FAIL"),
        ("plain_test_is_clean", "PASS"),
        ("plain_test_uses_the_rayon_global_pool", "PASS"),
        ("leaks_checked_by_its_own_test", "FAIL"),
        ("joins_its_worker", "PASS"),
        ("leaves_an_ignored_thread", "PASS"),
        ("uses_the_rayon_global_pool", "PASS"),
    ];
    for (test, verdict) in expected {
        let seen = verdicts.iter().find(|(name, _)| name == test);
        assert_eq!(
            seen.map(|(_, verdict)| verdict.as_str()),
            Some(verdict),
            "`{test}`:\n{log}"
        );
    }
}
