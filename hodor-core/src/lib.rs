//! # hodor-core: one storage contract, pluggable drivers
//!
//! Application code holds a [`Contract`] and calls `set`, `get`, `exists`, `delete`, `list`,
//! `stat` and `close` on it. Which backend stores the bytes is chosen by name when the
//! contract is opened, and backends register themselves at link time.
//!
//! ```
//! use hodor_core::Contract;
//! use hodor_memory as _; // link the driver: Rust's version of Go's `import _ "..."`
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), hodor_core::Error> {
//! let cache = Contract::new("memory", "sessions", None)?;
//! cache.set("session/alice", "token-1", Some(Duration::from_secs(3600)))?;
//! assert_eq!(cache.get("session/alice")?, "token-1");
//! assert_eq!(cache.list("session/")?, ["session/alice"]);
//! cache.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! ## The contract
//!
//! These rules hold on every driver; the conformance suite in `hodor-testkit` checks them.
//!
//! **Two layers.** [`Contract`] is the user's side. It checks keys, refuses calls after
//! close, validates TTLs, counts operations and adds the driver, contract name and key to
//! every error, once for all backends. [`Driver`] is the backend's side: only the raw
//! operations, and it never sees an invalid key or a call that starts after close.
//!
//! **Opening.** `Contract::new(driver, name, config)` finds `driver` in the registry and
//! opens the store called `name`. The same driver and name mean the same data: two memory
//! contracts named `"sessions"` in one process share their entries, like two connections to
//! one database; for Redis the name is the key namespace. Reopening an open memory store
//! with a different config is [`Error::InvalidConfig`], never a silent merge. A memory
//! store's data lives while at least one contract for it is open, and is released when the
//! last one is closed or dropped. Config is JSON read into the driver's typed struct;
//! `None` and `{}` mean defaults; an unknown field or a wrong type is `InvalidConfig` and
//! names the field.
//!
//! **Keys and values.** A key is a `&str` of 1 to 1024 bytes without NUL. Everything else is
//! data and round-trips on every driver: `/`, `..`, leading, trailing or doubled `/`,
//! spaces, `*?[]\`, `%`, quotes, emoji. A broken rule is [`Error::InvalidKey`], raised before
//! any driver code runs. A value is any byte string, the empty one included; `get` returns
//! it as [`Bytes`] without copying it.
//!
//! | call | returns | rules |
//! |---|---|---|
//! | [`set(key, value, ttl)`](Contract::set) | `()` | overwrites; `None` = no expiry, clearing an earlier TTL; `Some(ZERO)` is `InvalidInput`; TTLs are kept to the millisecond, rounded up |
//! | [`get(key)`](Contract::get) | [`Bytes`] | `NotFound` when missing or expired; never an expired value |
//! | [`get_opt(key)`](Contract::get_opt) | `Option<Bytes>` | `get` for callers to whom a miss is normal: `None` when missing or expired, no error built |
//! | [`exists(key)`](Contract::exists) | `bool` | `false` when missing or expired |
//! | [`delete(key)`](Contract::delete) | `bool` | `true` only if a live entry was removed; a missing key is `Ok(false)` |
//! | [`list(prefix)`](Contract::list) | `Vec<String>` | live keys starting with `prefix` as plain bytes (not path segments), sorted by bytes, no duplicates, no expired key; `""` lists all |
//! | [`stat(key)`](Contract::stat) | [`Metadata`] | size, `modified` (wall clock of the last set), `expires_at`; `NotFound` like `get` |
//! | [`close()`](Contract::close) | `()` | idempotent; afterwards every call on the contract and its clones is `Closed` |
//!
//! **Expiry.** An entry set at time `t` with TTL `d` is live strictly before `t + d` and gone
//! from that instant on, for `get`, `exists`, `list` and `stat` alike. Expired entries are
//! reclaimed even if nobody reads them, within a bound each driver documents. Expiry is
//! wall-clock time, so a restart of a persistent backend never extends a TTL.
//!
//! **Errors.** Every call returns the one [`Error`] enum. Each variant names the driver, the
//! contract and the key where there is one, and its message says what to do. Nothing a
//! caller can pass makes hodor panic.
//!
//! **Registry.** A driver crate registers itself with [`register_driver!`], a wrapper around
//! `inventory::submit!` ([`inventory`] is re-exported, so driver crates need not depend on
//! it). The program links the driver with `use hodor_memory as _;`: Rust links a crate only
//! where code names it. [`drivers()`] lists what is linked. Two registrations of one name
//! are [`Error::DuplicateDriver`] at lookup, never a silent choice.
//! [`Contract::from_driver`] opens a driver value without the registry.
//!
//! **Capabilities.** A driver states what it supports in [`Capabilities`]. Using what it
//! lacks (a TTL on a driver without expiry) is [`Error::Unsupported`], never a silent no-op.
//!
//! ## Writing a driver
//! Implement [`Driver`] (its docs list each obligation), register an [`driver::OpenFn`]
//! with [`register_driver!`], and run `hodor_testkit::conformance_tests!` from the
//! driver crate's tests.

#![deny(missing_docs)]
// Library code never panics on caller input; unit tests may (see clippy.toml).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod clock;
mod contract;
pub mod driver;
mod error;
mod key;
// Built with `--cfg hodor_no_counters`, nothing calls the counters (see `Metrics`).
#[cfg_attr(hodor_no_counters, allow(dead_code))]
mod metrics;
mod registry;

pub use bytes::Bytes;
/// Re-exported so driver crates can use [`register_driver!`] without depending on it.
pub use inventory;

pub use contract::{Contract, MAX_TTL};
pub use driver::{Capabilities, Driver, Gauges, Metadata};
pub use error::{BoxError, Error, Result};
pub use key::MAX_KEY_LEN;
pub use metrics::Metrics;
pub use registry::{Registration, drivers};

/// The README's Rust examples compile and run as doc tests, so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
