//! OS-thread leaks, as users see them: the fixture binary `threads` runs in parallel and
//! every `leaks_*` test must fail with its report while every clean twin passes.

use leakcheck_suite::{
    Run, TOKIO_UNSTABLE, assert_blames_no_other, assert_verdicts, normalize, rounds, run,
    run_with_env, spawn_site,
};

/// Leaky tests and what each report must say beyond its headline (`` `TEST` leaked 1
/// thread ``): the thread's name and the marked spawn line, plus text particular to the
/// case. No other row's thread may appear in a report.
const LEAKS: &[(&str, &str, &[&str])] = &[
    (
        "leaks_thread_blocked_on_channel",
        "channel-waiter",
        &["futex"],
    ),
    (
        "leaks_thread_blocked_on_condvar",
        "condvar-waiter",
        &["futex"],
    ),
    ("leaks_thread_blocked_on_lock", "lock-waiter", &["futex"]),
    ("leaks_sleeping_loop", "ticker", &[]),
    (
        "leaks_thread_blocked_on_pipe_read",
        "pipe-reader",
        &["blocked in pipe read on fd"],
    ),
    (
        "leaks_thread_spawned_by_exited_thread",
        "orphan",
        &[
            "spawned by thread",
            "\"spawner\" (exited), itself spawned at tests/threads.rs:",
        ],
    ),
    (
        "leaks_thread_with_a_long_name",
        "connection-pool-reaper-for-tenant-42",
        &[],
    ),
    ("leaks_unnamed_thread", "<unnamed>", &[]),
    (
        "leaks_thread_with_a_quote_and_a_backslash",
        "we\"ird\\name-7501",
        &[],
    ),
    ("leaks_thread_with_glob_characters", "pool[1]*?-7502", &[]),
    ("leaks_thread_with_a_name_beyond_ascii", "naïve-🧵", &[]),
    (
        "leaks_thread_outliving_a_short_grace",
        "too-slow",
        &["sleep"],
    ),
    ("leaks_one_of_hundreds_of_threads", "the-one", &[]),
    (
        "leaks_despite_a_top_rule_for_another_function",
        "not-parked-there",
        &["current stack:"],
    ),
    (
        "leaks_despite_rules_that_do_not_match_it",
        "not-ignored",
        &[],
    ),
    // The twins of the `ignored_by_*` fixtures, without their rule.
    ("leaks_without_the_thread_name_rule", "ignored-worker", &[]),
    (
        "leaks_without_the_spawn_path_rule",
        "background-service",
        &["threads::start_background_service at tests/threads.rs:"],
    ),
    (
        "leaks_without_the_top_function_rule",
        "parked-worker",
        &["threads::park_in_pool at tests/threads.rs:"],
    ),
    ("leaks_and_panics", "panicky", &["the original failure"]),
    (
        "leaks_in_should_panic_test",
        "should-panic-leak",
        &["did not panic as expected"],
    ),
    ("leaks_and_returns_ok", "result-ok-leak", &[]),
    // `fn r#leaks_in_a_raw_identifier_test`: named as libtest names it, without `r#`.
    ("leaks_in_a_raw_identifier_test", "raw-named-leak", &[]),
    (
        "leaks_and_returns_err",
        "result-err-leak",
        &["the original error"],
    ),
    (
        "leaks_thread_started_from_c",
        "c-pipe-reader",
        &[
            "spawned at csrc/blocking_thread.c:",
            "c_start_thread at csrc/blocking_thread.c:",
            "blocked in pipe read",
        ],
    ),
];

/// The explicit-scope leak is reported under the scope's name, not the test's.
const SCOPE_LEAK: (&str, &str) = ("leaks_found_by_explicit_scope", "scoped-leak");

/// How a report names a thread: ` "name"` (a quote or a backslash escaped), or ` <unnamed>`.
fn identity(thread: &str) -> String {
    if thread.starts_with('<') {
        format!(" {thread}")
    } else {
        format!(" {thread:?}")
    }
}

fn assert_reports(run: &Run) {
    let threads = LEAKS
        .iter()
        .map(|(test, thread, _)| (*test, *thread))
        .chain([SCOPE_LEAK]);
    for (test, thread, extra) in LEAKS {
        let report = run.failure(test);
        let header = format!("leakcheck: `{test}` leaked 1 thread (");
        assert!(
            report.contains(&header),
            "`{test}`: no header `{header}` in:\n{report}"
        );
        let others: Vec<String> = threads
            .clone()
            .filter(|(other, _)| other != test)
            .map(|(_, thread)| identity(thread))
            .collect();
        assert_blames_no_other(test, report, &others);
        let identity = identity(thread);
        assert!(
            report.contains(&identity),
            "`{test}`: no thread {identity} in:\n{report}"
        );
        assert!(
            report
                .lines()
                .any(|line| line.starts_with("thread ") && line.contains(&identity)),
            "`{test}`: no `thread <tid> {identity}` line in:\n{report}"
        );
        // The marked line is the spawn site, or for C code the Rust frame that called it.
        let site = spawn_site("threads.rs", thread);
        assert!(
            report.contains(&format!(" at {site}")),
            "`{test}`: spawn site {site} missing in:\n{report}"
        );
        assert!(
            report.contains("to ignore it: "),
            "`{test}`: no ignore rule in:\n{report}"
        );
        for text in *extra {
            assert!(
                report.contains(text),
                "`{test}`: `{text}` missing in:\n{report}"
            );
        }
    }
    let (test, thread) = SCOPE_LEAK;
    let report = run.failure(test);
    assert!(
        report.contains("leakcheck: `explicit scope` leaked 1 thread"),
        "{report}"
    );
    assert!(report.contains(&format!("\"{thread}\"")), "{report}");
}

#[test]
fn only_leaky_tests_fail_in_parallel_runs() {
    for round in rounds() {
        let run = run("threads", &["--test-threads=8"]);
        assert_verdicts(&run, round, 30);
        if round == 0 {
            assert_reports(&run);
        }
    }
}

#[test]
fn only_leaky_tests_fail_with_the_default_thread_count() {
    let run = run("threads", &[]);
    assert_verdicts(&run, 0, 30);
    assert_reports(&run);
}

#[test]
fn only_leaky_tests_fail_one_at_a_time() {
    let run = run("threads", &["--test-threads=1"]);
    assert_verdicts(&run, 0, 30);
}

/// CI often sets `RUST_BACKTRACE=1`. A leak failure then shows the report and, for a test
/// that panicked itself, its own panic and backtrace: not one frame of leakcheck's, and no
/// "panicked at" pointing into leakcheck.
#[test]
fn under_rust_backtrace_a_failure_shows_no_frame_of_leakcheck() {
    let tests = ["leaks_thread_blocked_on_channel", "leaks_and_panics"];
    let mut args = vec!["--exact"];
    args.extend(tests);
    let run = run_with_env("threads", &args, &[("RUST_BACKTRACE", "1")]);
    for test in tests {
        let failure = run.failure(test);
        assert!(
            failure.contains(&format!("leakcheck: `{test}` leaked 1 thread")),
            "{failure}"
        );
        assert!(!failure.contains("leakcheck::"), "`{test}`:\n{failure}");
        assert!(!failure.contains("leakcheck/src"), "`{test}`:\n{failure}");
    }
    // The leak alone: the report is the whole failure, no panic line, no backtrace.
    let leak_only = run.failure("leaks_thread_blocked_on_channel");
    assert!(!leak_only.contains("panicked at"), "{leak_only}");
    assert!(!leak_only.contains("stack backtrace:"), "{leak_only}");
    // The test's own panic keeps its line and a backtrace of its own frames.
    let panicked = run.failure("leaks_and_panics");
    assert!(
        panicked.contains("panicked at tests/threads.rs:"),
        "{panicked}"
    );
    assert!(panicked.contains("stack backtrace:"), "{panicked}");
    assert!(panicked.contains("threads::leaks_and_panics"), "{panicked}");
}

#[test]
fn the_report_names_the_panic_first_and_the_leak_second() {
    let run = run("threads", &["--exact", "leaks_and_panics"]);
    let report = run.failure("leaks_and_panics");
    let panic = report.find("the original failure").unwrap();
    let leak = report.find("leakcheck: `leaks_and_panics` leaked").unwrap();
    assert!(panic < leak, "{report}");
}

#[test]
fn a_thread_blocked_on_a_channel_reads_like_this() {
    let run = run("threads", &["--exact", "leaks_thread_blocked_on_channel"]);
    let report = run.failure("leaks_thread_blocked_on_channel");
    // The same on both builds: tokio's hooks play no part in a thread leak. The spawn
    // backtrace in it is the user's (no std, leakcheck or libtest frames); the current
    // stack shows the one std call the thread is blocked in.
    insta::assert_snapshot!("thread_blocked_on_channel", normalize(report));
    // The snapshot's spawn line is the fixture's marked one.
    let site = spawn_site("threads.rs", "channel-waiter");
    assert!(report.contains(&format!("  spawned at {site}")), "{report}");
}

/// The current stack of a leaked thread: the C library function it is stopped in, the std
/// call the user's code made, then the user's frame (the spawned closure, at its line).
#[test]
fn current_stacks_show_where_threads_are_stuck() {
    let cases = [
        ("leaks_thread_blocked_on_condvar", "Condvar::wait_while at "),
        ("leaks_sleeping_loop", "::sleep at "),
        ("leaks_thread_blocked_on_pipe_read", "File>::read at "),
    ];
    let tests: Vec<&str> = cases.iter().map(|(test, _)| *test).collect();
    let mut args = vec!["--exact"];
    args.extend(&tests);
    let run = run("threads", &args);
    for (test, library_call) in cases {
        let report = run.failure(test);
        let stack = report
            .split("  current stack:\n")
            .nth(1)
            .and_then(|rest| rest.split("  spawn backtrace:").next())
            .unwrap_or_else(|| panic!("`{test}`: no current stack in:\n{report}"));
        let frames: Vec<&str> = stack.lines().map(str::trim).collect();
        assert!(frames.len() >= 3, "`{test}`: {frames:?}");
        assert!(
            frames[frames.len() - 2].contains(library_call),
            "`{test}`: no `{library_call}` before the user's frame: {frames:?}"
        );
        let user = frames.last().unwrap();
        assert!(
            user.starts_with(&format!("threads::{test}::{{{{closure}}}}"))
                && user.contains(" at tests/threads.rs:"),
            "`{test}`: the innermost user frame is not the thread's closure: {frames:?}"
        );
    }
}

#[test]
fn a_custom_harness_that_leaks_fails_with_the_report() {
    let run = run("harness_leaks", &[]);
    assert!(!run.output.status.success());
    let report = &run.stderr;
    assert!(
        report.contains("leakcheck: 1 thread still running at the process-wide check"),
        "{report}"
    );
    assert!(report.contains("\"harness-leak\""), "{report}");
    assert!(
        report.contains("owner: none (spawned outside any leakcheck scope)"),
        "{report}"
    );
    let site = spawn_site("harness_leaks.rs", "harness-leak");
    assert!(report.contains(&format!("spawned at {site}")), "{report}");
}

#[test]
fn a_custom_harness_that_cleans_up_passes() {
    let run = run("harness_clean", &[]);
    assert!(
        run.output.status.success(),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("harness_clean: no leaks"));
}

#[test]
fn the_demo_fails_with_its_report() {
    let run = run_with_env("demo", &[], &[]);
    assert_eq!(run.verdict("pool_shuts_down"), Some("FAILED"));
    let report = run.failure("pool_shuts_down");
    assert!(report.contains("\"pool-worker-0\""), "{report}");
    let site = spawn_site("demo.rs", "pool-worker-0");
    assert!(report.contains(&format!("  spawned at {site}")), "{report}");

    assert_eq!(run.verdict("server_stops"), Some("FAILED"));
    let report = run.failure("server_stops");
    if TOKIO_UNSTABLE {
        let site = spawn_site("demo.rs", "handler");
        assert!(report.contains(&format!("  spawned at {site}")), "{report}");
        assert!(report.contains("  spawned by task "), "{report}");
    } else {
        assert!(
            report.contains("1 task still alive on the test's runtime"),
            "{report}"
        );
    }
}

/// README.md's "What a failure looks like" is pasted from runs of the demo: its first block
/// from a run under `--cfg tokio_unstable`, the block after "The same task leak on a plain
/// build" from a plain one. Each build checks its block against its own run, normalised
/// alike, section by section.
#[test]
fn the_readme_shows_a_real_run_of_the_demo() {
    let readme = std::fs::read_to_string(leakcheck_suite::root().join("README.md")).unwrap();
    let failures = readme
        .split_once("## What a failure looks like")
        .expect("the README's failure section")
        .1;
    let after = if TOKIO_UNSTABLE {
        failures
    } else {
        failures
            .split_once("The same task leak on a plain build")
            .expect("the README's plain-build block")
            .1
    };
    let block = after
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("a ```text block")
        .0;
    let pasted = normalize(block);
    let sections: Vec<&str> = pasted
        .lines()
        .filter_map(|line| line.strip_prefix("---- ")?.strip_suffix(" stdout ----"))
        .collect();
    let failed: &[&str] = if TOKIO_UNSTABLE {
        &["pool_shuts_down", "server_stops"]
    } else {
        &["server_stops"]
    };
    assert_eq!(sections, failed, "the README's block:\n{block}");
    let run = run("demo", &[]);
    let ran = sections
        .iter()
        .map(|test| format!("---- {test} stdout ----\n{}", normalize(run.failure(test))))
        .collect::<Vec<_>>()
        .join("\n\n");
    assert_eq!(
        pasted, ran,
        "README.md's block no longer matches a run of the demo (left: README, right: run)"
    );
}

/// nextest runs one process per test: the same verdicts must come out, for thread and
/// task fixtures alike.
#[test]
#[ignore = "needs cargo-nextest; .ci/run runs it with --include-ignored"]
fn only_leaky_tests_fail_under_nextest() {
    let (log, verdicts) = leakcheck_suite::nextest(&["threads", "tasks"], &[]);
    for (test, verdict) in &verdicts {
        // Run with --run-ignored all, the #[ignore]d test runs too, and panics.
        let expected = match leakcheck_suite::expected_verdict(test) {
            "ok" => "PASS",
            _ => "FAIL",
        };
        assert_eq!(verdict, expected, "`{test}` under nextest:\n{log}");
    }
    assert!(verdicts.len() >= 60, "too few nextest results:\n{log}");
}
