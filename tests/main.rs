//! The suite: one test binary (each binary links the whole dependency graph, so one link
//! instead of sixteen), one module per concern. Each module runs the fixture binaries as
//! child processes and checks what a user sees: exit statuses, report text, JSON.
//!
//! Three suites keep a binary of their own, because they look at the test process itself:
//! `snapshot.rs` and `soak.rs` count its own threads and children, and `cost_guard.rs`
//! installs a counting global allocator. The CLI's tests live with the CLI, in
//! `cargo-leakcheck/tests/`.
//!
//! Heavy runs (a fixture binary repeated at `--test-threads=8`, a nested cargo build) take
//! [`leakcheck_suite::heavy`], so that at most one runs at a time whatever libtest runs
//! beside it: a clean fixture must stay clean under the load one such run makes, not two.

mod attributes;
mod ci;
mod compile_errors;
mod drop_in;
mod ecosystem;
mod exit_gate;
mod faults;
mod layers;
mod panics;
mod pools;
mod processes;
mod prometheus;
mod reports;
mod service;
mod tasks;
mod threads;
