//! tokio task leaks, as users see them: the fixture binary `tasks` runs in parallel; every
//! `leaks_*` test must fail with its report and every clean twin pass. On a plain build the
//! report counts the tasks and says how to get more; under `--cfg tokio_unstable` it names
//! each task, its spawn line and (with the `taskdump` feature) where it is awaiting.

use leakcheck_suite::{
    Run, TOKIO_UNSTABLE, assert_blames_no_other, assert_verdicts, expected_verdict, normalize,
    rounds, run, run_with_env, spawn_site,
};

/// A task leak: the test, the `// spawn:` label of its spawn call, and text its report
/// must hold when tokio's hooks are on. Every report counts exactly 1 task and names no
/// other row's spawn site or thread.
const TASK_LEAKS: &[(&str, &str, &[&str])] = &[
    (
        "leaks_task_waiting_on_channel",
        "channel",
        &["awaiting now:", "tokio::sync::mpsc"],
    ),
    (
        "leaks_task_waiting_on_oneshot",
        "oneshot",
        &["awaiting now:", "tokio::sync::oneshot"],
    ),
    (
        "leaks_interval_loop",
        "interval",
        &[
            "tokio::time::sleep::Sleep",
            "tasks::leaks_interval_loop::{{closure}}::{{closure}} at tests/tasks.rs:",
        ],
    ),
    (
        "leaks_dropped_handle_of_long_sleep",
        "long-sleep",
        &["tokio::time::sleep"],
    ),
    (
        "leaks_task_spawned_by_a_finished_task",
        "inner",
        &[
            "spawned by task ",
            " (finished), itself spawned at tests/tasks.rs:",
        ],
    ),
    (
        "leaks_on_multi_thread",
        "multi",
        &["tasks::leaks_on_multi_thread::{{closure}}::{{closure}} at tests/tasks.rs:"],
    ),
    ("leaks_join_set_task_detached", "join-set", &[]),
    (
        "leaks_select_loop_without_cancel_branch",
        "select",
        &["awaiting now:"],
    ),
    (
        "leaks_with_paused_time",
        "paused",
        &["tokio::sync::oneshot"],
    ),
    (
        "leaks_long_sleep_in_paused_time",
        "paused-sleep",
        &["tokio::time::sleep"],
    ),
    ("leaks_on_local_runtime", "local", &["tokio::sync::oneshot"]),
    // tokio 1.54's task dump has no trace point in `accept`: not another runtime's future.
    (
        "leaks_task_awaiting_accept",
        "accept",
        &["awaiting something tokio's task dump does not trace: a socket wait of tokio's own"],
    ),
    (
        "leaks_task_with_the_largest_future_tokio_does_not_box",
        "large-future",
        &[],
    ),
    ("leaks_async_and_returns_err", "result-err", &[]),
    ("leaks_async_and_panics", "panicky", &[]),
    ("leaks_with_crate_and_name", "named", &[]),
    // The twin of `ignored_when_hooked_task_by_spawn_file`, without its rule.
    ("leaks_without_the_spawn_file_rule", "spawn-file", &[]),
    ("hooked_leaks_task_on_shared_runtime", "shared", &[]),
    (
        "hooked_leaks_task_on_shared_runtime_from_async_test",
        "shared-async",
        &["not in the task dump (on another runtime"],
    ),
];

/// Thread leaks of async tests: the test, the `// spawn:` label (the thread's name, where
/// the test names its thread), text the report must hold on every build, and text it must
/// hold when tokio's hooks are on (a thread started inside a task names that task). Every
/// report counts exactly 1 thread and names no other row's spawn site or thread.
const THREAD_LEAKS: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "leaks_thread_spawned_from_a_task",
        "from-a-task",
        &["\"from-a-task\": "],
        &["  spawned by task "],
    ),
    (
        "leaks_stuck_spawn_blocking",
        "blocking",
        &[
            "\"tokio-rt-worker\": ",
            "; a tokio blocking-pool thread: its spawn_blocking closure has not returned",
        ],
        &[],
    ),
    (
        "leaks_stuck_spawn_blocking_on_multi_thread",
        "blocking-multi",
        &["; a tokio blocking-pool thread: its spawn_blocking closure has not returned"],
        &[],
    ),
    (
        "hooked_leaks_thread_spawned_by_task_on_shared_runtime",
        "shared-task-thread",
        &["\"shared-task-thread\": "],
        &["  spawned by task "],
    ),
];

/// What no other row's report may name: each row's spawn site, and its thread's name.
fn blame(test: &str) -> Vec<String> {
    let tasks = TASK_LEAKS.iter().map(|(test, label, _)| (*test, *label));
    let threads = THREAD_LEAKS.iter().map(|(test, label, ..)| (*test, *label));
    let mut others: Vec<String> = tasks
        .chain(threads.clone())
        .filter(|(other, _)| *other != test)
        .map(|(_, label)| spawn_site("tasks.rs", label))
        .collect();
    others.extend(
        threads
            .filter(|(other, _)| *other != test)
            .map(|(_, label)| format!("\"{label}\"")),
    );
    others
}

fn assert_task_reports(run: &Run) {
    for (test, label, hooked) in TASK_LEAKS {
        if test.starts_with("hooked_") && !TOKIO_UNSTABLE {
            continue;
        }
        let report = run.failure(test);
        assert!(
            report.contains(&format!("leakcheck: `{test}` leaked 1 task (")),
            "`{test}`: no headline in:\n{report}"
        );
        assert_blames_no_other(test, report, &blame(test));
        if !TOKIO_UNSTABLE {
            for text in [
                "1 task still alive on the test's runtime",
                "--cfg tokio_unstable",
                "rustflags = [\"--cfg\", \"tokio_unstable\"]",
            ] {
                assert!(
                    report.contains(text),
                    "`{test}`: `{text}` missing in:\n{report}"
                );
            }
            continue;
        }
        let site = spawn_site("tasks.rs", label);
        assert!(
            report.lines().any(|line| line.starts_with("task ")),
            "`{test}`: no `task <id>` line in:\n{report}"
        );
        assert!(
            report.contains(&format!("  spawned at {site}")),
            "`{test}`: spawn site {site} missing in:\n{report}"
        );
        assert!(
            report.contains("to ignore it: ignore_spawn = "),
            "`{test}`: no ignore rule in:\n{report}"
        );
        for text in *hooked {
            assert!(
                report.contains(text),
                "`{test}`: `{text}` missing in:\n{report}"
            );
        }
    }
    for (test, label, texts, hooked) in THREAD_LEAKS {
        if test.starts_with("hooked_") && !TOKIO_UNSTABLE {
            continue;
        }
        let report = run.failure(test);
        assert!(
            report.contains(&format!("leakcheck: `{test}` leaked 1 thread (")),
            "`{test}`: no headline in:\n{report}"
        );
        assert_blames_no_other(test, report, &blame(test));
        let site = spawn_site("tasks.rs", label);
        assert!(
            report.contains(&format!("  spawned at {site}")),
            "`{test}`: spawn site {site} missing in:\n{report}"
        );
        let hooked = hooked.iter().filter(|_| TOKIO_UNSTABLE);
        for text in texts.iter().chain(hooked) {
            assert!(
                report.contains(text),
                "`{test}`: `{text}` missing in:\n{report}"
            );
        }
    }
    // The test's own failure stays the headline.
    let report = run.failure("leaks_async_and_panics");
    let panic = report.find("the original failure").unwrap();
    let leak = report
        .find("leakcheck: `leaks_async_and_panics` leaked")
        .unwrap();
    assert!(panic < leak, "{report}");
    assert!(
        run.failure("leaks_async_and_returns_err")
            .contains("the original error"),
        "{}",
        run.failure("leaks_async_and_returns_err")
    );
}

#[test]
fn only_leaky_async_tests_fail_in_parallel_runs() {
    for round in rounds() {
        let run = run("tasks", &["--test-threads=8"]);
        assert_verdicts(&run, round, 30);
        if round == 0 {
            assert_task_reports(&run);
        }
    }
}

#[test]
fn only_leaky_async_tests_fail_one_at_a_time() {
    let run = run("tasks", &["--test-threads=1"]);
    assert_verdicts(&run, 0, 30);
    assert_task_reports(&run);
}

const NESTED: &str = "leaks_task_spawned_by_a_finished_task";

/// The failure of the nested-spawn leak, run alone with `env`.
fn nested_leak(env: &[(&str, &str)]) -> String {
    run_with_env("tasks", &["--exact", NESTED], env)
        .failure(NESTED)
        .to_owned()
}

/// By default a task records its spawn line and parent, not a backtrace (that costs ~8 µs
/// a spawn); the report says how to get one, and the ignore rule is the line. On a plain
/// build the report counts the task and says how to get the rest.
#[test]
fn a_task_leak_without_backtraces_names_its_line() {
    let report = nested_leak(&[]);
    if !TOKIO_UNSTABLE {
        insta::assert_snapshot!("nested_task_leak_stable", normalize(&report));
        return;
    }
    assert_nested_sites(&report);
    insta::assert_snapshot!("nested_task_leak_tokio_unstable", normalize(&report));
}

/// The snapshot's spawn lines are the fixture's marked ones: the leaked task's, and its
/// finished parent's.
fn assert_nested_sites(report: &str) {
    let inner = spawn_site("tasks.rs", "inner");
    let outer = spawn_site("tasks.rs", "outer");
    assert!(
        report.contains(&format!("  spawned at {inner}")),
        "{report}"
    );
    assert!(
        report.contains(&format!(" (finished), itself spawned at {outer}")),
        "{report}"
    );
}

/// A bad `LEAKCHECK_TASK_BACKTRACE` fails the test and says which variable and what it takes.
#[test]
fn a_bad_task_backtrace_value_is_a_clear_error() {
    let test = "clean_aborted_task";
    let run = run_with_env(
        "tasks",
        &["--exact", test],
        &[("LEAKCHECK_TASK_BACKTRACE", "maybe")],
    );
    assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
    let failure = run.failure(test);
    assert!(
        failure.contains("LEAKCHECK_TASK_BACKTRACE=\"maybe\" is not understood: expected 1, true"),
        "{failure}"
    );
}

/// The task report, line by line, with spawn backtraces on, for a task spawned by a task
/// that has finished. On a plain build there are no backtraces to record: the report is
/// the same count as without the variable.
#[test]
fn a_nested_task_leak_reads_like_this() {
    let report = nested_leak(&[("LEAKCHECK_TASK_BACKTRACE", "1")]);
    if !TOKIO_UNSTABLE {
        insta::assert_snapshot!("nested_task_leak_stable", normalize(&report));
        return;
    }
    assert_nested_sites(&report);
    // The spawn backtrace is the user's: no std, leakcheck or libtest frames.
    insta::assert_snapshot!(
        "nested_task_leak_with_backtrace_tokio_unstable",
        normalize(&report)
    );
}

/// `LEAKCHECK_TASK_BACKTRACE=1`, which every task report without it advises, prints a spawn
/// backtrace that reaches the test's frame past tokio's spawn path, whose frames each keep a
/// copy of the future in a debug build: for a task awaiting `accept` (~5 KiB of stack, past
/// the 4 KiB kept before) and for the largest future tokio does not box (~31 KiB).
#[test]
fn task_spawn_backtraces_reach_the_test_past_tokios_spawn_path() {
    let tests = [
        ("leaks_task_awaiting_accept", "accept"),
        (
            "leaks_task_with_the_largest_future_tokio_does_not_box",
            "large-future",
        ),
    ];
    let run = run_with_env(
        "tasks",
        &[tests[0].0, tests[1].0, "--exact"],
        &[("LEAKCHECK_TASK_BACKTRACE", "1")],
    );
    for (test, label) in tests {
        let report = run.failure(test);
        if !TOKIO_UNSTABLE {
            assert!(report.contains("1 task still alive"), "{report}");
            continue;
        }
        let site = spawn_site("tasks.rs", label);
        let expected = [
            "\n  spawn backtrace:\n".to_owned(),
            format!("\n    tasks::{test}::{{{{closure}}}} at {site}"),
            format!("  to ignore it: ignore_spawn = \"tasks::{test}\""),
        ];
        for line in expected {
            assert!(report.contains(&line), "missing `{line}` in:\n{report}");
        }
        assert!(!report.contains("not a tokio one"), "{report}");
    }
}

/// A stuck `spawn_blocking` on multi_thread names the line of its call in every run, the
/// blocking pool's thread fresh or reused.
#[test]
fn a_stuck_spawn_blocking_on_multi_thread_names_its_line_every_time() {
    let test = "leaks_stuck_spawn_blocking_on_multi_thread";
    let site = spawn_site("tasks.rs", "blocking-multi");
    for round in 0..20 {
        let run = run("tasks", &["--exact", test]);
        let report = run.failure(test);
        assert!(
            report.contains(&format!("  spawned at {site}")),
            "round {round}: no `spawned at {site}` in:\n{report}"
        );
    }
}

/// `untracked_tasks = "warn"`: on a plain build a task count no rule can match is reported
/// and passes; under `tokio_unstable` the task is identified, so it fails as before, and the
/// same toml's rule silences it exactly. Threads fail either way.
#[test]
fn untracked_task_counts_can_warn_while_identified_leaks_fail() {
    let test = "leaks_task_waiting_on_channel";
    let line = spawn_site("tasks.rs", "channel");
    let dir = leakcheck_suite::temp_dir("untracked");
    let warn_only = dir.join("warn.toml");
    std::fs::write(&warn_only, "untracked_tasks = \"warn\"\n").unwrap();
    let with_rule = dir.join("rule.toml");
    std::fs::write(
        &with_rule,
        format!(
            "untracked_tasks = \"warn\"\nignore_spawn = \"{}\"\n",
            line.trim_end_matches(':')
        ),
    )
    .unwrap();
    let by_variable = [("LEAKCHECK_UNTRACKED_TASKS", "warn")];
    let by_file = [("LEAKCHECK_CONFIG", warn_only.to_str().unwrap())];
    for env in [&by_variable[..], &by_file[..]] {
        let run = run_with_env("tasks", &["--exact", test], env);
        if TOKIO_UNSTABLE {
            assert_eq!(run.verdict(test), Some("FAILED"), "{env:?}: {}", run.stdout);
            assert!(run.failure(test).contains(&format!("  spawned at {line}")));
        } else {
            assert_eq!(run.verdict(test), Some("ok"), "{env:?}: {}", run.stdout);
            for text in [
                "1 task still alive on the test's runtime",
                "leakcheck: untracked_tasks = \"warn\": task counts leakcheck cannot identify \
                 are reported, not failed",
            ] {
                assert!(
                    run.stderr.contains(text),
                    "{env:?}: no `{text}` in:\n{}",
                    run.stderr
                );
            }
        }
    }
    // The same said by the test's own attribute, and kept under a CI-wide `fail`.
    let own = "hooked_leaks_a_task_its_attribute_lets_warn_when_untracked";
    let run = run_with_env(
        "tasks",
        &["--exact", own],
        &[("LEAKCHECK_UNTRACKED_TASKS", "fail")],
    );
    assert_eq!(
        run.verdict(own),
        Some(expected_verdict(own)),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr
            .contains("leakcheck: untracked_tasks = \"warn\": task counts"),
        !TOKIO_UNSTABLE,
        "{}",
        run.stderr
    );
    // Threads are never untracked.
    let thread_test = "leaks_thread_spawned_from_a_task";
    let run = run_with_env("tasks", &["--exact", thread_test], &by_variable);
    assert_eq!(run.verdict(thread_test), Some("FAILED"), "{}", run.stdout);
    // Under tokio_unstable the rule silences the known task: a clean pass, no report.
    let run = run_with_env(
        "tasks",
        &["--exact", test],
        &[("LEAKCHECK_CONFIG", with_rule.to_str().unwrap())],
    );
    assert_eq!(run.verdict(test), Some("ok"), "{}", run.stdout);
    assert_eq!(
        run.stderr.contains("leaked 1 task"),
        !TOKIO_UNSTABLE,
        "{}",
        run.stderr
    );
}
