#!/usr/bin/env bash
# Usage: bench/run.sh [ROUNDS]   (default 5)
# Builds the bench plain and with leakcheck, runs them alternately, prints medians and
# the ratio of the hooked build to the plain one measured in the same run.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-5}
cargo build -q --release --target-dir target/plain
cargo build -q --release --features leakcheck --target-dir target/hooked
out=$(mktemp -d)
for _ in $(seq "$rounds"); do
    target/plain/release/leakcheck-bench >>"$out/plain"
    target/hooked/release/leakcheck-bench >>"$out/hooked"
done
median() { grep "^$1 " "$2" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
plain=$(median thread_spawn_join_us "$out/plain")
hooked=$(median thread_spawn_join_us "$out/hooked")
echo "machine: $(nproc) cores, $(uname -sr), $(date -u +%F)"
printf '%-42s %10s %10s %8s\n' measure plain leakcheck ratio
printf '%-42s %10s %10s %8s\n' "thread spawn + join (us)" "$plain" "$hooked" "$(awk -v h="$hooked" -v p="$plain" 'BEGIN {printf "%.3f", h / p}')"
for name in clean_scope_check_us clean_test_overhead_us clean_test_with_1000_foreign_threads_us; do
    printf '%-42s %10s %10s %8s\n' "$name" "-" "$(median "$name" "$out/hooked")" "-"
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
    printf '%-42s %10s %10s %8s\n' "thread spawn + join (user instructions)" "$ir_plain" "$ir_hooked" \
        "$(awk -v h="$ir_hooked" -v p="$ir_plain" 'BEGIN {printf "%.3f", h / p}')"
fi
