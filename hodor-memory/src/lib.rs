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
//! shared state. One ordered index holds the same key allocations and is touched only when
//! a key is created or removed, so `list(prefix)` costs O(log n + k) for k matches and
//! returns keys already sorted. Values are [`Bytes`](hodor_core::Bytes): `get` returns the
//! stored buffer without copying it.
//!
//! ## Expiry
//! An expired entry is never returned: every read checks the deadline. Memory is reclaimed
//! without reads by a background sweeper (one thread for all stores, holding no store
//! alive) every [`MemoryConfig::sweep_interval_ms`] (100 ms by default), and by writes, which
//! reclaim a few due entries from the shard they touch. So an expired entry's memory is
//! freed at most one interval plus one sweep after its deadline, and a stream of short-TTL
//! writes cannot grow the store without bound.
//!
//! ## Limitations
//! Process-local: data is not shared between processes and does not survive a restart (use
//! a server-backed driver such as Redis for that). The store grows without limit.

#![deny(missing_docs)]
// Library code never panics on caller input; unit tests may (see clippy.toml).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod config;
mod driver;
mod key;
mod shard;
mod store;
mod sweeper;

pub use config::MemoryConfig;
pub use driver::{DRIVER_NAME, MemoryDriver, open, open_with_clock};

hodor_core::register_driver!(DRIVER_NAME, driver::open_registered);
