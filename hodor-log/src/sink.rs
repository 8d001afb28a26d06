//! [`Sink`], the handle on a running sink, and its [`Guard`].

use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hodor_core::Contract;

use crate::builder::Builder;
use crate::queue::Shared;

/// A running sink: records handed to its [`Layer`](crate::Layer) or
/// [`Logger`](crate::Logger) are written in batches into one contract.
///
/// Made by [`Sink::builder`]; cheap to clone (clones share the sink). One sink can feed a
/// `tracing` layer and a `log` logger at once, so both end up in one stream of batches.
///
/// ```
/// use hodor_memory as _;
/// # fn main() -> Result<(), hodor_core::Error> {
/// let contract = hodor_core::Contract::new("memory", "sink-doc", None)?;
/// let (sink, guard) = hodor_log::Sink::builder(contract).prefix("logs/app/").build()?;
/// # #[cfg(feature = "log")] {
/// let logger = sink.logger();
/// log::Log::log(&logger, &log::Record::builder().args(format_args!("hello")).build());
/// # }
/// assert!(sink.flush(std::time::Duration::from_secs(5)));
/// assert_eq!(sink.stats().records_dropped, 0);
/// drop(guard); // writes what is left and stops the worker
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Sink {
    pub(crate) shared: Arc<Shared>,
}

/// What a sink has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records stored (in batches whose `set` succeeded).
    pub records_written: u64,
    /// Batches stored.
    pub batches_written: u64,
    /// Records refused because the queue was full (or the sink had shut down).
    pub records_dropped: u64,
    /// Records in batches that could not be written, after retries.
    pub records_lost: u64,
    /// Failed `set` attempts, retries included.
    pub write_errors: u64,
    /// Records waiting in the queue now.
    pub records_queued: u64,
}

impl Sink {
    /// Starts configuring a sink that writes into `contract`.
    pub fn builder(contract: Contract) -> Builder {
        Builder::new(contract)
    }

    /// A `tracing` layer feeding this sink.
    #[cfg(feature = "tracing")]
    pub fn layer(&self) -> crate::Layer {
        crate::Layer {
            shared: self.shared.clone(),
        }
    }

    /// A `log` logger feeding this sink.
    #[cfg(feature = "log")]
    pub fn logger(&self) -> crate::Logger {
        crate::Logger {
            shared: self.shared.clone(),
        }
    }

    /// Waits until every record handed to the sink before this call is written (or has
    /// failed after its retries), at most `timeout`. `true` when it was; `false` on
    /// timeout, and at once when called from inside the sink (a driver's storage call on
    /// the worker thread, or a value being formatted), where waiting could never end.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.shared.flush(timeout)
    }

    /// Counters of what the sink has written, dropped and lost.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let q = self.shared.queue_stats();
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        Stats {
            records_written: load(&c.written),
            batches_written: load(&c.batches),
            records_dropped: q.dropped,
            records_lost: load(&c.lost),
            write_errors: load(&c.write_errors),
            records_queued: q.queued,
        }
    }

    /// The key prefix batches are written under.
    pub fn prefix(&self) -> &str {
        &self.shared.settings.prefix
    }
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("prefix", &self.shared.settings.prefix)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Keeps a sink's worker running; dropping it writes what is queued and stops the worker.
///
/// The drop waits at most the builder's
/// [`shutdown_timeout`](crate::Builder::shutdown_timeout) (5 seconds by default): with a
/// store that does not answer, the program still exits, and what could not be written is
/// said on stderr. Records logged after the guard is dropped are dropped and counted.
/// Keep it alive for as long as the program logs, typically as a local of `main`.
#[must_use = "dropping the guard stops the sink at once; keep it alive while the program logs"]
pub struct Guard {
    pub(crate) sink: Sink,
    pub(crate) worker: Option<JoinHandle<()>>,
}

impl Guard {
    /// The sink this guard runs.
    pub fn sink(&self) -> &Sink {
        &self.sink
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let timeout = self.sink.shared.settings.shutdown_timeout;
        if self.sink.shared.stop(timeout) {
            if let Some(worker) = self.worker.take() {
                // It has said it stopped, so this returns at once.
                let _ = worker.join();
            }
        } else {
            // Left running: it ends with the process, or when its store answers.
            let _ = writeln!(
                std::io::stderr(),
                "hodor-log: the sink's store did not take its last batches within {timeout:?}; \
                 records not yet written may be lost"
            );
        }
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("sink", &self.sink).finish()
    }
}
