//! Real crates that start threads: process-lifetime singletons pass under the default
//! allowlist, and fail without it; threads a crate starts for the user, left running, fail.

use leakcheck_suite::{assert_verdicts, rounds, run, run_with_env, spawn_site, temp_dir};

#[test]
fn singletons_pass_and_forgotten_threads_fail_in_parallel_runs() {
    for round in rounds() {
        let run = run("ecosystem", &["--test-threads=8"]);
        assert_verdicts(&run, round, 7);
        if round > 0 {
            continue;
        }
        for (test, thread) in [
            ("leaks_rayon_pool_built_and_forgotten", "forgotten-rayon-0"),
            ("leaks_tracing_appender_guard_forgotten", "tracing-appender"),
        ] {
            let report = run.failure(test);
            assert!(report.contains(&format!("\"{thread}\"")), "{report}");
            // The spawn site is the user's call, not the crate's own spawn.
            let site = spawn_site("ecosystem.rs", thread);
            assert!(report.contains(&format!("  spawned at {site}")), "{report}");
        }
    }
}

#[test]
fn without_the_default_allowlist_singletons_are_leaks() {
    let run = run(
        "ecosystem",
        &[
            "--ignored",
            "--exact",
            "alone_leaks_rayon_global_pool_without_default_allowlist",
        ],
    );
    let report = run.failure("alone_leaks_rayon_global_pool_without_default_allowlist");
    assert!(
        report.contains("`rayon without the default allowlist` leaked"),
        "{report}"
    );
    let site = spawn_site("ecosystem.rs", "rayon-global");
    assert!(report.contains(&format!("  spawned at {site}")), "{report}");
    // The exact rule first: the spawn function below it (`Registry::new`) starts every pool.
    let exact = "ignore_spawn = \"rayon_core::registry::set_global_registry\"";
    assert!(
        report.contains(&format!("  to ignore them: {exact}  or  ")),
        "{report}"
    );
    let dir = temp_dir("rayon-exact-rule");
    let file = dir.join("leakcheck.toml");
    std::fs::write(&file, format!("{exact}\n")).unwrap();
    let config = [("LEAKCHECK_CONFIG", file.to_str().unwrap())];
    for _ in rounds() {
        // The rule silences the global pool, and not a pool a test built and forgot.
        let global = "alone_leaks_rayon_global_pool_without_default_allowlist";
        let run = run_with_env("ecosystem", &["--ignored", "--exact", global], &config);
        assert_eq!(run.verdict(global), Some("ok"), "{}", run.failure(global));
        let forgotten = "leaks_rayon_pool_built_and_forgotten";
        let run = run_with_env(
            "ecosystem",
            &[
                "--exact",
                forgotten,
                "clean_rayon_pool_built_and_dropped",
                "--test-threads=8",
            ],
            &config,
        );
        assert_eq!(run.verdict(forgotten), Some("FAILED"), "{}", run.stdout);
        assert_eq!(
            run.verdict("clean_rayon_pool_built_and_dropped"),
            Some("ok"),
            "{}",
            run.stdout
        );
        assert!(!run.failure(forgotten).contains("set_global_registry\"  or"));
    }

    let dir = temp_dir("no-default-allowlist");
    let file = dir.join("leakcheck.toml");
    std::fs::write(&file, "default_allowlist = false\n").unwrap();
    let singletons = ["clean_async_io_reactor", "clean_ctrlc_handler"];
    let run = run_with_env(
        "ecosystem",
        &["--exact", singletons[0], singletons[1]],
        &[("LEAKCHECK_CONFIG", file.to_str().unwrap())],
    );
    for (test, thread) in singletons.iter().zip(["\"async-io\"", "\"ctrl-c\""]) {
        assert_eq!(run.verdict(test), Some("FAILED"), "{}", run.stdout);
        assert!(run.failure(test).contains(thread), "{}", run.failure(test));
    }
}
