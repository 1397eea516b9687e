#!/usr/bin/env bash
# Usage: bench/run.sh [ROUNDS]   (default 5)
# Builds the bench plain, with leakcheck, with leakcheck under --cfg tokio_unstable (task
# hooks on), and plain under --cfg tokio_unstable with tokio's taskdump (tokio as leakcheck
# builds it there, without leakcheck: what the hooks alone cost is measured against it);
# runs them alternately, prints medians and the ratio of each leakcheck build to its
# baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-5}
cargo build -q --release --target-dir target/plain
cargo build -q --release --features leakcheck --target-dir target/hooked
RUSTFLAGS="--cfg tokio_unstable" cargo build -q --release --features leakcheck --target-dir target/tasks
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
for name in clean_test_with_1000_threads_100k_tasks_us snapshot_1k_tasks_ms snapshot_100k_tasks_ms; do
    printf '%-46s %10s %10s %8s\n' "$name" "-" "$(median "$name" "$out/tasks")" "-"
done
rm -r "$out"

# Wall time on a shared VM swings by tens of percent between runs; user-space instruction
# counts under callgrind are exact. Per operation: the count at 3N operations minus at N,
# over 2N, so start-up cancels out.
if command -v valgrind >/dev/null; then
    collected() { # binary, env var that sets the count, count
        env "$2=$3" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" 2>&1 |
            awk '/Collected/ {gsub(",", "", $4); print $4}'
    }
    per_op() { # build, env var, N
        local low high
        low=$(collected "target/$1/release/leakcheck-bench" "$2" "$3")
        high=$(collected "target/$1/release/leakcheck-bench" "$2" $(($3 * 3)))
        echo $(((high - low) / ($3 * 2)))
    }
    instruction_row() { # label, leakcheck build, env var, N[, baseline build]
        local plain hooked
        plain=$(per_op "${5:-plain}" "$3" "$4")
        hooked=$(per_op "$2" "$3" "$4")
        printf '%-46s %10s %10s %8s\n' "$1" "$plain" "$hooked" \
            "$(awk -v h="$hooked" -v p="$plain" 'BEGIN {printf "%.2f", h / p}')"
    }
    instruction_row "thread spawn + join (user instructions)" hooked BENCH_SPAWNS 100
    instruction_row "task spawn + await (user instructions)" tasks BENCH_TASKS 10000
    instruction_row "  hooks alone, vs the same tokio build" tasks BENCH_TASKS 10000 unstable-plain
    instruction_row "  --cfg leakcheck_no_taskdump" lean BENCH_TASKS 10000
fi
