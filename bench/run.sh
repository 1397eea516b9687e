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
