#!/usr/bin/env bash
# Usage: bench/run.sh [ROUNDS]   (default 5)
# Builds the bench plain, with leakcheck, with leakcheck under --cfg tokio_unstable (task
# hooks on), and plain under --cfg tokio_unstable with tokio's taskdump (tokio as leakcheck
# builds it there, without leakcheck: what the hooks alone cost is measured against it);
# runs them alternately, prints medians and the ratio of each leakcheck build to its
# baseline measured in the same run; then the first report of a debug test binary and the
# bytes a live thread keeps for its spawn record there (the fixtures, tests/cost_guard.rs);
# then user-space instructions per operation under callgrind.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-5}
cargo build -q --release --target-dir target/plain
cargo build -q --release --features leakcheck --target-dir target/hooked
RUSTFLAGS="--cfg tokio_unstable" cargo build -q --release --features leakcheck,metrics --target-dir target/tasks
RUSTFLAGS="--cfg tokio_unstable" cargo build -q --release --features tokio-taskdump --target-dir target/unstable-plain
RUSTFLAGS="--cfg tokio_unstable --cfg leakcheck_no_taskdump" cargo build -q --release --features leakcheck --target-dir target/lean
out=$(mktemp -d)
for _ in $(seq "$rounds"); do
    target/plain/release/leakcheck-bench >>"$out/plain"
    target/unstable-plain/release/leakcheck-bench >>"$out/unstable-plain"
    target/hooked/release/leakcheck-bench >>"$out/hooked"
    target/tasks/release/leakcheck-bench >>"$out/tasks"
    target/lean/release/leakcheck-bench >>"$out/lean"
    LEAKCHECK_TASK_BACKTRACE=1 target/tasks/release/leakcheck-bench | sed 's/^task_/traced_task_/' >>"$out/tasks"
done
median() { grep "^$1 " "$2" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { # label, measure in the plain build, build with leakcheck, measure there[, baseline build]
    local plain hooked
    plain=$(median "$2" "$out/${5:-plain}")
    hooked=$(median "$4" "$out/$3")
    printf '%-46s %10s %10s %8s\n' "$1" "$plain" "$hooked" "$(awk -v h="$hooked" -v p="$plain" 'BEGIN {printf "%.2f", h / p}')"
}
echo "machine: $(nproc) cores, $(uname -sr), $(date -u +%F), $rounds rounds"
printf '%-46s %10s %10s %8s\n' measure plain leakcheck ratio
row "thread spawn + join (us)" thread_spawn_join_us hooked thread_spawn_join_us
row "process spawn + wait of true (us)" process_spawn_wait_us hooked process_spawn_wait_us
row "  and the test's check after it (us)" process_spawn_wait_us hooked process_spawn_wait_check_us
row "task spawn + await, current_thread (us)" task_spawn_await_current_thread_us tasks task_spawn_await_current_thread_us
row "  hooks alone, vs the same tokio build (us)" task_spawn_await_current_thread_us tasks task_spawn_await_current_thread_us unstable-plain
row "  --cfg leakcheck_no_taskdump (us)" task_spawn_await_current_thread_us lean task_spawn_await_current_thread_us
row "task spawn + await, multi_thread (us)" task_spawn_await_multi_thread_us tasks task_spawn_await_multi_thread_us
row "  hooks alone, vs the same tokio build (us)" task_spawn_await_multi_thread_us tasks task_spawn_await_multi_thread_us unstable-plain
row "  --cfg leakcheck_no_taskdump (us)" task_spawn_await_multi_thread_us lean task_spawn_await_multi_thread_us
row "  the same, LEAKCHECK_TASK_BACKTRACE=1 (us)" task_spawn_await_current_thread_us tasks traced_task_spawn_await_current_thread_us
row "  multi_thread, LEAKCHECK_TASK_BACKTRACE=1 (us)" task_spawn_await_multi_thread_us tasks traced_task_spawn_await_multi_thread_us
row "clean async test, current_thread (us)" clean_async_test_us hooked clean_async_test_us
row "  with task hooks (us)" clean_async_test_us tasks clean_async_test_us
for name in clean_scope_check_us clean_test_overhead_us clean_test_with_1000_foreign_threads_us \
    leaky_test_over_grace_first_ms leaky_test_over_grace_later_ms; do
    printf '%-46s %10s %10s %8s\n' "$name" "-" "$(median "$name" "$out/hooked")" "-"
done
for name in clean_test_with_1000_threads_100k_tasks_us snapshot_1k_tasks_ms snapshot_100k_tasks_ms \
    metrics_update_1k_tasks_ms metrics_update_100k_tasks_ms metrics_series_100k_tasks; do
    printf '%-46s %10s %10s %8s\n' "$name" "-" "$(median "$name" "$out/tasks")" "-"
done
rm -r "$out"

# Children forked while threads spawn, each spawning and joining one std thread: how many
# hang (std's own lock, held across the fork by a thread starting), without and with
# leakcheck, in the same run. A rate that grows beside its control means leakcheck's locks
# joined the hazard.
plain_hung=$(BENCH_FORKS=1000 target/plain/release/leakcheck-bench | awk '{print $2}')
hooked_hung=$(BENCH_FORKS=1000 target/hooked/release/leakcheck-bench | awk '{print $2}')
printf '%-46s %10s %10s %8s\n' "forked children hung (of 1000)" "$plain_hung" "$hooked_hung" "-"

# A debug test binary, as `cargo test` builds it: the first report of a process, from the
# end of the test's body to its failure, beyond the grace period (the fixture's thread
# blocked on a channel, default grace 500 ms), less a clean test's run of the same binary.
# And what a live thread keeps for its spawn record there (tests/cost_guard.rs, which
# counts bytes still allocated per live thread with and without the spawn hook).
(cd ../fixtures && cargo build -q --tests --target-dir ../target/fixtures)
fixture=$(ls -t ../target/fixtures/debug/deps/threads-* | grep -v '\.d$' | head -1)
wall_ms() { # test name (the leaky one fails, as it should)
    for _ in $(seq "$rounds"); do
        { /usr/bin/time -f '%e' "$fixture" --exact "$1" 2>&1 >/dev/null || true; } | tail -1
    done | sort -g | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)] * 1000}'
}
leaky=$(wall_ms leaks_thread_blocked_on_channel)
clean=$(wall_ms clean_returns_ok)
printf '%-46s %10s %10s %8s\n' "debug_first_report_over_grace_ms" "-" "$((leaky - clean - 500))" "-"
bytes=$(cd .. && cargo test -q -p leakcheck-suite --test cost_guard a_live_thread_keeps -- --nocapture 2>/dev/null |
    awk '/per live thread/ {print $10 - $4}')
printf '%-46s %10s %10s %8s\n' "debug_spawn_record_bytes_per_live_thread" "-" "$bytes" "-"

# One test a process, as nextest runs a suite: a test that uses async-io, whose reactor
# thread lives for the process (the default allowlist's), 20 processes in a row, with the
# check against LEAKCHECK=off (the hooks pass through, nothing is checked). The allowlist
# applies at the check's first look, so the test ends at once rather than after the grace.
ecosystem=$(ls -t ../target/fixtures/debug/deps/ecosystem-* | grep -v '\.d$' | head -1)
per_process_ms() { # more env
    local started ended
    started=$(date +%s%N)
    for _ in $(seq 20); do
        env "$@" "$ecosystem" --exact clean_async_io_reactor >/dev/null 2>&1
    done
    ended=$(date +%s%N)
    echo $(((ended - started) / 20 / 1000000))
}
off=$(per_process_ms LEAKCHECK=off)
on=$(per_process_ms LEAKCHECK=fail)
printf '%-46s %10s %10s %8s\n' "async_io_test_process_ms (nextest-like)" "$off" "$on" \
    "$(awk -v h="$on" -v p="$off" 'BEGIN {printf "%.2f", h / (p > 0 ? p : 1)}')"

# Wall time on a shared VM swings by tens of percent between runs; user-space instruction
# counts under callgrind are exact. Per operation: the count at 3N operations minus at N,
# over 2N, so start-up cancels out.
if command -v valgrind >/dev/null; then
    collected() { # binary, env var that sets the count, count, more env
        env "$2=$3" ${4:-} valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" 2>&1 |
            awk '/Collected/ {gsub(",", "", $4); print $4}'
    }
    per_op() { # build, env var, N, more env
        local low high
        low=$(collected "target/$1/release/leakcheck-bench" "$2" "$3" "${4:-}")
        high=$(collected "target/$1/release/leakcheck-bench" "$2" $(($3 * 3)) "${4:-}")
        echo $(((high - low) / ($3 * 2)))
    }
    instruction_row() { # label, leakcheck build, env var, N[, baseline build[, more env]]
        local plain hooked
        plain=$(per_op "${5:-plain}" "$3" "$4")
        hooked=$(per_op "$2" "$3" "$4" "${6:-}")
        printf '%-46s %10s %10s %8s\n' "$1" "$plain" "$hooked" \
            "$(awk -v h="$hooked" -v p="$plain" 'BEGIN {printf "%.2f", h / p}')"
    }
    instruction_row "thread spawn + join (user instructions)" hooked BENCH_SPAWNS 400
    instruction_row "process spawn + wait (user instructions)" hooked BENCH_PROCESSES 20
    instruction_row "task spawn + await (user instructions)" tasks BENCH_TASKS 10000
    instruction_row "  hooks alone, vs the same tokio build" tasks BENCH_TASKS 10000 unstable-plain
    instruction_row "  --cfg leakcheck_no_taskdump" lean BENCH_TASKS 10000
    instruction_row "  LEAKCHECK_TASK_BACKTRACE=1" tasks BENCH_TASKS 10000 plain \
        LEAKCHECK_TASK_BACKTRACE=1
fi
