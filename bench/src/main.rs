//! Prints `name value` lines (microseconds). Built three times by `run.sh`: plain; with the
//! `leakcheck` feature, which links leakcheck (and so its thread spawn hook) and runs
//! inside a scope, the way a `#[leakcheck::test]` body does; and that again with
//! `--cfg tokio_unstable`, where the runtime also gets leakcheck's task hooks.

use std::hint::black_box;
use std::time::Instant;

fn per_op_micros(iterations: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        op();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

/// A runtime as a test would have it: with leakcheck's task hooks in the leakcheck build
/// (they exist under `--cfg tokio_unstable` only; without it this adds nothing).
fn runtime(mut builder: tokio::runtime::Builder) -> tokio::runtime::Runtime {
    #[cfg(feature = "leakcheck")]
    leakcheck::TokioBuilderExt::with_leakcheck(&mut builder);
    builder.build().unwrap()
}

/// Spawns and joins `count` threads, from a thread of its own, as a test does: the spawn
/// hook unwinds the whole stack of the spawning thread, and the unwinder's work for a frame
/// grows with the function's size (the CFA program it runs up to the call), so spawning
/// from this bench's large `main` would measure `main`, not leakcheck.
fn spawn_and_join(count: u32) {
    std::thread::spawn(move || {
        for _ in 0..count {
            std::thread::spawn(|| black_box(1)).join().unwrap();
        }
    })
    .join()
    .unwrap();
}

/// Forks `count` children while two threads spawn and join named threads, each child spawning
/// and joining one thread under a 2 s alarm; how many the alarm ended.
fn forks_that_hang(count: u32) -> usize {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    let busy: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                while !STOP.load(Ordering::Relaxed) {
                    // Named: the name hook's lock is busy too.
                    std::thread::Builder::new()
                        .name("busy".into())
                        .spawn(|| black_box(1))
                        .unwrap()
                        .join()
                        .unwrap();
                }
            })
        })
        .collect();
    let mut hung = 0;
    for _ in 0..count {
        // SAFETY: the child only sets an alarm, spawns and joins a thread, and leaves with
        // _exit, as a forked child of a threaded program may (the C library's allocator and
        // thread start are fork-safe; std's own lock is the hazard measured).
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: alarm and _exit are async-signal-safe; see above for the thread.
            unsafe {
                libc::alarm(2);
                let joined = std::thread::spawn(|| black_box(1)).join().is_ok();
                libc::_exit(if joined { 0 } else { 1 })
            }
        }
        assert!(child > 0, "fork failed");
        let mut status = 0;
        // SAFETY: our own child, and a status to write.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
            hung += 1;
        }
    }
    STOP.store(true, Ordering::Relaxed);
    busy.into_iter().for_each(|thread| thread.join().unwrap());
    hung
}

/// Starts `true` and waits for it.
fn spawn_and_wait() {
    let status = std::process::Command::new("true").status().unwrap();
    assert!(status.success());
}

/// Spawns `count` trivial tasks and awaits each: per task, the spawn hook, one poll with its
/// two poll hooks, and the terminate hook.
async fn spawn_and_await(count: u32) {
    for _ in 0..count {
        tokio::spawn(async { black_box(1) }).await.unwrap();
    }
}

fn main() {
    #[cfg(feature = "leakcheck")]
    let scope = leakcheck::Scope::enter_named("bench");

    // `BENCH_TASKS=N`: only spawn and await N tasks on a current_thread runtime, for
    // instruction counts under callgrind.
    if let Ok(count) = std::env::var("BENCH_TASKS") {
        let count: u32 = count.parse().expect("BENCH_TASKS: expected a whole number");
        runtime(tokio::runtime::Builder::new_current_thread()).block_on(spawn_and_await(count));
        return;
    }

    // `BENCH_SPAWNS=N`: only spawn and join N threads, for instruction counts under
    // callgrind (run.sh --callgrind), which are exact where wall time on a shared VM is not.
    if let Ok(count) = std::env::var("BENCH_SPAWNS") {
        let count: u32 = count
            .parse()
            .expect("BENCH_SPAWNS: expected a whole number");
        spawn_and_join(count);
        return;
    }

    // `BENCH_CHECKS=N`: only N clean checks of the bench's scope, for instruction counts.
    #[cfg(feature = "leakcheck")]
    if let Ok(count) = std::env::var("BENCH_CHECKS") {
        let count: u32 = count
            .parse()
            .expect("BENCH_CHECKS: expected a whole number");
        let options = leakcheck::Options::new();
        for _ in 0..count {
            scope.find(&options).unwrap();
        }
        return;
    }

    // `BENCH_PROCESSES=N`: only start and wait for N children, for wall-time ratios of whole
    // runs (run.sh, with farm-bench where it is installed).
    if let Ok(count) = std::env::var("BENCH_PROCESSES") {
        let count: u32 = count
            .parse()
            .expect("BENCH_PROCESSES: expected a whole number");
        for _ in 0..count {
            spawn_and_wait();
        }
        return;
    }

    // `BENCH_FORKS=N`: fork N children while other threads spawn and join, each child
    // spawning and joining one std thread under a 2 s alarm; prints how many hung. std's
    // own thread start takes a lock a fork can leave held (the stack-overflow handler's
    // table), so the plain build hangs some too: the rate beside it is what leakcheck adds.
    if let Ok(count) = std::env::var("BENCH_FORKS") {
        let count: u32 = count.parse().expect("BENCH_FORKS: expected a whole number");
        println!("fork_children_hung {}", forks_that_hang(count));
        return;
    }

    let started = Instant::now();
    spawn_and_join(4000);
    let spawn_join = started.elapsed().as_secs_f64() * 1e6 / 4000.0;
    println!("thread_spawn_join_us {spawn_join:.3}");

    // A child process started and waited for, as a test runs a program: through the
    // process hooks in the leakcheck build (posix_spawn, the marker in its environment,
    // its record, and the record forgotten by a check).
    let spawn_wait = per_op_micros(1000, spawn_and_wait);
    println!("process_spawn_wait_us {spawn_wait:.3}");
    #[cfg(feature = "leakcheck")]
    {
        let options = leakcheck::Options::new();
        let check = per_op_micros(1000, || {
            spawn_and_wait();
            scope.find(&options).unwrap();
        });
        println!("process_spawn_wait_check_us {check:.3}");
    }

    let current = runtime(tokio::runtime::Builder::new_current_thread());
    let tasks = 200_000;
    let started = std::time::Instant::now();
    current.block_on(spawn_and_await(tasks));
    let per_task = started.elapsed().as_secs_f64() * 1e6 / f64::from(tasks);
    println!("task_spawn_await_current_thread_us {per_task:.3}");
    drop(current);

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    let multi = runtime(builder);
    let batches = 200;
    let batch = 1000;
    let started = std::time::Instant::now();
    multi.block_on(async {
        for _ in 0..batches {
            let handles: Vec<_> = (0..batch)
                .map(|_| tokio::spawn(async { black_box(1) }))
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        }
    });
    let per_task = started.elapsed().as_secs_f64() * 1e6 / f64::from(batches * batch);
    println!("task_spawn_await_multi_thread_us {per_task:.3}");
    drop(multi);

    // A clean async test: in the plain build what `#[tokio::test]` does (build a
    // current_thread runtime, run the body, drop the runtime); with leakcheck what
    // `#[leakcheck::test]` on an async fn does.
    let async_test = per_op_micros(2000, || {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        #[cfg(not(feature = "leakcheck"))]
        {
            let runtime = builder.enable_all().build().unwrap();
            runtime.block_on(async { black_box(1) });
        }
        #[cfg(feature = "leakcheck")]
        {
            let body = std::pin::pin!(async { black_box(()) });
            leakcheck::__private::run_async_test(
                &TEST_SPEC,
                &leakcheck::Options::new(),
                std::mem::replace(&mut builder, tokio::runtime::Builder::new_current_thread()),
                leakcheck::__private::Flavor::CurrentThread,
                body,
            );
        }
    });
    println!("clean_async_test_us {async_test:.3}");

    #[cfg(feature = "leakcheck")]
    {
        let options = leakcheck::Options::new();
        let check = per_op_micros(20_000, || scope.find(&options).unwrap());
        println!("clean_scope_check_us {check:.3}");
        let test = per_op_micros(20_000, || {
            let test_scope = leakcheck::Scope::enter_named("a test");
            test_scope.find(&options).unwrap();
        });
        println!("clean_test_overhead_us {test:.3}");
        // Other scopes' live threads must not slow a clean scope's check down.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let stopped = std::sync::Arc::new(std::sync::Mutex::new(stopped));
        let others = leakcheck::Scope::enter_named("others");
        let busy: Vec<_> = (0..1000)
            .map(|_| {
                let stopped = stopped.clone();
                std::thread::spawn(move || {
                    let _ = stopped.lock().unwrap().recv();
                })
            })
            .collect();
        drop(others);
        let crowded = per_op_micros(20_000, || {
            let test_scope = leakcheck::Scope::enter_named("a test");
            test_scope.find(&options).unwrap();
        });
        println!("clean_test_with_1000_foreign_threads_us {crowded:.3}");

        // ... nor 100,000 live tasks of other scopes (counted only with task hooks).
        let shared = runtime(tokio::runtime::Builder::new_current_thread());
        let others = leakcheck::Scope::enter_named("others' tasks");
        let pending: Vec<_> = shared.block_on(async {
            (0..100_000)
                .map(|_| tokio::spawn(std::future::pending::<()>()))
                .collect()
        });
        drop(others);
        let crowded = per_op_micros(20_000, || {
            let test_scope = leakcheck::Scope::enter_named("a test");
            test_scope.find(&options).unwrap();
        });
        println!("clean_test_with_1000_threads_100k_tasks_us {crowded:.3}");
        pending.iter().for_each(tokio::task::JoinHandle::abort);
        drop(shared);
        drop(stop);
        busy.into_iter().for_each(|thread| thread.join().unwrap());

        // A service's snapshot: every live task grouped by spawn site, at 1,000 and at
        // 100,000 live tasks (of ten sites), the median of five takes.
        let service = runtime(tokio::runtime::Builder::new_current_thread());
        let mut live = Vec::new();
        for (count, label) in [(1_000, "1k"), (100_000, "100k")] {
            service.block_on(async {
                while live.len() < count {
                    live.push(match live.len() % 10 {
                        0 => tokio::spawn(std::future::pending::<()>()),
                        1 => tokio::spawn(std::future::pending::<()>()),
                        2 => tokio::spawn(std::future::pending::<()>()),
                        3 => tokio::spawn(std::future::pending::<()>()),
                        4 => tokio::spawn(std::future::pending::<()>()),
                        5 => tokio::spawn(std::future::pending::<()>()),
                        6 => tokio::spawn(std::future::pending::<()>()),
                        7 => tokio::spawn(std::future::pending::<()>()),
                        8 => tokio::spawn(std::future::pending::<()>()),
                        _ => tokio::spawn(std::future::pending::<()>()),
                    });
                }
            });
            let mut takes: Vec<f64> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    let snapshot = leakcheck::service::Snapshot::take();
                    let took = started.elapsed().as_secs_f64() * 1e3;
                    assert!(snapshot.tasks().is_none_or(|tasks| tasks >= count));
                    took
                })
                .collect();
            takes.sort_by(f64::total_cmp);
            println!("snapshot_{label}_tasks_ms {:.2}", takes[2]);
            // A watcher's interval with `publish_metrics`: the snapshot, the change since
            // the last one, and the gauges, into a Prometheus recorder.
            #[cfg(feature = "metrics")]
            {
                let recorder =
                    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
                let handle = recorder.handle();
                let mut gauges = leakcheck::service::SiteGauges::new(20);
                let mut last = leakcheck::service::Snapshot::take();
                let mut updates: Vec<f64> = (0..5)
                    .map(|_| {
                        metrics::with_local_recorder(&recorder, || {
                            let started = Instant::now();
                            let now = leakcheck::service::Snapshot::take();
                            gauges.publish(&now, &now.growth_since(&last));
                            let took = started.elapsed().as_secs_f64() * 1e3;
                            last = now;
                            took
                        })
                    })
                    .collect();
                updates.sort_by(f64::total_cmp);
                println!("metrics_update_{label}_tasks_ms {:.2}", updates[2]);
                let series = handle
                    .render()
                    .lines()
                    .filter(|line| line.starts_with("leakcheck_"))
                    .count();
                println!("metrics_series_{label}_tasks {series}");
            }
        }
        live.iter().for_each(tokio::task::JoinHandle::abort);
        drop(service);

        // A leaky test: from the end of its body to its failure, beyond the grace period.
        // The first report of a process loads the binary's debug info; later ones do not.
        let grace = std::time::Duration::from_millis(100);
        for run in ["first", "later"] {
            let leaky = leakcheck::Scope::enter_named("leaky");
            let (release, released) = std::sync::mpsc::channel::<()>();
            let leaked = std::thread::spawn(move || released.recv());
            let started = Instant::now();
            let report = leaky.find(&leakcheck::Options::new().grace(grace));
            let over = started.elapsed().saturating_sub(grace);
            assert!(report.is_err());
            println!(
                "leaky_test_over_grace_{run}_ms {:.1}",
                over.as_secs_f64() * 1e3
            );
            drop(leaky);
            drop(release);
            let _ = leaked.join();
        }
    }
}

#[cfg(feature = "leakcheck")]
static TEST_SPEC: leakcheck::__private::TestSpec = leakcheck::__private::TestSpec {
    module_path: "bench",
    fn_name: "clean_async_test",
    should_panic: false,
    manifest_dir: None,
};
