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
//! name starts empty, unless the store persists to disk (see Persistence): then the next
//! open recovers it. [`MemoryDriver`] can also be used directly, through the
//! [`Driver`](hodor_core::driver::Driver) trait: it then checks keys, TTLs and its name
//! itself, closes idempotently per handle, and closes when dropped.
//!
//! ## Design
//! Keys hash to one of N shards ([`MemoryConfig::shards`]: by default 8 per CPU, at least
//! 16, fewer for small entry limits), each a hash table over an array of entries behind
//! its own `RwLock`; `get` takes one shard's read lock and writes no shared structure. An
//! ordered index holds the same key allocations and is touched only when a key is created
//! or removed, so `list(prefix)` costs O(log n + k) for k matches and returns keys already
//! sorted (it copies key handles under the index's locks and builds the strings after).
//! The index is cut by key range into partitions, each behind its own lock, so writers
//! creating keys in different ranges never wait for each other; a creating writer appends
//! its key to its partition's pending batch, merged into the sorted leaves 256 keys at a
//! time. A list locks the partitions it reads in key order and holds them until it ends,
//! so it is one atomic look that includes keys still pending; `set_many` and `delete_many`
//! are whole to it through a store-wide batch gate.
//!
//! Every change (a put of any kind, a removal by delete, expiry or eviction, the release
//! of the whole store) goes through one hook, `Store::changed`, called under the write lock
//! of the key's shard, which orders that key's writes; that is where changes get their
//! store-wide sequence number.
//!
//! Values are [`Bytes`](hodor_core::Bytes): `get` returns the stored buffer without copying
//! it (a compressed value is decompressed; see Compression). A value may be
//! `Bytes::from_owner` with any `Drop`, even one that calls the store: removed values are
//! dropped only after the store's locks are released.
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
//! ## Which clock TTLs run on
//! Deadlines are measured on a monotonic clock ([`Clock::monotonic_nanos`](
//! hodor_core::clock::Clock::monotonic_nanos): `Instant` for the system clock), as moka
//! does, and not on the wall clock. Why:
//! - A wall-clock step (an NTP correction, `date -s`, a VM whose clock is resynchronised on
//!   resume) neither shortens nor extends a TTL, and an expired entry never comes back. On
//!   the wall clock, a step forward expired every entry at once (a stampede of misses) and
//!   a step backward kept every entry, expired ones included, for the length of the step.
//! - `stat` still reports wall-clock instants: the store's wall-clock time when it was
//!   opened plus the monotonic time since. So `expires_at` is exactly `modified + ttl`,
//!   repeated reads return the same instants, and after a wall-clock step both differ from
//!   `SystemTime::now()` by the step while the TTL itself runs on unchanged.
//! - The cost: the monotonic clock of most systems (Linux `CLOCK_MONOTONIC`, macOS) stops
//!   while the machine is suspended, so a suspend pauses every TTL for its length.
//! - Time is kept in nanoseconds on the store's timeline, which starts when the store is
//!   opened (a persistent one's about 73 years before, see below). A store's clock stops
//!   about 146 years after the timeline's start (only a [`ManualClock`](
//!   hodor_core::clock::ManualClock) gets there): from then on entries already due expire
//!   and no entry expires early.
//!
//! ### Time across restarts (persistent stores)
//! Persisted expiry is absolute wall-clock time (the contract): a restart never extends a
//! TTL. While the store is open, TTLs run on the monotonic clock as above; only on the way
//! to disk and back is time read from the wall clock:
//! - A log record or snapshot entry carries `modified` and the deadline as wall-clock
//!   instants: the entry's remaining time counted from the wall clock at the moment it is
//!   written. So a wall-clock step before a write does not move that write's deadline: a
//!   10 s TTL of which 3 s ran before a restart has 7 s left after it, whatever the wall
//!   clock did before the write. (Counted from the wall clock of the store's opening, a
//!   step back while it is open would add its length to every TTL logged after it.)
//! - At open, recovery reads the wall clock once: an entry whose deadline it has reached
//!   is not loaded, and every other one gets its deadline minus that reading as its
//!   remaining time, on the monotonic clock again.
//! - So what moves a persisted deadline is a wall-clock step between its writing (the
//!   write, or a later snapshot, which writes it again) and the next open; while the store
//!   is closed only the wall clock can tell how much time passed. A step forward expires
//!   what it passes; a step back keeps an entry until the wall clock reads its deadline
//!   again, the length of the step longer. Either way `stat` reports the `expires_at` the
//!   entry was written with.
//! - A persistent store's timeline starts about 73 years before its opening, so recovered
//!   instants keep their place on it; a `modified` older than that is reported as that old
//!   (never later than it was), and the store's clock stops about 73 years after the open.
//!
//! ## Limits and eviction
//! [`MemoryConfig::max_bytes`] and [`MemoryConfig::max_entries`] bound the store (both
//! unbounded by default). Each entry is charged its key length + value length + 120 bytes,
//! and 16 more if it has a TTL: what an entry costs the store (its slot, key header, hash
//! bucket, index share, the slack of growing arrays and of holes not yet reused, the
//! 24-byte header `Bytes` allocates for a `Vec`-backed value once it is read, and for a
//! TTL its deadline record). So `max_bytes` tracks the store's real memory: under a churn
//! of TTL entries whose sizes keep changing, the live heap stays within 1.1 × `max_bytes`
//! plus about 2 MiB (`tests/heap.rs` checks it with a counting allocator). A removed
//! entry's key and value are freed when it is removed (deleted, overwritten, evicted or
//! expired), not at its old deadline: deadline records hold only a slot position.
//!
//! - A `set` that would pass a limit evicts before it returns. Writers reserve space before
//!   inserting and release it after removing, with a compare-and-swap that never passes the
//!   limit: `metrics().bytes` and `metrics().entries` never exceed the limits, whatever
//!   concurrent writers do.
//! - Expired entries go first: no live entry is evicted while an expired one remains.
//! - Then CLOCK (second chance) over the whole store: a read sets the entry's mark (a plain
//!   atomic store, made only if the mark is clear, so hits on hot keys write nothing
//!   shared). Each shard has a hand, and the store's hand takes one step in each shard in
//!   turn: a step clears the mark of the entry under the shard's hand and moves on, or
//!   evicts the entry if it is unmarked. So which entry goes does not depend on which shard
//!   the writer's key lands in, nor on the shard count. **Guarantee:** entries never move
//!   in their shard, so a shard's hand looks at each of its entries once per round; an
//!   entry read since the hand last looked at it is never evicted before every entry of its
//!   shard not read since then, and a new entry is not looked at before the hand's next
//!   round. (If readers re-mark entries as fast as the hand clears them, the hand evicts
//!   regardless after two rounds' worth of steps, so a write never waits on readers.)
//!   `tests/hit_ratio.rs` checks the hit ratio against exact LRU on Zipf(0.99) and
//!   scan-heavy traces, at capacities from 8 to 10,000 entries and with 1, 16 and 1024
//!   shards: never more than 2 points below it (mostly above).
//! - An entry (or a `set_many` batch) that alone is larger than `max_bytes` is
//!   `CapacityExceeded`, and nothing is evicted for it. Anything smaller always gets its
//!   room: a writer whose room is held by writers about to insert sleeps until they do
//!   (one writer evicts at a time and keeps what it frees, so none is starved).
//!
//! ## Metrics
//! [`Contract::metrics`](hodor_core::Contract::metrics) adds this store's gauges to the
//! contract's operation counters: `entries` and `bytes` resident (charged as above),
//! `evictions` and `expirations` (reclaimed expired entries, read or not) since the store
//! was created, and the configured limits.
//!
//! ## Watching
//! [`Contract::watch`](hodor_core::Contract::watch) is native
//! ([`Capabilities::watch`](hodor_core::Capabilities::watch)): every change is published
//! under the lock of the shard that owns the key, so events arrive in `seq` order over the
//! whole store (not only per key). Expired entries are `Expired` events when the sweeper or
//! a write reclaims them, within the reclaim bound above; a `delete` of an expired entry is
//! `Expired` too. With limits, CLOCK's victims are `Evicted` events. While the store is
//! watched it keeps its last [`MemoryConfig::watch_history`] changes for
//! [`Contract::watch_from`](hodor_core::Contract::watch_from); while nobody watches it
//! keeps none, and a write costs one atomic load more than it would without watching. A
//! snapshot ([`Contract::watch_snapshot`](hodor_core::Contract::watch_snapshot)) read-locks
//! every shard for as long as it takes to copy the matching keys' handles.
//!
//! A persistent store ([`MemoryConfig::persist`]) publishes every change it logs, under
//! the same shard lock as its log record. Recovery replays the log into a store nobody can
//! watch yet and publishes nothing: the data it recovers is the state, not news. Each
//! opening numbers its events past every earlier opening's (from the log's last sequence
//! number plus the opening's epoch), so a `seq` kept across a restart is `Compacted`:
//! resync.
//!
//! ```
//! use hodor_core::watch::{EventKind, Item};
//! use std::time::Duration;
//!
//! # fn main() -> hodor_core::Result<()> {
//! let config = hodor_core::Contract::new("memory", "watch-doc", None)?;
//! let mut changes = config.watch("app/")?;
//! config.set("app/limits", "{\"rps\": 100}", None)?;
//! config.set("other", "not watched", None)?;
//! config.delete("app/limits")?;
//!
//! let first = changes.recv_timeout(Duration::from_secs(5))?.expect("an event");
//! let Item::Event(put) = first else { panic!("{first:?}") };
//! assert_eq!((&*put.key, put.kind), ("app/limits", EventKind::Put));
//! let Some(Item::Event(delete)) = changes.try_recv()? else { panic!() };
//! assert_eq!(delete.kind, EventKind::Delete);
//! assert!(delete.seq > put.seq);
//! assert_eq!(changes.try_recv()?, None, "`other` is not under the prefix");
//! # Ok(())
//! # }
//! ```
//!
//! [`hodor_core::sync::Synced`] follows one key's typed value with these events:
//!
//! ```
//! use hodor_core::sync::Synced;
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize, Debug, PartialEq)]
//! struct Limits { rps: u32 }
//!
//! # fn main() -> hodor_core::Result<()> {
//! let store = hodor_core::Contract::new("memory", "sync-doc", None)?;
//! store.set("limits.json", r#"{"rps": 100}"#, None)?;
//!
//! let (changes, seen) = std::sync::mpsc::channel();
//! let limits = Synced::<Limits>::builder(&store, "limits.json")
//!     .validate(|l| if l.rps > 0 { Ok(()) } else { Err("rps must be positive".into()) })
//!     .on_change(move |old, new| { let _ = changes.send((old.map(|o| o.rps), new.rps)); })
//!     .debounce(Duration::ZERO)
//!     .start()?;
//! assert_eq!(limits.get().rps, 100);
//! assert_eq!(seen.recv().unwrap(), (None, 100), "the first call has no old value");
//!
//! store.set("limits.json", r#"{"rps": 250}"#, None)?;
//! assert_eq!(seen.recv_timeout(Duration::from_secs(5)).unwrap(), (Some(100), 250));
//!
//! store.set("limits.json", "not json", None)?;
//! limits.settle();
//! assert_eq!(limits.get().rps, 250, "a bad value keeps the last good one");
//! assert!(limits.status().is_stale());
//! # Ok(())
//! # }
//! ```
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
//! hodor_core::Capabilities::persistent)) and it no longer claims
//! [`Capabilities::non_blocking`](hodor_core::Capabilities::non_blocking); everything
//! else stays the same. [`Fsync`] says what a crash can lose; in every mode it is a suffix of the writes,
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
//! - The first open of a persistent store recovers it before it returns, and the last
//!   close writes and syncs its log, both holding the process's table of open memory
//!   stores: meanwhile opens and last closes of other memory stores wait. A second open of
//!   the same name waits too, and then joins the store instead of finding its directory
//!   locked.
//!
//! ## Compression
//! With [`MemoryConfig::compression`] values of at least `min_size` bytes are stored LZ4
//! compressed when that saves at least an eighth. `max_bytes` and `metrics().bytes` count
//! the compressed size, `stat().size` the value's own; a compressed value is decompressed
//! into a new buffer on every `get` (see [`CompressionConfig`]).
//!
//! ## Versions, conditional writes, paging
//! The driver claims [`Capabilities::conditional`](hodor_core::Capabilities::conditional),
//! and [`Capabilities::non_blocking`](hodor_core::Capabilities::non_blocking) unless the
//! store is persistent (its writes may write or sync the log on the caller's thread).
//!
//! ```
//! use hodor_core::Contract;
//! use hodor_memory as _;
//!
//! let c = Contract::new("memory", "conditional-doc", None)?;
//! assert!(c.create("lock", "me", None)?);                 // set if absent
//! assert!(!c.create("lock", "someone else", None)?);
//! assert_eq!(c.increment("visits", 2)?, 2);               // absent counts as 0
//! let v = c.stat("lock")?.version;
//! assert!(c.set_if_version("lock", "still me", None, v)?); // compare-and-set
//! assert!(!c.set_if_version("lock", "stale", None, v)?);   // the version moved on
//! let page = c.list_page("", None, 1)?;
//! assert_eq!((page.keys, page.next.as_deref()), (vec!["lock".to_owned()], Some("lock")));
//! # Ok::<(), hodor_core::Error>(())
//! ```
//!
//! - **Versions cost no byte per entry.** An entry's version is built from what it keeps
//!   anyway: its write time (the slot's stamp, which `stat` reports as `modified`), a
//!   16-bit tie-breaker in bits its key's header leaves free (a key's length needs 11 of
//!   the 32 it had), and the store's incarnation. Each shard gives its writes strictly
//!   increasing (time, tie-breaker) stamps, so two writes of one key never share a
//!   version, with a stopped clock or a key removed and recreated in one nanosecond; the
//!   time stays the clock's unless 65,536 writes hit one shard at one clock reading.
//! - **Conditional writes** decide and write under one hold of the key's shard write
//!   lock, through the path `set` writes by (the same stamps, index, deadlines, limits and
//!   reclaim). Nothing of the caller's runs under it.
//! - **`list_page`** seeks in the ordered index to the later of the prefix and the cursor
//!   and walks at most `limit + 1` live keys: O(log n + limit).
//! - **A persistent store** logs a conditional write exactly as it logs a `set`, and
//!   compresses its value the same way. Versions do not survive a restart: the clock of the
//!   store starts over at each open, so a persistent store's versions carry the
//!   directory's epoch (the file `EPOCH`, advanced and synced at every open) instead of a
//!   number of this process. After a reopen every entry has a new version, and a
//!   `set_if_version` with a version read before it fails: re-read, then write. A version
//!   is never issued again for another value, across restarts and crashes.
//!
//! ## Testing
//! Besides the conformance suite and per-behaviour tests, `tests/torture.rs` runs random
//! operation sequences with awkward keys, values and TTLs against a reference model (with
//! and without limits), threads through limits, and open/close/drop races; `tests/heap.rs`
//! checks the heap with a counting allocator. Both take a few seconds; set
//! `HODOR_TORTURE=1` for the heavy variants (many more cases with random seeds, more
//! threads, the issue-sized heap checks).
//!
//! ## Limitations
//! Process-local: a store is shared by name within one process only (use a server-backed
//! driver such as Redis to share between processes). For a persistent store the
//! `evictions` and `expirations` gauges count since it was opened in this process.

#![deny(missing_docs)]
// Library code never panics on caller input; unit tests may (see clippy.toml).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod change;
mod codec;
mod conditional;
mod config;
mod deadlines;
mod driver;
mod index;
mod input;
// The crate's only unsafe code: the key allocation (see its SAFETY comments).
#[allow(unsafe_code)]
mod key;
#[cfg(test)]
mod pause;
mod persist;
mod shard;
mod store;
mod sweeper;

pub use config::{Algorithm, CompressionConfig, Fsync, MemoryConfig, PersistConfig, Recovery};
pub use driver::{DRIVER_NAME, MemoryDriver, open, open_with_clock};
pub use persist::PersistError;

hodor_core::register_driver!(DRIVER_NAME, driver::open_registered);
