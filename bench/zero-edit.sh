#!/usr/bin/env bash
# Usage: bench/zero-edit.sh [ROUNDS]   (default 10)
# What `cargo leakcheck` costs on a workspace nobody changed (fixtures/zero-edit, its clean
# tests): `cargo leakcheck` against `cargo test`, `cargo leakcheck nextest` against
# `cargo nextest run`, run alternately, medians of wall time and their ratio; then the cost
# a test process pays, 50 processes in a row: the preloaded library alone, and the library
# with leakcheck's runner in front (as each test starts under nextest); then that a second
# run compiles nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
cargo build -q --release -p cargo-leakcheck
bin=$(mktemp -d)
ln -s "$PWD/target/release/cargo-leakcheck" "$bin/cargo-leakcheck"
export PATH="$bin:$PATH"
export CARGO_TARGET_DIR="$PWD/target/zero-edit-bench"
export XDG_CACHE_HOME="$PWD/target/zero-edit-bench/cache"
unset RUSTFLAGS LEAKCHECK LEAKCHECK_REPORT RUST_BACKTRACE
cd fixtures/zero-edit
filter=clean_
has_nextest=$(cargo nextest --version >/dev/null 2>&1 && echo yes || echo no)

# Warm: everything built, the preloaded library included.
cargo test -q -p plain -- "$filter" >/dev/null 2>&1
cargo leakcheck -p plain -- "$filter" >/dev/null 2>&1
if [ "$has_nextest" = yes ]; then
    cargo nextest run -p plain -E "test(/^$filter/) | test(/::$filter/)" >/dev/null 2>&1
fi

seconds() { # command...
    local started ended
    started=$(date +%s%N)
    "$@" >/dev/null 2>&1
    ended=$(date +%s%N)
    echo $(((ended - started) / 1000))
}
out=$(mktemp -d)
for _ in $(seq "$rounds"); do
    seconds cargo test -p plain -- "$filter" >>"$out/test"
    seconds cargo leakcheck --help >>"$out/dispatch"
    seconds cargo leakcheck -p plain -- "$filter" >>"$out/leakcheck"
    if [ "$has_nextest" = yes ]; then
        expression="test(/^$filter/) | test(/::$filter/)"
        seconds cargo nextest run -p plain -E "$expression" >>"$out/nextest"
        seconds cargo leakcheck nextest -p plain -E "$expression" >>"$out/leakcheck-nextest"
    fi
done
median() { sort -g "$1" | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)] / 1000}'; }
row() { # label, plain file, leakcheck file
    local plain hooked
    plain=$(median "$out/$2")
    hooked=$(median "$out/$3")
    printf '%-46s %10s %10s %8s\n' "$1" "$plain" "$hooked" \
        "$(awk -v h="$hooked" -v p="$plain" 'BEGIN {printf "%.2f", h / p}')"
}
echo "machine: $(nproc) cores, $(uname -sr), $(date -u +%F), $rounds rounds"
printf '%-46s %10s %10s %8s\n' measure plain leakcheck ratio
row "cargo test / cargo leakcheck (ms)" test leakcheck
# What cargo itself takes to start any subcommand (`cargo nextest` pays it too).
printf '%-46s %10s %10s %8s\n' "  of which cargo starting a subcommand (ms)" "-" "$(median "$out/dispatch")" "-"
if [ "$has_nextest" = yes ]; then
    row "cargo nextest run / cargo leakcheck nextest (ms)" nextest leakcheck-nextest
fi

# One test process, as nextest starts each: the integration-test binary with one clean test,
# 50 times, plain; with the library preloaded; and through leakcheck's runner (the words
# `cargo leakcheck` gives cargo as the target runner), which reads what the binary is, sets
# the library's settings and execs it.
suite=$(ls -t "$CARGO_TARGET_DIR"/debug/deps/suite-* | grep -v '\.d$' | head -1)
# The library the warm-up run used: the newest in the cache.
library=$(ls -t "$XDG_CACHE_HOME"/leakcheck/preload-*/*/target/release/libleakcheck_preload.so | head -1)
state=$(mktemp -d)
per_process_us() { # command words before the binary
    local started ended
    started=$(date +%s%N)
    for _ in $(seq 50); do
        "$@" "$suite" --exact clean_joins_its_named_thread >/dev/null 2>&1
    done
    ended=$(date +%s%N)
    echo $(((ended - started) / 50 / 1000))
}
plain_us=$(per_process_us env)
preloaded_us=$(per_process_us env LD_PRELOAD="$library" LEAKCHECK_PRELOAD_TARGET="$suite")
runner_us=$(per_process_us cargo-leakcheck __runner --library "$library" --report "$state/records.jsonl" \
    --state "$state" --chain 0 --)
printf '%-46s %10s %10s %8s\n' "a test process, library preloaded (us)" "$plain_us" "$preloaded_us" \
    "+$((preloaded_us - plain_us))"
printf '%-46s %10s %10s %8s\n' "  through leakcheck's runner (us)" "$plain_us" "$runner_us" \
    "+$((runner_us - plain_us))"

# Neither run rebuilds what the other built: cargo says "Compiling" for each crate it
# builds.
compiling() { "$@" 2>&1 | grep -c '^ *Compiling' || true; }
cargo test -q -p plain -- "$filter" >/dev/null 2>&1
after_test=$(compiling cargo leakcheck -p plain -- "$filter")
after_leakcheck=$(compiling cargo test -p plain -- "$filter")
printf '%-46s %10s %10s %8s\n' "crates compiled by cargo leakcheck after test" "-" "$after_test" "-"
printf '%-46s %10s %10s %8s\n' "crates compiled by cargo test after leakcheck" "-" "$after_leakcheck" "-"
rm -r "$out" "$state" "$bin"
