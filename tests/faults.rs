//! leakcheck never the cause of a crash: programs that reset or take its signal, and tests
//! that fork while threads spawn. Each case runs 20 times; not one wrong exit status.

use std::os::unix::process::ExitStatusExt;

use leakcheck_suite::{assert_verdicts, json_lines, run, run_with_env, temp_dir};

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

#[test]
fn forked_children_leave_without_the_parents_exit_check() {
    for round in 0..RUNS {
        let dir = temp_dir("fork");
        let json = dir.join("leaks.jsonl");
        let run = run_with_env("fork", &[], &[("LEAKCHECK_REPORT", json.to_str().unwrap())]);
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
