//! Pools that live for the whole process (smol's `blocking`, async-std's and smol's
//! executors): the test that grows one is not blamed for its threads, which wait for work;
//! a job that never ends in one is the leak of the test that submitted it, with the job's
//! line, whichever test's thread runs it.

use leakcheck_suite::{assert_verdicts, nextest, rounds, run, spawn_site};

/// Leaky tests, the marker of their job's line, and the pool that runs it.
const JOBS: &[(&str, &str, &str)] = &[
    (
        "leaks_a_job_that_never_ends",
        "never-ending-job",
        "blocking",
    ),
    (
        "leaks_an_async_std_task_that_blocks_its_thread",
        "blocking-task",
        "async-global-executor",
    ),
];

#[test]
fn pool_threads_are_no_test_s_and_a_stuck_job_is_its_test_s() {
    for round in rounds() {
        let run = run("pools", &["--test-threads=8"]);
        assert_verdicts(&run, round, 7);
        for (test, marker, pool) in JOBS {
            let report = run.failure(test);
            assert!(
                report.contains(&format!("leakcheck: `{test}` leaked 1 thread (")),
                "round {round}: {report}"
            );
            let site = spawn_site("pools.rs", marker);
            assert!(
                report.contains(&format!("  spawned at {site}")),
                "round {round}: `{test}`: the job's line {site} missing:\n{report}"
            );
            assert!(
                report.contains(&format!("a thread of {pool}'s process-wide pool")),
                "round {round}: {report}"
            );
        }
    }
}

#[test]
fn one_test_at_a_time_the_verdicts_are_the_same() {
    let run = run("pools", &["--test-threads=1"]);
    assert_verdicts(&run, 0, 7);
}

#[test]
fn a_smol_task_that_holds_its_thread_is_its_test_s_leak() {
    let test = "alone_leaks_a_smol_task_that_blocks_its_thread";
    let run = run("pools", &["--ignored", "--exact", test]);
    let report = run.failure(test);
    assert!(
        report.contains("leakcheck: `smol task that blocks its thread` leaked 1 thread ("),
        "{report}"
    );
    let site = spawn_site("pools.rs", "smol-blocking-task");
    assert!(report.contains(&format!("  spawned at {site}")), "{report}");
    assert!(
        report.contains("a thread of smol's process-wide pool"),
        "{report}"
    );
}

/// Under nextest each test is a process of its own, which grows the pools itself.
#[test]
#[ignore = "needs cargo-nextest; .ci/run runs it with --include-ignored"]
fn under_nextest_only_the_tests_with_stuck_jobs_fail() {
    let (log, verdicts) = nextest(&["pools"], &[]);
    assert_eq!(verdicts.len(), 8, "{log}");
    for (test, verdict) in verdicts {
        let expected = if test.contains("leaks_") {
            "FAIL"
        } else {
            "PASS"
        };
        assert_eq!(verdict, expected, "`{test}`:\n{log}");
    }
}
