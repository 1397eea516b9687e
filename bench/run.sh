#!/usr/bin/env bash
# Usage: bench/run.sh [ROUNDS]   (default 5)
# Builds the bench plain, with leakcheck, and with leakcheck under --cfg tokio_unstable
# (task hooks on), runs them alternately, prints medians and the ratio of each leakcheck
# build to the plain one measured in the same run.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-5}
cargo build -q --release --target-dir target/plain
cargo build -q --release --features leakcheck --target-dir target/hooked
RUSTFLAGS="--cfg tokio_unstable" cargo build -q --release --features leakcheck --target-dir target/tasks
out=$(mktemp -d)
for _ in $(seq "$rounds"); do
    target/plain/release/leakcheck-bench >>"$out/plain"
    target/hooked/release/leakcheck-bench >>"$out/hooked"
    target/tasks/release/leakcheck-bench >>"$out/tasks"
    LEAKCHECK_TASK_BACKTRACE=1 target/tasks/release/leakcheck-bench | sed 's/^task_/traced_task_/' >>"$out/tasks"
done
median() { grep "^$1 " "$2" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { # label, measure in the plain build, build with leakcheck, measure there
    local plain hooked
    plain=$(median "$2" "$out/plain")
    hooked=$(median "$4" "$out/$3")
    printf '%-46s %10s %10s %8s\n' "$1" "$plain" "$hooked" "$(awk -v h="$hooked" -v p="$plain" 'BEGIN {printf "%.2f", h / p}')"
}
echo "machine: $(nproc) cores, $(uname -sr), $(date -u +%F), $rounds rounds"
printf '%-46s %10s %10s %8s\n' measure plain leakcheck ratio
row "thread spawn + join (us)" thread_spawn_join_us hooked thread_spawn_join_us
row "task spawn + await, current_thread (us)" task_spawn_await_current_thread_us tasks task_spawn_await_current_thread_us
row "task spawn + await, multi_thread (us)" task_spawn_await_multi_thread_us tasks task_spawn_await_multi_thread_us
row "  the same, LEAKCHECK_TASK_BACKTRACE=1 (us)" task_spawn_await_current_thread_us tasks traced_task_spawn_await_current_thread_us
row "  multi_thread, LEAKCHECK_TASK_BACKTRACE=1 (us)" task_spawn_await_multi_thread_us tasks traced_task_spawn_await_multi_thread_us
for name in clean_scope_check_us clean_test_overhead_us clean_test_with_1000_foreign_threads_us; do
    printf '%-46s %10s %10s %8s\n' "$name" "-" "$(median "$name" "$out/hooked")" "-"
done
rm -r "$out"

# Wall time on a shared VM swings by tens of percent between runs; user-space instruction
# counts under callgrind are exact. Per spawn+join: (count at 300 spawns - at 100) / 200.
if command -v valgrind >/dev/null; then
    instructions() {
        BENCH_SPAWNS=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" 2>&1 |
            awk '/Collected/ {gsub(",", "", $4); print $4}'
    }
    for build in plain hooked; do
        low=$(instructions "target/$build/release/leakcheck-bench" 100)
        high=$(instructions "target/$build/release/leakcheck-bench" 300)
        eval "ir_$build=$(( (high - low) / 200 ))"
    done
    printf '%-46s %10s %10s %8s\n' "thread spawn + join (user instructions)" "$ir_plain" "$ir_hooked" \
        "$(awk -v h="$ir_hooked" -v p="$ir_plain" 'BEGIN {printf "%.2f", h / p}')"
    # Per task spawn + await: (count at 30,000 tasks - at 10,000) / 20,000.
    tasks() {
        BENCH_TASKS=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" 2>&1 |
            awk '/Collected/ {gsub(",", "", $4); print $4}'
    }
    for build in plain tasks; do
        low=$(tasks "target/$build/release/leakcheck-bench" 10000)
        high=$(tasks "target/$build/release/leakcheck-bench" 30000)
        eval "tr_$build=$(( (high - low) / 20000 ))"
    done
    printf '%-46s %10s %10s %8s\n' "task spawn + await (user instructions)" "$tr_plain" "$tr_tasks" \
        "$(awk -v h="$tr_tasks" -v p="$tr_plain" 'BEGIN {printf "%.2f", h / p}')"
fi
