//! leakcheck in a CI pipeline: `LEAKCHECK` modes, `LEAKCHECK_GRACE`, the JSON report,
//! the shared `leakcheck.toml`, and bad values of each, as a pipeline sees them.

use std::collections::{BTreeMap, BTreeSet};

use leakcheck_suite::{
    Run, expected_verdict, json_lines, normalize, run_reporting, run_with_env, spawn_site, temp_dir,
};

const LEAKY: &str = "leaks_thread_blocked_on_channel";

fn exact(test: &str, env: &[(&str, &str)]) -> Run {
    run_with_env("threads", &["--exact", test], env)
}

/// [`exact`], with the output of a passing test shown (libtest shows it only with
/// `--nocapture`).
fn exact_shown(test: &str, env: &[(&str, &str)]) -> Run {
    run_with_env("threads", &["--exact", test, "--nocapture"], env)
}

/// A passing test's captured output is thrown away by libtest: the warning must reach the
/// terminal anyway, in a plain `cargo test` (no `--nocapture`), and land in the JSON.
#[test]
fn warn_mode_is_seen_in_a_plain_run() {
    let (run, lines) = run_reporting("threads", &["--exact", LEAKY], &[("LEAKCHECK", "warn")]);
    assert_eq!(run.verdict(LEAKY), Some("ok"), "{}", run.stdout);
    insta::assert_snapshot!("warning_on_stderr", normalize(&run.stderr));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "leaked");
    assert_eq!(lines[0]["mode"], "warn");
    assert_eq!(lines[0]["groups"][0]["names"][0], "channel-waiter");
}

#[test]
fn warn_mode_prints_the_report_and_passes() {
    let run = exact_shown(LEAKY, &[("LEAKCHECK", "warn")]);
    assert_eq!(run.verdict(LEAKY), Some("ok"), "{}", run.stdout);
    assert!(run.output.status.success());
    assert!(
        run.stderr
            .contains(&format!("leakcheck: `{LEAKY}` leaked 1 thread")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("LEAKCHECK=warn: reported, not failed"));
}

#[test]
fn warn_mode_keeps_a_test_s_own_failure() {
    let test = "leaks_and_panics";
    let run = exact(test, &[("LEAKCHECK", "warn")]);
    assert_eq!(run.verdict(test), Some("FAILED"));
    // The test's own panic is the headline; the report follows it, marked as a warning.
    let failure = run.failure(test);
    let panic = failure.find("the original failure");
    let report = failure.find(&format!("leakcheck: `{test}` leaked 1 thread ("));
    let warned = failure.find("LEAKCHECK=warn: reported, not failed");
    assert!(
        panic.is_some() && panic < report && report < warned,
        "{failure}"
    );
    assert!(failure.contains("\"panicky\""), "{failure}");
}

/// `LEAKCHECK` is read by one parser, before `main` too: written with blanks, `off` still
/// switches the checks off (and the hooks, which the cost guard counts).
#[test]
fn off_mode_is_read_the_same_with_blanks() {
    let run = exact_shown(LEAKY, &[("LEAKCHECK", " off ")]);
    assert_eq!(run.verdict(LEAKY), Some("ok"), "{}", run.stdout);
    assert!(!run.stderr.contains("leakcheck"), "{}", run.stderr);
}

#[test]
fn off_mode_checks_nothing() {
    let run = exact_shown(LEAKY, &[("LEAKCHECK", "off")]);
    assert_eq!(run.verdict(LEAKY), Some("ok"), "{}", run.stdout);
    assert!(!run.stderr.contains("leakcheck"), "{}", run.stderr);
}

/// The test's own words win for the test they are on: a `LEAKCHECK_GRACE` set once in CI
/// for speed does not shorten a test that says `grace = "3s"`, and gives its grace to a
/// test that says none.
#[test]
fn a_test_s_own_grace_wins_over_the_environment_s_which_wins_over_the_default() {
    // The attribute gives 3 s to a thread that needs 800 ms; CI's 50 ms does not cut it.
    let test = "clean_thread_finishes_within_a_longer_grace";
    let run = exact(test, &[("LEAKCHECK_GRACE", "50ms")]);
    assert_eq!(run.verdict(test), Some("ok"), "{}", run.stdout);
    // No grace of its own: the default's 500 ms fails a thread that needs 2 s ...
    let test = "leaks_a_thread_that_outlives_the_default_grace";
    let run = exact(test, &[]);
    assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
    assert!(run.failure(test).contains("\"two-seconds\""));
    // ... and the environment's 10 s is its grace.
    let run = exact(test, &[("LEAKCHECK_GRACE", "10s")]);
    assert_eq!(run.verdict(test), Some("ok"), "{}", run.stdout);
}

#[test]
fn bad_variable_values_fail_with_what_was_expected() {
    let cases = [
        (
            ("LEAKCHECK", "loud"),
            "leakcheck: LEAKCHECK=\"loud\" is not understood: expected fail",
        ),
        (
            ("LEAKCHECK_GRACE", "soon"),
            "leakcheck: LEAKCHECK_GRACE=\"soon\" is not a duration",
        ),
        (
            ("LEAKCHECK_REPORT", ""),
            "leakcheck: LEAKCHECK_REPORT is set but empty: expected a file path",
        ),
        (
            ("LEAKCHECK_REPORT", "/nonexistent-dir/report.jsonl"),
            "leakcheck: cannot append to LEAKCHECK_REPORT=/nonexistent-dir/report.jsonl",
        ),
        // Read by the task hooks only, yet checked by every kind of test: this one is sync.
        (
            ("LEAKCHECK_TASK_BACKTRACE", "maybe"),
            "leakcheck: LEAKCHECK_TASK_BACKTRACE=\"maybe\" is not understood: expected 1, true",
        ),
        // A misspelt name: a setting silently not applied, were it not an error.
        (
            ("LEAKCHECK_KILL_LEAKED_PROCESSES", "true"),
            "leakcheck: LEAKCHECK_KILL_LEAKED_PROCESSES is not a variable leakcheck knows: did \
             you mean LEAKCHECK_KILL_PROCESSES?",
        ),
    ];
    let clean = "clean_thread_blocked_on_channel_until_sent";
    for ((variable, value), message) in cases {
        let run = exact(clean, &[(variable, value)]);
        assert_eq!(run.verdict(clean), Some("FAILED"), "{variable}={value:?}");
        assert!(
            run.failure(clean).contains(message),
            "{variable}={value:?}: no `{message}` in:\n{}",
            run.failure(clean)
        );
        // The user's setting is at fault, not leakcheck: no location inside leakcheck.
        assert!(
            !run.failure(clean).contains("leakcheck/src"),
            "{variable}={value:?}: {}",
            run.failure(clean)
        );
    }
}

/// `LEAKCHECK=off` stays the way out whatever else is set: an unknown variable beside it
/// fails nothing.
#[test]
fn leakcheck_off_is_off_beside_an_unknown_variable() {
    let clean = "clean_thread_blocked_on_channel_until_sent";
    let run = exact(
        clean,
        &[
            ("LEAKCHECK", "off"),
            ("LEAKCHECK_KILL_LEAKED_PROCESSES", "true"),
        ],
    );
    assert_eq!(run.verdict(clean), Some("ok"), "{}", run.stdout);
    assert!(!run.stderr.contains("leakcheck:"), "{}", run.stderr);
}

#[test]
fn a_malformed_leakcheck_toml_names_file_line_and_problem() {
    let dir = temp_dir("malformed-toml");
    let file = dir.join("leakcheck.toml");
    std::fs::write(&file, "grace = \"1s\"\nignore_thread = [\"ok-*\", 7]\n").unwrap();
    let clean = "clean_thread_blocked_on_channel_until_sent";
    let expected = format!(
        "leakcheck: {}:2:26: `ignore_thread`: expected a string or an array of strings",
        file.display()
    );
    // Named by LEAKCHECK_CONFIG, and found from the manifest directory.
    let named = file.to_str().unwrap();
    let manifest_dir = dir.to_str().unwrap();
    for env in [
        [("LEAKCHECK_CONFIG", named)],
        [("CARGO_MANIFEST_DIR", manifest_dir)],
    ] {
        let run = exact(clean, &env);
        assert_eq!(run.verdict(clean), Some("FAILED"), "{env:?}");
        assert!(
            run.failure(clean).contains(&expected),
            "{env:?}: no `{expected}` in:\n{}",
            run.failure(clean)
        );
    }
}

#[test]
fn the_fixtures_leakcheck_toml_is_found_and_used() {
    let test = "ignored_by_the_shared_leakcheck_toml";
    assert_eq!(exact(test, &[]).verdict(test), Some("ok"));
    // Another file in its place: the rule is gone, the thread is a leak.
    let dir = temp_dir("empty-toml");
    let empty = dir.join("leakcheck.toml");
    std::fs::write(&empty, "# no rules\n").unwrap();
    let run = exact(test, &[("LEAKCHECK_CONFIG", empty.to_str().unwrap())]);
    assert_eq!(run.verdict(test), Some("FAILED"));
    let failure = run.failure(test);
    assert!(
        failure.contains(&format!("leakcheck: `{test}` leaked 1 thread (")),
        "{failure}"
    );
    assert!(
        failure.contains("\"shared-allowlisted-metrics\""),
        "{failure}"
    );
}

/// JSON lines split into the attribute's (`"check": "test"`) and `verify_none*` calls'
/// (`"check": "verify_none"`); any other kind fails.
fn by_check(lines: Vec<serde_json::Value>) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let (tests, calls): (Vec<_>, Vec<_>) =
        lines.into_iter().partition(|line| line["check"] == "test");
    for call in &calls {
        assert_eq!(call["check"], "verify_none", "{call}");
    }
    (tests, calls)
}

/// Every leak-checked test of a parallel run appends exactly one whole line.
#[test]
fn json_lines_from_parallel_tests_parse_back() {
    let (run, lines) = run_reporting("threads", &["--test-threads=8"], &[]);
    let (lines, calls) = by_check(lines);
    // The explicit scope's `verify_none()` writes its own line, named after the scope.
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["test"], "explicit scope");
    assert_eq!(calls[0]["outcome"], "leaked");
    assert_eq!(calls[0]["test_passed"], serde_json::Value::Null);
    let mut by_test: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for line in lines {
        assert_eq!(line["schema_version"], 2, "{line}");
        let test = line["test"].as_str().unwrap().to_owned();
        assert!(
            by_test.insert(test.clone(), line).is_none(),
            "`{test}` twice"
        );
    }
    // Every test that ran under the attribute, and nothing else.
    let plain_tests = [
        "leaks_found_by_explicit_scope",
        "clean_explicit_scope_with_find",
    ];
    let expected: BTreeSet<String> = run
        .tests()
        .into_iter()
        .filter(|test| run.verdict(test) != Some("ignored"))
        .filter(|test| !plain_tests.contains(&test.as_str()))
        .collect();
    assert_eq!(by_test.keys().cloned().collect::<BTreeSet<_>>(), expected);

    let leak = &by_test[LEAKY];
    assert_eq!(leak["outcome"], "leaked");
    assert_eq!(leak["mode"], "fail");
    assert_eq!(leak["test_passed"], true);
    let thread = &leak["groups"][0];
    assert_eq!(leak["groups"].as_array().unwrap().len(), 1, "{leak}");
    assert_eq!(thread["kind"], "thread");
    assert_eq!(thread["count"], 1);
    assert_eq!(thread["names"][0], "channel-waiter");
    assert!(thread["ids"][0].as_i64().unwrap() > 0);
    // Blocked on a channel nobody sends on: not woken during the grace period.
    assert_eq!(thread["activity"], "stuck", "{thread}");
    assert_eq!(thread["woken_during_grace"], 0, "{thread}");
    assert!(leak["omitted"].is_null(), "{leak}");
    let site = spawn_site("threads.rs", "channel-waiter");
    let spawn = &thread["spawn"];
    let at = format!("{}:{}:", spawn["file"].as_str().unwrap(), spawn["line"]);
    assert_eq!(at, site, "{thread}");
    assert!(thread["state"].as_str().unwrap().contains("futex"));
    assert!(!thread["spawn_backtrace"].as_array().unwrap().is_empty());
    assert!(!thread["current_stack"].as_array().unwrap().is_empty());
    assert_eq!(
        thread["ignore_rules"][0],
        "ignore_thread = \"channel-waiter\""
    );

    let clean = &by_test["clean_thread_blocked_on_channel_until_sent"];
    assert_eq!(clean["outcome"], "clean");
    assert_eq!(clean["groups"].as_array().unwrap().len(), 0);
    let failed_on_its_own = &by_test["leaks_and_returns_err"];
    assert_eq!(failed_on_its_own["test_passed"], false);
}

/// nextest runs every test in its own process, many at once: the lines must still be whole.
#[test]
#[ignore = "needs cargo-nextest; .ci/run runs it with --include-ignored"]
fn json_lines_from_parallel_nextest_processes_parse_back() {
    let dir = temp_dir("json-nextest");
    let path = dir.join("report.jsonl");
    let (log, verdicts) = leakcheck_suite::nextest(
        &["threads"],
        &[("LEAKCHECK_REPORT", path.to_str().unwrap())],
    );
    let (lines, calls) = by_check(json_lines(&path));
    assert_eq!(
        calls.len(),
        1,
        "the explicit scope's verify_none(): {calls:?}"
    );
    let tests: BTreeSet<&str> = lines
        .iter()
        .map(|line| line["test"].as_str().unwrap())
        .collect();
    assert_eq!(tests.len(), lines.len(), "a test reported twice");
    // Every test but the two explicit-scope ones, which have no attribute.
    let plain_tests = [
        "leaks_found_by_explicit_scope",
        "clean_explicit_scope_with_find",
    ];
    assert!(
        lines.len() + 2 == verdicts.len() && lines.len() >= 30,
        "{} lines for {} tests:\n{log}",
        lines.len(),
        verdicts.len()
    );
    // Exactly the tests that must fail for a leak say they leaked.
    let leaked: BTreeSet<&str> = lines
        .iter()
        .filter(|line| line["outcome"] == "leaked")
        .map(|line| line["test"].as_str().unwrap())
        .collect();
    let leaky: BTreeSet<&str> = verdicts
        .iter()
        .map(|(test, _)| test.as_str())
        .filter(|test| expected_verdict(test) == "FAILED" && !plain_tests.contains(test))
        .collect();
    assert_eq!(leaked, leaky, "{log}");
}

/// Every rule a report suggests, pasted as a line of `leakcheck.toml`, silences that leak
/// and none at another site: names with a quote and a backslash (TOML escapes), glob
/// characters, characters beyond ASCII, and a group of threads named apart.
#[test]
fn every_suggested_rule_pasted_into_leakcheck_toml_silences_that_leak_and_no_other() {
    let other = "leaks_thread_blocked_on_lock";
    for test in [
        "leaks_thread_with_a_quote_and_a_backslash",
        "leaks_thread_with_glob_characters",
        "leaks_thread_with_a_name_beyond_ascii",
        "leaks_threads_named_apart",
        LEAKY,
    ] {
        let (run, records) = run_reporting("threads", &["--exact", test], &[]);
        assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
        let rules: Vec<String> = records[0]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["ignore_rules"].as_array().unwrap().clone())
            .map(|rule| rule.as_str().unwrap().to_owned())
            .collect();
        assert!(rules.len() >= 2, "`{test}`: {rules:?}");
        // The report prints the same lines.
        for rule in &rules {
            assert!(run.failure(test).contains(rule.as_str()), "{rule}");
        }
        for rule in rules {
            let dir = temp_dir("pasted-rule");
            let file = dir.join("leakcheck.toml");
            std::fs::write(&file, format!("{rule}\n")).unwrap();
            let run = run_with_env(
                "threads",
                &["--exact", test, other],
                &[("LEAKCHECK_CONFIG", file.to_str().unwrap())],
            );
            assert_eq!(
                run.verdict(test),
                Some("ok"),
                "`{rule}` did not silence `{test}`:\n{}\n{}",
                run.stdout,
                run.stderr
            );
            assert_eq!(
                run.verdict(other),
                Some("FAILED"),
                "`{rule}` silenced `{other}` too"
            );
        }
    }
}
