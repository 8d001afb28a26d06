//! # hodor-core: one storage contract, pluggable drivers
//!
//! Application code holds a [`Contract`] and calls `set`, `get`, `exists`, `delete`, `list`,
//! `stat` and `close` on it. Which backend stores the bytes is chosen by name when the
//! contract is opened, and backends register themselves at link time.
//!
//! ```no_run
//! use hodor_core::Contract;
//! use std::time::Duration;
//! // use hodor_memory as _; // link the driver: Rust's version of Go's `import _ "..."`
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
//! (This crate depends on no driver, so its examples are compiled but not run; the same
//! example runs in `hodor-memory`'s documentation and in the README's tests.)
//!
//! Beyond the five calls: conditional writes ([`Contract::create`],
//! [`Contract::set_if_version`] with the [`Version`] `stat` reports,
//! [`Contract::increment`], and [`Contract::get_or_insert_with`], cache-aside with one
//! loader per key), paged listing ([`Contract::list_page`], [`Contract::pages`]), bulk
//! calls, typed JSON, metrics, and with the `tokio` feature an async face
//! (`AsyncContract`).
//!
//! ## The contract
//!
//! These rules hold on every driver; the conformance suite in `hodor-testkit` checks each
//! one with a case of its own.
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
//! with a different config is [`Error::InvalidConfig`], never a silent merge, and the refused
//! open changes nothing and keeps nothing open. Config is JSON read into the driver's typed
//! struct; `None` and `{}` mean defaults; an unknown field or a wrong type is
//! `InvalidConfig` and names the field.
//!
//! **Names.** Names are compared as exact bytes over their whole length: names that differ
//! only in case (`store`, `Store`), or only after byte 64, 128 or 255, are different stores.
//! Two contracts of one name see each other's writes and deletes at once, in both
//! directions, whatever each read before: no handle serves a cached copy.
//!
//! **Lifetime.** A store's data lives while at least one contract of its name is open, even
//! when others are closed (dropped or not). Without [`Capabilities::persistent`] it is
//! released when the last one is closed or dropped, and the next open of the name starts
//! empty; a closed contract that is never dropped holds nothing.
//!
//! **Keys and values.** A key is a `&str` of 1 to 1024 bytes without NUL. Everything else is
//! data and round-trips on every driver: `/`, `..`, leading, trailing or doubled `/`,
//! spaces, `*?[]\`, `%`, quotes, emoji. Keys are compared by all their bytes: `007`, `7`,
//! `+7` and `7.0` are four keys, and two 1024-byte keys that differ only in their last
//! character are two. A broken rule is [`Error::InvalidKey`], raised before any driver code
//! runs. A value is any byte string, the empty one included, and comes back byte for byte:
//! no line endings converted, no trailing newline or space trimmed, nothing that looks like a
//! number or JSON re-encoded. `get` returns it as [`Bytes`] without copying it.
//!
//! | call | returns | rules |
//! |---|---|---|
//! | [`set(key, value, ttl)`](Contract::set) | `()` | overwrites; `None` = no expiry, clearing an earlier TTL; `Some(ZERO)` is `InvalidInput`; TTLs are kept to the millisecond, rounded up |
//! | [`get(key)`](Contract::get) | [`Bytes`] | `NotFound` when missing or expired; never an expired value |
//! | [`get_opt(key)`](Contract::get_opt) | `Option<Bytes>` | `get` for callers to whom a miss is normal: `None` when missing or expired, no error built |
//! | [`exists(key)`](Contract::exists) | `bool` | `false` when missing or expired |
//! | [`delete(key)`](Contract::delete) | `bool` | `true` only if a live entry was removed; a missing key is `Ok(false)` |
//! | [`list(prefix)`](Contract::list) | `Vec<String>` | live keys starting with `prefix` as plain bytes (not path segments), sorted by bytes, no duplicates, no expired key; `""` lists all |
//! | [`stat(key)`](Contract::stat) | [`Metadata`] | size, `modified` (wall clock of the last set), `expires_at`, `version`; `NotFound` like `get` |
//! | [`close()`](Contract::close) | `()` | idempotent; afterwards every call on the contract and its clones is `Closed` |
//! | [`list_page(prefix, start_after, limit)`](Contract::list_page) | [`Page`] | at most `limit` keys of `list`'s order strictly after `start_after`, and the next cursor (`None` after the last page); `limit` 0 is `InvalidInput` |
//! | [`create(key, value, ttl)`](Contract::create) | `bool` | writes only over no live entry (missing, deleted or expired) |
//! | [`set_if_version(key, value, ttl, expected)`](Contract::set_if_version) | `bool` | writes only while the live entry has the version `expected` |
//! | [`increment(key, delta)`](Contract::increment) | `i64` | adds to a decimal `i64` counter (absent = 0, created without TTL; an existing one keeps its TTL); non-canonical text or a sum past `i64` is `InvalidInput`, never a wrap |
//! | [`get_or_insert_with(key, ttl, f)`](Contract::get_or_insert_with) | [`Bytes`] | the value, or `f`'s, stored with `create`; one `f` per key at a time in the process |
//!
//! **Reads change nothing.** `get`, `get_many`, `exists`, `stat`, `list` and `list_page`
//! leave `modified`, `expires_at` and `version` as they were: no access time, no sliding
//! TTL.
//!
//! **Versions and conditions.** `stat` reports a [`Version`] that changes on every write of
//! the key (`set`, `set_many`, each conditional write, and a key deleted or expired and
//! written again, which never gets an old version back), and only then. With
//! [`Capabilities::conditional`], `create`, `set_if_version` and `increment` are atomic per
//! key on every contract and in every process sharing the store: of racing `create`s of one
//! key exactly one returns `true`, of racing `set_if_version`s with one version at most
//! one, and no `increment` is lost. `get_or_insert_with` builds on them: one caller per key
//! in the process runs `f` (with no lock held), the others wait and read what it stored; an
//! error or panic in `f` goes to its caller and the next waiter runs its own. Without the
//! capability all four are [`Error::Unsupported`].
//!
//! **Listing cost.** `list` returns every matching key in one call and costs all of them;
//! `list_page` costs what it returns. Pages read one after another return every key that
//! stays live meanwhile exactly once, in order; a key created or removed meanwhile may or
//! may not appear. A driver without native paging gets a correct default built on `list`.
//!
//! **Bulk calls** take any number of keys a caller can hold in memory (thousands included):
//! a driver whose backend has batch limits splits the call itself, keeps the order (values
//! come back in the order of the keys, a key given twice in `set_many` keeps its last value)
//! and loses no page. `set_many`'s TTL (or its `None`) replaces whatever TTL each key had.
//! With [`Capabilities::atomic_bulk`] no reader sees part of a `set_many` or `delete_many`.
//!
//! **Expiry.** An entry set at time `t` with TTL `d` is live strictly before `t + d` and gone
//! from that instant on, for `get`, `exists`, `list` and `stat` alike. Expired entries are
//! reclaimed even if nobody reads them, within a bound each driver documents; reclaiming an
//! old deadline never removes a key that was written again since. Expiry is wall-clock
//! time, so a restart of a persistent backend never extends a TTL.
//!
//! **Concurrency.** Every write is one step for readers: a key that is only overwritten is
//! always found, a value is always seen with the TTL it was written with, a key that can be
//! read is listed and a listed key can be read. Of deletes of one live key racing each
//! other, exactly one returns `true`; writers creating one key at once leave it listed once.
//!
//! **Limits.** A driver with [`Capabilities::limits`] keeps `bytes <= max_bytes` and
//! `entries <= max_entries` after every call, overwrites that grow values included.
//! Overwriting keys that exist never evicts other keys. A value, or a `set_many` batch,
//! that cannot fit is [`Error::CapacityExceeded`] with nothing written and nothing evicted;
//! a batch that fits by evicting others leaves every one of its entries readable. Expired
//! entries are reclaimed before any live entry is evicted and count as `expirations`, not
//! `evictions`; once they are reclaimed, the `entries` gauge counts the live keys.
//!
//! **Errors.** Every call returns the one [`Error`] enum. Each variant names the driver, the
//! contract and the key where there is one, and its message says what to do. Every input a
//! message repeats is bounded ([`Echo`]), so a huge name, key or config value gives a short
//! message, in `Display` and `Debug` alike. A backend failure ([`Error::Backend`]) says why
//! ([`BackendKind`]) and, for a write, whether it may have been applied anyway
//! ([`Applied`]); [`Error::is_retryable`] tells a passing failure from a lasting one.
//! Nothing a caller can pass makes hodor panic.
//!
//! **Registry.** A driver crate registers itself with [`register_driver!`], a wrapper around
//! `inventory::submit!` ([`inventory`] is re-exported, so driver crates need not depend on
//! it). The program links the driver with `use hodor_memory as _;`: Rust links a crate only
//! where code names it. [`drivers()`] lists what is linked. Two registrations of one name
//! are [`Error::DuplicateDriver`] at lookup, never a silent choice.
//! [`Contract::from_driver`] opens a driver value without the registry.
//!
//! **Capabilities.** A driver states what it supports in [`Capabilities`]. Using what it
//! lacks (a TTL on a driver without expiry, a conditional write on a driver without
//! `conditional`) is [`Error::Unsupported`], never a silent no-op.
//!
//! **Async** (feature `tokio`). `AsyncContract` offers every operation as an `async fn`:
//! inline for a driver with [`Capabilities::non_blocking`], on tokio's blocking pool for
//! the others, moving values rather than copying them. Use it from async code; use
//! `Contract` from threads.
//!
//! **Watch.** With [`Capabilities::watch`], [`Contract::watch`] delivers the store's changes
//! as [`watch::Event`]s (put, delete, expired, evicted) carrying a per-store `seq`. Per key
//! they arrive in the order the writes took effect; a consumer too slow for its bounded
//! buffer gets one [`watch::Item::Lagged`] and never slows a writer; resuming from a `seq`
//! older than the history the store keeps is [`Error::Compacted`], which says to resync;
//! a snapshot and the events after it have no gap and no duplicate. The [`watch`] module
//! states every rule. [`sync`] builds typed config on it: [`sync::Synced`] follows one key
//! (lock-free reads, callbacks with old and new values, the last good value kept when a bad
//! one is written), [`sync::SyncedMap`] every key under a prefix, and both poll drivers
//! that cannot watch.
//!
//! ## Writing a driver
//! Implement [`Driver`] (its docs list each obligation), register an [`driver::OpenFn`]
//! with [`register_driver!`], and run `hodor_testkit::conformance_tests!` from the
//! driver crate's tests.

#![deny(missing_docs)]
// Library code never panics on caller input; unit tests may (see clippy.toml).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[cfg(feature = "tokio")]
mod async_contract;
pub mod clock;
mod contract;
pub mod driver;
mod error;
mod flight;
mod key;
// Built with `--cfg hodor_no_counters`, nothing calls the counters (see `Metrics`).
#[cfg_attr(hodor_no_counters, allow(dead_code))]
mod metrics;
mod page;
mod registry;
pub mod sync;
mod version;
pub mod watch;

pub use bytes::Bytes;
/// Re-exported so driver crates can use [`register_driver!`] without depending on it.
pub use inventory;

#[cfg(feature = "tokio")]
pub use async_contract::AsyncContract;
pub use contract::{Contract, MAX_TTL};
pub use driver::{Capabilities, Driver, Gauges, Metadata};
pub use error::{Applied, BackendKind, BoxError, Echo, Error, Prose, Result};
pub use key::MAX_KEY_LEN;
pub use metrics::Metrics;
pub use page::{Page, Pages};
pub use registry::{Registration, drivers};
pub use version::{ParseVersionError, Version};
pub use watch::Watch;
