//! The README's Rust examples, run as doc tests: `cargo test -p hodor-docs-test`. They
//! live here rather than in hodor-core so that testing the core needs no driver crate, and
//! the README can show every crate (the memory and Redis drivers, hodor-log, the async
//! face) without any of them depending on the others.

#![deny(missing_docs)]

/// The README's examples.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
