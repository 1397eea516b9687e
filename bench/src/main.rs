//! Prints `name value` lines (microseconds). Built twice by `run.sh`: plain, and with the
//! `leakcheck` feature, which links leakcheck (and so its spawn hook) and runs inside a
//! scope, the way a `#[leakcheck::test]` body does.

use std::hint::black_box;
use std::time::Instant;

fn per_op_micros(iterations: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        op();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

fn main() {
    #[cfg(feature = "leakcheck")]
    let scope = leakcheck::Scope::enter_named("bench");

    // `BENCH_SPAWNS=N`: only spawn and join N threads, for instruction counts under
    // callgrind (run.sh --callgrind), which are exact where wall time on a shared VM is not.
    if let Ok(count) = std::env::var("BENCH_SPAWNS") {
        let count: u32 = count
            .parse()
            .expect("BENCH_SPAWNS: expected a whole number");
        for _ in 0..count {
            std::thread::spawn(|| black_box(1)).join().unwrap();
        }
        return;
    }

    let spawn_join = per_op_micros(4000, || {
        std::thread::spawn(|| black_box(1))
            .join()
            .map(drop)
            .unwrap()
    });
    println!("thread_spawn_join_us {spawn_join:.3}");

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
        drop(stop);
        busy.into_iter().for_each(|thread| thread.join().unwrap());
    }
}
