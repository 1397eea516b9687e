//! Reports that scale and say whether a leak can ever end: identical leaks are one
//! paragraph with a count, the text and JSON line stay bounded however much leaks, and each
//! leak says whether it was stuck or active during the grace period.

use leakcheck_suite::{
    TOKIO_UNSTABLE, assert_verdicts, json_lines, normalize, run, run_reporting, run_with_env,
    temp_dir,
};

/// A report's text is kept under this, a JSON line under `JSON_LIMIT`.
const TEXT_LIMIT: usize = 16 * 1024;
const JSON_LIMIT: usize = 64 * 1024;

#[test]
fn identical_leaks_are_one_paragraph_and_reports_stay_small() {
    let dir = temp_dir("many");
    let json = dir.join("leaks.jsonl");
    let run = run_with_env(
        "many",
        &["--test-threads=8"],
        &[("LEAKCHECK_REPORT", json.to_str().unwrap())],
    );
    assert_verdicts(&run, 0, 3);

    // Five hundred identical tasks: one paragraph with a count and one rule; on a plain
    // build, the count and what the flag would add.
    let tasks = run.failure("leaks_500_identical_tasks");
    assert!(tasks.len() < TEXT_LIMIT, "{} bytes", tasks.len());
    let build = if TOKIO_UNSTABLE {
        "tokio_unstable"
    } else {
        "stable"
    };
    insta::assert_snapshot!(format!("500_identical_tasks_{build}"), normalize(tasks));

    // A hundred identical threads: one paragraph, one stack, the names as a range and one
    // rule for them all. Two kinds: two paragraphs, the bigger first, nothing of the
    // other tests. The same on both builds: tokio's hooks play no part in a thread leak.
    let threads = run.failure("leaks_100_identical_threads");
    assert!(threads.len() < TEXT_LIMIT, "{} bytes", threads.len());
    insta::assert_snapshot!("100_identical_threads", normalize(threads));
    insta::assert_snapshot!(
        "threads_of_two_kinds",
        normalize(run.failure("leaks_threads_of_two_kinds"))
    );

    let lines = std::fs::read_to_string(&json).unwrap();
    for line in lines.lines() {
        assert!(
            line.len() < JSON_LIMIT,
            "a JSON line of {} bytes",
            line.len()
        );
    }
    for record in json_lines(&json) {
        assert_eq!(record["schema_version"], 2);
        let counted: u64 = record["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| group["count"].as_u64().unwrap())
            .sum();
        let expected = match record["test"].as_str().unwrap() {
            "leaks_500_identical_tasks" => 500,
            "leaks_100_identical_threads" => 100,
            _ => 4,
        };
        assert_eq!(counted, expected, "{record}");
    }
}

#[test]
fn each_leak_says_whether_it_is_stuck_or_active() {
    let stuck = "stuck: not woken during the 300ms grace period";
    let woken = "active: woken ";
    let timer = "active: waiting on a timer, not woken during the 300ms grace period";
    let busy = "busy: ";
    let mut cases = vec![
        ("leaks_stuck_thread", stuck),
        ("leaks_active_thread", woken),
        ("leaks_thread_waiting_on_a_long_timer", timer),
        ("leaks_thread_spinning_at_end_of_input", busy),
        // SIGCHLD lands on it again and again; the read restarts after each.
        ("leaks_pipe_reader_that_sigchld_lands_on", stuck),
    ];
    if TOKIO_UNSTABLE {
        cases.extend([
            ("leaks_stuck_task", stuck),
            ("leaks_active_task", woken),
            ("leaks_task_waiting_on_a_long_timer", timer),
        ]);
    }
    for round in 0..3 {
        let (run, records) = run_reporting("activity", &["--test-threads=8"], &[]);
        assert_verdicts(&run, round, 9);
        // Busy in the JSON too, with the CPU time it used.
        let spinner = records
            .iter()
            .find(|record| record["test"] == "leaks_thread_spinning_at_end_of_input")
            .expect("the spinner's record");
        assert_eq!(spinner["groups"][0]["activity"], "busy", "{spinner}");
        assert!(
            spinner["groups"][0]["cpu_ms"].as_u64().unwrap() >= 20,
            "{spinner}"
        );
        let reader = records
            .iter()
            .find(|record| record["test"] == "leaks_pipe_reader_that_sigchld_lands_on")
            .expect("the pipe reader's record");
        assert_eq!(reader["groups"][0]["activity"], "stuck", "{reader}");
        for (test, words) in &cases {
            let report = run.failure(test);
            assert!(
                report.contains(words),
                "round {round}: `{test}`: no `{words}` in:\n{report}"
            );
        }
    }
}

/// A thread a static started on first use, waiting for work: the report says it looks like a
/// singleton kept for the whole process, and leads with the rule that silences it, not with
/// "look for a missing close".
#[test]
fn a_singleton_s_worker_is_called_one_with_the_rule_that_silences_it() {
    let test = "alone_leaks_a_singleton_s_worker";
    let run = run("activity", &["--ignored", "--exact", test]);
    insta::assert_snapshot!("singleton_s_worker", normalize(run.failure(test)));
}

/// bb8's reaper ticks every second and ends once its pool is gone: under a 500 ms grace
/// its test fails in some runs and passes in others. Every failure must say it is active,
/// so that the flip is explained, never "stuck".
#[test]
fn a_pools_reaper_is_reported_active_whenever_it_outlives_its_test() {
    let test = "alone_pool_reaper_outlives_its_pool";
    for round in 0..5 {
        let run = run("activity", &["--ignored", "--exact", test]);
        match run.verdict(test) {
            Some("ok") => {}
            Some("FAILED") => {
                let report = run.failure(test);
                if TOKIO_UNSTABLE {
                    assert!(report.contains("  active: "), "round {round}:\n{report}");
                    assert!(report.contains("bb8-"), "round {round}:\n{report}");
                } else {
                    assert!(
                        report.contains("1 task still alive"),
                        "round {round}:\n{report}"
                    );
                }
                assert!(!report.contains("  stuck: "), "round {round}:\n{report}");
            }
            other => panic!("round {round}: {other:?}\n{}", run.stdout),
        }
    }
}
