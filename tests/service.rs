//! The example service (`examples/service`): an axum server that leaks a task per request,
//! driven over loopback by its own bounded load. The watcher must name the leaking spawn
//! line and its growth within a few intervals; the fixed twin must show flat counts and no
//! alarm; the README's pasted snapshot must match a real one.

use std::process::Command;

use leakcheck_suite::{example_dir, example_line_of, example_service, root};

/// One run of the example: its stdout, after checking it exited cleanly.
fn run(args: &[&str]) -> String {
    let output = Command::new(example_service())
        .args(args)
        .current_dir(example_dir())
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The live-task counts the example prints after each interval.
fn live_counts(stdout: &str) -> Vec<usize> {
    stdout
        .lines()
        .filter_map(|line| {
            line.strip_suffix(" live tasks")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn the_watcher_names_the_line_that_leaks_a_task_per_request() {
    let stdout = run(&[]);
    let leak = format!(
        "src/main.rs:{}:",
        example_line_of("while updates.changed().await.is_ok()")
    );
    let alarm = stdout
        .lines()
        .find(|line| line.starts_with("leakcheck: tasks spawned at "))
        .unwrap_or_else(|| panic!("no alarm:\n{stdout}"));
    assert!(
        alarm.starts_with(&format!("leakcheck: tasks spawned at {leak}")),
        "{alarm}"
    );
    // Three intervals of growth, each count above the one before.
    let counts: Vec<usize> = alarm
        .split(" keep growing: ")
        .nth(1)
        .and_then(|rest| rest.split(" over ").next())
        .unwrap()
        .split(" -> ")
        .map(|count| count.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 4, "{alarm}");
    assert!(counts.windows(2).all(|pair| pair[0] < pair[1]), "{alarm}");
    assert!(alarm.contains(" over 3 intervals of 0.25s; "), "{alarm}");
    // The old ones never ran again: stuck, not busy.
    let (idle, survivors) = alarm
        .split("; ")
        .nth(1)
        .and_then(|part| part.strip_suffix(" alive an interval ago did not run since"))
        .and_then(|part| part.split_once(" of the "))
        .unwrap_or_else(|| panic!("{alarm}"));
    assert_eq!(idle, survivors, "{alarm}");
    assert!(
        alarm.contains("; spawned by code spawned at axum-"),
        "{alarm}"
    );
    // The counts climb with the requests; the snapshot served at the end puts the leak
    // first, with every task of it never woken.
    let live = live_counts(&stdout);
    assert!(live.windows(2).all(|pair| pair[0] <= pair[1]), "{live:?}");
    assert!(live.last().unwrap() > &50, "{live:?}");
    let snapshot = &stdout[stdout.find("leakcheck snapshot at ").unwrap()..];
    let top = snapshot.lines().nth(1).unwrap();
    assert!(
        top.contains(&format!("tasks    spawned at {leak}")),
        "{snapshot}"
    );
    let count: usize = top.split_whitespace().next().unwrap().parse().unwrap();
    let details = snapshot.lines().nth(2).unwrap();
    assert!(
        details.ends_with(&format!("; {count} never woken since their first poll")),
        "{snapshot}"
    );
}

#[test]
fn the_fixed_twin_keeps_flat_counts_and_raises_no_alarm() {
    let stdout = run(&["--fixed"]);
    assert!(!stdout.contains("keep growing"), "{stdout}");
    let live = live_counts(&stdout);
    assert_eq!(live.len(), 8, "{stdout}");
    // The server's accept loop, and the followers (20 ms each, a request every ~10 ms) and
    // connections in flight: a few, however long it runs, where the leaky twin's count
    // climbs by ~20 an interval.
    assert!(live.iter().all(|&count| count <= 10), "{live:?}");
}

/// The README's service alarm and snapshot, numbers and ages aside, are real ones: the
/// alarm, the snapshot's first line and its top group (the leak). The smaller groups below
/// (the server's own tasks and threads) shift with timing, so they are not compared.
#[test]
fn the_readme_shows_a_real_snapshot() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let pasted = readme
        .split("<!-- service snapshot -->\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's service snapshot block");
    let stdout = run(&[]);
    let real = &stdout[stdout.find("leakcheck: tasks spawned at ").unwrap()..];
    let alarm = real.lines().next().unwrap();
    let snapshot = &real[real.find("leakcheck snapshot at ").unwrap()..];
    let real = format!("{alarm}\n{snapshot}");
    let compared = |text: &str| shape(text).into_iter().take(4).collect::<Vec<_>>();
    assert_eq!(
        compared(pasted),
        compared(&real),
        "README:\n{pasted}\nreal:\n{real}"
    );
}

/// Numbers, ages and crate versions out: what stays is the shape a reader relies on.
fn shape(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let mut shaped = String::new();
            let mut in_number = false;
            for c in line.chars() {
                if c.is_ascii_digit() || (in_number && c == '.') {
                    if !in_number {
                        shaped.push('N');
                    }
                    in_number = true;
                } else {
                    in_number = false;
                    shaped.push(c);
                }
            }
            shaped.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}
