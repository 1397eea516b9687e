//! A long run in little time: millions of tasks, and thousands of threads and scopes, come
//! and go the way a service's requests (or a long test binary's tests) do, and leakcheck's
//! memory stays flat: the registry forgets finished scopes, task tables give back room.
//! Bounded in work (`SUITE_SOAK_TASKS`, two million by default), not in time.

use std::time::Duration;

use leakcheck::service::Snapshot;
use leakcheck::{Scope, TokioBuilderExt};

/// Resident memory now, in KiB (`VmRSS`).
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn millions_of_tasks_and_thousands_of_scopes_leave_memory_flat() {
    let tasks: usize = std::env::var("SUITE_SOAK_TASKS")
        .ok()
        .and_then(|value| value.parse().ok())
        // Without tokio's hooks leakcheck tracks no task: threads and scopes are the soak.
        .unwrap_or(if cfg!(tokio_unstable) {
            2_000_000
        } else {
            200_000
        });
    const TASKS_PER_SCOPE: usize = 20;
    let scopes = tasks / TASKS_PER_SCOPE;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .with_leakcheck()
        .build()
        .unwrap();
    let scope_entries_before = leakcheck::__private::scope_entries();
    let mut warm = None;
    for round in 0..scopes {
        // A request (or a test): its own scope, a burst of tasks, a thread now and then.
        let scope = Scope::enter_named(format!("request {round} with a name of some length"));
        runtime.block_on(async {
            let handles: Vec<_> = (0..TASKS_PER_SCOPE)
                .map(|_| tokio::spawn(async { tokio::task::yield_now().await }))
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        });
        if round % 100 == 0 {
            std::thread::spawn(|| ()).join().unwrap();
        }
        drop(scope);
        if round % 10_000 == 0 {
            // What a watcher does: snapshots forget finished scopes too.
            let _ = Snapshot::take();
        }
        if round == scopes / 10 {
            warm = Some(resident_kib());
        }
    }
    // tokio runs a task's terminate hook just after its JoinHandle has its output.
    let settled = (0..10_000).any(|_| {
        std::thread::sleep(Duration::from_millis(1));
        Snapshot::take().tasks().unwrap_or(0) == 0
    });
    let end = resident_kib();
    let warm = warm.unwrap();
    let scope_entries_after = leakcheck::__private::scope_entries();
    println!(
        "soak: {tasks} tasks, {scopes} scopes, {} threads: resident {warm} KiB after a tenth, \
         {end} KiB at the end; scope entries {scope_entries_before} before, \
         {scope_entries_after} after",
        scopes / 100
    );
    assert!(settled, "{}", Snapshot::take());
    assert!(
        scope_entries_after <= scope_entries_before + 1,
        "scope entries grew: {scope_entries_before} -> {scope_entries_after}"
    );
    // Flat: the last nine tenths of the run (1.8 million tasks by default) add less than
    // 4 MiB, where keeping a scope's entry and name each would add about 10 MiB.
    assert!(
        end <= warm + 4 * 1024,
        "resident memory grew from {warm} KiB to {end} KiB"
    );
}
