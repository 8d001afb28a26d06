//! [`Hub`]: the per-store fan-out drivers publish their changes into.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

use super::{Event, EventKind, Filter, Shared, State, Watch, WatchOptions, WatchRequest};
use crate::driver::{DriverError, DriverResult};
use crate::error::Echo;

/// How a [`Hub`] buffers and remembers events.
///
/// ```
/// use hodor_core::watch::HubConfig;
/// let config = HubConfig::new().history(1000).buffer(256);
/// assert_eq!((config.history, config.buffer), (1000, 256));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubConfig {
    /// How many of the latest events the hub keeps, while it has watches, for
    /// [`Start::After`](super::Start::After) to replay (default 10,000; 0 keeps none).
    pub history: usize,
    /// The buffer of a watch that asks for none (default 4096).
    pub buffer: usize,
    /// The driver assigns sequence numbers ([`Hub::publish_at`]), as a server's change log
    /// does; otherwise the hub assigns them ([`Hub::publish`]).
    pub external_seq: bool,
}

impl HubConfig {
    /// The defaults: a history of 10,000 events, buffers of 4096, sequence numbers
    /// assigned by the hub.
    pub const fn new() -> HubConfig {
        HubConfig {
            history: 10_000,
            buffer: 4096,
            external_seq: false,
        }
    }

    /// Sets [`HubConfig::history`].
    pub const fn history(mut self, events: usize) -> HubConfig {
        self.history = events;
        self
    }

    /// Sets [`HubConfig::buffer`] (at least 1).
    pub const fn buffer(mut self, events: usize) -> HubConfig {
        self.buffer = if events == 0 { 1 } else { events };
        self
    }

    /// Sets [`HubConfig::external_seq`].
    pub const fn external_seq(mut self, yes: bool) -> HubConfig {
        self.external_seq = yes;
        self
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig::new()
    }
}

/// Where a hub's history starts, when a watch asked to resume before it: the error a
/// driver with a log of its own answers by reading the missing events from it
/// ([`Hub::subscribe_with_backfill`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behind {
    /// The hub holds every event after this `seq`, and none at or before it.
    pub floor: u64,
}

/// The fan-out of one store's changes to its watches.
///
/// A driver keeps one hub per store (shared by every handle on the store) and calls
/// [`Hub::publish`] (or [`Hub::publish_at`]) for every change, at the point where the
/// change takes effect: under the lock that orders the writes of the key, so each key's
/// events are published in the order its writes took effect. The hub filters by prefix (as
/// bytes), buffers per watch, reports [`Item::Lagged`](super::Item::Lagged) on overflow
/// without ever waiting for a consumer, keeps the recent history for
/// [`Start::After`](super::Start::After), and ends its watches on [`Hub::close`].
///
/// **Cost.** While nobody watches, [`Hub::is_watched`] is one relaxed atomic load and a
/// driver should skip everything else: no sequence number is assigned and no history is
/// kept. While somebody does, a publish allocates the key once and takes the hub's lock, so
/// publishes are serialized (that is what makes `seq` order the delivery order).
///
/// **Locks.** Publishing takes the hub's lock and then each matching watch's, briefly; a
/// consumer takes only its watch's. Nothing the user owns runs under either, so a driver
/// may publish while holding its own store locks (and must, to keep per-key order).
///
/// **Sequence numbers.** Assigned by the hub (the default), they increase by one per
/// event while the store is watched; when its last watch goes away the hub skips a number
/// and forgets its history, because the changes made while nobody watched are not
/// recorded: resuming from before that point is then `Compacted`. With
/// [`HubConfig::external_seq`], the driver's own log numbers the events
/// ([`Hub::publish_at`]), and the driver reports gaps and restarts of its log with
/// [`Hub::lag`] and [`Hub::restart_at`].
///
/// ```
/// use hodor_core::watch::{EventKind, Hub, HubConfig, Item, WatchOptions, WatchRequest};
///
/// let hub = Hub::new("doc", "store", HubConfig::new());
/// assert!(!hub.is_watched());
/// let request = WatchRequest::new("cfg/", WatchOptions::new());
/// let mut watch = hub.subscribe_now(&request).unwrap();
/// assert!(hub.is_watched());
/// let seq = hub.publish("cfg/a", EventKind::Put).unwrap();
/// hub.publish("other", EventKind::Put);
/// match watch.try_recv().unwrap() {
///     Some(Item::Event(e)) => assert_eq!((e.seq, &*e.key), (seq, "cfg/a")),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(watch.try_recv().unwrap(), None);
/// drop(watch);
/// assert!(!hub.is_watched());
/// ```
pub struct Hub {
    shared: Arc<HubShared>,
}

pub(crate) struct HubShared {
    /// How many watches are attached: read without the lock by [`Hub::is_watched`].
    watched: AtomicUsize,
    state: Mutex<HubState>,
    config: HubConfig,
    driver: &'static str,
    contract: Arc<str>,
}

struct HubState {
    /// The `seq` of the last event published (with hub-assigned numbers, the counter).
    last: u64,
    /// `history` holds every event published with a `seq` in `(floor, last]`.
    floor: u64,
    history: VecDeque<Event>,
    watches: Vec<Arc<Shared>>,
    closed: bool,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("driver", &self.shared.driver)
            .field("contract", &Echo(&self.shared.contract))
            .field("config", &self.shared.config)
            .field("watches", &self.shared.watched.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.close();
    }
}

impl Hub {
    /// A hub for the store `contract` of the driver `driver` (the names go into the
    /// watches' errors).
    pub fn new(driver: &'static str, contract: &str, config: HubConfig) -> Hub {
        Hub {
            shared: Arc::new(HubShared {
                watched: AtomicUsize::new(0),
                state: Mutex::new(HubState {
                    last: 0,
                    floor: 0,
                    history: VecDeque::new(),
                    watches: Vec::new(),
                    closed: false,
                }),
                config,
                driver,
                contract: Arc::from(contract),
            }),
        }
    }

    /// The hub's config.
    pub fn config(&self) -> HubConfig {
        self.shared.config
    }

    /// `true` while at least one watch is attached. One relaxed atomic load: a write path
    /// checks it and publishes nothing when it is `false`.
    ///
    /// A write that reads `false` while a watch is being attached is not published to it:
    /// the write happened before the watch started. A driver that takes snapshots attaches
    /// the watch while no write can be in progress (under its locks), so the snapshot and
    /// the events agree.
    #[inline]
    pub fn is_watched(&self) -> bool {
        self.shared.watched.load(Ordering::Relaxed) > 0
    }

    /// How many watches are attached (for [`Gauges::watches`](crate::Gauges::watches)).
    pub fn watch_count(&self) -> u64 {
        self.shared.watched.load(Ordering::Relaxed) as u64
    }

    /// How far behind the slowest watch is: the most events any watch has buffered and
    /// not yet taken (a consumer takes everything buffered at once, so this is what piled
    /// up since it last looked). A watch reports `Lagged` when this reaches its buffer.
    pub fn backlog(&self) -> usize {
        let state = self.shared.state.lock();
        state
            .watches
            .iter()
            .map(|w| w.state.lock().queue.len())
            .max()
            .unwrap_or(0)
    }

    /// The `seq` of the last event published, or where the hub's numbering stands.
    pub fn last_seq(&self) -> u64 {
        self.shared.state.lock().last
    }

    /// Publishes a change with the next sequence number (hub-assigned numbers); returns it,
    /// or `None` when no watch is attached (nothing is recorded then).
    pub fn publish(&self, key: &str, kind: EventKind) -> Option<u64> {
        if !self.is_watched() {
            return None;
        }
        let key: Arc<str> = Arc::from(key);
        let mut state = self.shared.state.lock();
        if state.watches.is_empty() || state.closed {
            return None;
        }
        state.last += 1;
        let event = Event {
            seq: state.last,
            key,
            kind,
        };
        let seq = event.seq;
        let delivered = self.shared.deliver(&mut state, event);
        drop(state);
        delivered.finish();
        Some(seq)
    }

    /// Publishes a change numbered by the driver's own log ([`HubConfig::external_seq`]).
    /// A `seq` at or below the last one is ignored (`false`): it was published already. A
    /// `seq` beyond the next one means the hub did not see what lies between: its history
    /// restarts here, so nobody resumes across the gap (report the gap to the watches with
    /// [`Hub::lag`]).
    pub fn publish_at(&self, seq: u64, key: &str, kind: EventKind) -> bool {
        let mut state = self.shared.state.lock();
        if seq <= state.last || state.closed {
            return false;
        }
        if seq != state.last + 1 {
            state.history.clear();
            state.floor = seq - 1;
        }
        state.last = seq;
        if state.watches.is_empty() {
            state.floor = seq;
            return true;
        }
        let event = Event {
            seq,
            key: Arc::from(key),
            kind,
        };
        let delivered = self.shared.deliver(&mut state, event);
        drop(state);
        delivered.finish();
        true
    }

    /// Every watch drops what it buffered and receives
    /// [`Item::Lagged`](super::Item::Lagged) with `missed` added: the driver lost events
    /// (a gap in its log). The history restarts after the last `seq`.
    pub fn lag(&self, missed: u64) {
        let mut state = self.shared.state.lock();
        state.history.clear();
        state.floor = state.last;
        for watch in &state.watches {
            watch.lag(missed);
        }
    }

    /// The driver's log restarted (its sequence went backwards, as when a server lost its
    /// data): every watch gets `Lagged { missed: 0 }` and numbering continues after `seq`;
    /// a watch that started after a later `seq` of the old numbering receives the new
    /// events all the same.
    pub fn restart_at(&self, seq: u64) {
        let mut state = self.shared.state.lock();
        state.history.clear();
        state.last = seq;
        state.floor = seq;
        for watch in &state.watches {
            watch.after.fetch_min(seq, Ordering::Relaxed);
            watch.lag(0);
        }
    }

    /// Attaches a watch that starts with the changes published from now on.
    pub fn subscribe_now(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        let mut state = self.shared.state.lock();
        let after = state.last;
        self.shared.attach(&mut state, request, after, after, &[])
    }

    /// Attaches a watch that receives every event with a `seq` after `after`: those in the
    /// history first, then new ones.
    ///
    /// `after` older than the history is [`DriverError::Compacted`] (its `floor` says where
    /// the history starts). `after` beyond the last `seq` is [`DriverError::InvalidInput`]
    /// with hub-assigned numbers (no such event exists yet); with a driver's own numbers it
    /// is where a snapshot read from the backend stands while the hub has not caught up,
    /// and the events up to it are skipped.
    pub fn subscribe(&self, request: &WatchRequest<'_>, after: u64) -> DriverResult<Watch> {
        let mut state = self.shared.state.lock();
        self.shared.attach(&mut state, request, after, after, &[])
    }

    /// [`Hub::subscribe`] with the events `(after, covers]` the driver read from its own
    /// log, every one of them, in order: they make up for the part of the history the hub
    /// no longer holds. Still [`DriverError::Compacted`] if `covers` does not reach the
    /// hub's history (it moved on meanwhile: read more and try again).
    pub fn subscribe_with_backfill(
        &self,
        request: &WatchRequest<'_>,
        after: u64,
        covers: u64,
        backfill: &[Event],
    ) -> DriverResult<Watch> {
        let mut state = self.shared.state.lock();
        self.shared
            .attach(&mut state, request, after, covers.max(after), backfill)
    }

    /// Ends every watch (they deliver what they buffered, then `Closed`) and refuses new
    /// ones. Called when the store goes away; also on drop.
    pub fn close(&self) {
        let watches = {
            let mut state = self.shared.state.lock();
            state.closed = true;
            state.history.clear();
            self.shared.watched.store(0, Ordering::Relaxed);
            std::mem::take(&mut state.watches)
        };
        for watch in watches {
            watch.end();
        }
    }
}

/// What a publish does after releasing the hub's lock.
struct Delivered {
    wake: Vec<Arc<Shared>>,
    forgotten: Option<Event>,
}

impl Delivered {
    fn finish(self) {
        for watch in self.wake {
            watch.wake();
        }
        drop(self.forgotten);
    }
}

impl HubShared {
    /// Detaches a dropped watch. The last one takes the history with it: the changes made
    /// while nobody watches are not recorded, so nobody may resume across them.
    pub(crate) fn unsubscribe(&self, watch: &Arc<Shared>) {
        let mut state = self.state.lock();
        let Some(at) = state.watches.iter().position(|w| Arc::ptr_eq(w, watch)) else {
            return;
        };
        state.watches.swap_remove(at);
        self.watched.store(state.watches.len(), Ordering::Relaxed);
        if state.watches.is_empty() {
            state.history.clear();
            if !self.config.external_seq {
                // A number for the unrecorded changes: resuming at or before the last
                // recorded one is Compacted from now on.
                state.last += 1;
            }
            state.floor = state.last;
        }
    }

    /// Queues `event` on every matching watch and records it in the history.
    ///
    /// What it returns is done once the hub's lock is released ([`Delivered::finish`]): the
    /// consumers to wake (a wake-up is a system call; under the lock it would hold up every
    /// other publisher; no allocation unless a consumer sleeps), and the event that left
    /// the history (freeing its key there would do the same).
    #[must_use]
    fn deliver(&self, state: &mut HubState, event: Event) -> Delivered {
        let mut delivered = Delivered {
            wake: Vec::new(),
            forgotten: None,
        };
        for watch in &state.watches {
            if watch.push(&event) {
                delivered.wake.push(watch.clone());
            }
        }
        if self.config.history == 0 {
            state.floor = event.seq;
            delivered.forgotten = Some(event);
            return delivered;
        }
        if state.history.len() >= self.config.history
            && let Some(oldest) = state.history.pop_front()
        {
            state.floor = oldest.seq;
            delivered.forgotten = Some(oldest);
        }
        state.history.push_back(event);
        delivered
    }

    /// Attaches a watch starting after `after`. The events `(after, covered]` are in
    /// `backfill`; the rest come from the history, which must reach back to `covered`.
    fn attach(
        self: &Arc<HubShared>,
        state: &mut HubState,
        request: &WatchRequest<'_>,
        after: u64,
        covered: u64,
        backfill: &[Event],
    ) -> DriverResult<Watch> {
        if state.closed {
            return Err(DriverError::Closed);
        }
        if after > state.last && !self.config.external_seq {
            return Err(DriverError::InvalidInput(format!(
                "seq {after} is ahead of the store's last seq, {}: it is not a seq this store \
                 gave out",
                state.last
            )));
        }
        if state.watches.is_empty() && self.config.external_seq {
            // The driver's reader follows this hub only while it is watched: it starts
            // again where the first watch does.
            state.history.clear();
            state.last = after.max(covered);
            state.floor = state.last;
        }
        if covered < state.last && covered < state.floor {
            return Err(DriverError::Compacted {
                requested: after,
                floor: state.floor,
            });
        }
        let capacity = request
            .buffer
            .unwrap_or(self.config.buffer)
            .clamp(1, WatchOptions::MAX_BUFFER);
        let shared = Arc::new(Shared {
            filter: Filter {
                prefix: request.prefix.into(),
                exact: request.exact,
            },
            after: AtomicU64::new(after),
            capacity,
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            driver: self.driver,
            contract: self.contract.clone(),
        });
        // Replay: the backfill, then the history after what it covers.
        // Nobody waits on a watch that does not exist yet.
        for event in backfill.iter().filter(|e| e.seq <= covered) {
            let _ = shared.push(event);
        }
        for event in state.history.iter().filter(|e| e.seq > covered) {
            let _ = shared.push(event);
        }
        state.watches.push(shared.clone());
        self.watched.store(state.watches.len(), Ordering::Relaxed);
        Ok(Watch {
            shared,
            local: VecDeque::new(),
            pending_lag: None,
            last_batch: 0,
            hub: Arc::downgrade(self),
            snapshot: None,
        })
    }
}
