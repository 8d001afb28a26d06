//! # hodor-memory: the in-process driver
//!
//! The zero-config default for development, tests and caches. Link it and open it by name:
//!
//! ```
//! use hodor_core::Contract;
//! use hodor_memory as _; // registers "memory"
//!
//! let cache = Contract::new("memory", "cache", None)?;
//! cache.set("greeting", "hello", None)?;
//! assert_eq!(cache.get("greeting")?, "hello");
//! # Ok::<(), hodor_core::Error>(())
//! ```
//!
//! ## Sharing by name
//! Two contracts opened with the same name in one process share one store. Opening an open
//! store with a different [`MemoryConfig`] (or clock) is `InvalidConfig`. When the last
//! contract on a store is closed or dropped, its data is released and the next open of that
//! name starts empty.
//!
//! ## Design
//! Keys hash to one of N shards (8 per CPU, at least 16), each a hash table over a dense
//! array of entries behind its own `RwLock`; `get` takes one shard's read lock and writes no
//! shared structure. One ordered index holds the same key allocations and is touched only when
//! a key is created or removed, so `list(prefix)` costs O(log n + k) for k matches and
//! returns keys already sorted. Values are [`Bytes`](hodor_core::Bytes): `get` returns the
//! stored buffer without copying it (a compressed value is decompressed; see Compression).
//!
//! ## Expiry
//! An expired entry is never returned: every read checks the deadline. Memory is reclaimed
//! without reads by a background sweeper (one thread for all stores, holding no store
//! alive) every [`MemoryConfig::sweep_interval_ms`] (100 ms by default), and by writes, which
//! reclaim a few due entries from the shard they touch. So an expired entry's memory is
//! freed at most one interval plus one sweep after its deadline (200,000 expired entries
//! are gone about 120 ms after their deadline with the default interval), and a stream of
//! short-TTL writes cannot grow the store without bound.
//!
//! ## Limits and eviction
//! [`MemoryConfig::max_bytes`] and [`MemoryConfig::max_entries`] bound the store (both
//! unbounded by default). Each entry is charged its key length + value length + 120 bytes,
//! the measured cost of an entry's slot, key header, hash bucket and index share, plus the
//! 24-byte header `Bytes` allocates for a `Vec`-backed value once it is read; so `max_bytes`
//! tracks the store's real memory.
//!
//! - A `set` that would pass a limit evicts before it returns. Writers reserve space before
//!   inserting and release it after removing, with a compare-and-swap that never passes the
//!   limit: `metrics().bytes` and `metrics().entries` never exceed the limits, whatever
//!   concurrent writers do.
//! - Expired entries go first: no live entry is evicted while an expired one remains.
//! - Then CLOCK (second chance), per shard, starting in the writer's shard: a read sets the
//!   entry's mark (a plain atomic store, made only if the mark is clear, so hits on hot keys
//!   write nothing shared); the eviction hand clears marks as it passes and evicts the first
//!   unmarked entry. **Guarantee:** an entry read since the hand last passed it is never
//!   evicted before every entry of its shard that was not read since then; a new entry
//!   gets a full revolution of the hand before it can be evicted. Measured against exact
//!   LRU on Zipf(0.99) and scan-heavy traces (`tests/hit_ratio.rs`), its hit ratio is
//!   0.6 to 1.5 points *higher*.
//! - An entry (or a `set_many` batch) that alone is larger than `max_bytes` is
//!   `CapacityExceeded`, and nothing is evicted for it.
//!
//! ## Metrics
//! [`Contract::metrics`](hodor_core::Contract::metrics) adds this store's gauges to the
//! contract's operation counters: `entries` and `bytes` resident (charged as above),
//! `evictions` and `expirations` (reclaimed expired entries, read or not) since the store
//! was created, and the configured limits.
//!
//! ## Bulk operations
//! `get_many`, `set_many` and `delete_many` are atomic ([`Capabilities::atomic_bulk`](
//! hodor_core::Capabilities::atomic_bulk)): they lock every shard involved at once, so no
//! reader sees part of a `set_many` or `delete_many`, and `get_many` reads one moment.
//!
//! ## Persistence
//! With [`MemoryConfig::persist`] (`{"persist": {"dir": "data", "fsync": "always"}}`) the
//! store keeps every write in an append-only log in `dir`, takes snapshots as the log
//! grows, and at open loads the latest snapshot and replays the log after it. Its data
//! outlives the last close and the process ([`Capabilities::persistent`](
//! hodor_core::Capabilities::persistent)); the capabilities and everything else stay the
//! same. [`Fsync`] says what a crash can lose; in every mode it is a suffix of the writes,
//! never part of a batch. See [`PersistConfig`] for the files, [`PersistError`] for what
//! can go wrong, and `Metrics::log_bytes` onwards for the gauges.
//!
//! - A write is visible to readers as soon as it is applied; with `fsync = always` the
//!   writer's call returns only once the log is synced past it (concurrent writers share
//!   syncs).
//! - If writing or syncing the log fails, the store refuses every later write (reads go
//!   on) until it is closed and reopened: a failed `fsync` is never retried.
//! - One store per directory: a second opener, in this process or another, gets
//!   [`PersistError::Locked`] naming the directory.
//!
//! ## Compression
//! With [`MemoryConfig::compression`] values of at least `min_size` bytes are stored LZ4
//! compressed when that saves at least an eighth. `max_bytes` and `metrics().bytes` count
//! the compressed size, `stat().size` the value's own; a compressed value is decompressed
//! into a new buffer on every `get` (see [`CompressionConfig`]).
//!
//! ## Limitations
//! Process-local: a store is shared by name within one process only (use a server-backed
//! driver such as Redis to share between processes). An entry with a TTL carries an expiry
//! record (~17 bytes) that is not charged against `max_bytes`. For a persistent store the
//! `evictions` and `expirations` gauges count since it was opened in this process.

#![deny(missing_docs)]
// Library code never panics on caller input; unit tests may (see clippy.toml).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod codec;
mod config;
mod driver;
// The crate's only unsafe code: the key allocation (see its SAFETY comments).
#[allow(unsafe_code)]
mod key;
mod persist;
mod shard;
mod store;
mod sweeper;

pub use config::{Algorithm, CompressionConfig, Fsync, MemoryConfig, PersistConfig, Recovery};
pub use driver::{DRIVER_NAME, MemoryDriver, open, open_with_clock};
pub use persist::PersistError;

hodor_core::register_driver!(DRIVER_NAME, driver::open_registered);
