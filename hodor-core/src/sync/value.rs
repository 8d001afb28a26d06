//! [`Synced<T>`]: one key, decoded and validated, followed.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::worker::{Cx, Reporter, Target, guarded};
use super::{Options, Runner, Status, callback_panicked, decode};
use crate::clock::Clock;
use crate::contract::Contract;
use crate::driver::Metadata;
use crate::error::{Echo, Error, Result};
use crate::watch::{EventKind, lock};

type Validate<T> = Box<dyn Fn(&T) -> std::result::Result<(), String> + Send>;
type OnChange<T> = Box<dyn FnMut(Option<&T>, &T) + Send>;

/// A typed value that follows one key of a store: see [the module docs](super).
///
/// [`Synced::get`] is a lock-free read of the latest good value; a thread of its own
/// follows the key and runs the callbacks. Dropping it stops the thread.
pub struct Synced<T> {
    shared: Arc<Shared<T>>,
    runner: Runner,
    key: String,
}

struct Shared<T> {
    value: ArcSwap<T>,
    status: Mutex<Status>,
}

impl<T> fmt::Debug for Synced<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Synced")
            .field("key", &Echo(&self.key))
            .field("status", &*lock(&self.shared.status))
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Synced<T> {
    /// Starts building a `Synced` for `key` of `contract`.
    pub fn builder(contract: &Contract, key: &str) -> SyncedBuilder<T> {
        SyncedBuilder {
            contract: contract.clone(),
            key: key.to_owned(),
            validate: None,
            on_change: None,
            default: None,
            options: Options::default(),
        }
    }
}

impl<T> Synced<T> {
    /// The latest good value: a lock-free load, cheap enough to call on every request.
    pub fn get(&self) -> Arc<T> {
        self.shared.value.load_full()
    }

    /// How the value relates to the store now.
    pub fn status(&self) -> Status {
        lock(&self.shared.status).clone()
    }

    /// The key it follows.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Returns once the thread has handled what is due: every event its watch has
    /// received, every debounce deadline and poll that the clock has reached, with their
    /// callbacks run.
    ///
    /// A change made through an in-process store (memory) is in the watch as soon as the
    /// write returns. With a [`ManualClock`](crate::clock::ManualClock) this is how a test
    /// steps the thread: write, `settle` (the change is noted at the clock's time),
    /// advance the clock, `settle` (the debounce fires and the callbacks have run).
    /// Called from one of its own callbacks, it returns at once.
    pub fn settle(&self) {
        self.runner.settle();
    }
}

/// Builds a [`Synced`]: [`Synced::builder`], then the options, then
/// [`start`](SyncedBuilder::start).
pub struct SyncedBuilder<T> {
    contract: Contract,
    key: String,
    validate: Option<Validate<T>>,
    on_change: Option<OnChange<T>>,
    default: Option<T>,
    options: Options,
}

impl<T> fmt::Debug for SyncedBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncedBuilder")
            .field("key", &Echo(&self.key))
            .field("debounce", &self.options.debounce)
            .field("poll_interval", &self.options.poll_interval)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> SyncedBuilder<T> {
    /// Checks each decoded value; an `Err` keeps the last good value and reports the reason.
    pub fn validate(
        mut self,
        validate: impl Fn(&T) -> std::result::Result<(), String> + Send + 'static,
    ) -> Self {
        self.validate = Some(Box::new(validate));
        self
    }

    /// Called with `(old, new)` for every new good value, on the `Synced`'s thread; first
    /// with `(None, &initial)`.
    pub fn on_change(mut self, on_change: impl FnMut(Option<&T>, &T) + Send + 'static) -> Self {
        self.on_change = Some(Box::new(on_change));
        self
    }

    /// Called with each distinct error once (until a good value comes): invalid JSON, a
    /// failed validation, a failed read, a callback that panicked, the contract closed.
    pub fn on_error(mut self, on_error: impl FnMut(&Error) + Send + 'static) -> Self {
        self.options.on_error = Some(Box::new(on_error));
        self
    }

    /// The value to start with when the key is missing or invalid at start (instead of
    /// an error).
    pub fn default_value(mut self, value: T) -> Self {
        self.default = Some(value);
        self
    }

    /// The trailing debounce (default [`DEFAULT_DEBOUNCE`](super::DEFAULT_DEBOUNCE));
    /// longer ones are cut to [`MAX_DEBOUNCE`](super::MAX_DEBOUNCE). Zero reads every
    /// change at once.
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.options.debounce(debounce);
        self
    }

    /// How often a driver without watch is polled (default
    /// [`DEFAULT_POLL_INTERVAL`](super::DEFAULT_POLL_INTERVAL), at least
    /// [`MIN_POLL_INTERVAL`](super::MIN_POLL_INTERVAL)); also how long a failed read waits
    /// before it is tried again.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.options.poll_interval(interval);
        self
    }

    /// The clock debouncing and polling read (tests pass a
    /// [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.options.clock = clock;
        self
    }

    /// Subscribes, reads the key and starts following it.
    ///
    /// A key that is missing ([`Error::NotFound`]), invalid ([`Error::InvalidInput`]) or
    /// unreadable at start is an error, unless a [default](Self::default_value) was given.
    pub fn start(self) -> Result<Synced<T>> {
        let SyncedBuilder {
            contract,
            key,
            validate,
            on_change,
            default,
            options,
        } = self;
        let (timing, on_error) = options.split();
        let clock = timing.clock.clone();
        // Subscribe first, then read: a change in between is in the watch.
        let watch = match contract.watch_key(&key) {
            Ok(watch) => Some(watch),
            Err(Error::Unsupported { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut reporter = Reporter::new(on_error);
        let mut target = Follow {
            contract: contract.clone(),
            key: key.clone(),
            shared: None,
            validate,
            on_change,
            seen: Seen::Unknown,
            meta: None,
            polling: watch.is_none(),
            unreported: None,
        };
        let now = clock.now();
        let (initial, status) = match target.read_initial() {
            Ok(value) => (value, Status::Current),
            Err(e) => {
                let Some(default) = default else {
                    return Err(e);
                };
                let status = match e {
                    Error::NotFound { .. } => Status::Missing { since: now },
                    e => {
                        // Reported from the thread, like every other error.
                        let (error, news) = reporter.record(e);
                        if news {
                            target.unreported = Some(error.clone());
                        }
                        Status::Stale { error, since: now }
                    }
                };
                (default, status)
            }
        };
        let shared = Arc::new(Shared {
            value: ArcSwap::from_pointee(initial),
            status: Mutex::new(status),
        });
        target.shared = Some(shared.clone());
        let runner = Runner::start(&contract, Some(&key), target, watch, timing, reporter)?;
        Ok(Synced {
            shared,
            runner,
            key,
        })
    }
}

/// The last state of the key the thread saw.
#[derive(PartialEq)]
enum Seen {
    Unknown,
    Missing,
    Bytes(Bytes),
}

/// What the thread does for a `Synced`.
struct Follow<T> {
    contract: Contract,
    key: String,
    /// Set once the initial value is in.
    shared: Option<Arc<Shared<T>>>,
    validate: Option<Validate<T>>,
    on_change: Option<OnChange<T>>,
    seen: Seen,
    /// Polling: the metadata last seen.
    meta: Option<Option<Metadata>>,
    polling: bool,
    /// The error of the start, reported once the thread runs.
    unreported: Option<Arc<Error>>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Follow<T> {
    fn decode(&self, bytes: &[u8]) -> Result<T> {
        decode(&self.contract, &self.key, bytes, self.validate.as_ref())
    }

    fn callback_panicked(&self, message: String) -> Error {
        callback_panicked(&self.contract, &self.key, message)
    }

    /// The value at start, noting what was seen.
    fn read_initial(&mut self) -> Result<T> {
        if self.polling {
            self.meta = Some(match self.contract.stat(&self.key) {
                Ok(meta) => Some(meta),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            });
        }
        match self.contract.get(&self.key) {
            Ok(bytes) => {
                let value = self.decode(&bytes);
                self.seen = Seen::Bytes(bytes);
                value
            }
            Err(e) => {
                if e.is_not_found() {
                    self.seen = Seen::Missing;
                }
                Err(e)
            }
        }
    }

    fn shared(&self) -> Option<&Arc<Shared<T>>> {
        self.shared.as_ref()
    }

    fn set_status(&self, status: Status) {
        if let Some(shared) = self.shared() {
            *lock(&shared.status) = status;
        }
    }

    fn stale(&self, error: Error, cx: &mut Cx<'_>) {
        let (error, news) = cx.reporter.record(error);
        if let Some(shared) = self.shared() {
            let mut status = lock(&shared.status);
            let since = match &*status {
                Status::Stale { since, .. } => *since,
                _ => cx.clock.now(),
            };
            *status = Status::Stale {
                error: error.clone(),
                since,
            };
        }
        if news {
            cx.reporter.notify(&error);
        }
    }

    fn apply(&mut self, bytes: Bytes, cx: &mut Cx<'_>) {
        if self.seen == Seen::Bytes(bytes.clone()) {
            return;
        }
        let decoded = self.decode(&bytes);
        self.seen = Seen::Bytes(bytes);
        let value = match decoded {
            Ok(value) => Arc::new(value),
            Err(e) => return self.stale(e, cx),
        };
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let old = shared.value.swap(value.clone());
        *lock(&shared.status) = Status::Current;
        cx.reporter.clear(&self.key);
        self.call(Some(&old), &value, cx);
    }

    fn call(&mut self, old: Option<&T>, new: &T, cx: &mut Cx<'_>) {
        let Some(on_change) = &mut self.on_change else {
            return;
        };
        if let Err(message) = guarded(|| on_change(old, new)) {
            let error = self.callback_panicked(message);
            cx.reporter.report(error);
        }
    }

    fn missing(&mut self, cx: &mut Cx<'_>) {
        if self.seen == Seen::Missing {
            return;
        }
        self.seen = Seen::Missing;
        self.set_status(Status::Missing {
            since: cx.clock.now(),
        });
    }

    fn failed(&mut self, error: Error, cx: &mut Cx<'_>) {
        if matches!(error, Error::Closed { .. }) {
            cx.reporter.report(error);
            cx.closed = true;
            return;
        }
        self.stale(error, cx);
        cx.retry = true;
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Target for Follow<T> {
    fn start(&mut self, cx: &mut Cx<'_>) {
        if let Some(error) = self.unreported.take() {
            cx.reporter.notify(&error);
        }
        if let Some(shared) = self.shared.clone() {
            let initial = shared.value.load_full();
            self.call(None, &initial, cx);
        }
    }

    fn on_event(&mut self, key: &str, _kind: EventKind) -> bool {
        key == self.key
    }

    fn on_lagged(&mut self) {}

    fn reload(&mut self, cx: &mut Cx<'_>) {
        match self.contract.get(&self.key) {
            Ok(bytes) => self.apply(bytes, cx),
            Err(Error::NotFound { .. }) => self.missing(cx),
            Err(e) => self.failed(e, cx),
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_>) {
        let meta = match self.contract.stat(&self.key) {
            Ok(meta) => Some(meta),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return self.failed(e, cx),
        };
        if self.meta == Some(meta) {
            return;
        }
        self.meta = Some(meta);
        match meta {
            None => self.missing(cx),
            Some(_) => self.reload(cx),
        }
    }
}
