//! A regression guard for what leakcheck's task hooks cost, in allocations and live bytes
//! per task, counted (not timed) by a counting allocator: the same tasks on a plain runtime
//! and on one with leakcheck's hooks, in the same process. Counts are exact, so the bounds
//! hold on any machine; a change that adds an allocation or a few words to every task's
//! record fails here, not in a noisy benchmark.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, counting on the way.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's pointer and layout, unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are process-wide: one measurement at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Tasks per measurement: enough that per-task figures are exact to a fraction of a byte
/// and the hash maps' growth averages out.
const TASKS: usize = 20_000;

/// What `TASKS` pending tasks cost on a runtime: allocations made while spawning and polling
/// them once, and bytes still allocated while they are alive.
fn cost_of_pending_tasks(hooked: bool) -> (f64, f64) {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if hooked {
        leakcheck::TokioBuilderExt::with_leakcheck(&mut builder);
    }
    let runtime = builder.build().unwrap();
    let scope = leakcheck::Scope::enter_named("cost guard");
    let (allocations, bytes) = runtime.block_on(async {
        // No warm-up: the growth of leakcheck's task table is part of what a task costs (it
        // averages out over this many tasks); tokio's own growth is the same in both runs.
        let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
        let bytes_before = LIVE_BYTES.load(Ordering::Relaxed);
        let pending: Vec<_> = (0..TASKS)
            .map(|_| tokio::spawn(std::future::pending::<()>()))
            .collect();
        // Poll each once, so the poll hooks have run too.
        tokio::task::yield_now().await;
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
        let bytes = LIVE_BYTES.load(Ordering::Relaxed) - bytes_before;
        pending.iter().for_each(tokio::task::JoinHandle::abort);
        for handle in pending {
            let _ = handle.await;
        }
        (allocations, bytes)
    });
    drop(scope);
    let per_task = |total: f64| total / TASKS as f64;
    (per_task(allocations as f64), per_task(bytes as f64))
}

#[test]
fn a_tracked_task_costs_no_allocation_and_at_most_256_bytes() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let (plain_allocations, plain_bytes) = cost_of_pending_tasks(false);
    let (hooked_allocations, hooked_bytes) = cost_of_pending_tasks(true);
    let extra_allocations = hooked_allocations - plain_allocations;
    let extra_bytes = hooked_bytes - plain_bytes;
    println!(
        "per task: plain {plain_allocations:.2} allocations, {plain_bytes:.0} bytes; \
         with leakcheck's hooks {hooked_allocations:.2} allocations, {hooked_bytes:.0} bytes"
    );
    if cfg!(tokio_unstable) {
        // A task's record lives inline in a slot of the task table: no allocation of its
        // own, only the table's amortised growth (a few resizes per shard over all tasks).
        // The slot is ~80 bytes; with the table's spare capacity that is 90 to 180 bytes
        // per task, depending on where the task count falls between two powers of two.
        assert!(
            extra_allocations <= 0.05,
            "leakcheck adds {extra_allocations:.2} allocations per task"
        );
        // And the hooks did run: a guard that passes because nothing was recorded guards
        // nothing.
        assert!(
            (32.0..=256.0).contains(&extra_bytes),
            "leakcheck adds {extra_bytes:.0} live bytes per task"
        );
    } else {
        // Without tokio_unstable there are no task hooks: nothing may be added.
        assert!(extra_allocations.abs() < 0.01, "{extra_allocations}");
        assert!(extra_bytes.abs() < 1.0, "{extra_bytes}");
    }
}

/// Allocations per thread spawn and join, in this process.
fn allocations_per_thread_spawn() -> f64 {
    const THREADS: usize = 200;
    let scope = leakcheck::Scope::enter_named("cost guard threads");
    // Warm up: the scope's table and std's per-thread machinery exist before counting.
    for _ in 0..THREADS {
        std::thread::spawn(|| ()).join().unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..THREADS {
        std::thread::spawn(|| ()).join().unwrap();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    drop(scope);
    allocations as f64 / THREADS as f64
}

/// Prints this process's allocations per thread spawn, for the guard below, which runs it
/// in child processes with and without the spawn hook.
#[test]
#[ignore = "a probe the guard runs in a child process"]
fn probe_allocations_per_thread_spawn() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    println!("allocations per spawn: {}", allocations_per_thread_spawn());
}

#[test]
fn the_thread_spawn_hook_allocates_twice_per_spawn_and_not_when_off() {
    // Starting a child allocates here too: not while another test is counting.
    let (plain, hooked) = {
        let _one = ONE_AT_A_TIME.lock().unwrap();
        // Written with blanks: the before-`main` switch reads `LEAKCHECK` with the same
        // parser as every check, so this is off too.
        let (probe, label) = (
            "probe_allocations_per_thread_spawn",
            "allocations per spawn: ",
        );
        (
            probe_number(probe, label, " off "),
            probe_number(probe, label, "fail"),
        )
    };
    println!("per thread spawn: {plain:.2} allocations with the hook off, {hooked:.2} with it");
    if cfg!(all(target_os = "linux", not(miri))) {
        // The thread's origin (shared by the registry, the new thread and its children) and
        // its spawn record (the copy of the spawner's stack); none with LEAKCHECK=off, where
        // the hook passes straight through.
        assert!(
            (1.95..=2.05).contains(&(hooked - plain)),
            "the spawn hook adds {:.2} allocations per spawn",
            hooked - plain
        );
    }
}

/// Live threads per memory measurement.
const LIVE_THREADS: usize = 100;

/// Prints this process's bytes still allocated per live thread (spawned from a test's
/// thread, as a test spawns them, and blocked), for the guard below, which runs it in
/// child processes with and without the spawn hook.
#[test]
#[ignore = "a probe the guard runs in a child process"]
fn probe_bytes_per_live_thread() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let scope = leakcheck::Scope::enter_named("cost guard live threads");
    // Warm up: the scope's table and std's per-thread machinery exist before counting.
    std::thread::spawn(|| ()).join().unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Arc::new(std::sync::Mutex::new(released));
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let threads: Vec<_> = (0..LIVE_THREADS)
        .map(|_| {
            let released = released.clone();
            std::thread::spawn(move || {
                let _ = released.lock().unwrap().recv();
            })
        })
        .collect();
    let bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
    drop(release);
    threads
        .into_iter()
        .for_each(|thread| thread.join().unwrap());
    drop(scope);
    println!(
        "bytes per live thread: {}",
        bytes as f64 / LIVE_THREADS as f64
    );
}

/// A probe's printed number from a child process, `LEAKCHECK` set as given. Both runs
/// capture output the same way (libtest's capture costs allocations per spawn too).
fn probe_number(probe: &str, label: &str, leakcheck: &str) -> f64 {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", probe, "--ignored", "--show-output"])
        .env("LEAKCHECK", leakcheck)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    stdout
        .lines()
        .find_map(|line| Some(line.split_once(label)?.1))
        .unwrap_or_else(|| panic!("no `{label}` from {probe}:\n{stdout}"))
        .parse()
        .unwrap()
}

#[test]
fn a_live_thread_keeps_at_most_8_kib_for_its_spawn() {
    let (plain, hooked) = {
        let _one = ONE_AT_A_TIME.lock().unwrap();
        let probe = "probe_bytes_per_live_thread";
        let label = "bytes per live thread: ";
        (
            probe_number(probe, label, " off "),
            probe_number(probe, label, "fail"),
        )
    };
    let extra = hooked - plain;
    println!("per live thread: {plain:.0} bytes with the hook off, {hooked:.0} with it");
    if cfg!(all(target_os = "linux", not(miri))) {
        // The spawn record (the copy of the spawner's stack, at most 8 KiB with its header)
        // and the thread's origin with its entry in the registry (a few hundred bytes). And
        // something was kept: a guard that passes because nothing was recorded guards
        // nothing.
        assert!(
            (256.0..=8.0 * 1024.0 + 512.0).contains(&extra),
            "the spawn hook keeps {extra:.0} bytes per live thread"
        );
    }
}

/// The user-space instructions a probe runs with `count` operations and `env`, counted by
/// callgrind: exact, where wall time on a shared machine is not.
fn instructions(probe: &str, count: usize, env: &[(&str, &str)]) -> i64 {
    let child = std::process::Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", probe, "--ignored"])
        .env("SUITE_PROBE_COUNT", count.to_string())
        .envs(env.iter().copied())
        .output()
        .expect("valgrind runs this guard: install it (CI's .ci/run does)");
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "{probe} failed under valgrind:\n{stderr}"
    );
    stderr
        .lines()
        .find_map(|line| Some(line.split_once("Collected : ")?.1.trim().replace(',', "")))
        .unwrap_or_else(|| panic!("no instruction count from callgrind:\n{stderr}"))
        .parse()
        .unwrap()
}

/// Instructions per operation of a probe: the count at 3N operations less the count at N,
/// over 2N, so that start-up cancels out.
fn instructions_per_op(probe: &str, n: usize, env: &[(&str, &str)]) -> i64 {
    (instructions(probe, 3 * n, env) - instructions(probe, n, env)) / (2 * n) as i64
}

/// How many operations a probe runs: `SUITE_PROBE_COUNT`, as the guards set it; a few
/// when a probe runs on its own (`--include-ignored` runs it too).
fn probe_count() -> usize {
    std::env::var("SUITE_PROBE_COUNT").map_or(10, |count| {
        count
            .parse()
            .expect("SUITE_PROBE_COUNT: expected a whole number")
    })
}

/// Spawns and joins threads from a test's thread, in a scope: the guard below counts its
/// instructions under callgrind.
#[test]
#[ignore = "a probe the guard runs under callgrind"]
fn probe_thread_spawns() {
    let scope = leakcheck::Scope::enter_named("cost guard instructions");
    for _ in 0..probe_count() {
        std::thread::spawn(|| ()).join().unwrap();
    }
    drop(scope);
}

#[test]
#[ignore = "needs valgrind (CI installs it); about 10 s"]
fn a_thread_spawn_unwinds_nothing() {
    let per_spawn =
        |leakcheck| instructions_per_op("probe_thread_spawns", 100, &[("LEAKCHECK", leakcheck)]);
    let (plain, hooked) = (per_spawn(" off "), per_spawn("fail"));
    let extra = hooked - plain;
    println!("per thread spawn and join: {plain} instructions with the hook off, {hooked} with it");
    if cfg!(all(target_os = "linux", not(miri))) {
        // Registering the thread and copying the spawner's stack, in this debug build:
        // ~10,800. Unwinding the spawner's stack at spawn, as before, cost ~2,000
        // instructions a frame, over 50,000 here.
        assert!(
            extra <= EXTRA_PER_THREAD_SPAWN,
            "the spawn hook adds {extra} instructions per spawn (at most \
             {EXTRA_PER_THREAD_SPAWN}): is something unwinding at spawn?"
        );
        assert!(extra > 0, "the spawn hook did nothing: {extra}");
    }
}

/// The bound above.
const EXTRA_PER_THREAD_SPAWN: i64 = 15_000;

/// Spawns and awaits tasks on a current_thread runtime with leakcheck's hooks, in a scope:
/// the guard below counts its instructions under callgrind.
#[test]
#[ignore = "a probe the guard runs under callgrind"]
fn probe_task_spawns() {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    leakcheck::TokioBuilderExt::with_leakcheck(&mut builder);
    let runtime = builder.build().unwrap();
    let scope = leakcheck::Scope::enter_named("cost guard tasks");
    runtime.block_on(async {
        for _ in 0..probe_count() {
            tokio::spawn(async {}).await.unwrap();
        }
    });
    drop(scope);
}

#[test]
#[ignore = "needs valgrind (CI installs it); about 10 s"]
fn a_task_spawn_backtrace_unwinds_nothing() {
    let per_task = |backtrace| {
        instructions_per_op(
            "probe_task_spawns",
            1000,
            &[("LEAKCHECK_TASK_BACKTRACE", backtrace)],
        )
    };
    let (plain, traced) = (per_task("0"), per_task("1"));
    let extra = traced - plain;
    println!("per task spawn and await: {plain} instructions, {traced} with spawn backtraces");
    if cfg!(tokio_unstable) {
        // Copying the spawner's stack, here all of it up to the test thread's top (under
        // the 40 KiB cap), in this debug build: ~4,000 (~3,000 with a 4 KiB cap).
        // Unwinding it at spawn, as before, cost ~40,000.
        assert!(
            (1..=EXTRA_PER_TRACED_TASK).contains(&extra),
            "a task spawn backtrace adds {extra} instructions per task (at most \
             {EXTRA_PER_TRACED_TASK}): is something unwinding at spawn?"
        );
    } else {
        // Without tokio_unstable there are no task hooks: the switch changes nothing.
        assert!(extra.abs() <= 5, "{extra}");
    }
}

/// The bound above.
const EXTRA_PER_TRACED_TASK: i64 = 10_000;

/// Starts `true` and waits for it from a test's thread, in a scope: the guard below counts
/// this process's instructions under callgrind (the children run untraced).
#[test]
#[ignore = "a probe the guard runs under callgrind"]
fn probe_process_spawns() {
    let scope = leakcheck::Scope::enter_named("cost guard processes");
    for _ in 0..probe_count() {
        let status = std::process::Command::new("true").status().unwrap();
        assert!(status.success());
    }
    drop(scope);
}

#[test]
#[ignore = "needs valgrind (CI installs it); about 10 s"]
fn a_process_spawn_unwinds_nothing() {
    let per_spawn =
        |leakcheck| instructions_per_op("probe_process_spawns", 100, &[("LEAKCHECK", leakcheck)]);
    let (plain, hooked) = (per_spawn(" off "), per_spawn("fail"));
    let extra = hooked - plain;
    println!(
        "per process spawn and wait: {plain} instructions with the hooks off, {hooked} with them"
    );
    if cfg!(all(target_os = "linux", not(miri))) {
        // Recording the child with its environment marked and a copy of the spawner's stack
        // (~6 KiB here), and every 64 records one look at every process for what the
        // waited-for children left running, in this debug build: ~93,000 (~67,500 before
        // that look). Unwinding the spawner's stack at spawn would add ~2,000 a frame.
        assert!(
            extra <= EXTRA_PER_PROCESS_SPAWN,
            "the process hooks add {extra} instructions per spawn (at most \
             {EXTRA_PER_PROCESS_SPAWN}): is something unwinding at spawn?"
        );
        assert!(extra > 0, "the process hooks did nothing: {extra}");
    }
}

/// The bound above.
const EXTRA_PER_PROCESS_SPAWN: i64 = 150_000;
