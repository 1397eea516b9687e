//! Child processes, the third leak kind: each way a test starts one and leaves it behind
//! fails that test, with the child's pid, command line, state and spawn line, and only
//! that test, with 8 tests in parallel, repeated; each clean twin passes. The fixture runs
//! with `LEAKCHECK_KILL_PROCESSES=1` unless a test says otherwise, so nothing it leaks
//! outlives the run.

use leakcheck_suite::{
    Run, assert_blames_no_other, assert_verdicts, child_site, nextest, normalize, rounds,
    run_reporting, run_with_env,
};

const KILL: (&str, &str) = ("LEAKCHECK_KILL_PROCESSES", "1");

/// Each leaky test, the `// child:` key of its spawn line, and what its report says.
const LEAKS: &[(&str, &str, &[&str])] = &[
    (
        "leaks_a_spawned_sleep",
        "spawned",
        &[
            "leaked 1 process (",
            "\nprocess ",
            " `sleep 600`: sleeping, blocked in sleep",
        ],
    ),
    (
        "leaks_a_child_that_holds_the_test_s_output",
        "holds",
        &["`sleep 611`", "  holds the test's stdout and stderr open"],
    ),
    (
        "leaks_a_child_started_by_fork_and_exec",
        "fork-exec",
        &["`sleep 601`"],
    ),
    ("leaks_a_raw_fork", "raw-fork", &["`/bin/sleep 602`"]),
    (
        "leaks_a_child_of_a_spawned_thread",
        "from-thread",
        &[
            "`sleep 603`",
            "  spawned by thread ",
            "\"starts-a-child\" (exited)",
        ],
    ),
    ("leaks_a_child_of_a_task", "from-task", &["`sleep 604`"]),
    (
        "leaks_an_orphaned_background_job",
        "orphan",
        &[
            "`sleep 605`",
            "  orphaned: it descends from process ",
            "`sh -c 'sleep 605 >/dev/null 2>&1 & exit 0'`",
        ],
    ),
    (
        "leaks_an_orphan_before_many_children",
        "orphan-before-many",
        &[
            "`sleep 613`",
            "  orphaned: it descends from process ",
            "`sh -c 'sleep 613 >/dev/null 2>&1 & exit 0'`",
        ],
    ),
    (
        "leaks_an_orphan_of_a_fork_and_exec",
        "fork-orphan",
        &[
            "`sleep 609`",
            "  orphaned: it descends from process ",
            "`sh -c 'sleep 609 >/dev/null 2>&1 & exit 0'`",
        ],
    ),
    (
        "leaks_a_shell_with_descendants",
        "descendants",
        &[
            "`sh -c 'sleep 606 & sleep 607; wait'`",
            "  its descendants (not counted as leaks):\n    process ",
            "`sleep 607`",
        ],
    ),
    (
        "leaks_a_popen_that_was_never_closed",
        "popen",
        &["`sleep 608`"],
    ),
    (
        "leaks_a_duct_child",
        "duct",
        &[
            "`sleep 614`",
            "    duct::Expression::start at ",
            "ignore_spawn = \"processes::leaks_a_duct_child\"",
        ],
    ),
    (
        "leaks_a_child_spawned_from_deep_recursion",
        "deep",
        &[
            "`sleep 615`",
            "    … cut short: the spawn was deeper than what leakcheck keeps of the spawner's \
             stack\n",
        ],
    ),
];

fn assert_leaks_reported(run: &Run, round: usize) {
    assert_verdicts(run, round, 23);
    let others: Vec<String> = LEAKS
        .iter()
        .map(|(_, key, _)| child_site("processes.rs", key))
        .collect();
    for (test, key, says) in LEAKS {
        let report = run.failure(test);
        let site = child_site("processes.rs", key);
        assert!(
            report.contains(&format!("  spawned at {site}")),
            "round {round}: `{test}` does not name {site}:\n{report}"
        );
        for said in *says {
            assert!(
                report.contains(said),
                "round {round}: `{test}`: no {said:?} in:\n{report}"
            );
        }
        assert!(
            report.contains("  ended by leakcheck after this report (kill_leaked_processes)"),
            "{report}"
        );
        assert_eq!(
            report.contains("cut short"),
            *test == "leaks_a_child_spawned_from_deep_recursion",
            "{report}"
        );
        let others: Vec<String> = others
            .iter()
            .filter(|other| **other != site)
            .cloned()
            .collect();
        assert_blames_no_other(test, report, &others);
    }
}

#[test]
fn only_leaky_process_tests_fail_in_parallel_runs() {
    for round in rounds() {
        let run = run_with_env("processes", &["--test-threads=8"], &[KILL]);
        assert_leaks_reported(&run, round);
    }
}

/// The verdicts alone, as `only_tests_that_lose_a_panic_fail_whatever_the_build` (panics.rs).
#[test]
fn only_leaky_process_tests_fail_whatever_the_build() {
    for round in rounds() {
        let run = run_with_env("processes", &["--test-threads=8"], &[KILL]);
        assert_verdicts(&run, round, 20);
    }
}

#[test]
fn only_leaky_process_tests_fail_one_at_a_time() {
    let run = run_with_env("processes", &["--test-threads=1"], &[KILL]);
    assert_leaks_reported(&run, 0);
}

/// A shell with two jobs, whole: its state, its descendants, and the rules.
#[test]
fn a_process_leak_reads_like_this() {
    let run = run_with_env(
        "processes",
        &["--exact", "leaks_a_shell_with_descendants"],
        &[KILL],
    );
    insta::assert_snapshot!(
        "shell_with_descendants",
        normalize(run.failure("leaks_a_shell_with_descendants"))
    );
    let run = run_with_env(
        "processes",
        &["--exact", "leaks_an_orphaned_background_job"],
        &[KILL],
    );
    insta::assert_snapshot!(
        "orphaned_background_job",
        normalize(run.failure("leaks_an_orphaned_background_job"))
    );
}

/// A zombie is reported on stderr, past libtest's capture, and the test passes; with
/// `LEAKCHECK_ZOMBIES=fail` it fails; a child this process killed is no zombie to report.
#[test]
fn zombies_warn_by_default_and_fail_when_asked() {
    let test = "zombie_is_reported_without_failing";
    let site = child_site("processes.rs", "zombie");
    let run = run_with_env("processes", &["--exact", test], &[]);
    assert_eq!(run.verdict(test), Some("ok"), "{}", run.stdout);
    insta::assert_snapshot!("zombie_warning", normalize(&run.stderr));
    // The snapshot's spawn line is the fixture's marked one.
    assert!(run.stderr.contains(&format!("  spawned at {site}")));

    let run = run_with_env(
        "processes",
        &["--exact", test],
        &[("LEAKCHECK_ZOMBIES", "fail")],
    );
    assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
    assert!(run.failure(test).contains("left 1 zombie process"));

    let run = run_with_env(
        "processes",
        &["--exact", test],
        &[("LEAKCHECK_ZOMBIES", "off")],
    );
    assert_eq!(run.verdict(test), Some("ok"));
    assert!(!run.stderr.contains("zombie"), "{}", run.stderr);

    let run = run_with_env(
        "processes",
        &["--exact", "clean_kill_without_wait"],
        &[("LEAKCHECK_ZOMBIES", "fail")],
    );
    assert_eq!(
        run.verdict("clean_kill_without_wait"),
        Some("ok"),
        "{}",
        run.stdout
    );
}

/// A zombie started on std's fork path (process-wrap's `ProcessSession`) shows the command
/// line its `exec` noted, not the kernel's cut name, and a rule over the program's whole
/// name, which silences it (the clean twin).
#[test]
fn a_zombie_of_a_fork_shows_what_it_ran() {
    let test = "leaks_a_zombie_of_a_process_session";
    let twin = "clean_zombie_of_a_process_session_ignored_by_its_whole_name";
    let run = run_with_env("processes", &[test, twin], &[]);
    assert_eq!(run.verdict(twin), Some("ok"), "{}", run.stdout);
    let report = run.failure(test);
    insta::assert_snapshot!("zombie_of_a_process_session", normalize(report));
    let site = child_site("processes.rs", "fork-zombie");
    assert!(report.contains(&format!("  spawned at {site}")), "{report}");
    assert!(!report.contains("`a_rather_long_p`"), "{report}");
}

/// Without the marker (`LEAKCHECK_MARK_CHILDREN=0`) an orphan cannot be told from any other
/// process: the test passes, and the orphan is this test's to end (those without a marker:
/// the parallel runs' have one, and are theirs).
#[test]
fn orphans_are_found_by_the_marker_and_only_by_it() {
    let test = "alone_leaks_an_orphan_that_only_the_marker_finds";
    let site = child_site("processes.rs", "unmarked-orphan");
    let run = run_with_env("processes", &["--ignored", "--exact", test], &[KILL]);
    assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
    assert!(run.failure(test).contains(&format!("  spawned at {site}")));
    let run = run_with_env(
        "processes",
        &["--ignored", "--exact", test],
        &[KILL, ("LEAKCHECK_MARK_CHILDREN", "0")],
    );
    assert_eq!(run.verdict(test), Some("ok"), "{}", run.stdout);
    let orphans: Vec<i32> = processes_running("sleep 612")
        .into_iter()
        .filter(|pid| {
            // Unmarked: this run's. (An environment read in the middle of an `exec` is empty:
            // not taken for one.)
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                !environ.is_empty()
                    && !String::from_utf8_lossy(&environ).contains("LEAKCHECK_SPAWNED_BY=")
            })
        })
        .collect();
    assert!(!orphans.is_empty(), "the orphan was not left running");
    for pid in orphans {
        // SAFETY: ending a process this test's fixture left.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// The pids of the processes whose command line is `command`.
fn processes_running(command: &str) -> Vec<i32> {
    let wanted: Vec<u8> = command.replace(' ', "\0").into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.strip_suffix(b"\0") == Some(&wanted[..]))
        })
        .collect()
}

/// Without `kill_leaked_processes`, what leaked is reported and left running.
#[test]
fn leaked_processes_are_ended_only_when_asked() {
    let test = "leaks_a_spawned_sleep";
    let run = run_with_env("processes", &["--exact", test], &[]);
    let report = run.failure(test);
    assert!(!report.contains("ended by leakcheck"), "{report}");
    // `process 4242 `sleep 600``: that one, and not a parallel run's.
    let pid: i32 = report
        .split("\nprocess ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in:\n{report}"));
    assert!(processes_running("sleep 600").contains(&pid), "{report}");
    // SAFETY: ending what the fixture left.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn the_json_record_names_the_process() {
    let test = "leaks_a_shell_with_descendants";
    let (run, lines) = run_reporting("processes", &["--exact", test], &[KILL]);
    assert_eq!(run.verdict(test), Some("FAILED"));
    let record = lines
        .iter()
        .find(|line| line["test"] == test)
        .expect("a record of the test");
    let group = &record["groups"][0];
    assert_eq!(group["kind"], "process", "{group}");
    assert_eq!(group["command"], "sh -c 'sleep 606 & sleep 607; wait'");
    assert_eq!(group["pid"], group["ids"][0]);
    assert!(
        group["state"].as_str().unwrap().starts_with("sleeping"),
        "{group}"
    );
    let descendants = group["descendants"].as_array().unwrap();
    assert_eq!(descendants.len(), 2, "{group}");
    assert_eq!(descendants[1]["command"], "sleep 607");
    assert_eq!(group["zombie"], false);
    assert_eq!(group["killed"], true);
    assert_eq!(group["rules"][0]["key"], "ignore_process");
    assert_eq!(group["rules"][0]["pattern"], "sh");
}

#[test]
fn a_bad_process_setting_is_an_error_naming_it() {
    for (variable, value) in [
        ("LEAKCHECK_ZOMBIES", "loud"),
        ("LEAKCHECK_KILL_PROCESSES", "maybe"),
        ("LEAKCHECK_MARK_CHILDREN", "sometimes"),
    ] {
        let run = run_with_env(
            "processes",
            &["--exact", "clean_status"],
            &[(variable, value)],
        );
        assert_eq!(run.verdict("clean_status"), Some("FAILED"));
        let failure = run.failure("clean_status");
        assert!(
            failure.contains(&format!(
                "leakcheck: {variable}={value:?} is not understood"
            )),
            "{failure}"
        );
    }
}

/// nextest runs each test in a process of its own: each leak fails its own test.
#[test]
fn only_leaky_process_tests_fail_under_nextest() {
    let (log, verdicts) = nextest(&["processes"], &[KILL]);
    assert!(verdicts.len() >= 20, "{log}");
    for (test, verdict) in &verdicts {
        let expected = if test.starts_with("leaks_") || test.starts_with("alone_leaks_") {
            "FAIL"
        } else {
            "PASS"
        };
        assert_eq!(verdict, expected, "`{test}`:\n{log}");
    }
}

/// At exit, `verify_test_main!` names the plain test that started each child, finds the
/// orphan of one however many children the tests started after it (one at a time, in name
/// order, the orphan's shell comes first), and finds one started past every hook as the
/// process's own.
#[test]
fn the_exit_check_names_the_plain_test_that_started_a_child() {
    for threads in ["--test-threads=8", "--test-threads=1"] {
        let run = run_with_env("exit_gate_processes", &[threads], &[KILL]);
        assert_eq!(run.output.status.code(), Some(101), "{}", run.stderr);
        let report = &run.stderr[run
            .stderr
            .find("leakcheck: 3 processes still running")
            .unwrap_or_else(|| panic!("{threads}: no exit report:\n{}", run.stderr))..];
        // One test at a time, the report's order is the tests' (by name): pinned whole.
        if threads == "--test-threads=1" {
            insta::assert_snapshot!("exit_report_of_processes", normalize(report));
        }
        let paragraph = |command: &str| {
            report
                .split("\n\n")
                .find(|paragraph| paragraph.contains(command))
                .unwrap_or_else(|| panic!("{threads}: no {command} in:\n{report}"))
        };
        let plain = paragraph("`sleep 620`");
        assert!(
            plain.contains("  owner: `plain_test_leaks_a_child`"),
            "{plain}"
        );
        let site = child_site("exit_gate_processes.rs", "plain");
        assert!(plain.contains(&format!("  spawned at {site}")), "{plain}");
        let orphan = paragraph("`sleep 622`");
        assert!(
            orphan.contains("  owner: `plain_test_leaves_an_orphan`"),
            "{orphan}"
        );
        assert!(orphan.contains("  orphaned: it descends from process "));
        let site = child_site("exit_gate_processes.rs", "plain-orphan");
        assert!(orphan.contains(&format!("  spawned at {site}")), "{orphan}");
        let unseen = paragraph("`/bin/sleep 621`");
        assert!(unseen.contains("  started: not seen (by vfork"), "{unseen}");
        // A zombie no longer runs: it is said apart, as what it is.
        assert!(
            report
                .lines()
                .next()
                .unwrap()
                .ends_with("; and 1 zombie process (a child that exited and was never waited for)"),
            "{threads}: {report}"
        );
    }
}

/// A zombie left by a plain test is said at exit as what it is, a child that exited and was
/// never waited for, not a process "still running", and alone it does not fail the binary;
/// the twin that waits for its child leaves nothing to say.
#[test]
fn the_exit_check_says_a_zombie_is_one() {
    for _ in leakcheck_suite::rounds() {
        let zombie = "plain_test_leaves_a_zombie";
        let run = run_with_env(
            "exit_gate_processes",
            &["--exact", zombie, "--test-threads=8"],
            &[],
        );
        assert_eq!(run.verdict(zombie), Some("ok"), "{}", run.stdout);
        assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
        assert!(
            run.stderr.contains(
                "leakcheck: when the test binary exited: 1 zombie process (a child that exited \
                 and was never waited for)\n"
            ),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("still running"), "{}", run.stderr);
        assert!(
            run.stderr.contains("zombies = \"warn\" (the default)"),
            "{}",
            run.stderr
        );
        let clean = "plain_test_waits_for_its_child";
        let run = run_with_env(
            "exit_gate_processes",
            &["--exact", clean, "--test-threads=8"],
            &[],
        );
        assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
        assert!(!run.stderr.contains("leakcheck"), "{}", run.stderr);
    }
}

/// The README's process report is a real one, numbers aside.
#[test]
fn the_readme_shows_a_real_process_report() {
    let test = "leaks_an_orphaned_background_job";
    let pasted = leakcheck_suite::readme_block("<!-- process report -->");
    let run = run_with_env("processes", &["--exact", test], &[KILL]);
    let failure = run.failure(test);
    let real = &failure[failure.find("leakcheck: ").expect("a report")..];
    assert_eq!(
        normalize(&pasted),
        normalize(real),
        "README.md's process report no longer matches a run (left: README, right: run)"
    );
}

/// The real `execvp` and `execve` are looked up before `main`, in the test process: a fork
/// child of std's (`env_clear()` with a bare program name takes that path) runs no `dlsym`
/// before its `exec`. The loader logs every lookup with the pid that made it.
#[test]
fn a_fork_child_looks_no_symbol_up_before_it_execs() {
    let logs = std::env::temp_dir().join(format!("leakcheck-ld-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let test = "clean_env_clear_gives_exactly_what_was_set";
    let binary = leakcheck_suite::fixture("processes");
    let name = binary.file_name().unwrap().to_string_lossy().into_owned();
    let child = std::process::Command::new(&binary)
        .args(["--exact", test])
        .current_dir(leakcheck_suite::fixtures_dir())
        .env("CARGO_MANIFEST_DIR", leakcheck_suite::fixtures_dir())
        .env("LD_DEBUG", "bindings")
        .env("LD_DEBUG_OUTPUT", logs.join("ld"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(stdout.contains(&format!("test {test} ... ok")), "{stdout}");
    // Every process logs into the file the test process opened (`ld.<its pid>`), each line
    // after the pid that made it.
    let mut looked_up_by = Vec::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let opener = path.extension().unwrap().to_string_lossy().into_owned();
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        for line in log.lines() {
            let by_the_fixture = line
                .split(" to ")
                .next()
                .is_some_and(|from| from.contains("binding file") && from.contains(&name));
            let exec = ["`execvp'", "`execve'"]
                .iter()
                .any(|symbol| line.contains(&format!("normal symbol {symbol}")));
            if by_the_fixture && exec {
                let pid = line.split(':').next().unwrap().trim().to_owned();
                looked_up_by.push((pid == opener, line.to_owned()));
            }
        }
    }
    assert!(
        looked_up_by
            .iter()
            .any(|(in_the_test_process, _)| *in_the_test_process),
        "the test process never looked the real exec up: {looked_up_by:?}"
    );
    for (in_the_test_process, line) in &looked_up_by {
        assert!(
            in_the_test_process,
            "a fork child looked the real exec up:\n{line}"
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
}
