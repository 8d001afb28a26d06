//! Watching a store: [`Watch`], the events it delivers, and the [`Hub`] drivers publish
//! into.
//!
//! [`Contract::watch`](crate::Contract::watch) returns a [`Watch`]: a receiver of the
//! changes to every key that starts with a prefix (a plain byte prefix, as `list` matches),
//! or to one key ([`Contract::watch_key`](crate::Contract::watch_key)).
//!
//! ```no_run
//! use hodor_core::watch::{EventKind, Item};
//! // use hodor_memory as _; // link the driver
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
//! (This crate depends on no driver, so the example is compiled but not run here; it runs
//! in `hodor-memory`'s documentation.)
//!
//! # The rules
//!
//! Every driver with [`Capabilities::watch`](crate::Capabilities::watch) keeps these; the
//! conformance suite checks each one. A driver without it answers every watch call with
//! [`Error::Unsupported`], and [`crate::sync`] falls back to
//! polling.
//!
//! - **What is an event.** [`EventKind::Put`] for every key a `set` or `set_many` wrote,
//!   [`EventKind::Delete`] for every live entry a `delete` or `delete_many` removed,
//!   [`EventKind::Expired`] when the store reclaims an expired entry (within the bound the
//!   driver documents for reclaiming, not at the deadline itself; a `delete` of an expired
//!   entry that was not reclaimed yet also reports `Expired`), and [`EventKind::Evicted`]
//!   when a store with limits evicts a live entry to make room. An event carries the key,
//!   not the value: read the value when you need it (it may be newer than the event).
//! - **Sequence numbers.** Every event has a `seq` from one counter per store, increasing in
//!   the order the changes took effect. Per key, events arrive in the order the writes took
//!   effect, always; a driver may also promise `seq` order over the whole store (the
//!   memory and Redis drivers do). Numbers are not dense: a gap does not mean a lost event.
//! - **Prefixes are bytes.** A watch on `"app"` sees `app`, `app/x` and `apple`; glob
//!   characters are data.
//! - **A slow consumer never blocks writers.** Each watch buffers at most
//!   [`WatchOptions::buffer`] events (plus one batch it is reading); when the buffer is
//!   full, the buffered events are dropped and the consumer receives one
//!   [`Item::Lagged`] before the events that came after. After `Lagged`, read the state you
//!   track again (a resync); events continue.
//! - **Resuming.** [`Contract::watch_from`](crate::Contract::watch_from) starts after a
//!   `seq` the consumer has seen, replaying every event after it from the history the store
//!   keeps. A `seq` older than that history is [`Error::Compacted`]
//!   (etcd's compaction rule): resync instead.
//! - **Snapshots.** [`Contract::watch_snapshot`](crate::Contract::watch_snapshot) returns the
//!   matching keys and the `seq` they are current to, and a watch that delivers exactly the
//!   events after that `seq`: no change between the two is lost or delivered twice (the
//!   list-then-watch of a Kubernetes informer).
//! - **Ending.** Dropping a `Watch` unsubscribes it. Closing its contract (or dropping the
//!   last clone) ends it: the events already buffered are still delivered, then `recv` is
//!   [`Error::Closed`] and the iterator ends.
//!
//! # What each driver adds
//!
//! | | memory (`hodor-memory`) | Redis (`hodor-redis`) |
//! |---|---|---|
//! | order | `seq` order over the whole store | `seq` order over the contract's one change log, from every process |
//! | `Expired` | by the sweeper or a write, within the sweep bound | by the pruner, a write or a `delete`, within about `prune_interval_ms` |
//! | `Evicted` | CLOCK's victims (with limits) | none (`maxmemory` evicts on its own) |
//! | history for `watch_from` | the last `watch_history` changes, kept only while watched | the last `watch_history` changes (about: `MAXLEN ~`), always |
//! | loss | never silent: a full buffer is `Lagged` | never silent: a full buffer, a log trimmed past what was read, or a server that lost its data is `Lagged`; a reconnect loses nothing the log holds |
//! | across a restart | a persistent store publishes every change it logs; recovery publishes nothing; a `seq` from before the restart is `Compacted` | the log is on the server: a new pool resumes from it |
//! | not seen | — | writes that bypass hodor |
//!
//! An expired entry that a write replaces before it was reclaimed is reported as the
//! write's `Put` alone, on both.
//!
//! # For drivers
//! A driver keeps a [`Hub`] per store and publishes into it; the hub does the filtering,
//! buffering, lag accounting, history and snapshot bookkeeping, so a driver only decides
//! where its changes take effect. See [`Hub`].

mod hub;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

pub use hub::{Behind, Hub, HubConfig};

use crate::error::{Echo, Error, Result};

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A `set` or `set_many` wrote the key (created or overwritten).
    Put,
    /// A `delete` or `delete_many` removed the key's live entry.
    Delete,
    /// The store reclaimed the key's expired entry.
    Expired,
    /// The store evicted the key's live entry to stay within its limits.
    Evicted,
}

impl EventKind {
    /// `true` when the key has a value after this event ([`EventKind::Put`]).
    pub fn is_put(self) -> bool {
        self == EventKind::Put
    }

    /// A one-letter code, for drivers that store events (`p`, `d`, `e`, `v`).
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Put => "p",
            EventKind::Delete => "d",
            EventKind::Expired => "e",
            EventKind::Evicted => "v",
        }
    }

    /// The kind of a [`EventKind::code`].
    pub fn from_code(code: &[u8]) -> Option<EventKind> {
        match code {
            b"p" => Some(EventKind::Put),
            b"d" => Some(EventKind::Delete),
            b"e" => Some(EventKind::Expired),
            b"v" => Some(EventKind::Evicted),
            _ => None,
        }
    }
}

/// One change to one key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Where the change is in the store's sequence: larger is later.
    pub seq: u64,
    /// The key that changed (shared between the watches that receive it).
    pub key: Arc<str>,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// An event; drivers build them when they read their own change log.
    pub fn new(seq: u64, key: impl Into<Arc<str>>, kind: EventKind) -> Event {
        Event {
            seq,
            key: key.into(),
            kind,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("seq", &self.seq)
            .field("key", &Echo(&self.key))
            .field("kind", &self.kind)
            .finish()
    }
}

/// What a [`Watch`] delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// A change.
    Event(Event),
    /// Events were dropped: the watch's buffer overflowed, or the driver found a gap in its
    /// change log (say, after a reconnect). Read the state you track again; the events
    /// after this marker continue from there.
    Lagged {
        /// How many events were dropped, as far as is known: the buffered events a full
        /// buffer dropped, or the size of a gap in the store's sequence (which counts
        /// events under every prefix). 0 when it cannot be known (the store's sequence
        /// went backwards, as when a server restarted without its data).
        missed: u64,
    },
}

/// How a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Start {
    /// With the changes made from now on.
    Now,
    /// With every change after this `seq` (replayed from the store's history), then the
    /// changes made from now on.
    After(u64),
    /// With a [`Snapshot`] of the matching keys and the changes after it.
    Snapshot,
}

/// The keys a watch matched when it started, and the `seq` they are current to: the watch
/// delivers exactly the events after `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The last change the keys include; the watch starts after it.
    pub seq: u64,
    /// Every live key that matched, sorted by bytes.
    pub keys: Vec<String>,
}

impl Snapshot {
    /// A snapshot; drivers build them.
    pub fn new(seq: u64, keys: Vec<String>) -> Snapshot {
        Snapshot { seq, keys }
    }
}

/// Options of [`Contract::watch_with`](crate::Contract::watch_with).
///
/// ```
/// use hodor_core::watch::{Start, WatchOptions};
/// let options = WatchOptions::new().buffer(64).start(Start::After(41));
/// assert_eq!(options.buffer, Some(64));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// Match only the key equal to the watched string, not every key it is a prefix of.
    pub exact: bool,
    /// How many events the watch buffers before it drops them and reports
    /// [`Item::Lagged`] (1 to [`WatchOptions::MAX_BUFFER`]). `None`: the store's default
    /// ([`HubConfig::buffer`], 4096 unless the driver's config says otherwise).
    pub buffer: Option<usize>,
    /// Where the watch starts.
    pub start: Start,
}

impl WatchOptions {
    /// The largest buffer a watch may ask for.
    pub const MAX_BUFFER: usize = 1 << 24;

    /// A prefix watch, the store's default buffer, starting now.
    pub const fn new() -> WatchOptions {
        WatchOptions {
            exact: false,
            buffer: None,
            start: Start::Now,
        }
    }

    /// Sets [`WatchOptions::exact`].
    pub const fn exact(mut self, yes: bool) -> WatchOptions {
        self.exact = yes;
        self
    }

    /// Sets [`WatchOptions::buffer`].
    pub const fn buffer(mut self, events: usize) -> WatchOptions {
        self.buffer = Some(events);
        self
    }

    /// Sets [`WatchOptions::start`].
    pub const fn start(mut self, start: Start) -> WatchOptions {
        self.start = start;
        self
    }
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions::new()
    }
}

/// What a driver's [`Driver::watch`](crate::Driver::watch) is asked for. The `Contract` has
/// checked it: an exact key is a valid key, a buffer is within bounds.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct WatchRequest<'a> {
    /// The prefix, or with `exact` the key.
    pub prefix: &'a str,
    /// Match only the key equal to `prefix`.
    pub exact: bool,
    /// The watch's buffer, or `None` for the hub's default.
    pub buffer: Option<usize>,
    /// Where the watch starts.
    pub start: Start,
}

impl<'a> WatchRequest<'a> {
    /// A request for `prefix` with `options`.
    pub fn new(prefix: &'a str, options: WatchOptions) -> WatchRequest<'a> {
        WatchRequest {
            prefix,
            exact: options.exact,
            buffer: options.buffer,
            start: options.start,
        }
    }

    /// `true` when `key` is one this request watches: it starts with the prefix as bytes
    /// (or, exact, equals it).
    #[inline]
    pub fn matches(&self, key: &str) -> bool {
        if self.exact {
            key == self.prefix
        } else {
            key.as_bytes().starts_with(self.prefix.as_bytes())
        }
    }
}

/// Locks a `std` mutex whatever a panicking holder left: the state stays consistent.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which keys a watch receives.
#[derive(Debug)]
struct Filter {
    prefix: Box<str>,
    exact: bool,
}

impl Filter {
    #[inline]
    fn matches(&self, key: &str) -> bool {
        if self.exact {
            key == &*self.prefix
        } else {
            key.as_bytes().starts_with(self.prefix.as_bytes())
        }
    }
}

/// The part of a watch the publisher and the consumer share.
pub(crate) struct Shared {
    filter: Filter,
    /// Events with a `seq` at or below this are not delivered (a snapshot or resume point).
    /// Written only under the hub's lock, when a driver's log restarts its numbering.
    after: AtomicU64,
    capacity: usize,
    state: Mutex<State>,
    ready: Condvar,
    driver: &'static str,
    contract: Arc<str>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Event>,
    /// Events dropped since the consumer last saw a `Lagged`: delivered as one `Lagged`
    /// before everything in `queue`.
    missed: u64,
    lagged: bool,
    ended: bool,
    /// The consumer is blocked in `recv`: a publisher wakes it once `queue` holds
    /// `wake_at` events.
    waiting: bool,
    /// 1 while events come one at a time; more while they stream (see `recv_deadline`).
    wake_at: usize,
    /// Wakes a blocked `recv` without an item (the sync layer's control messages).
    interrupted: bool,
}

impl Shared {
    /// Queues `event` unless it is before the watch's start; on a full buffer, first drops
    /// the buffer and counts it as missed, so the consumer sees `Lagged` and then this
    /// event. Never blocks on the consumer: the lock is held by the consumer only to swap
    /// the queue out. Returns `true` if the consumer sleeps and must be woken
    /// ([`Shared::wake`]), which the caller does once it holds no lock.
    #[inline]
    fn push(&self, event: &Event) -> bool {
        if event.seq <= self.after.load(Ordering::Relaxed) || !self.filter.matches(&event.key) {
            return false;
        }
        let mut state = self.state.lock();
        if state.ended {
            return false;
        }
        if state.queue.len() >= self.capacity {
            state.missed += state.queue.len() as u64;
            state.lagged = true;
            state.queue.clear();
        }
        state.queue.push_back(event.clone());
        // Woken once per sleep: the event that wakes it clears the flag.
        if state.waiting && state.queue.len() >= state.wake_at {
            state.waiting = false;
            return true;
        }
        false
    }

    /// Wakes a consumer sleeping in `recv`.
    fn wake(&self) {
        self.ready.notify_one();
    }

    /// Drops what is buffered and reports a gap of `missed` events.
    fn lag(&self, missed: u64) {
        let mut state = self.state.lock();
        if state.ended {
            return;
        }
        state.missed += state.queue.len() as u64 + missed;
        state.lagged = true;
        state.queue.clear();
        let waiting = state.waiting;
        drop(state);
        if waiting {
            self.ready.notify_one();
        }
    }

    /// Ends the watch: what is buffered is still delivered, then `Closed`.
    pub(crate) fn end(&self) {
        let mut state = self.state.lock();
        state.ended = true;
        drop(state);
        self.ready.notify_all();
    }

    /// Wakes a `recv` blocked on this watch; it returns without an item.
    pub(crate) fn interrupt(&self) {
        let mut state = self.state.lock();
        state.interrupted = true;
        drop(state);
        self.ready.notify_all();
    }
}

/// A consumer whose last batch held this many events or more is following a stream.
const STREAMING: usize = 8;
/// While it does, it wakes on its own after this long (the most a streamed event waits)...
const BATCH_WAIT: Duration = Duration::from_micros(200);
/// ... and a publisher wakes it earlier only once this many events are waiting, or an
/// eighth of its buffer if that is more (at most half of it): enough that a stream of
/// writes rarely gets there before the consumer's own timer, and enough room left that a
/// consumer the scheduler is slow to run does not overflow. Waking a thread is a system
/// call (on a virtual machine, also an interrupt sent to another CPU) paid by a writer on
/// its write path; woken per small batch, a writer pays it every few dozen events.
const BATCH: usize = 128;

/// How many queued events make a publisher wake a sleeping consumer with a buffer of
/// `capacity` events (see [`BATCH`]).
fn wake_at(capacity: usize, streaming: bool) -> usize {
    if streaming {
        (capacity / 8).max(BATCH.min(capacity / 2)).max(1)
    } else {
        1
    }
}

/// A handle that ends a watch from elsewhere (the contract's close) without owning it.
#[derive(Clone)]
pub(crate) struct Ender(Weak<Shared>);

impl Ender {
    pub(crate) fn end(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.end();
        }
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// A handle that interrupts a blocked `recv` from another thread.
#[derive(Clone)]
pub(crate) struct Interrupter(Weak<Shared>);

impl Interrupter {
    pub(crate) fn interrupt(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.interrupt();
        }
    }
}

/// A subscription to the changes of the keys under a prefix (or of one key).
///
/// A blocking receiver: [`Watch::recv`] waits for the next [`Item`],
/// [`Watch::recv_timeout`] waits at most a while, [`Watch::try_recv`] never waits, and the
/// `Iterator` implementation yields items until the watch ends. Dropping it unsubscribes.
/// See the [module docs](self) for the rules.
pub struct Watch {
    shared: Arc<Shared>,
    /// The consumer's batch: swapped out of the shared queue whole, so receiving costs one
    /// lock per batch, not per event.
    local: VecDeque<Event>,
    /// A `Lagged` to deliver before `local`.
    pending_lag: Option<u64>,
    /// How many events the last refill took: whether events stream.
    last_batch: usize,
    hub: Weak<hub::HubShared>,
    snapshot: Option<Snapshot>,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("driver", &self.shared.driver)
            .field("contract", &Echo(&self.shared.contract))
            .field("prefix", &Echo(&self.shared.filter.prefix))
            .field("exact", &self.shared.filter.exact)
            .field("after", &self.shared.after.load(Ordering::Relaxed))
            .field("buffer", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe(&self.shared);
        }
    }
}

impl Watch {
    /// Waits for the next item. Once the watch has ended (its contract was closed) and its
    /// buffered events are delivered, [`Error::Closed`].
    pub fn recv(&mut self) -> Result<Item> {
        loop {
            if let Some(item) = self.recv_deadline(None)? {
                return Ok(item);
            }
        }
    }

    /// Waits at most `timeout` for the next item; `Ok(None)` if none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Item>> {
        // The batch in hand needs no deadline (reading the clock per event would cost more
        // than taking the event).
        if let Some(item) = self.next_local() {
            return Ok(Some(item));
        }
        let deadline = Instant::now().checked_add(timeout);
        match deadline {
            // Returns early, without an item, only when interrupted (the sync layer).
            Some(at) => self.recv_deadline(Some(at)),
            // A timeout too long to represent is no timeout.
            None => self.recv().map(Some),
        }
    }

    /// The next item if one is ready; `Ok(None)` otherwise. Never waits.
    pub fn try_recv(&mut self) -> Result<Option<Item>> {
        if let Some(item) = self.next_local() {
            return Ok(Some(item));
        }
        let mut state = self.shared.state.lock();
        let _ = refill(&mut self.local, &mut self.pending_lag, &mut state);
        let ended = state.ended;
        drop(state);
        match self.next_local() {
            Some(item) => Ok(Some(item)),
            None if ended => Err(self.closed()),
            None => Ok(None),
        }
    }

    /// The snapshot the watch started with ([`Start::Snapshot`]).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Takes the snapshot out of the watch.
    pub fn take_snapshot(&mut self) -> Option<Snapshot> {
        self.snapshot.take()
    }

    /// The watch delivers the events with a `seq` after this one (its snapshot's or resume
    /// point's `seq`, or the store's last `seq` when it started).
    pub fn started_after(&self) -> u64 {
        self.shared.after.load(Ordering::Relaxed)
    }

    /// How many events the watch buffers before it reports [`Item::Lagged`].
    pub fn buffer(&self) -> usize {
        self.shared.capacity
    }

    /// Attaches the snapshot a driver took for this watch (its `seq` is
    /// [`Watch::started_after`]).
    pub fn with_snapshot(mut self, keys: Vec<String>) -> Watch {
        self.snapshot = Some(Snapshot::new(self.started_after(), keys));
        self
    }

    pub(crate) fn ender(&self) -> Ender {
        Ender(Arc::downgrade(&self.shared))
    }

    pub(crate) fn interrupter(&self) -> Interrupter {
        Interrupter(Arc::downgrade(&self.shared))
    }

    /// Waits for an item until `deadline` (forever with `None`); `Ok(None)` on a timeout
    /// or an interrupt.
    pub(crate) fn recv_deadline(&mut self, deadline: Option<Instant>) -> Result<Option<Item>> {
        if let Some(item) = self.next_local() {
            return Ok(Some(item));
        }
        let mut state = self.shared.state.lock();
        loop {
            let took = refill(&mut self.local, &mut self.pending_lag, &mut state);
            if took > 0 {
                self.last_batch = took;
            }
            if let Some(missed) = self.pending_lag.take() {
                return Ok(Some(Item::Lagged { missed }));
            }
            if let Some(event) = self.local.pop_front() {
                return Ok(Some(Item::Event(event)));
            }
            if state.ended {
                return Err(self.closed());
            }
            if std::mem::take(&mut state.interrupted) {
                return Ok(None);
            }
            // While events stream (the last batch was large), sleep for a moment and take
            // what gathered, rather than be woken for each event or small batch: a
            // wake-up is a system call for the publisher and an interrupt for this CPU. A
            // publisher still wakes this consumer well before its buffer can overflow. A
            // lone event is delivered at once.
            let streaming = self.last_batch >= STREAMING;
            state.wake_at = wake_at(self.shared.capacity, streaming);
            let mut until = deadline;
            if streaming {
                let soon = Instant::now() + BATCH_WAIT;
                until = Some(until.map_or(soon, |at| at.min(soon)));
            }
            state.waiting = true;
            match until {
                None => self.shared.ready.wait(&mut state),
                Some(at) => {
                    if Instant::now() >= at {
                        state.waiting = false;
                        if deadline.is_some_and(|d| d <= at) {
                            return Ok(None);
                        }
                        continue;
                    }
                    let _ = self.shared.ready.wait_until(&mut state, at);
                }
            }
            state.waiting = false;
            // A batch wait that timed out with nothing is not a stream any more.
            self.last_batch = state.queue.len();
        }
    }

    fn next_local(&mut self) -> Option<Item> {
        if let Some(missed) = self.pending_lag.take() {
            return Some(Item::Lagged { missed });
        }
        self.local.pop_front().map(Item::Event)
    }

    fn closed(&self) -> Error {
        Error::Closed {
            driver: self.shared.driver,
            contract: self.shared.contract.clone(),
            operation: "watch",
        }
    }
}

/// Moves what the publisher queued into the consumer's batch (only when the batch is
/// empty, so order is kept): one swap, whatever the number of events.
/// Returns how many events it took.
fn refill(local: &mut VecDeque<Event>, pending_lag: &mut Option<u64>, state: &mut State) -> usize {
    if !local.is_empty() || pending_lag.is_some() {
        return 0;
    }
    if std::mem::take(&mut state.lagged) {
        *pending_lag = Some(std::mem::take(&mut state.missed));
    }
    std::mem::swap(local, &mut state.queue);
    local.len()
}

impl Iterator for Watch {
    type Item = Item;

    /// The next item, waiting for it; `None` once the watch has ended.
    fn next(&mut self) -> Option<Item> {
        self.recv().ok()
    }
}

#[cfg(test)]
mod tests;
