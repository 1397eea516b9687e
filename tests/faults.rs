//! leakcheck never the cause of a crash or a hang: programs that reset or take its signal
//! and tests that fork while threads spawn (20 runs each, not one wrong exit status); a
//! task that blocks the runtime's only thread, and hung tests under a timeout (each ends
//! the process with its report instead of hanging).

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use leakcheck_suite::{
    Run, TOKIO_UNSTABLE, assert_verdicts, json_lines, normalize, run, run_bounded, spawn_site,
    temp_dir,
};

const RUNS: usize = 20;

#[test]
fn a_program_that_resets_or_takes_the_signal_is_never_killed_by_it() {
    for round in 0..RUNS {
        let run = run("signals", &["--test-threads=1"]);
        assert_eq!(
            run.output.status.signal(),
            None,
            "round {round}: killed by a signal:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        assert_eq!(run.output.status.code(), Some(101), "round {round}");
        assert_verdicts(&run, round, 4);
        assert_eq!(
            run.verdict("to_be_run_last_the_programs_handler_was_never_called"),
            Some("ok")
        );
        // Reset to the default: leakcheck's handler is back, and the stack is there.
        let reset = run.failure("leaks_2_after_the_program_reset_the_signal");
        assert!(reset.contains("\"after-reset\""), "{reset}");
        assert!(
            reset.contains("  current stack:\n"),
            "round {round}:\n{reset}"
        );
        // Taken by the program: no signal sent, and the report says why.
        let taken = run.failure("leaks_3_after_the_program_took_the_signal");
        assert!(
            taken.contains(
                "current stack not captured (the program handles or ignores leakcheck's \
                 signal, SIGRTMAX-3)"
            ),
            "round {round}:\n{taken}"
        );
        assert!(!taken.contains("  current stack:\n"), "{taken}");
    }
}

/// The fork fixture whose children use leakcheck while its locks are busy.
const FORKS_WHILE_BUSY: &str = "children_forked_while_leakcheck_s_locks_are_busy_never_hang";

#[test]
fn forked_children_leave_without_the_parents_exit_check() {
    for round in 0..RUNS {
        let dir = temp_dir("fork");
        let json = dir.join("leaks.jsonl");
        let env = [("LEAKCHECK_REPORT", json.to_str().unwrap())];
        let run = run_bounded("fork", &["--skip", FORKS_WHILE_BUSY], &env, HANG_LIMIT);
        assert!(
            run.output.status.success(),
            "round {round}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        // One exit record, the parent's.
        let exits: Vec<_> = json_lines(&json)
            .into_iter()
            .filter(|line| line["check"] == "exit")
            .collect();
        assert_eq!(exits.len(), 1, "round {round}: {exits:?}");
        assert_eq!(exits[0]["outcome"], "clean");
    }
}

/// 200 children forked while leakcheck's locks are busy, each spawning a thread and a task
/// and checking a scope: none hangs, with leakcheck on or off (a hung child is killed by its
/// alarm, which the fixture fails on).
#[test]
fn no_forked_child_hangs_on_a_lock_of_leakcheck_s() {
    for (round, mode) in ["fail", "fail", "fail", "off", "off"]
        .into_iter()
        .enumerate()
    {
        let run = run_bounded(
            "fork",
            &["--exact", FORKS_WHILE_BUSY],
            &[("LEAKCHECK", mode)],
            HANG_LIMIT,
        );
        assert!(
            run.output.status.success(),
            "round {round}, LEAKCHECK={mode}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// A hung child is killed after this and fails the test: far beyond what each case needs
/// (grace or timeout plus a few seconds), so it bounds a hang, not a speed.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Runs one `alone_` fixture of `hangs` with `env`, its JSON report collected; returns the
/// run and the test's JSON record.
fn hung(test: &str, env: &[(&str, &str)]) -> (Run, serde_json::Value) {
    let dir = temp_dir("hangs");
    let json = dir.join("leaks.jsonl");
    let mut env = env.to_vec();
    env.push(("LEAKCHECK_REPORT", json.to_str().unwrap()));
    let run = run_bounded("hangs", &["--ignored", "--exact", test], &env, HANG_LIMIT);
    assert_eq!(
        run.output.status.code(),
        Some(101),
        "`{test}`:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr
            .contains("leakcheck: the test cannot be returned from; the process ends here"),
        "{}",
        run.stderr
    );
    let records = json_lines(&json);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["test"], test);
    assert_eq!(records[0]["outcome"], "leaked");
    (run, records[0].clone())
}

#[test]
fn a_task_that_blocks_the_runtimes_only_thread_fails_instead_of_hanging() {
    let test = "alone_a_task_blocks_the_runtimes_only_thread";
    let (run, record) = hung(test, &[]);
    let report = &run.stderr;
    // The test's own thread, in the task's blocking call; the task, by its spawn line where
    // tokio tells.
    let build = if TOKIO_UNSTABLE {
        "tokio_unstable"
    } else {
        "stable"
    };
    insta::assert_snapshot!(
        format!("runtime_blocked_by_a_task_{build}"),
        normalize(report)
    );
    if TOKIO_UNSTABLE {
        let site = spawn_site("hangs.rs", "blocker");
        assert!(report.contains(&format!("  spawned at {site}")), "{report}");
        assert_eq!(record["groups"][1]["kind"], "task", "{record}");
        assert_eq!(record["ended"], "stalled", "{record}");
    }
}

#[test]
fn a_test_past_its_timeout_ends_with_its_stack_and_what_it_runs() {
    let test = "alone_hangs_past_its_timeout";
    let (run, _) = hung(test, &[]);
    let report = &run.stderr;
    insta::assert_snapshot!("past_its_timeout", normalize(report));
    let site = spawn_site("hangs.rs", "helper-of-the-hung-test");
    assert!(report.contains(&format!("  spawned at {site}")), "{report}");
}

#[test]
fn leakcheck_timeout_ends_a_hung_test() {
    let test = "alone_hangs_under_the_environment_timeout";
    let (run, _) = hung(test, &[("LEAKCHECK_TIMEOUT", "3s")]);
    assert!(
        run.stderr.contains(&format!(
            "leakcheck: `{test}` has not returned within its timeout of 3s; it runs nothing else"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!(
        "hangs::{test}::{{{{closure}}}} at tests/hangs.rs:"
    )));
}
