//! # hodor-redis: the contract on a Redis or Valkey server
//!
//! The memory driver is process-local; this one lets several processes share a store. Code
//! written against [`hodor_core::Contract`] moves over by changing the driver name and
//! config, nothing else:
//!
//! ```no_run
//! use hodor_core::Contract;
//! use hodor_redis as _; // registers "redis"
//! use serde_json::json;
//!
//! // was: Contract::new("memory", "sessions", None)?
//! let sessions = Contract::new("redis", "sessions", Some(json!({"url": "redis://127.0.0.1:6379/0"})))?;
//! sessions.set("session/alice", "token", Some(std::time::Duration::from_secs(3600)))?;
//! assert_eq!(sessions.list("session/")?, ["session/alice"]);
//! # Ok::<(), hodor_core::Error>(())
//! ```
//!
//! It needs Redis 6.2 or later, or Valkey. The config is [`RedisConfig`].
//!
//! ## What differs from the memory driver
//! - **Same name, same data, across processes.** The contract name is a key namespace on the
//!   server. Data outlives the process ([`Capabilities::persistent`](hodor_core::Capabilities)),
//!   as far as the server persists it (RDB/AOF are the server's settings).
//! - **TTL precision.** Expiry is kept by the server's clock to the millisecond: an entry
//!   set with TTL `d` at server time `t` is live while the server's time is before
//!   `t + d` rounded up to the next millisecond, never less. `stat`'s `expires_at` is that
//!   deadline on the server's clock and `modified` is the writer's clock, so the two agree
//!   only as well as the machines' clocks do.
//! - **The server can be unreachable.** Opening a contract checks the server and fails with
//!   `Error::Backend` if it does not answer within `connect_timeout_ms`. After that, every
//!   call is bounded: if the server is down or stops answering, the call returns
//!   `Error::Backend`; it never hangs. A call spends at most `timeout_ms` waiting for a free
//!   connection (only when all `pool_size` are busy), `connect_timeout_ms` opening one, and
//!   `timeout_ms` waiting for the reply: a stopped server fails calls at once (connection
//!   refused), a hung one after `timeout_ms`. (A retried call, below, can take that twice,
//!   but the retry follows only an immediate "connection dropped" error.) When the server
//!   is back, the same contract works again without being reopened. A read or a `set` that
//!   finds its pooled connection dropped (say, the server restarted while it was idle) is
//!   sent once more on a new connection; `delete` and the conditional writes are not,
//!   because a retry could report `false` for an entry the first attempt removed or
//!   created, or count an increment twice, so they return `Backend` instead.
//! - **A failed write says what is known.** `Error::Backend`'s `applied` is
//!   [`Applied::No`](hodor_core::Applied) when no request left (the connection was refused
//!   or could not be opened in time, no pooled connection came free, or the server refused
//!   it before running any of it: `LOADING`, `BUSY`, `MASTERDOWN`, `CLUSTERDOWN`,
//!   `TRYAGAIN`, `MOVED`, `ASK`, `CROSSSLOT`, `NOAUTH`, `NOPERM`), and
//!   [`Applied::Unknown`](hodor_core::Applied) once the request may have reached the server
//!   (its reply timed out, the connection broke mid-call, the server's script failed
//!   part-way): the server may have applied it, so read it back to know. `kind` is
//!   `Timeout` (also when a signal interrupted the wait for the reply), `Unavailable` (no connection, or a server that cannot serve for now:
//!   loading, busy with a script, without a master, a replica in a failover),
//!   `Unauthenticated` (the server refused the credentials or the ACL the command) or
//!   `Other` (any other error the server returned); `Error::is_retryable` is true for the
//!   first two.
//! - **Memory limits belong to the server** (its `maxmemory`): the driver has no
//!   `max_bytes` or `max_entries` and no [`Capabilities::limits`](hodor_core::Capabilities).
//!   Run the server with `maxmemory-policy noeviction` (the default) or a `volatile-*`
//!   policy: a server that evicts keys on its own can drop a contract's index, after which
//!   `list` misses keys that `get` still finds.
//! - **Bulk operations are atomic** ([`Capabilities::atomic_bulk`](hodor_core::Capabilities)):
//!   `set_many`, `delete_many` and `get_many` are one server-side script each.
//! - **Conditional writes** ([`Capabilities::conditional`](hodor_core::Capabilities)):
//!   `create`, `set_if_version` and `increment` are one script each, so they are atomic for
//!   every process sharing the contract; `increment` is `HINCRBY` (64-bit arithmetic, no
//!   wrap). An entry's version is a number from the contract's write counter
//!   (`hodor:{<name>}:n`), taken in the script that writes it.
//! - **Paged listing**: `list_page` reads the index with `ZRANGE ... BYLEX ... LIMIT` a few
//!   hundred members at a time until its page is full, so a page costs what it returns;
//!   `list` answers a whole prefix in one reply (see its cost in `Contract::list`).
//! - **Every call blocks** for a round trip (up to the timeouts): the driver does not
//!   claim `non_blocking`, so hodor-core's `AsyncContract` runs its calls on tokio's
//!   blocking pool.
//! - **TLS**: a `rediss://` URL connects over TLS (rustls with the ring provider, so no
//!   system TLS library is involved), trusting the system's certificate authorities or the
//!   PEM file in `tls_ca_file`; `tls_cert_file` and `tls_key_file` give a client
//!   certificate for servers that require one. The crate's `tls` feature (on by default)
//!   brings it in; without it a `rediss://` URL is an `InvalidConfig` error naming `url`.
//!
//! - **One server**: the driver talks to one Redis node (or a proxy in front of several).
//!   The keys are laid out for Redis Cluster (one hash tag per contract), but the driver
//!   does not follow cluster redirections or Sentinel failovers itself.
//! - **`list` is one server-side call**: listing a very large contract in one go holds the
//!   server for as long as reading those keys takes, as `ZRANGE` would.
//! - **Gauges**: `metrics().entries` is the size of the contract's index (`ZCARD`,
//!   expired keys not yet pruned included), one round trip, or `None` when the server
//!   cannot be reached; `watches` counts this process's watches on the contract; the other
//!   gauges are `None`.
//! - **Watching works across processes** ([`Capabilities::watch`](hodor_core::Capabilities)):
//!   every write script also appends its changes to the contract's change log (a counter
//!   and a Redis stream, in the same atomic step), and one thread per pool reads the logs
//!   of the contracts watched in the process with `XREAD BLOCK`, so a watch sees every
//!   process's writes through hodor, in `seq` order. No keyspace notifications, so no
//!   `CONFIG` rights. Expiries are `Expired` events when the pruner (or a write, or a
//!   `delete`) removes the expired key's index entry, within about `prune_interval_ms` of
//!   the deadline while some process has the contract open; there are no `Evicted` events
//!   (the server's `maxmemory` evicts on its own). A reconnect loses nothing the log still
//!   holds; a gap (the log trimmed past what was read, after more than `watch_history`
//!   changes) or a log that went backwards (the server lost its data) is `Lagged`. Changes
//!   that bypass hodor are not in the log. `watch_history: 0` turns the log off for the
//!   process (see [`RedisConfig::watch_history`]).
//!
//! ## Design
//! Each entry is a Redis hash `hodor:{<name>}:v:<key>` holding the value, the modification
//! time and the deadline, with the server-side expiry set on the hash itself (see Layout
//! below). A sorted set per contract with every member at score 0
//! is the index: Redis orders equal-score members by bytes, so `list(prefix)` is one
//! `ZRANGE ... BYLEX` over the prefix's range, exact, sorted, free of duplicates, with
//! glob characters meaning nothing, and costing O(log n + k) in the contract's own keys, not
//! in the size of the database. A second sorted set scores the keys that have a TTL by
//! their deadline; `list` drops members whose deadline has passed, so it agrees with `get`
//! to the millisecond. Every write is a Lua script that updates the hash and both sets
//! together, and logs each change (see `scripts.rs` for the rule every write script
//! follows), so no reader sees one without the others.
//!
//! ## Layout
//! A contract named `N` owns `hodor:{E}:v:<key>` (hashes), `hodor:{E}:i` (the index),
//! `hodor:{E}:x` (deadlines), `hodor:{E}:s` and `hodor:{E}:w` (the change log's counter and
//! stream), where `E` is `N` with `%`, `{` and `}` percent-encoded. So no
//! two (name, key) pairs share a Redis key and no key can reach into another namespace, and
//! `{E}` is a Redis Cluster hash tag that keeps a contract in one slot.
//!
//! ## Expiry and reclaiming
//! Redis frees expired hashes itself (on access, and by its active expiry cycle). The
//! members of expired keys in the index and deadline sets are removed by every write to the
//! contract (up to 1000 per write) and by one thread per connection pool every
//! `prune_interval_ms` (1 s by default) for each contract open in the process, so they are
//! reclaimed within about one interval while any process has the contract open. The thread
//! starts when the pool's first contract has opened (a failed open starts none) and ends
//! as soon as the pool's last contract is closed or dropped.
//!
//! ## Connections
//! Contracts opened with equal configs share one pool of at most `pool_size` connections,
//! opened on demand on the calling thread with `connect_timeout_ms`, each with read and
//! write timeouts of `timeout_ms`. A connection an operation failed on is closed, never
//! reused, so a late reply cannot be mistaken for the answer to the next request.

#![deny(missing_docs)]
// Library code never panics on caller input; unit tests may (see clippy.toml).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod changelog;
mod config;
mod driver;
mod error;
mod keys;
mod pool;
mod pruner;
mod scripts;
mod secret;

/// The test server helpers of `tests/`, for the unit tests that look inside a pool.
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod support;

pub use config::{DEFAULT_URL, RedisConfig};
pub use driver::{DRIVER_NAME, RedisDriver, open};

hodor_core::register_driver!(DRIVER_NAME, driver::open_registered);
