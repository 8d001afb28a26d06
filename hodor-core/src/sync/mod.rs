//! Typed configuration that follows the store: [`Synced<T>`] for one key, [`SyncedMap<T>`]
//! for every key under a prefix.
//!
//! ```no_run
//! use hodor_core::sync::Synced;
//! // use hodor_memory as _; // link the driver
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
//! assert_eq!(limits.get().rps, 250);
//!
//! store.set("limits.json", "not json", None)?;
//! limits.settle();
//! assert_eq!(limits.get().rps, 250, "a bad value keeps the last good one");
//! assert!(limits.status().is_stale());
//! # Ok(())
//! # }
//! ```
//!
//! (Compiled but not run here, as this crate links no driver; it runs in `hodor-memory`'s
//! documentation.)
//!
//! # How it follows the store
//! - **Start.** `start` subscribes first and reads second, so a change between the two is
//!   not missed. A missing or invalid value at start is an error, unless a
//!   [default](SyncedBuilder::default_value) is given. The first `on_change` call has no old
//!   value: `(None, &first)`.
//! - **Changes.** A change to the key (from any contract, any process for a shared backend)
//!   is read, decoded from JSON, [validated](SyncedBuilder::validate) and, if good,
//!   swapped in: [`Synced::get`] returns it (a lock-free load) and `on_change(Some(&old),
//!   &new)` runs. Bytes equal to the last ones seen do not call back.
//! - **Bad values.** Invalid JSON, a failed validation or a failed read keep the last good
//!   value and set [`Status::Stale`]; each distinct error is reported once (`on_error` and
//!   the status) until a good value comes. A delete keeps the last good value too, with
//!   [`Status::Missing`]; re-creating the key calls back.
//! - **Bursts.** Changes are debounced (trailing): a burst is read once, the debounce
//!   (100 ms by default, at most 1 s) after its last change, and never later than 1 s after
//!   its first, so a key written without pause is still followed every second.
//! - **Loss.** A watch that lagged, or a backend that reconnected, just makes it read the
//!   key again: only the latest value matters, so nothing is lost.
//! - **Callbacks** run on one thread per `Synced`, one at a time, in order, never while a
//!   store lock is held. A callback that panics is caught and reported (`on_error` with
//!   [`Error::Callback`]); the next change is followed as usual.
//! - **Drivers without watch** ([`Capabilities::watch`](crate::Capabilities::watch) unset)
//!   are polled instead: `stat` every [`poll interval`](SyncedBuilder::poll_interval) (1 s by
//!   default), and the value when the metadata changed.
//! - **Time** is read from the builder's [`Clock`]; with a
//!   [`ManualClock`](crate::clock::ManualClock) nothing waits on real time, and
//!   [`Synced::settle`] steps the worker, so tests are exact.
//! - **End.** Dropping the `Synced` stops its thread. Closing the contract ends the watch;
//!   the last good value stays readable.

mod map;
mod value;
mod worker;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

pub use map::{SyncedMap, SyncedMapBuilder};
pub use value::{Synced, SyncedBuilder};

use crate::clock::Clock;
use crate::contract::Contract;
use crate::error::{Echo, Error, Result};
use crate::watch::Watch;

/// The debounce a builder starts with.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// The longest debounce, and the longest a change waits however many follow it.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

/// How often a driver without watch is polled, unless the builder says otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest poll interval.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How the synced value relates to the store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Status {
    /// The value is the store's latest.
    Current,
    /// The store's value could not be used (invalid JSON, rejected by validation, or a read
    /// that failed); the last good value is kept.
    Stale {
        /// The latest reason.
        error: Arc<Error>,
        /// When the value became stale (the clock's wall time).
        since: SystemTime,
    },
    /// The key was deleted (or expired, or never existed and a default was given); the
    /// last good value is kept.
    Missing {
        /// When the key was found missing (the clock's wall time).
        since: SystemTime,
    },
}

impl Status {
    /// `true` for [`Status::Current`].
    pub fn is_current(&self) -> bool {
        matches!(self, Status::Current)
    }

    /// `true` for [`Status::Stale`].
    pub fn is_stale(&self) -> bool {
        matches!(self, Status::Stale { .. })
    }

    /// `true` for [`Status::Missing`].
    pub fn is_missing(&self) -> bool {
        matches!(self, Status::Missing { .. })
    }
}

/// The error callback.
type OnError = Box<dyn FnMut(&Error) + Send>;

/// What every builder shares: timing and the error callback.
struct Options {
    debounce: Duration,
    poll_interval: Duration,
    clock: Clock,
    on_error: Option<OnError>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            debounce: DEFAULT_DEBOUNCE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            clock: Clock::system(),
            on_error: None,
        }
    }
}

impl Options {
    fn debounce(&mut self, d: Duration) {
        self.debounce = d.min(MAX_DEBOUNCE);
    }

    fn poll_interval(&mut self, d: Duration) {
        self.poll_interval = d.max(MIN_POLL_INTERVAL);
    }
}

/// The thread behind a `Synced` or `SyncedMap`: stopped and joined on drop (unless dropped
/// from one of its own callbacks, when it ends after the callback returns).
struct Runner {
    control: Arc<worker::Control>,
    thread: Option<JoinHandle<()>>,
}

impl Runner {
    /// Starts the thread for `target`, reading `contract`'s `key` (or prefix).
    fn start<T: worker::Target>(
        contract: &Contract,
        key: Option<&str>,
        target: T,
        watch: Option<Watch>,
        options: Timing,
        reporter: worker::Reporter,
    ) -> Result<Runner> {
        let Timing {
            debounce,
            poll_interval,
            clock,
        } = options;
        let (control, thread) =
            worker::spawn(target, watch, clock, debounce, poll_interval, reporter).map_err(
                |e| Error::InvalidInput {
                    driver: contract.driver(),
                    contract: Arc::from(contract.name()),
                    key: key.map(str::to_owned),
                    reason: format!("cannot start the thread that follows the store: {e}"),
                },
            )?;
        Ok(Runner {
            control,
            thread: Some(thread),
        })
    }

    fn settle(&self) {
        self.control.settle();
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.control.stop();
        if let Some(thread) = self.thread.take()
            && !self.control.on_worker()
        {
            let _ = thread.join();
        }
    }
}

/// The timing part of [`Options`].
struct Timing {
    debounce: Duration,
    poll_interval: Duration,
    clock: Clock,
}

impl Options {
    /// Splits the options into the timing and the error callback.
    fn split(self) -> (Timing, Option<OnError>) {
        let Options {
            debounce,
            poll_interval,
            clock,
            on_error,
        } = self;
        (
            Timing {
                debounce,
                poll_interval,
                clock,
            },
            on_error,
        )
    }
}

/// `InvalidInput` about `key`'s value.
fn invalid(contract: &Contract, key: &str, reason: String) -> Error {
    Error::InvalidInput {
        driver: contract.driver(),
        contract: Arc::from(contract.name()),
        key: Some(key.to_owned()),
        reason,
    }
}

/// A callback about `key` panicked with `message`.
fn callback_panicked(contract: &Contract, key: &str, message: String) -> Error {
    Error::Callback {
        driver: contract.driver(),
        contract: Arc::from(contract.name()),
        key: Some(key.to_owned()),
        message,
    }
}

/// Decodes `key`'s stored bytes as JSON and runs `validate` on the value (a panic in it is
/// an `Error::Callback`).
fn decode<T: serde::de::DeserializeOwned>(
    contract: &Contract,
    key: &str,
    bytes: &[u8],
    validate: Option<impl FnOnce(&T) -> std::result::Result<(), String>>,
) -> Result<T> {
    let value: T = serde_json::from_slice(bytes).map_err(|e| {
        invalid(
            contract,
            key,
            format!(
                "the stored value is not JSON for {}: {}",
                std::any::type_name::<T>(),
                Echo::prose(&e.to_string())
            ),
        )
    })?;
    if let Some(validate) = validate {
        let mut verdict = Ok(());
        if let Err(message) = worker::guarded(|| verdict = validate(&value)) {
            return Err(callback_panicked(contract, key, message));
        }
        verdict.map_err(|reason| {
            invalid(
                contract,
                key,
                format!(
                    "the value was rejected by validation: {}",
                    Echo::prose(&reason)
                ),
            )
        })?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
