//! Lost panics: a panic that ends a thread of the test and that nobody observes fails that
//! test, with the message, where it panicked, the thread and its spawn line, and only that
//! test, with 8 tests in parallel, repeated; each way a panic is observed passes.

use leakcheck_suite::{
    Run, assert_verdicts, nextest, normalize, rounds, run, run_reporting, run_with_env, spawn_site,
};

/// Each test that loses a panic, its thread, what the report says of the panic, and the
/// `// spawn:` marker of the line that spawned the thread.
const LOST: &[(&str, &str, &str, &str)] = &[
    (
        "leaks_a_panic_in_a_detached_thread",
        "detached-panic",
        "panicked at tests/panics.rs:",
        "detached-panic",
    ),
    (
        "leaks_a_panic_whose_handle_is_dropped",
        "dropped-handle",
        ": boom, handle dropped",
        "dropped-handle",
    ),
    (
        "leaks_a_panic_of_a_thread_a_helper_started",
        "helper-s-child",
        ": boom in the helper's child",
        "helper-s-child",
    ),
    (
        "leaks_a_resumed_panic",
        "resumes",
        "resumed with resume_unwind, panicked at tests/panics.rs:",
        "resumes",
    ),
    (
        "leaks_a_panic_during_the_check",
        "late-panic",
        ": boom, late",
        "late-panic",
    ),
    (
        "leaks_a_panic_a_drop_guard_only_counts",
        "counting-worker",
        ": boom in a counting worker",
        "counting-worker",
    ),
    (
        "leaks_a_panic_that_thread_rules_do_not_accept",
        "thread-ruled",
        ": boom in a counting worker",
        "counting-worker",
    ),
    (
        "leaks_a_panic_still_in_progress_when_the_grace_period_ends",
        "slow-panic",
        ": boom, slow to show",
        "slow-panic",
    ),
    (
        "leaks_a_panic_of_an_ignored_thread_that_unwinds_past_the_grace_period",
        "ruled-slow-unwind",
        ": boom, unwinding slowly",
        "ruled-slow-unwind",
    ),
    (
        "leaks_a_panic_through_a_cpp_typed_catch",
        "through-cpp",
        ": boom through C++",
        "through-cpp",
    ),
];

fn assert_lost_panics_reported(run: &Run, round: usize) {
    assert_verdicts(run, round, 25);
    for (test, thread, says, marker) in LOST {
        let report = run.failure(test);
        assert!(
            report.contains(&format!("leakcheck: `{test}`: 1 panic lost")),
            "round {round}: `{test}`:\n{report}"
        );
        assert!(
            report.contains("lost panic in thread ")
                && report.contains(&format!(" \"{thread}\": ")),
            "round {round}: `{test}`:\n{report}"
        );
        assert!(
            report.contains(says),
            "round {round}: `{test}`: no {says:?} in:\n{report}"
        );
        let site = spawn_site("panics.rs", marker);
        assert!(
            report.contains(&format!("  spawned at {site}")),
            "round {round}: `{test}` does not name {site}:\n{report}"
        );
        // A lost panic is a panic, never a thread leak (a panic in progress is waited for).
        assert!(
            !report.contains("thread leaked") && !report.contains("busy:"),
            "round {round}: `{test}`:\n{report}"
        );
        for (other, other_thread, _, _) in LOST {
            if other != test {
                assert!(
                    !report.contains(&format!("\"{other_thread}\"")),
                    "round {round}: `{test}` is blamed for `{other}`'s panic:\n{report}"
                );
            }
        }
    }
}

/// The verdicts alone: `.ci/run` runs this with the fixtures built in release and with fat
/// LTO (`SUITE_FIXTURE_PROFILE`), where reports have no line numbers and inlining removes
/// functions from the symbol table (a scoped thread's spawn, say).
#[test]
fn only_tests_that_lose_a_panic_fail_whatever_the_build() {
    for round in rounds() {
        assert_verdicts(&run("panics", &["--test-threads=8"]), round, 25);
    }
}

#[test]
fn only_tests_that_lose_a_panic_fail_in_parallel_runs() {
    for round in rounds() {
        let run = run("panics", &["--test-threads=8"]);
        assert_lost_panics_reported(&run, round);
    }
}

/// A thread's handle dropped while its panic starts, then a later thread given the freed
/// `pthread_t` joined: the join is not one of the detached thread's, whose panic stays lost
/// (the detach and the panic's record are ordered by a fence on each side; before, a detach
/// that fell between the raise reading "not detached" and its record left the record to the
/// later join). 40 threads a run, each detached at a point 25 us later in its raise.
#[test]
fn a_detach_racing_a_panic_leaves_it_lost_whatever_is_joined_later() {
    let test = "leaks_panics_of_threads_detached_as_they_panic";
    for round in rounds() {
        let run = run("panics", &["--exact", test]);
        let report = run.failure(test);
        assert!(
            report.contains(&format!("leakcheck: `{test}`: 40 panics lost")),
            "round {round}:\n{report}"
        );
        assert!(
            !report.contains("reuses-handle"),
            "round {round}:\n{report}"
        );
    }
}

#[test]
fn only_tests_that_lose_a_panic_fail_one_at_a_time() {
    let run = run("panics", &["--test-threads=1"]);
    assert_lost_panics_reported(&run, 0);
}

#[test]
fn a_lost_panic_reads_like_this() {
    let test = "leaks_a_panic_in_a_detached_thread";
    let run = run("panics", &["--exact", test]);
    insta::assert_snapshot!("detached_thread_panic", normalize(run.failure(test)));
}

/// The test's own failure stays the headline: libtest prints it first, then the lost panic.
#[test]
fn a_test_that_fails_on_its_own_keeps_its_failure_first() {
    let test = "fails_and_loses_a_panic";
    let run = run("panics", &["--exact", test]);
    assert_eq!(run.verdict(test), Some("FAILED"));
    let failure = run.failure(test);
    let own = failure
        .find("the test's own failure")
        .expect("its own failure");
    let lost = failure.find("1 panic lost").expect("the lost panic");
    assert!(own < lost, "{failure}");
    assert!(failure.contains("boom, not joined"), "{failure}");
    assert!(
        !failure.contains("\"lost-beside\""),
        "joined, so observed:\n{failure}"
    );
}

/// `warn` reports on stderr, past libtest's capture, and passes; `off` says nothing; the
/// variable is over the default and the attribute over the variable; a bad value is an error
/// naming it.
#[test]
fn lost_panics_warn_or_are_off_when_asked() {
    let run = run("panics", &["--exact", "warns_of_a_lost_panic"]);
    assert_eq!(run.verdict("warns_of_a_lost_panic"), Some("ok"));
    insta::assert_snapshot!("lost_panic_warning", normalize(&run.stderr));

    let test = "leaks_a_panic_in_a_detached_thread";
    for (value, stderr_says) in [("warn", true), ("off", false)] {
        let run = run_with_env(
            "panics",
            &["--exact", test],
            &[("LEAKCHECK_LOST_PANICS", value)],
        );
        assert_eq!(run.verdict(test), Some("ok"), "{value}: {}", run.stdout);
        assert_eq!(
            run.stderr.contains("1 panic lost"),
            stderr_says,
            "{value}: {}",
            run.stderr
        );
    }

    // A test that says `lost_panics = "off"` keeps it under a CI-wide
    // `LEAKCHECK_LOST_PANICS=fail`: the test's own words win for the test they are on.
    let off = "clean_when_lost_panics_are_off";
    let run = run_with_env(
        "panics",
        &["--exact", off],
        &[("LEAKCHECK_LOST_PANICS", "fail")],
    );
    assert_eq!(run.verdict(off), Some("ok"), "{}", run.stdout);

    let run = run_with_env(
        "panics",
        &["--exact", test],
        &[("LEAKCHECK_LOST_PANICS", "loud")],
    );
    assert!(
        run.failure(test)
            .contains("leakcheck: LEAKCHECK_LOST_PANICS=\"loud\" is not understood: expected fail, warn or off"),
        "{}",
        run.failure(test)
    );
}

/// A test that puts its own hook in place does not blind the check: the panic is found,
/// with its message (read off the panic itself) but not where it panicked, and leakcheck
/// says once why.
#[test]
fn a_replaced_panic_hook_loses_where_it_panicked_not_the_panic() {
    let test = "alone_leaks_a_panic_under_a_silent_hook";
    let run = run("panics", &["--ignored", "--exact", test]);
    assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
    insta::assert_snapshot!("panic_under_a_silent_hook", normalize(run.failure(test)));
    assert_eq!(
        run.stderr
            .matches("leakcheck: a panic ran another panic hook")
            .count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn the_json_record_holds_the_panic() {
    let test = "leaks_a_panic_whose_handle_is_dropped";
    let (run, lines) = run_reporting("panics", &["--exact", test], &[]);
    assert_eq!(run.verdict(test), Some("FAILED"));
    let record = lines
        .iter()
        .find(|line| line["test"] == test)
        .expect("its record");
    let group = &record["groups"][0];
    assert_eq!(group["kind"], "lost_panic", "{group}");
    assert_eq!(group["names"][0], "dropped-handle");
    assert_eq!(group["panic"]["message"], "boom, handle dropped");
    let location = group["panic"]["location"].as_str().unwrap();
    assert!(location.starts_with("tests/panics.rs:"), "{location}");
    assert_eq!(group["rules"].as_array().map(Vec::len), Some(1), "{group}");
    assert_eq!(group["rules"][0]["key"], "ignore_panic", "{group}");
    assert_eq!(
        group["ignore_rules"][0],
        "ignore_panic = \"panics::leaks_a_panic_whose_handle_is_dropped\""
    );
}

/// The rule a lost panic's report offers accepts that site's lost panics, pasted as it is
/// (`clean_panic_accepted_by_ignore_panic` carries it); thread and spawn rules accept none.
#[test]
fn ignore_panic_as_offered_accepts_the_site_s_lost_panics() {
    let test = "leaks_a_panic_a_drop_guard_only_counts";
    let leaking = run("panics", &["--exact", test]);
    let report = leaking.failure(test);
    let offered = report
        .lines()
        .find_map(|line| line.strip_prefix("  to accept it: "))
        .unwrap_or_else(|| panic!("no rule offered:\n{report}"));
    assert_eq!(offered, "ignore_panic = \"panics::start_counting_worker\"");
    let source =
        std::fs::read_to_string(leakcheck_suite::fixtures_dir().join("tests/panics.rs")).unwrap();
    assert!(
        source.contains(&format!(
            "#[leakcheck::test({offered})]\nfn clean_panic_accepted_by_ignore_panic()"
        )),
        "the accepting fixture does not carry the offered rule {offered}"
    );
    let accepted = "clean_panic_accepted_by_ignore_panic";
    let run = run("panics", &["--exact", accepted]);
    assert_eq!(run.verdict(accepted), Some("ok"), "{}", run.stdout);
}

/// At exit, `verify_test_main!` fails the binary for the plain test's lost panic, naming the
/// test, and not for the joined one.
#[test]
fn the_exit_check_names_the_plain_test_that_lost_a_panic() {
    let run = run("exit_gate_panics", &["--test-threads=8"]);
    assert_eq!(run.verdict("plain_test_loses_a_panic"), Some("ok"));
    assert_eq!(run.output.status.code(), Some(101), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("leakcheck: when the test binary exited: 1 panic lost"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("  owner: `plain_test_loses_a_panic`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(": boom, nobody joins me"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("gate-joined"), "{}", run.stderr);
}

#[test]
fn only_tests_that_lose_a_panic_fail_under_nextest() {
    let (log, verdicts) = nextest(&["panics"], &[]);
    assert!(verdicts.len() >= 12, "{log}");
    for (test, verdict) in &verdicts {
        let expected = if test.starts_with("leaks_")
            || test.starts_with("fails_")
            || test.starts_with("alone_")
        {
            "FAIL"
        } else {
            "PASS"
        };
        assert_eq!(verdict, expected, "`{test}`:\n{log}");
    }
}

/// The README's lost panic is a real one, numbers aside.
#[test]
fn the_readme_shows_a_real_lost_panic() {
    let test = "leaks_a_panic_in_a_detached_thread";
    let pasted = leakcheck_suite::readme_block("<!-- lost panic report -->");
    let run = run("panics", &["--exact", test]);
    let failure = run.failure(test);
    let real = &failure[failure.find("leakcheck: ").expect("a report")..];
    assert_eq!(
        normalize(&pasted),
        normalize(real),
        "README.md's lost panic no longer matches a run (left: README, right: run)"
    );
}
