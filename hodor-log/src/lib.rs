//! # hodor-log: application logs written into a hodor contract
//!
//! A sink for `tracing` and `log` that formats each event as a JSON line on the calling
//! thread, queues it, and has one worker thread write the lines in batches into any
//! [`Contract`](hodor_core::Contract): the memory driver in development, Redis to collect
//! the logs of many processes in one place. [`read`] gives them back in time order.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use hodor_core::Contract;
//! use hodor_memory as _;
//! use tracing_subscriber::prelude::*;
//!
//! # fn main() -> Result<(), hodor_core::Error> {
//! let logs = Contract::new("memory", "app-logs", None)?;
//! let (layer, guard) = hodor_log::Sink::builder(logs.clone())
//!     .prefix("logs/app/")
//!     .retention(Duration::from_secs(24 * 3600))
//!     .layer()?;
//! // A program installs it once: tracing_subscriber::registry().with(layer).init();
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(user = "alice", "signed in");
//!     tracing::warn!(attempts = 3, "retrying");
//! });
//! drop(guard); // writes what is queued, at most a few seconds
//!
//! let messages: Vec<String> = hodor_log::read(&logs, "logs/app/", UNIX_EPOCH)?
//!     .map(|r| r.map(|r| r.message))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(messages, ["signed in", "retrying"]);
//! # Ok(())
//! # }
//! ```
//!
//! ## What is stored
//!
//! Each record is one line of JSON:
//!
//! ```text
//! {"timestamp":"2026-12-01T10:00:00.123456Z","level":"INFO","target":"app::auth","message":"signed in","fields":{"user":"alice"},"spans":["request"]}
//! ```
//!
//! `fields` and `spans` are left out when empty. A batch is the lines of many records,
//! stored with one `set` under the key
//! `{prefix}{first}_{last}_{instance}_{seq}.jsonl` (`.jsonl.lz4` when compressed):
//! `first` and `last` are the fixed-width UTC timestamps of its earliest and latest record,
//! `instance` a random 64-bit id of the sink, `seq` the sink's batch counter. So
//! `list(prefix)` returns batches in the order of their first records, across processes,
//! and no batch ever overwrites another. The suffix names the stored form; it is never
//! guessed from the bytes.
//!
//! ## Behaviour
//!
//! - **The calling thread only formats.** The record is written into a thread-local
//!   buffer, then copied into the queue under a lock held for that copy alone. Nothing the
//!   application passes (a `Debug` implementation) runs under the lock.
//! - **Batches** are written when they reach [`Builder::batch_records`] records,
//!   [`Builder::batch_bytes`] bytes, or [`Builder::batch_age`] after their first record,
//!   whichever comes first; a full queue or a flush writes at once.
//! - **Never blocking by default.** When the queue is full, records are dropped and
//!   counted, and the next batch starts with a `WARN` record from target `hodor_log` that
//!   says how many (`"fields":{"dropped":N,"lost":M}`). [`Builder::blocking`] makes the
//!   logging thread wait for room instead.
//! - **No recursion.** The worker thread never records events (a driver that logs from its
//!   storage calls cannot feed the sink), an event logged while a record is being formatted
//!   is ignored, and targets under `hodor_log` (plus any [`Builder::ignore_target`]) are
//!   filtered out.
//! - **Retention** is the TTL of every batch ([`Builder::retention`]); on a driver without
//!   TTLs that is [`Error::Unsupported`](hodor_core::Error::Unsupported) when the sink is
//!   built.
//! - **Failures.** A batch whose `set` fails with a backend error is retried with backoff;
//!   after the last retry its records are counted as lost, said on stderr (at most once per
//!   [`Builder::report_interval`]), and told by the next batch's first record.
//! - **Shutdown.** Dropping the [`Guard`] writes what is queued and waits at most
//!   [`Builder::shutdown_timeout`]; [`Sink::flush`] and `log::Log::flush` wait for the queue
//!   without stopping.
//! - **Timestamps** never go back within a sink, so its records are in timestamp order
//!   even when the wall clock steps back.
//!
//! ## Features
//!
//! - `tracing` (default): [`Layer`], a `tracing_subscriber::Layer`.
//! - `log` (default): [`Logger`], a `log::Log`.
//! - `lz4`: `Compression::Lz4`, lz4-frame compression of batches (pure Rust, `lz4_flex`),
//!   and reading compressed batches.

#![deny(missing_docs)]
// Built with neither `tracing` nor `log`, the crate only reads: the producer side is unused.
#![cfg_attr(not(any(feature = "tracing", feature = "log")), allow(dead_code))]
// Library code never panics on caller input; unit tests may (see clippy.toml).
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod builder;
mod codec;
mod format;
mod json;
mod key;
#[cfg(feature = "tracing")]
mod layer;
#[cfg(feature = "log")]
mod logger;
mod queue;
mod read;
mod reentry;
mod sink;
mod time;
mod worker;

pub use builder::Builder;
pub use codec::Compression;
#[cfg(feature = "tracing")]
pub use layer::Layer;
#[cfg(feature = "log")]
pub use logger::Logger;
pub use read::{Record, Records, read};
pub use sink::{Guard, Sink, Stats};
