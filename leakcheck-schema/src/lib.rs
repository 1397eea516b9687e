//! What leakcheck, its `#[leakcheck::test]` attribute and `cargo leakcheck` share, in one
//! place so that the three never disagree:
//!
//! - [`attribute`]: the names of `#[leakcheck::test]`'s own arguments;
//! - [`rules`]: the grammar of ignore rules (`ignore_thread`, `ignore_spawn`, `ignore_top`,
//!   `ignore_process`), checked the same in the attribute (at compile time), `Options` and
//!   `leakcheck.toml`;
//! - [`policy`]: what a kind of finding does (`zombies = "warn"`, `lost_panics = "fail"`);
//! - [`duration`]: the grammar of durations (`grace = "300ms"`, `LEAKCHECK_GRACE=2s`) and
//!   how reports print them;
//! - [`record`]: the JSON record leakcheck appends to `LEAKCHECK_REPORT` for every checked
//!   test, which `cargo leakcheck` reads back: one set of types for the writer and the
//!   reader;
//! - [`snapshot`]: the JSON object of a `Snapshot` of a running service.
//!
//! Use it through the `leakcheck` crate; this crate has no stability promise of its own
//! beyond the record's `schema_version`. A crate of its own because the attribute's crate is
//! a proc-macro crate, which can export nothing but macros.
//!
//! leakcheck is linked into other people's test binaries, where a dependency that adds trait
//! impls to std or primitive types changes type inference in their code (serde_json's
//! `PartialEq<Value> for i32` makes `assert_eq!(n, (0..10).sum())` ambiguous). So the
//! records are written by this crate's own small JSON writer, and serde's derives, for
//! readers, are behind the `serde` feature, which leakcheck never enables.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod attribute;
pub mod duration;
mod json;
pub mod policy;
pub mod record;
pub mod rules;
pub mod snapshot;
