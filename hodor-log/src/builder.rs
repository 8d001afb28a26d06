//! [`Builder`]: a sink's settings, checked when it is built.

use std::sync::Arc;
use std::time::Duration;

use hodor_core::clock::Clock;
use hodor_core::{Contract, Error, MAX_KEY_LEN, MAX_TTL, Result};

use crate::codec::Compression;
use crate::key::{self, KEY_TAIL_MAX};
use crate::queue::{Settings, Shared};
use crate::sink::{Guard, Sink};
use crate::worker;

/// The largest batch a sink writes (and a reader accepts), whatever the settings.
pub(crate) const MAX_BATCH_BYTES: usize = 256 << 20;
/// The smallest record budget: room for a level, a target and some message.
const MIN_RECORD_BYTES: usize = 1024;

/// Configures a [`Sink`]; made by [`Sink::builder`].
///
/// Every setting has a default suited to development logging; [`Builder::build`] (or
/// [`Builder::layer`], [`Builder::logger`]) checks them together and starts the worker.
///
/// | setting | default |
/// |---|---|
/// | [`prefix`](Builder::prefix) | `"logs/"` |
/// | [`retention`](Builder::retention) | none: batches never expire |
/// | [`batch_records`](Builder::batch_records) / [`batch_bytes`](Builder::batch_bytes) / [`batch_age`](Builder::batch_age) | 10 000 records / 1 MiB / 1 s |
/// | [`queue_records`](Builder::queue_records) / [`queue_bytes`](Builder::queue_bytes) | 100 000 records / 32 MiB |
/// | [`blocking`](Builder::blocking) | `false`: a full queue drops records |
/// | [`max_record_bytes`](Builder::max_record_bytes) | 64 KiB |
/// | [`compression`](Builder::compression) | none |
/// | [`retries`](Builder::retries) | 5, from 10 ms, doubling up to 1 s |
/// | [`shutdown_timeout`](Builder::shutdown_timeout) / [`flush_timeout`](Builder::flush_timeout) | 5 s / 5 s |
/// | [`report_interval`](Builder::report_interval) | 10 s |
/// | [`ignore_target`](Builder::ignore_target) | `hodor_log` |
#[derive(Debug)]
pub struct Builder {
    contract: Contract,
    settings: Settings,
}

impl Builder {
    pub(crate) fn new(contract: Contract) -> Builder {
        Builder {
            contract,
            settings: Settings {
                prefix: "logs/".to_owned(),
                retention: None,
                batch_records: 10_000,
                batch_bytes: 1 << 20,
                batch_age: Duration::from_secs(1),
                queue_records: 100_000,
                queue_bytes: 32 << 20,
                blocking: false,
                compression: Compression::None,
                max_record_bytes: 64 << 10,
                retries: 5,
                retry_backoff: Duration::from_millis(10),
                shutdown_timeout: Duration::from_secs(5),
                flush_timeout: Duration::from_secs(5),
                report_interval: Duration::from_secs(10),
                ignore_targets: vec!["hodor_log".to_owned()],
                clock: Clock::system(),
            },
        }
    }

    /// The key prefix of every batch, e.g. `"logs/app/"` (any string the contract's keys
    /// allow, up to 925 bytes). [`read`](crate::read) takes the same prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// Keep each batch for `retention`, as the TTL of its `set`. A driver without TTL
    /// support makes [`build`](Builder::build) fail with [`Error::Unsupported`].
    pub fn retention(mut self, retention: Duration) -> Self {
        self.settings.retention = Some(retention);
        self
    }

    /// Batches never expire (the default).
    pub fn no_retention(mut self) -> Self {
        self.settings.retention = None;
        self
    }

    /// Write a batch once it holds this many records.
    pub fn batch_records(mut self, records: usize) -> Self {
        self.settings.batch_records = records;
        self
    }

    /// Write a batch once it holds this many bytes of JSON lines (before compression). A
    /// single record larger than this goes in a batch of its own.
    pub fn batch_bytes(mut self, bytes: usize) -> Self {
        self.settings.batch_bytes = bytes;
        self
    }

    /// Write a batch at the latest this long after its first record was queued, so a quiet
    /// program's records still reach the store promptly.
    pub fn batch_age(mut self, age: Duration) -> Self {
        self.settings.batch_age = age;
        self
    }

    /// At most this many records wait in the queue; beyond it records are dropped (or, with
    /// [`blocking`](Builder::blocking), the logging thread waits). The batch being written
    /// is not counted.
    pub fn queue_records(mut self, records: usize) -> Self {
        self.settings.queue_records = records;
        self
    }

    /// At most this many bytes of formatted records wait in the queue.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.settings.queue_bytes = bytes;
        self
    }

    /// With `true`, a logging call waits for room when the queue is full instead of
    /// dropping its record. No record is then lost to a burst, but a slow or unreachable
    /// store slows the application down with it.
    pub fn blocking(mut self, blocking: bool) -> Self {
        self.settings.blocking = blocking;
        self
    }

    /// The longest formatted record kept in full; a longer one keeps its level, target and
    /// the start of its message, and is marked `"truncated":true`.
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_record_bytes = bytes;
        self
    }

    /// How batches are compressed.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.settings.compression = compression;
        self
    }

    /// A batch whose `set` fails with a backend error is tried `retries` more times, first
    /// after `backoff`, then doubling up to one second. After that its records are counted
    /// as lost, said on stderr, and told in a record at the start of the next batch.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.settings.retries = retries;
        self.settings.retry_backoff = backoff;
        self
    }

    /// How long dropping the [`Guard`] waits for the last batches to be written.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// How long `log::Log::flush` waits (see [`Sink::flush`]).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.settings.flush_timeout = timeout;
        self
    }

    /// Failed writes are said on stderr at most once per `interval`, with counts.
    pub fn report_interval(mut self, interval: Duration) -> Self {
        self.settings.report_interval = interval;
        self
    }

    /// Keep events whose target is `target` or a module below it (`a::b` covers `a::b::c`)
    /// out of this sink. `hodor_log` is always on the list.
    pub fn ignore_target(mut self, target: impl Into<String>) -> Self {
        self.settings.ignore_targets.push(target.into());
        self
    }

    /// The clock records are timestamped with: the system clock by default; tests pass a
    /// [`ManualClock`](hodor_core::clock::ManualClock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.settings.clock = clock;
        self
    }

    /// Checks the settings and starts the sink's worker thread.
    ///
    /// Errors: [`Error::InvalidInput`] for a setting out of range (a zero batch or queue
    /// size, a prefix too long for the keys, a record budget larger than a batch, ...),
    /// [`Error::Unsupported`] for a retention on a driver without TTLs,
    /// [`Error::Closed`] for a closed contract.
    pub fn build(self) -> Result<(Sink, Guard)> {
        self.check()?;
        let Builder { contract, settings } = self;
        let shared = Arc::new(Shared::new(settings));
        let instance = key::new_instance();
        let worker = {
            let shared = shared.clone();
            let for_worker = contract.clone();
            std::thread::Builder::new()
                .name("hodor-log".to_owned())
                .spawn(move || worker::run(shared, for_worker, instance))
                .map_err(|e| Error::Backend {
                    driver: contract.driver(),
                    contract: Arc::from(contract.name()),
                    operation: "start the hodor-log worker thread",
                    key: None,
                    kind: hodor_core::BackendKind::Other,
                    applied: hodor_core::Applied::No,
                    source: Box::new(e),
                })?
        };
        let sink = Sink { shared };
        let guard = Guard {
            sink: sink.clone(),
            worker: Some(worker),
        };
        Ok((sink, guard))
    }

    /// [`build`](Builder::build), returning the sink's `tracing` layer.
    #[cfg(feature = "tracing")]
    pub fn layer(self) -> Result<(crate::Layer, Guard)> {
        let (sink, guard) = self.build()?;
        Ok((sink.layer(), guard))
    }

    /// [`build`](Builder::build), returning the sink's `log` logger.
    #[cfg(feature = "log")]
    pub fn logger(self) -> Result<(crate::Logger, Guard)> {
        let (sink, guard) = self.build()?;
        Ok((sink.logger(), guard))
    }

    fn check(&self) -> Result<()> {
        let s = &self.settings;
        let c = &self.contract;
        let invalid = |reason: String| Error::InvalidInput {
            driver: c.driver(),
            contract: Arc::from(c.name()),
            key: None,
            reason,
        };
        if c.is_closed() {
            return Err(Error::Closed {
                driver: c.driver(),
                contract: Arc::from(c.name()),
                operation: "hodor_log::Sink::build",
            });
        }
        let prefix_max = MAX_KEY_LEN - KEY_TAIL_MAX;
        if s.prefix.len() > prefix_max {
            return Err(invalid(format!(
                "the log prefix is {} bytes; at most {prefix_max} leave room for the batch key",
                s.prefix.len()
            )));
        }
        if s.prefix.contains('\0') {
            return Err(invalid(
                "the log prefix contains a NUL character".to_owned(),
            ));
        }
        if let Some(retention) = s.retention {
            if retention.is_zero() || retention > MAX_TTL {
                return Err(invalid(format!(
                    "retention {retention:?} is out of range: above zero and at most 100 years"
                )));
            }
            if !c.capabilities().ttl {
                return Err(Error::Unsupported {
                    driver: c.driver(),
                    contract: Arc::from(c.name()),
                    operation: "log retention",
                    reason: Some(
                        "the driver has no TTLs, so batches could not expire; use a driver \
                         with TTLs or leave retention off"
                            .to_owned(),
                    ),
                });
            }
        }
        for (name, value) in [
            ("batch_records", s.batch_records),
            ("batch_bytes", s.batch_bytes),
            ("queue_records", s.queue_records),
            ("queue_bytes", s.queue_bytes),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        if s.batch_bytes > MAX_BATCH_BYTES {
            return Err(invalid(format!(
                "batch_bytes {} is over the {MAX_BATCH_BYTES}-byte limit",
                s.batch_bytes
            )));
        }
        if s.max_record_bytes < MIN_RECORD_BYTES
            || s.max_record_bytes > s.batch_bytes
            || s.max_record_bytes > s.queue_bytes
        {
            return Err(invalid(format!(
                "max_record_bytes {} must be at least {MIN_RECORD_BYTES} and at most batch_bytes \
                 ({}) and queue_bytes ({})",
                s.max_record_bytes, s.batch_bytes, s.queue_bytes
            )));
        }
        if s.batch_age.is_zero() {
            return Err(invalid("batch_age must be above zero".to_owned()));
        }
        Ok(())
    }
}
