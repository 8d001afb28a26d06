//! Runnable examples of hodor live in `examples/`; run one with
//! `cargo run --example quickstart` from the repository root.
