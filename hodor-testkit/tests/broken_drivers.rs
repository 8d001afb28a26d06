//! The mutation suite: the conformance suite must reject every driver here.
//!
//! `Reference` is a small driver that keeps every rule (a `Mutex` over a map of entries,
//! an ordered index of keys, a deadline queue, limits, stores shared by name). Each
//! [`Flaw`] breaks one rule the way driver authors do: a batch limit nobody split for, a
//! text-mode value, a per-handle cache, a check-then-act delete, a two-step write, an
//! eviction that forgets an overwrite is not growth. Every flaw is run against the case
//! written for its rule three times, on a fresh harness each time, and must fail it every
//! time: rejection by name, deterministically. The unbroken reference passes the whole suite.
//!
//! `HODOR_MUTATION_FULL=1` also runs the whole suite against every flaw and prints every
//! case that rejects it (the mutation table); it takes a minute on two cores.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use hodor_core::clock::{Clock, ManualClock};
use hodor_core::driver::{Driver, DriverError, DriverResult, Gauges, page_of};
use hodor_core::watch::{EventKind, Hub, HubConfig, Start, Watch, WatchRequest};
use hodor_core::{Bytes, Capabilities, Contract, Metadata, Page, Result, Version};
use hodor_testkit::{Harness, Limits, Outcome, Report, TestClock, cases, run_cases, run_suite};

/// One deliberate mistake (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    /// No mistake: the reference must pass everything.
    Unbroken,
    /// The driver has no TTLs and says so: TTL cases must be skipped, not failed.
    NoTtlCapability,

    // Listing.
    /// `list` returns keys in descending order.
    UnsortedList,
    /// `list` sorts case-insensitively, as a database collation might.
    ListSortedIgnoringCase,
    /// `list("foo")` matches whole path segments only: `foo` and `foo/...`, not `foo.bar`.
    ListAsPathSegments,
    /// `list` still shows keys whose TTL has passed.
    ListIncludesExpired,
    /// `list` returns the first page of 5000 keys and stops.
    ListFirstPageOnly,
    /// Paged `list` restarts each page at the last key of the previous one, inclusive.
    ListPageRepeatsBoundaryKey,
    /// Paged `list` restarts each page one key too far.
    ListPageSkipsBoundaryKey,

    // Expiry.
    /// TTLs are accepted and ignored: nothing expires.
    TtlIgnored,
    /// Entries expire one millisecond after their deadline (a `<=` for a `<`).
    ExpiresOneMillisecondLate,
    /// `exists` is true for an expired entry that has not been reclaimed.
    ExistsTrueForExpired,
    /// `delete` answers true for an expired entry it removed.
    DeleteTrueForExpired,
    /// `set` without a TTL keeps the TTL of the value it overwrites.
    OverwriteKeepsTtl,
    /// `set_many` gives its TTL to new keys only; existing keys keep theirs.
    SetManyTtlOnlyOnNewKeys,
    /// Reclaiming a due deadline removes the key without checking it is still that
    /// entry's deadline: a key rewritten since is removed with it.
    StaleDeadlineRemovesRewrittenKey,

    // Deletes.
    /// `delete` always answers true.
    DeleteAlwaysTrue,

    // Values.
    /// A trailing newline (`\n` or `\r\n`) is stripped, as a line protocol does.
    TrimsTrailingNewline,
    /// `\r\n` becomes `\n`, as a text-mode file does.
    NormalizesLineEndings,
    /// Leading and trailing ASCII whitespace is trimmed.
    TrimsWhitespace,
    /// A value that parses as a number is stored as that number (`007` becomes `7`).
    NumberLikeValuesReencoded,

    // Keys.
    /// A key that parses as a number is stored under its canonical form (`007` is `7`).
    NumericKeysCanonicalized,
    /// Keys are compared by their first 1000 bytes, as an index with a length limit does.
    LongKeysComparedByPrefix,

    // Names and sharing.
    /// Every name opens one shared store.
    NamesShareOneStore,
    /// Names are compared case-insensitively.
    NamesCaseInsensitive,
    /// Names are truncated to 64 bytes, as a fixed-width column does.
    NamesTruncatedTo64Bytes,
    /// Names are truncated to 255 bytes.
    NamesTruncatedTo255Bytes,
    /// Each handle caches the values it read, until it writes the key itself.
    PerHandleReadCache,
    /// Each handle caches the misses it read, until it writes the key itself.
    PerHandleMissCache,
    /// Each handle caches list results for a second of its clock, until it writes.
    PerHandleListCache,

    // Lifecycle.
    /// The first close of any handle releases the store's data.
    ReleasesOnFirstClose,
    /// `close` does nothing; only dropping the last handle releases the data.
    ReleasesOnlyOnDrop,
    /// Opening an open store with another config joins it silently.
    JoinsWithOtherConfig,
    /// An open refused for another config still counts as a handle, so the store is
    /// never released.
    RefusedOpenKeepsAHandle,

    // Bulk calls at scale.
    /// `set_many` writes the first 1000 entries (a backend batch limit) and drops the rest.
    SetManyFirstPageOnly,
    /// `get_many` answers the first 100 keys and `None` for the rest.
    GetManyFirstPageOnly,
    /// `delete_many` deletes and counts the first 25 keys only.
    DeleteManyFirstPageOnly,
    /// `get_many` runs pages of 100 keys and joins their answers in the wrong order.
    GetManyPagesOutOfOrder,
    /// `set_many` applies pages of 100 entries last page first, so an earlier duplicate
    /// wins.
    SetManyPagesInReverse,

    // Reads that write.
    /// `get_many` slides each found entry's TTL forward (expiry from last access).
    GetManySlidesTtl,
    /// `exists` updates `modified` (an access time).
    ExistsTouchesModified,

    // Concurrency.
    /// A `set` racing another is dropped ("someone else is writing").
    LostWrites,
    /// Claims atomic bulk calls but runs them key by key.
    ClaimsAtomicBulk,
    /// `delete` checks the key is live, then removes it: two deletes both answer true.
    DeleteCheckThenAct,
    /// An overwrite deletes the old entry, then inserts the new one.
    OverwriteDeletesThenInserts,
    /// A write stores the value, then the TTL in a second step.
    TtlSetInSecondStep,
    /// A new key goes into the index before its data; a deleted one leaves the data first.
    IndexBeforeData,
    /// A new key's data is written before its index entry; a deleted one leaves the index
    /// first.
    DataBeforeIndex,
    /// Creating a key checks the index, then adds to it: two creators add it twice.
    CreateChecksThenInserts,
    /// The entries gauge is a counter updated with a load and a store.
    RacyEntriesGauge,

    // Limits.
    /// Claims limits, enforces none.
    LimitsIgnored,
    /// Evicts the oldest write even when expired entries could make room.
    EvictsLiveBeforeExpired,
    /// Makes room for a value before finding that it can never fit.
    EvictsBeforeRefusing,
    /// Only a new key makes room; an overwrite that grows a value passes the limit.
    OverwritesSkipTheLimit,
    /// `set_many` is a loop of `set`s: a batch bigger than the store evicts its own entries.
    SetManyEvictsItsOwnEntries,
    /// `set_many` writes the entries that fit, then refuses the rest.
    SetManyWritesWhatFits,
    /// `set_many` makes room for every entry as if it were new, so overwrites evict others.
    SetManyOverwritesReserveFullCharge,
    /// Reclaimed expired entries are not counted in the expirations gauge.
    ExpirationsNotCounted,
    /// A key set with a TTL while an old deadline record of it is queued gets no record of
    /// its own, so it is never reclaimed.
    DeadlineDroppedOnRecreate,

    // Versions.
    /// An overwrite keeps the entry's version: only a new key gets a new one.
    VersionUnchangedOnOverwrite,
    /// The version is the write's time, so two writes at one clock reading share it.
    VersionIsTheWriteTime,
    /// Each key counts its own writes, from 1 again when it is created again.
    VersionRestartsWhenRecreated,

    // Conditional writes.
    /// `create` checks that the key is absent, then writes it in a second step.
    CreateChecksThenActs,
    /// `create` refuses a key whose expired entry has not been reclaimed yet.
    CreateRefusesExpiredEntries,
    /// `set_if_version` writes whenever the key is live, whatever its version.
    SetIfVersionIgnoresTheVersion,
    /// `increment` reads the counter, then writes the sum in a second step.
    IncrementLosesUpdates,
    /// `increment` wraps around at the ends of `i64`.
    IncrementWraps,
    /// `increment` parses numbers loosely (`+1`, `01`, ` 1 `), as `str::parse` after a trim.
    IncrementParsesLoosely,
    /// `increment` writes the counter without the TTL it had.
    IncrementDropsTheTtl,

    // Paged listing.
    /// A page starts at its cursor, inclusive: the boundary key comes twice.
    ListPageRepeatsTheCursor,
    /// A page starts one key after the first key past its cursor: boundary keys are lost.
    ListPageSkipsPastTheCursor,
    /// Pages include keys whose TTL has passed.
    ListPageIncludesExpired,

    // Watch.
    /// The driver cannot watch and says so: watch cases must be skipped, not failed.
    NoWatchCapability,
    /// Events are handed to the hub two at a time, newest first (a batching publisher
    /// that flushes its buffer LIFO).
    WatchOutOfOrderPerKey,
    /// A watch on `foo` is a watch on the directory `foo/`, as a file-system watcher has.
    WatchPrefixAsPath,
    /// The watch's requested buffer is ignored: the hub's large default is used, so a
    /// watch nobody reads never reports Lagged.
    WatchIgnoresBuffer,
    /// Events for a watch whose buffer is full are skipped (a `try_send` whose error is
    /// ignored) instead of reported as Lagged.
    WatchDropsWhenFull,
    /// A writer waits while a watch's buffer is full (a blocking `send`).
    WatchBlocksWriters,
    /// A snapshot lists the keys, then subscribes a moment later: changes in between are
    /// lost.
    SnapshotWithGap,
    /// A snapshot subscribes, then lists the keys a moment later, claiming the older seq:
    /// changes in between are in both.
    SnapshotWithDuplicates,
    /// Each watch also registers a forwarding subscription that outlives it.
    DroppedWatchKeepsReceiving,
    /// `create`, `set_if_version` and `increment` write without publishing: the event
    /// hook sits in `set`, not in the write path they share.
    ConditionalWritesAreNotWatched,
    /// A delete publishes `Delete` whether or not it removed anything (the hook runs on
    /// the request, not on the change).
    DeletesOfNothingAreWatched,
    /// A delete that finds only an expired entry reports it as `Delete`, not `Expired`.
    ExpiredDeletesReportedAsDeletes,
    /// CLOCK's victims are reported as `Delete`, as if a caller had removed them.
    EvictionsReportedAsDeletes,
    /// Resuming after `seq` replays from `seq` itself (an inclusive bound): the event the
    /// consumer already had comes twice.
    ResumeReplaysItsSeq,
    /// Resuming from before the history quietly starts from now instead of saying
    /// `Compacted`: everything in between is lost without a word.
    ResumeBeforeTheHistoryStartsNow,
    /// Each contract publishes into a hub of its own: a watch sees only the writes made
    /// through its own contract.
    HubPerHandle,
}

use Flaw::*;

// ---------------------------------------------------------------------------------------
// The reference store
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Entry {
    value: Bytes,
    modified: SystemTime,
    expires: Option<SystemTime>,
    /// Write order, for evicting the oldest.
    seq: u64,
    /// What `stat` reports as the version (the write order, unless a version flaw).
    version: u64,
}

impl Entry {
    fn live(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

#[derive(Default)]
struct State {
    data: HashMap<String, Entry>,
    /// Index rows per key, as a table without a unique constraint would hold them; the
    /// correct code keeps exactly one row per stored key.
    index: BTreeMap<String, u32>,
    deadlines: BinaryHeap<Reverse<(SystemTime, String)>>,
    /// Queued deadline records per key.
    records: HashMap<String, usize>,
    bytes: u64,
    seq: u64,
    evictions: u64,
    expirations: u64,
    /// Changes made under the current hold of the lock, published when it is released.
    events: Vec<(String, EventKind)>,
    /// [`WatchOutOfOrderPerKey`]: the event held back to go after the next one.
    held: Option<(String, EventKind)>,
}

fn charge(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

impl State {
    fn live(&self, key: &str, now: SystemTime) -> Option<&Entry> {
        self.data.get(key).filter(|e| e.live(now))
    }

    /// Records a change for the watches.
    fn note(&mut self, key: &str, kind: EventKind) {
        self.events.push((key.to_owned(), kind));
    }

    /// Records the removal of `entry`: `Expired` if it had expired, else `live_kind`.
    fn note_removal(&mut self, key: &str, entry: &Entry, now: SystemTime, live_kind: EventKind) {
        let kind = if entry.live(now) {
            live_kind
        } else {
            EventKind::Expired
        };
        self.note(key, kind);
    }

    fn add_index(&mut self, key: &str) {
        self.index.entry(key.to_owned()).or_insert(1);
    }

    fn remove_data(&mut self, key: &str) -> Option<Entry> {
        let entry = self.data.remove(key)?;
        self.bytes -= charge(key, &entry.value);
        Some(entry)
    }

    /// Removes the entry and its index rows.
    fn remove(&mut self, key: &str) -> Option<Entry> {
        self.index.remove(key);
        self.remove_data(key)
    }

    /// Stores the data of one entry (not its index row) and queues its deadline.
    fn put_data(
        &mut self,
        key: &str,
        value: Bytes,
        now: SystemTime,
        expires: Option<SystemTime>,
        flaw: Flaw,
    ) {
        let old_version = self.remove_data(key).map(|e| e.version);
        self.note(key, EventKind::Put);
        self.seq += 1;
        self.bytes += charge(key, &value);
        let version = match (flaw, old_version) {
            (VersionUnchangedOnOverwrite, Some(old)) => old,
            (VersionRestartsWhenRecreated, Some(old)) => old + 1,
            (VersionRestartsWhenRecreated, None) => 1,
            _ => self.seq,
        };
        let entry = Entry {
            value,
            modified: now,
            expires,
            seq: self.seq,
            version,
        };
        self.data.insert(key.to_owned(), entry);
        if let Some(at) = expires {
            let queued = self.records.get(key).copied().unwrap_or(0);
            if !(flaw == DeadlineDroppedOnRecreate && queued > 0) {
                self.deadlines.push(Reverse((at, key.to_owned())));
                *self.records.entry(key.to_owned()).or_default() += 1;
            }
        }
    }

    fn put(
        &mut self,
        key: &str,
        value: Bytes,
        now: SystemTime,
        expires: Option<SystemTime>,
        flaw: Flaw,
    ) {
        self.put_data(key, value, now, expires, flaw);
        self.add_index(key);
    }

    /// Reclaims up to `budget` entries whose queued deadline is due.
    fn reclaim_due(&mut self, now: SystemTime, budget: usize, flaw: Flaw) {
        let mut left = budget;
        while left > 0 {
            let due = matches!(self.deadlines.peek(), Some(Reverse((at, _))) if *at <= now);
            if !due {
                return;
            }
            let Some(Reverse((at, key))) = self.deadlines.pop() else {
                return;
            };
            if let Some(n) = self.records.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    self.records.remove(&key);
                }
            }
            let current = self.data.get(&key).is_some_and(|e| e.expires == Some(at));
            if current || (flaw == StaleDeadlineRemovesRewrittenKey && self.data.contains_key(&key))
            {
                self.remove(&key);
                self.note(&key, EventKind::Expired);
                if flaw != ExpirationsNotCounted {
                    self.expirations += 1;
                }
                left -= 1;
            }
        }
    }

    fn over(&self, limits: Limits) -> bool {
        limits.max_bytes.is_some_and(|max| self.bytes > max)
            || limits
                .max_entries
                .is_some_and(|max| self.data.len() as u64 > max)
    }

    /// Brings the store back within its limits: expired entries first, then the oldest
    /// writes among the keys `protect` does not hold.
    fn make_room(
        &mut self,
        limits: Limits,
        now: SystemTime,
        protect: &dyn Fn(&str) -> bool,
        flaw: Flaw,
    ) {
        if flaw == LimitsIgnored || !self.over(limits) {
            return;
        }
        if flaw != EvictsLiveBeforeExpired {
            self.reclaim_expired(now, flaw);
        }
        while self.over(limits) {
            let oldest = self
                .data
                .iter()
                .filter(|(k, _)| !protect(k))
                .min_by_key(|(_, e)| e.seq)
                .map(|(k, _)| k.clone());
            let Some(victim) = oldest else { return };
            let expired = self.data.get(&victim).is_some_and(|e| !e.live(now));
            self.remove(&victim);
            self.note(
                &victim,
                match (expired, flaw) {
                    (true, _) => EventKind::Expired,
                    (false, EvictionsReportedAsDeletes) => EventKind::Delete,
                    (false, _) => EventKind::Evicted,
                },
            );
            if expired {
                if flaw != ExpirationsNotCounted {
                    self.expirations += 1;
                }
            } else {
                self.evictions += 1;
            }
        }
    }

    /// Removes every expired entry.
    fn reclaim_expired(&mut self, now: SystemTime, flaw: Flaw) {
        let expired: Vec<String> = self
            .data
            .iter()
            .filter(|(_, e)| !e.live(now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
            self.note(&key, EventKind::Expired);
            if flaw != ExpirationsNotCounted {
                self.expirations += 1;
            }
        }
    }
}

/// One named store.
struct Store {
    limits: Limits,
    clock: Clock,
    flaw: Flaw,
    state: Mutex<State>,
    hub: Hub,
    /// The buffer of the last watch asked for ([`WatchDropsWhenFull`], [`WatchBlocksWriters`]).
    watch_buffer: AtomicUsize,
    /// [`DroppedWatchKeepsReceiving`]: the subscriptions nobody ever drops.
    forwarders: Mutex<Vec<Watch>>,
    /// [`RacyEntriesGauge`]: the entries gauge kept apart from the data.
    resident: AtomicU64,
    /// [`LostWrites`]: a set is in progress.
    writing: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The store's lock: on release it publishes the changes made under it, still holding
/// it, so each key's events are in the order its writes took effect.
struct StateGuard<'s> {
    guard: MutexGuard<'s, State>,
    store: &'s Store,
    /// Where the changes go: the store's hub, or a handle's own ([`HubPerHandle`]).
    hub: &'s Hub,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if self.guard.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.guard.events);
        let hub = self.hub;
        for event in events {
            match self.store.flaw {
                WatchOutOfOrderPerKey => match self.guard.held.take() {
                    None => self.guard.held = Some(event),
                    Some(older) => {
                        hub.publish(&event.0, event.1);
                        hub.publish(&older.0, older.1);
                    }
                },
                WatchDropsWhenFull => {
                    if hub.backlog() < self.store.watch_buffer.load(Ordering::Acquire) {
                        hub.publish(&event.0, event.1);
                    }
                }
                WatchBlocksWriters => {
                    // Until the watch is read (or dropped: the case gave up).
                    while hub.is_watched()
                        && hub.backlog() >= self.store.watch_buffer.load(Ordering::Acquire)
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    hub.publish(&event.0, event.1);
                }
                _ => {
                    hub.publish(&event.0, event.1);
                }
            }
        }
    }
}

impl Store {
    fn state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: lock(&self.state),
            store: self,
            hub: &self.hub,
        }
    }

    fn sweep(&self, flaw: Flaw) {
        let now = self.clock.now();
        self.state().reclaim_due(now, usize::MAX, flaw);
    }
}

/// Open stores by name, with their handle counts.
type Registry = Mutex<HashMap<String, (Arc<Store>, usize)>>;

fn registry() -> &'static Registry {
    static OPEN: OnceLock<Registry> = OnceLock::new();
    OPEN.get_or_init(Registry::default)
}

fn invalid_config(name: &str) -> DriverError {
    DriverError::invalid_config(None, format!("store {name:?} is open with another config"))
}

/// A cached read: the answer, and when it expires.
type CachedRead = (Option<Bytes>, Option<SystemTime>);

/// A contract's handle on a store.
struct Handle {
    store: Arc<Store>,
    /// The registry name (the contract name, unless a name flaw maps it).
    store_name: String,
    flaw: Flaw,
    /// Per-handle caches of the cache flaws: key -> (answer, expiry of the answer).
    values: Mutex<HashMap<String, CachedRead>>,
    lists: Mutex<HashMap<String, (Vec<String>, SystemTime)>>,
    /// [`HubPerHandle`]: the hub this handle's writes and watches use instead of the store's.
    own_hub: Option<Hub>,
    released: AtomicBool,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("store", &self.store_name)
            .finish()
    }
}

impl Handle {
    fn open(
        store_name: &str,
        limits: Limits,
        history: usize,
        clock: Clock,
        flaw: Flaw,
    ) -> DriverResult<Handle> {
        let mut open = lock(registry());
        let (store, handles) = open.entry(store_name.to_owned()).or_insert_with(|| {
            let store = Store {
                limits,
                clock: clock.clone(),
                flaw,
                state: Mutex::default(),
                hub: Hub::new("reference", store_name, HubConfig::new().history(history)),
                watch_buffer: AtomicUsize::new(usize::MAX),
                forwarders: Mutex::default(),
                resident: AtomicU64::new(0),
                writing: AtomicBool::new(false),
            };
            (Arc::new(store), 0)
        });
        if flaw == RefusedOpenKeepsAHandle {
            *handles += 1;
        }
        let same = store.limits == limits
            && store.clock.same_as(&clock)
            && store.hub.config().history == history;
        if !same && flaw != JoinsWithOtherConfig {
            if *handles == 0 {
                open.remove(store_name);
            }
            return Err(invalid_config(store_name));
        }
        if flaw != RefusedOpenKeepsAHandle {
            *handles += 1;
        }
        Ok(Handle {
            store: store.clone(),
            store_name: store_name.to_owned(),
            flaw,
            values: Mutex::default(),
            lists: Mutex::default(),
            own_hub: (flaw == HubPerHandle)
                .then(|| Hub::new("reference", store_name, HubConfig::new().history(history))),
            released: AtomicBool::new(false),
        })
    }

    /// Gives the handle back; the last one releases the store's data.
    fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(hub) = &self.own_hub {
            hub.close();
        }
        let mut open = lock(registry());
        let last = match open.get_mut(&self.store_name) {
            Some((store, handles)) if Arc::ptr_eq(store, &self.store) => {
                *handles -= 1;
                *handles == 0
            }
            _ => false,
        };
        if last {
            open.remove(&self.store_name);
            drop(open);
            *self.store.state() = State::default();
            self.store.hub.close();
            lock(&self.store.forwarders).clear();
            self.store.resident.store(0, Ordering::Release);
        }
    }

    fn now(&self) -> SystemTime {
        self.store.clock.now()
    }

    fn state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: lock(&self.store.state),
            store: &self.store,
            hub: self.hub(),
        }
    }

    /// The hub this handle publishes into and watches: the store's, shared by every handle.
    fn hub(&self) -> &Hub {
        self.own_hub.as_ref().unwrap_or(&self.store.hub)
    }

    /// The live keys `request` matches, sorted.
    fn matching(&self, st: &State, request: &WatchRequest<'_>) -> Vec<String> {
        let now = self.now();
        st.data
            .iter()
            .filter(|(k, e)| e.live(now) && request.matches(k))
            .map(|(k, _)| k.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn start_watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        let hub = self.hub();
        match request.start {
            Start::Snapshot => match self.flaw {
                SnapshotWithGap => {
                    let keys = self.matching(&self.state(), request);
                    std::thread::sleep(Duration::from_millis(2));
                    Ok(hub.subscribe_now(request)?.with_snapshot(keys))
                }
                SnapshotWithDuplicates => {
                    let watch = {
                        let _st = self.state();
                        hub.subscribe_now(request)?
                    };
                    std::thread::sleep(Duration::from_millis(2));
                    let keys = self.matching(&self.state(), request);
                    Ok(watch.with_snapshot(keys))
                }
                _ => {
                    // No write can publish while the lock is held: the keys and the
                    // watch's start are one moment.
                    let st = self.state();
                    let keys = self.matching(&st, request);
                    let watch = hub.subscribe_now(request)?;
                    drop(st);
                    Ok(watch.with_snapshot(keys))
                }
            },
            Start::After(seq) => match self.flaw {
                ResumeReplaysItsSeq => hub.subscribe(request, seq.saturating_sub(1)),
                ResumeBeforeTheHistoryStartsNow => hub
                    .subscribe(request, seq)
                    .or_else(|_| hub.subscribe_now(request)),
                _ => hub.subscribe(request, seq),
            },
            _ => hub.subscribe_now(request),
        }
    }

    /// The key the store files `key` under.
    fn canonical(&self, state: &State, key: &str) -> String {
        match self.flaw {
            NumericKeysCanonicalized => match key.parse::<f64>() {
                Ok(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 => {
                    format!("{}", n as i64)
                }
                Ok(n) => format!("{n}"),
                Err(_) => key.to_owned(),
            },
            LongKeysComparedByPrefix if key.len() > 1000 => {
                let mut cut = 1000;
                while !key.is_char_boundary(cut) {
                    cut -= 1;
                }
                let prefix = &key[..cut];
                state
                    .index
                    .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                    .next()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map_or_else(|| key.to_owned(), |(k, _)| k.clone())
            }
            _ => key.to_owned(),
        }
    }

    fn value(&self, value: Bytes) -> Bytes {
        let v: &[u8] = &value;
        match self.flaw {
            TrimsTrailingNewline => {
                let v = v.strip_suffix(b"\n").unwrap_or(v);
                let v = v.strip_suffix(b"\r").unwrap_or(v);
                Bytes::copy_from_slice(v)
            }
            NormalizesLineEndings => {
                let mut out = Vec::with_capacity(v.len());
                let mut i = 0;
                while i < v.len() {
                    if v[i] == b'\r' && v.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    out.push(v[i]);
                    i += 1;
                }
                Bytes::from(out)
            }
            TrimsWhitespace => Bytes::copy_from_slice(v.trim_ascii()),
            NumberLikeValuesReencoded => match std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
            {
                Some(n) if n.is_finite() => Bytes::from(n.to_string()),
                _ => value,
            },
            _ => value,
        }
    }

    fn resident_add(&self, delta: i64) {
        if self.flaw != RacyEntriesGauge || delta == 0 {
            return;
        }
        let n = self.store.resident.load(Ordering::Acquire);
        std::thread::yield_now();
        self.store
            .resident
            .store(n.saturating_add_signed(delta), Ordering::Release);
    }

    fn forget_cached(&self, key: &str) {
        lock(&self.values).remove(key);
        lock(&self.lists).clear();
    }

    fn ttl(&self, ttl: Option<Duration>) -> Option<Duration> {
        match self.flaw {
            TtlIgnored => None,
            ExpiresOneMillisecondLate => ttl.map(|d| d + Duration::from_millis(1)),
            _ => ttl,
        }
    }

    /// One `set`, with every flaw that touches a single write.
    fn set_one(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        let value = self.value(value);
        let ttl = self.ttl(ttl);
        self.forget_cached(key);
        let now = self.now();
        let mut expires = ttl.map(|d| now + d);
        let limits = self.store.limits;
        let flaw = self.flaw;
        if flaw == LostWrites {
            if self.store.writing.swap(true, Ordering::AcqRel) {
                return Ok(()); // "someone else is writing"
            }
            std::thread::yield_now();
        }
        let too_big = limits
            .max_bytes
            .is_some_and(|max| charge(key, &value) > max);
        if too_big {
            if flaw == EvictsBeforeRefusing {
                let mut st = self.state();
                st.make_room(Limits::NONE.max_bytes(0), now, &|k| k == key, flaw);
            }
            self.store.writing.store(false, Ordering::Release);
            return Err(DriverError::CapacityExceeded(
                "the value is larger than max_bytes".into(),
            ));
        }
        let mut st = self.state();
        let key = self.canonical(&st, key);
        let key = key.as_str();
        let existed = st.data.contains_key(key);
        if flaw == OverwriteKeepsTtl && ttl.is_none() {
            expires = st.live(key, now).and_then(|e| e.expires);
        }
        match flaw {
            OverwriteDeletesThenInserts if existed => {
                st.remove(key);
                drop(st);
                std::thread::yield_now();
                st = self.state();
            }
            TtlSetInSecondStep => {
                let old = st.data.get(key).and_then(|e| e.expires);
                st.put(key, value, now, old, flaw);
                drop(st);
                std::thread::yield_now();
                st = self.state();
                if let Some(e) = st.data.get_mut(key) {
                    e.expires = expires;
                }
                if let Some(at) = expires {
                    st.deadlines.push(Reverse((at, key.to_owned())));
                    *st.records.entry(key.to_owned()).or_default() += 1;
                }
                return self.finish_set(st, key, existed, now);
            }
            _ => {}
        }
        if !existed {
            match flaw {
                IndexBeforeData => {
                    st.add_index(key);
                    drop(st);
                    std::thread::yield_now();
                    st = self.state();
                    st.put_data(key, value, now, expires, flaw);
                    return self.finish_set(st, key, existed, now);
                }
                DataBeforeIndex => {
                    st.put_data(key, value, now, expires, flaw);
                    drop(st);
                    std::thread::yield_now();
                    st = self.state();
                    st.add_index(key);
                    return self.finish_set(st, key, existed, now);
                }
                CreateChecksThenInserts => {
                    let indexed = st.index.contains_key(key);
                    drop(st);
                    std::thread::yield_now();
                    st = self.state();
                    st.put_data(key, value, now, expires, flaw);
                    if !indexed {
                        *st.index.entry(key.to_owned()).or_insert(0) += 1;
                    }
                    return self.finish_set(st, key, existed, now);
                }
                _ => {}
            }
        }
        st.put(key, value, now, expires, flaw);
        self.finish_set(st, key, existed, now)
    }

    /// What every `set` does after writing: keep the limits, reclaim a few due entries.
    fn finish_set(
        &self,
        mut st: StateGuard<'_>,
        key: &str,
        existed: bool,
        now: SystemTime,
    ) -> DriverResult<()> {
        let flaw = self.flaw;
        if !(flaw == OverwritesSkipTheLimit && existed) {
            st.make_room(self.store.limits, now, &|k| k == key, flaw);
        }
        st.reclaim_due(now, 4, flaw);
        drop(st);
        if !existed {
            self.resident_add(1);
        }
        if flaw == LostWrites {
            self.store.writing.store(false, Ordering::Release);
        }
        Ok(())
    }

    fn delete_one(&self, key: &str) -> bool {
        self.forget_cached(key);
        let now = self.now();
        let flaw = self.flaw;
        let mut st = self.state();
        let key = self.canonical(&st, key);
        let key = key.as_str();
        let removed = match flaw {
            DeleteCheckThenAct => {
                let live = st.live(key, now).is_some();
                drop(st);
                std::thread::yield_now();
                st = self.state();
                if let Some(entry) = st.remove(key) {
                    st.note_removal(key, &entry, now, EventKind::Delete);
                }
                return self.finish_delete(live, live);
            }
            IndexBeforeData => {
                let removed = st.remove_data(key);
                if let Some(entry) = &removed {
                    st.note_removal(key, entry, now, EventKind::Delete);
                }
                drop(st);
                std::thread::yield_now();
                self.state().index.remove(key);
                removed
            }
            DataBeforeIndex => {
                st.index.remove(key);
                drop(st);
                std::thread::yield_now();
                let mut st = self.state();
                let removed = st.remove_data(key);
                if let Some(entry) = &removed {
                    st.note_removal(key, entry, now, EventKind::Delete);
                }
                removed
            }
            _ => {
                let removed = st.remove(key);
                match (&removed, flaw) {
                    (None, DeletesOfNothingAreWatched)
                    | (Some(_), ExpiredDeletesReportedAsDeletes) => {
                        st.note(key, EventKind::Delete);
                    }
                    (Some(entry), _) => st.note_removal(key, entry, now, EventKind::Delete),
                    (None, _) => {}
                }
                removed
            }
        };
        let present = removed.is_some();
        let live = removed.is_some_and(|e| e.live(now));
        let answer = match flaw {
            DeleteAlwaysTrue => true,
            DeleteTrueForExpired => present,
            _ => live,
        };
        self.finish_delete(answer, present)
    }

    fn finish_delete(&self, answer: bool, removed: bool) -> bool {
        if removed {
            self.resident_add(-1);
        }
        answer
    }

    /// For the cache flaws: the answer this handle serves from its cache, if any.
    fn cached(&self, key: &str, now: SystemTime) -> Option<Option<Bytes>> {
        if !matches!(self.flaw, PerHandleReadCache | PerHandleMissCache) {
            return None;
        }
        let (answer, expires) = lock(&self.values).get(key).cloned()?;
        if expires.is_some_and(|at| now >= at) {
            return None;
        }
        match (answer, self.flaw) {
            (Some(value), _) => Some(Some(value)),
            (None, PerHandleMissCache) => Some(None),
            _ => None,
        }
    }

    /// For the cache flaws: keeps what a read found (or missed).
    fn remember(&self, key: &str, found: Option<&Entry>) {
        let answer = match (found, self.flaw) {
            (Some(e), PerHandleReadCache) => (Some(e.value.clone()), e.expires),
            (None, PerHandleMissCache) => (None, None),
            _ => return,
        };
        lock(&self.values).insert(key.to_owned(), answer);
    }

    fn read(&self, key: &str) -> Option<Bytes> {
        let now = self.now();
        if let Some(answer) = self.cached(key, now) {
            return answer;
        }
        let st = self.state();
        let canonical = self.canonical(&st, key);
        let found = st.live(&canonical, now).cloned();
        drop(st);
        self.remember(key, found.as_ref());
        found.map(|e| e.value)
    }

    fn list_keys(&self, prefix: &str) -> Vec<String> {
        let now = self.now();
        if self.flaw == PerHandleListCache {
            if let Some((keys, at)) = lock(&self.lists).get(prefix) {
                if now < *at + Duration::from_secs(1) {
                    return keys.clone();
                }
            }
        }
        let st = self.state();
        let mut keys = Vec::new();
        for (key, rows) in st
            .index
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        {
            if !key.starts_with(prefix) {
                break;
            }
            // The index is the listing; the data only says whether a key expired.
            let expired = st.data.get(key).is_some_and(|e| !e.live(now));
            if !expired || self.flaw == ListIncludesExpired {
                for _ in 0..*rows {
                    keys.push(key.clone());
                }
            }
        }
        drop(st);
        match self.flaw {
            UnsortedList => keys.into_iter().rev().collect(),
            ListSortedIgnoringCase => {
                keys.sort_by_key(|k| k.to_lowercase());
                keys
            }
            ListAsPathSegments => keys
                .into_iter()
                .filter(|k| {
                    let rest = &k[prefix.len()..];
                    prefix.is_empty()
                        || prefix.ends_with('/')
                        || rest.is_empty()
                        || rest.starts_with('/')
                })
                .collect(),
            ListFirstPageOnly => keys.into_iter().take(5000).collect(),
            ListPageRepeatsBoundaryKey => paged(&keys, 1000, |start, page| start + page - 1),
            ListPageSkipsBoundaryKey => paged(&keys, 1000, |start, page| start + page + 1),
            PerHandleListCache => {
                lock(&self.lists).insert(prefix.to_owned(), (keys.clone(), now));
                keys
            }
            _ => keys,
        }
    }
}

/// Reads `keys` in pages of `size`, the next page starting where `next(start, size)` says.
fn paged(keys: &[String], size: usize, next: impl Fn(usize, usize) -> usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < keys.len() {
        let page = &keys[start..(start + size).min(keys.len())];
        out.extend(page.iter().cloned());
        if page.len() < size {
            break;
        }
        start = next(start, size);
    }
    out
}

impl Handle {
    fn version_of(&self, e: &Entry) -> Version {
        match self.flaw {
            VersionIsTheWriteTime => {
                let at = e.modified.duration_since(SystemTime::UNIX_EPOCH);
                Version::from_raw(at.map_or(0, |d| d.as_nanos()))
            }
            _ => Version::from_raw(u128::from(e.version)),
        }
    }

    /// Writes one entry the way a `set` does, once a conditional write decided to: the
    /// limits, the reclaim and the gauge follow.
    fn put_decided(
        &self,
        mut st: StateGuard<'_>,
        key: &str,
        value: Bytes,
        expires: Option<SystemTime>,
        now: SystemTime,
    ) -> DriverResult<()> {
        let existed = st.data.contains_key(key);
        st.put(key, value, now, expires, self.flaw);
        if self.flaw == ConditionalWritesAreNotWatched {
            st.events.pop();
        }
        self.finish_set(st, key, existed, now)
    }

    fn create_one(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<bool> {
        self.forget_cached(key);
        let now = self.now();
        let expires = self.ttl(ttl).map(|d| now + d);
        let mut st = self.state();
        let taken = match self.flaw {
            CreateRefusesExpiredEntries => st.data.contains_key(key),
            _ => st.live(key, now).is_some(),
        };
        if taken {
            return Ok(false);
        }
        if self.flaw == CreateChecksThenActs {
            drop(st);
            std::thread::yield_now();
            st = self.state();
        }
        self.put_decided(st, key, value, expires, now)?;
        Ok(true)
    }

    fn set_if_version_one(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Version,
    ) -> DriverResult<bool> {
        self.forget_cached(key);
        let now = self.now();
        let expires = self.ttl(ttl).map(|d| now + d);
        let st = self.state();
        let matches = match st.live(key, now) {
            None => false,
            Some(_) if self.flaw == SetIfVersionIgnoresTheVersion => true,
            Some(e) => self.version_of(e) == expected,
        };
        if !matches {
            return Ok(false);
        }
        self.put_decided(st, key, value, expires, now)?;
        Ok(true)
    }

    fn increment_one(&self, key: &str, delta: i64) -> DriverResult<i64> {
        self.forget_cached(key);
        let now = self.now();
        let mut st = self.state();
        let current = st.live(key, now).cloned();
        let sum = match self.flaw {
            IncrementWraps => {
                let n = current.as_ref().map_or(Some(0), |e| {
                    std::str::from_utf8(&e.value).ok()?.parse().ok()
                });
                let n: i64 = n.ok_or_else(|| DriverError::InvalidInput("not a number".into()))?;
                n.wrapping_add(delta)
            }
            IncrementParsesLoosely => {
                let n = current.as_ref().map_or(Some(0), |e| {
                    std::str::from_utf8(&e.value)
                        .ok()?
                        .trim()
                        .parse::<i64>()
                        .ok()
                });
                let n = n.ok_or_else(|| DriverError::InvalidInput("not a number".into()))?;
                n.checked_add(delta)
                    .ok_or_else(|| DriverError::InvalidInput("overflow".into()))?
            }
            _ => hodor_core::driver::increment_counter(
                current.as_ref().map(|e| &e.value[..]),
                delta,
            )?,
        };
        if self.flaw == IncrementLosesUpdates {
            drop(st);
            std::thread::yield_now();
            st = self.state();
        }
        let expires = match self.flaw {
            IncrementDropsTheTtl => None,
            _ => current.and_then(|e| e.expires),
        };
        self.put_decided(st, key, Bytes::from(sum.to_string()), expires, now)?;
        Ok(sum)
    }

    fn list_page_keys(&self, prefix: &str, after: Option<&str>, limit: usize) -> Page {
        let now = self.now();
        let st = self.state();
        let from = match after {
            Some(after) if after >= prefix => {
                if self.flaw == ListPageRepeatsTheCursor {
                    Bound::Included(after)
                } else {
                    Bound::Excluded(after)
                }
            }
            _ => Bound::Included(prefix),
        };
        let skip = usize::from(self.flaw == ListPageSkipsPastTheCursor && after.is_some());
        let keys: Vec<String> = st
            .index
            .range::<str, _>((from, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| {
                let expired = st.data.get(*k).is_some_and(|e| !e.live(now));
                !expired || self.flaw == ListPageIncludesExpired
            })
            .skip(skip)
            .map(|(k, _)| k.clone())
            .collect();
        drop(st);
        page_of(keys, limit)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.flaw == ReleasesOnlyOnDrop {
            self.release();
        }
    }
}

impl Driver for Handle {
    fn capabilities(&self) -> Capabilities {
        let caps = Capabilities::NONE
            .ttl(true)
            .atomic_bulk(true)
            .limits(true)
            .conditional(true)
            .watch(true);
        match self.flaw {
            NoTtlCapability => caps.ttl(false),
            NoWatchCapability => caps.watch(false),
            _ => caps,
        }
    }

    fn watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        if self.flaw == NoWatchCapability {
            return Err(DriverError::unsupported("watch"));
        }
        let mut request = *request;
        let directory;
        if self.flaw == WatchPrefixAsPath && !request.exact && !request.prefix.ends_with('/') {
            directory = format!("{}/", request.prefix);
            request.prefix = &directory;
        }
        if self.flaw == WatchIgnoresBuffer {
            request.buffer = None;
        }
        let buffer = request.buffer.unwrap_or(self.hub().config().buffer);
        self.store.watch_buffer.store(buffer, Ordering::Release);
        let watch = self.start_watch(&request)?;
        if self.flaw == DroppedWatchKeepsReceiving {
            let forwarder = self.hub().subscribe_now(&request)?;
            lock(&self.store.forwarders).push(forwarder);
        }
        Ok(watch)
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.set_one(key, value, ttl)
    }

    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        Ok(self.read(key))
    }

    fn exists(&self, key: &str) -> DriverResult<bool> {
        let now = self.now();
        match self.flaw {
            ExistsTrueForExpired => {
                let st = self.state();
                Ok(st.data.contains_key(key))
            }
            ExistsTouchesModified => {
                let mut st = self.state();
                Ok(match st.data.get_mut(key).filter(|e| e.live(now)) {
                    Some(e) => {
                        e.modified = now;
                        true
                    }
                    None => false,
                })
            }
            _ => Ok(self.read(key).is_some()),
        }
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        let now = self.now();
        let st = self.state();
        let key = self.canonical(&st, key);
        Ok(st.live(&key, now).map(|e| {
            let version = self.version_of(e);
            Metadata::new(e.value.len() as u64, e.modified, e.expires, version)
        }))
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        Ok(self.delete_one(key))
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        Ok(self.list_keys(prefix))
    }

    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        let now = self.now();
        if self.flaw == ClaimsAtomicBulk {
            return Ok(keys
                .iter()
                .map(|k| {
                    std::thread::yield_now();
                    self.read(k)
                })
                .collect());
        }
        let mut st = self.state();
        let mut values: Vec<Option<Bytes>> = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(answer) = self.cached(key, now) {
                values.push(answer);
                continue;
            }
            let canonical = self.canonical(&st, key);
            if self.flaw == GetManySlidesTtl {
                if let Some(e) = st.data.get_mut(&canonical).filter(|e| e.live(now)) {
                    if let Some(at) = e.expires {
                        let ttl = at.duration_since(e.modified).unwrap_or_default();
                        e.expires = Some(now + ttl);
                    }
                }
            }
            let found = st.live(&canonical, now);
            self.remember(key, found);
            values.push(found.map(|e| e.value.clone()));
        }
        drop(st);
        Ok(match self.flaw {
            GetManyFirstPageOnly => values
                .into_iter()
                .enumerate()
                .map(|(i, v)| if i < 100 { v } else { None })
                .collect(),
            GetManyPagesOutOfOrder => values.chunks(100).rev().flatten().cloned().collect(),
            _ => values,
        })
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        let flaw = self.flaw;
        let entries: Vec<(&str, Bytes)> = match flaw {
            SetManyFirstPageOnly => entries.iter().take(1000).cloned().collect(),
            SetManyPagesInReverse => entries.chunks(100).rev().flatten().cloned().collect(),
            _ => entries.to_vec(),
        };
        if flaw == ClaimsAtomicBulk {
            for (key, value) in entries {
                self.set_one(key, value, ttl)?;
                std::thread::yield_now(); // readers see the half-done call
            }
            return Ok(());
        }
        for (key, _) in &entries {
            self.forget_cached(key);
        }
        let ttl = self.ttl(ttl);
        let now = self.now();
        let expires = ttl.map(|d| now + d);
        let limits = self.store.limits;
        let mut st = self.state();
        // A key given twice ends with its last value.
        let mut last: Vec<(String, Bytes)> = Vec::new();
        let mut seen = HashSet::new();
        for (key, value) in entries.iter().rev() {
            let key = self.canonical(&st, key);
            if seen.insert(key.clone()) {
                last.push((key, self.value(value.clone())));
            }
        }
        last.reverse();
        if limits
            .max_bytes
            .is_some_and(|max| last.iter().any(|(k, v)| charge(k, v) > max))
        {
            return Err(DriverError::CapacityExceeded(
                "an entry is larger than max_bytes".into(),
            ));
        }
        let total: u64 = last.iter().map(|(k, v)| charge(k, v)).sum();
        let cannot_fit = limits.max_bytes.is_some_and(|max| total > max)
            || limits
                .max_entries
                .is_some_and(|max| last.len() as u64 > max);
        let checks_the_batch = !matches!(flaw, SetManyWritesWhatFits | SetManyEvictsItsOwnEntries);
        if cannot_fit && checks_the_batch {
            return Err(DriverError::CapacityExceeded(
                "the batch cannot fit within the limits".into(),
            ));
        }
        let batch: HashSet<String> = last.iter().map(|(k, _)| k.clone()).collect();
        if flaw == SetManyOverwritesReserveFullCharge {
            // Room for every entry as if it were new.
            let need_entries = last.len() as u64;
            let mut room = Limits::NONE;
            room.max_bytes = limits.max_bytes.map(|m| m.saturating_sub(total));
            room.max_entries = limits.max_entries.map(|m| m.saturating_sub(need_entries));
            st.make_room(room, now, &|_| false, flaw);
        }
        let mut created = 0i64;
        let mut written: HashSet<String> = HashSet::new();
        for (key, value) in last {
            let existed = st.data.contains_key(&key);
            let expires = match flaw {
                SetManyTtlOnlyOnNewKeys if st.live(&key, now).is_some() => {
                    st.data.get(&key).and_then(|e| e.expires)
                }
                _ => expires,
            };
            st.put(&key, value, now, expires, flaw);
            written.insert(key.clone());
            if flaw == SetManyEvictsItsOwnEntries {
                // Each entry makes room for itself alone, as a loop of `set`s would.
                st.make_room(limits, now, &|k| k == key, flaw);
            }
            if flaw == SetManyWritesWhatFits {
                st.make_room(limits, now, &|k| written.contains(k), flaw);
                if st.over(limits) {
                    st.remove(&key);
                    return Err(DriverError::CapacityExceeded("the store is full".into()));
                }
            }
            created += i64::from(!existed);
        }
        st.make_room(limits, now, &|k| batch.contains(k), flaw);
        st.reclaim_due(now, 4, flaw);
        drop(st);
        self.resident_add(created);
        Ok(())
    }

    fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        let keys = match self.flaw {
            DeleteManyFirstPageOnly => &keys[..keys.len().min(25)],
            _ => keys,
        };
        if self.flaw == ClaimsAtomicBulk {
            let mut removed = 0;
            for key in keys {
                if self.delete_one(key) {
                    removed += 1;
                }
                std::thread::yield_now();
            }
            return Ok(removed);
        }
        for key in keys {
            self.forget_cached(key);
        }
        let now = self.now();
        let mut st = self.state();
        let mut removed = 0;
        let mut gone = 0;
        for key in keys {
            let key = self.canonical(&st, key);
            let entry = st.remove(&key);
            if let Some(e) = &entry {
                st.note_removal(&key, e, now, EventKind::Delete);
            }
            gone += i64::from(entry.is_some());
            let answer = match self.flaw {
                DeleteAlwaysTrue => true,
                DeleteTrueForExpired => entry.is_some(),
                _ => entry.is_some_and(|e| e.live(now)),
            };
            removed += usize::from(answer);
        }
        drop(st);
        self.resident_add(-gone);
        Ok(removed)
    }

    fn close(&self) -> DriverResult<()> {
        match self.flaw {
            ReleasesOnlyOnDrop => {}
            ReleasesOnFirstClose => {
                *self.state() = State::default();
                self.release();
            }
            _ => self.release(),
        }
        Ok(())
    }

    fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<bool> {
        self.create_one(key, self.value(value), ttl)
    }

    fn set_if_version(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Version,
    ) -> DriverResult<bool> {
        self.set_if_version_one(key, self.value(value), ttl, expected)
    }

    fn increment(&self, key: &str, delta: i64) -> DriverResult<i64> {
        self.increment_one(key, delta)
    }

    fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> DriverResult<Page> {
        Ok(self.list_page_keys(prefix, start_after, limit))
    }

    fn gauges(&self) -> Gauges {
        let st = self.state();
        let mut g = Gauges::default();
        g.entries = Some(st.data.len() as u64);
        if self.flaw == RacyEntriesGauge {
            g.entries = Some(self.store.resident.load(Ordering::Acquire));
        }
        g.bytes = Some(st.bytes);
        g.evictions = Some(st.evictions);
        g.expirations = Some(st.expirations);
        g.max_bytes = self.store.limits.max_bytes;
        g.max_entries = self.store.limits.max_entries;
        g.watches = Some(self.hub().watch_count());
        g
    }
}

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

struct BrokenHarness {
    flaw: Flaw,
    clock: ManualClock,
    /// The one store every name opens, for [`NamesShareOneStore`].
    one_store: String,
}

impl BrokenHarness {
    fn new(flaw: Flaw) -> BrokenHarness {
        static N: AtomicUsize = AtomicUsize::new(0);
        BrokenHarness {
            flaw,
            clock: ManualClock::new(),
            one_store: format!("one-store-{}", N.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The registry name a contract name opens.
    fn store_name(&self, name: &str) -> String {
        let cut = |n: usize| {
            let mut at = n.min(name.len());
            while !name.is_char_boundary(at) {
                at -= 1;
            }
            name[..at].to_owned()
        };
        match self.flaw {
            NamesShareOneStore => self.one_store.clone(),
            NamesCaseInsensitive => name.to_lowercase(),
            NamesTruncatedTo64Bytes => cut(64),
            NamesTruncatedTo255Bytes => cut(255),
            _ => name.to_owned(),
        }
    }

    fn open_with(&self, name: &str, limits: Limits) -> Result<Contract> {
        self.open_full(name, limits, HubConfig::new().history)
    }

    fn open_full(&self, name: &str, limits: Limits, history: usize) -> Result<Contract> {
        let handle = Handle::open(
            &self.store_name(name),
            limits,
            history,
            self.clock.clone().into(),
            self.flaw,
        )
        .map_err(|e| e.into_error("reference", name, "open"))?;
        Contract::from_driver("reference", name, handle)
    }
}

impl Harness for BrokenHarness {
    fn open(&self, name: &str) -> Result<Contract> {
        self.open_with(name, Limits::NONE)
    }

    fn clock(&self) -> TestClock {
        TestClock::Manual(self.clock.clone())
    }

    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        Some(self.open_with(name, limits))
    }

    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        Some(self.open_with(name, Limits::NONE.max_entries(987_654_321)))
    }

    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        Some(self.open_full(name, Limits::NONE, events))
    }

    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        let store = lock(registry())
            .get(&self.store_name(contract.name()))
            .map(|(s, _)| s.clone());
        if let Some(store) = store {
            store.sweep(self.flaw);
        }
        Some(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

fn first_line(why: &str) -> &str {
    why.lines().next().unwrap_or_default()
}

/// The flaw fails the case written for its rule, in each of three runs.
fn caught(flaw: Flaw, by: &str) {
    let case = *cases::ALL
        .iter()
        .find(|c| c.name == by)
        .unwrap_or_else(|| panic!("no conformance case is called {by}"));
    for run in 1..=3 {
        let started = Instant::now();
        let report = run_cases(&BrokenHarness::new(flaw), &[case]);
        match report.outcome(by) {
            Some(Outcome::Failed(why)) => println!(
                "{flaw:?}, run {run} ({:.0?}): {by}: {}",
                started.elapsed(),
                first_line(why)
            ),
            other => panic!("run {run}: the driver with the flaw {flaw:?} passed {by}: {other:?}"),
        }
    }
}

/// Every mutation: a test per flaw, named after it, and the table of them.
macro_rules! mutations {
    ($($test:ident: $flaw:ident => $case:literal;)*) => {
        const MUTATIONS: &[(Flaw, &str)] = &[$(($flaw, $case),)*];
        $(
            #[test]
            fn $test() {
                caught($flaw, $case);
            }
        )*
    };
}

mutations! {
    unsorted_list: UnsortedList => "list_is_sorted_by_bytes";
    list_sorted_ignoring_case: ListSortedIgnoringCase => "list_is_sorted_by_bytes";
    list_by_path_segments: ListAsPathSegments => "list_is_a_byte_prefix_not_a_path";
    list_including_expired_keys: ListIncludesExpired => "ttl_list_omits_keys_from_the_deadline";
    list_of_the_first_page_only: ListFirstPageOnly => "list_is_complete_across_page_sizes";
    list_pages_repeating_the_boundary_key: ListPageRepeatsBoundaryKey => "list_is_complete_across_page_sizes";
    list_pages_skipping_the_boundary_key: ListPageSkipsBoundaryKey => "list_is_complete_across_page_sizes";

    ignored_ttl: TtlIgnored => "ttl_get_is_not_found_from_the_deadline";
    expiry_one_millisecond_late: ExpiresOneMillisecondLate => "ttl_get_is_not_found_from_the_deadline";
    exists_true_for_expired_keys: ExistsTrueForExpired => "ttl_exists_is_false_from_the_deadline";
    delete_true_for_expired_keys: DeleteTrueForExpired => "ttl_delete_of_an_expired_key_is_false";
    overwrite_keeping_the_old_ttl: OverwriteKeepsTtl => "ttl_set_without_ttl_clears_it";
    set_many_ttl_on_new_keys_only: SetManyTtlOnlyOnNewKeys => "set_many_ttl_replaces_earlier_ttls";
    stale_deadline_removing_a_rewritten_key: StaleDeadlineRemovesRewrittenKey => "ttl_cleared_entries_survive_reclamation";

    delete_always_true: DeleteAlwaysTrue => "delete_missing_is_false";

    trailing_newline_trimmed: TrimsTrailingNewline => "text_values_round_trip_unchanged";
    line_endings_normalized: NormalizesLineEndings => "text_values_round_trip_unchanged";
    whitespace_trimmed: TrimsWhitespace => "text_values_round_trip_unchanged";
    number_like_values_reencoded: NumberLikeValuesReencoded => "text_values_round_trip_unchanged";

    numeric_keys_canonicalized: NumericKeysCanonicalized => "numeric_lookalike_keys_are_distinct";
    long_keys_compared_by_prefix: LongKeysComparedByPrefix => "longest_keys_with_multibyte_characters_round_trip";

    names_sharing_one_store: NamesShareOneStore => "different_names_are_isolated";
    names_compared_ignoring_case: NamesCaseInsensitive => "names_differing_in_case_are_isolated";
    names_truncated_to_64_bytes: NamesTruncatedTo64Bytes => "names_differing_only_after_byte_64_are_isolated";
    names_truncated_to_255_bytes: NamesTruncatedTo255Bytes => "names_differing_only_after_byte_64_are_isolated";
    per_handle_read_cache: PerHandleReadCache => "same_name_sees_writes_at_once_both_ways";
    per_handle_miss_cache: PerHandleMissCache => "same_name_sees_writes_at_once_both_ways";
    per_handle_list_cache: PerHandleListCache => "same_name_sees_writes_at_once_both_ways";

    release_on_the_first_close: ReleasesOnFirstClose => "data_lives_while_any_contract_is_open";
    release_only_on_drop: ReleasesOnlyOnDrop => "data_lives_while_any_contract_is_open";
    joining_with_another_config: JoinsWithOtherConfig => "reopening_with_another_config_is_invalid_config";
    refused_open_keeping_a_handle: RefusedOpenKeepsAHandle => "reopening_with_another_config_is_invalid_config";

    set_many_of_the_first_page_only: SetManyFirstPageOnly => "bulk_calls_of_thousands_of_keys_are_complete";
    get_many_of_the_first_page_only: GetManyFirstPageOnly => "bulk_calls_of_thousands_of_keys_are_complete";
    delete_many_of_the_first_page_only: DeleteManyFirstPageOnly => "bulk_calls_of_thousands_of_keys_are_complete";
    get_many_pages_out_of_order: GetManyPagesOutOfOrder => "bulk_calls_of_thousands_of_keys_are_complete";
    set_many_pages_in_reverse: SetManyPagesInReverse => "bulk_calls_of_thousands_of_keys_are_complete";

    get_many_sliding_the_ttl: GetManySlidesTtl => "reads_leave_metadata_unchanged";
    exists_touching_modified: ExistsTouchesModified => "reads_leave_metadata_unchanged";

    lost_writes_under_concurrency: LostWrites => "concurrent_writers_lose_no_write";
    a_false_atomic_bulk_claim: ClaimsAtomicBulk => "set_many_is_atomic_for_readers";
    check_then_act_delete: DeleteCheckThenAct => "concurrent_deletes_of_one_key_remove_it_once";
    overwrite_as_delete_then_insert: OverwriteDeletesThenInserts => "readers_never_miss_a_key_being_overwritten";
    ttl_set_in_a_second_step: TtlSetInSecondStep => "readers_see_each_value_with_its_own_ttl";
    index_before_data: IndexBeforeData => "list_and_get_agree_while_keys_come_and_go";
    data_before_index: DataBeforeIndex => "list_and_get_agree_while_keys_come_and_go";
    create_checking_then_inserting: CreateChecksThenInserts => "concurrent_creates_of_one_key_list_it_once";
    racy_entries_gauge: RacyEntriesGauge => "entries_gauge_is_exact_after_concurrent_writes";

    ignored_limits: LimitsIgnored => "limits_hold_after_every_set";
    evicting_live_entries_before_expired_ones: EvictsLiveBeforeExpired => "limits_evict_expired_entries_first";
    evicting_for_a_value_that_can_never_fit: EvictsBeforeRefusing => "limits_reject_a_value_larger_than_max_bytes";
    overwrites_passing_the_limit: OverwritesSkipTheLimit => "limits_hold_when_overwrites_grow_values";
    set_many_evicting_its_own_entries: SetManyEvictsItsOwnEntries => "limits_set_many_beyond_capacity_is_refused_or_complete";
    set_many_writing_what_fits: SetManyWritesWhatFits => "limits_set_many_beyond_capacity_is_refused_or_complete";
    set_many_overwrites_reserving_the_full_charge: SetManyOverwritesReserveFullCharge => "limits_overwrites_in_a_full_store_evict_nothing";
    expirations_not_counted: ExpirationsNotCounted => "limits_reclaiming_expired_entries_counts_expirations";
    deadline_dropped_when_a_key_is_recreated: DeadlineDroppedOnRecreate => "limits_entries_gauge_counts_live_keys_after_a_sweep";

    version_unchanged_on_overwrite: VersionUnchangedOnOverwrite => "version_changes_on_every_write";
    version_is_the_write_time: VersionIsTheWriteTime => "version_changes_on_every_write";
    version_restarting_when_recreated: VersionRestartsWhenRecreated => "version_changes_on_every_write";

    create_checking_then_acting: CreateChecksThenActs => "concurrent_creates_of_one_key_have_one_winner";
    create_refusing_expired_entries: CreateRefusesExpiredEntries => "create_writes_over_an_expired_entry";
    set_if_version_ignoring_the_version: SetIfVersionIgnoresTheVersion => "set_if_version_writes_only_at_that_version";
    increment_losing_updates: IncrementLosesUpdates => "concurrent_increments_lose_no_update";
    increment_wrapping: IncrementWraps => "increment_refuses_non_integers_and_overflow";
    increment_parsing_loosely: IncrementParsesLoosely => "increment_refuses_non_integers_and_overflow";
    increment_dropping_the_ttl: IncrementDropsTheTtl => "increment_keeps_the_ttl";

    list_page_repeating_the_cursor: ListPageRepeatsTheCursor => "list_page_pages_add_up_to_list";
    list_page_skipping_past_the_cursor: ListPageSkipsPastTheCursor => "list_page_pages_add_up_to_list";
    list_page_including_expired_keys: ListPageIncludesExpired => "list_page_skips_expired_keys";

    watch_out_of_order_per_key: WatchOutOfOrderPerKey => "watch_events_of_a_key_arrive_in_write_order";
    conditional_writes_are_not_watched: ConditionalWritesAreNotWatched => "watch_reports_conditional_writes";
    watch_prefix_as_a_path: WatchPrefixAsPath => "watch_prefix_is_plain_bytes";
    watch_ignoring_its_buffer: WatchIgnoresBuffer => "watch_overflow_reports_lagged_and_never_blocks_writers";
    watch_dropping_events_silently: WatchDropsWhenFull => "watch_overflow_reports_lagged_and_never_blocks_writers";
    watch_blocking_writers: WatchBlocksWriters => "watch_overflow_reports_lagged_and_never_blocks_writers";
    snapshot_with_a_gap: SnapshotWithGap => "watch_snapshot_has_no_gap_and_no_duplicate";
    snapshot_with_duplicates: SnapshotWithDuplicates => "watch_snapshot_has_no_gap_and_no_duplicate";
    dropped_watch_keeps_receiving: DroppedWatchKeepsReceiving => "watch_dropped_is_unsubscribed";
    deletes_of_nothing_watched: DeletesOfNothingAreWatched => "watch_reports_puts_and_deletes";
    expired_deletes_reported_as_deletes: ExpiredDeletesReportedAsDeletes => "watch_reports_expiry";
    evictions_reported_as_deletes: EvictionsReportedAsDeletes => "watch_reports_evictions";
    resume_replaying_its_seq: ResumeReplaysItsSeq => "watch_resumes_after_a_seq";
    resume_before_the_history_starting_now: ResumeBeforeTheHistoryStartsNow => "watch_from_before_the_history_is_compacted";
    a_hub_per_contract: HubPerHandle => "watch_sees_changes_made_through_other_contracts";
}

fn print_report(flaw: Flaw, report: &Report) {
    println!("{flaw:?}: {} failing cases", report.failed().len());
    for (name, outcome, _) in &report.results {
        if let Outcome::Failed(why) = outcome {
            println!("  {name}: {}", first_line(why));
        }
    }
}

#[test]
fn the_reference_driver_passes_everything() {
    for run in 1..=3 {
        let started = Instant::now();
        let report = run_suite(&BrokenHarness::new(Unbroken));
        println!("run {run}: {:.1?}", started.elapsed());
        assert!(report.is_success(), "run {run}:\n{report}");
        assert_eq!(
            report.skipped_with_reasons(),
            [
                (
                    "ttl_unsupported_is_an_error",
                    "checks a driver without TTLs; this driver claims Capabilities::ttl"
                ),
                (
                    "watch_unsupported_is_an_error",
                    "checks a driver without watch; this driver claims Capabilities::watch"
                )
            ],
            "every case but the ones for drivers without TTLs or watch runs"
        );
    }
}

#[test]
fn a_driver_without_ttls_passes_with_the_ttl_cases_skipped() {
    let report = run_suite(&BrokenHarness::new(NoTtlCapability));
    assert!(report.is_success(), "{report}");
    let skipped = report.skipped_with_reasons();
    for (case, why) in &skipped {
        if *case == "watch_unsupported_is_an_error" {
            continue; // the reference claims watch
        }
        assert!(why.contains("Capabilities::ttl"), "{case} skipped: {why}");
    }
    let names: Vec<&str> = skipped.iter().map(|(n, _)| *n).collect();
    for case in cases::ALL
        .iter()
        .filter(|c| c.needs.contains(&hodor_testkit::Need::Ttl))
    {
        assert!(
            names.contains(&case.name),
            "{} needs TTLs but was not skipped",
            case.name
        );
    }
    assert_eq!(
        report.outcome("ttl_unsupported_is_an_error"),
        Some(&Outcome::Passed),
        "the one TTL case for drivers without TTLs runs"
    );
}

#[test]
fn a_driver_without_watch_passes_with_the_watch_cases_skipped() {
    let watch_cases: Vec<_> = cases::ALL
        .iter()
        .filter(|c| {
            c.needs.contains(&hodor_testkit::Need::Watch)
                || c.needs.contains(&hodor_testkit::Need::NoWatch)
        })
        .copied()
        .collect();
    let report = run_cases(&BrokenHarness::new(NoWatchCapability), &watch_cases);
    assert!(report.is_success(), "{report}");
    for case in &watch_cases {
        let outcome = report.outcome(case.name);
        if case.name == "watch_unsupported_is_an_error" {
            assert_eq!(
                outcome,
                Some(&Outcome::Passed),
                "the case for drivers without watch runs"
            );
        } else {
            assert!(
                matches!(outcome, Some(Outcome::Skipped(why)) if why.contains("Capabilities::watch")),
                "{} needs watch but was not skipped: {outcome:?}",
                case.name
            );
        }
    }
}

#[test]
fn every_mutation_names_a_case_and_the_table_has_forty() {
    assert!(MUTATIONS.len() >= 40, "{} mutations", MUTATIONS.len());
    for (flaw, case) in MUTATIONS {
        assert!(
            cases::ALL.iter().any(|c| c.name == *case),
            "{flaw:?}: no case {case}"
        );
    }
    let mut flaws: Vec<String> = MUTATIONS.iter().map(|(f, _)| format!("{f:?}")).collect();
    flaws.sort();
    flaws.dedup();
    assert_eq!(
        flaws.len(),
        MUTATIONS.len(),
        "each flaw is in the table once"
    );
}

/// With `HODOR_MUTATION_FULL=1`: the whole suite against every flaw, printing every case
/// that rejects each (`--nocapture` to see it).
#[test]
fn full_mutation_table() {
    if std::env::var_os("HODOR_MUTATION_FULL").is_none() {
        println!("set HODOR_MUTATION_FULL=1 to run the whole suite against every flaw");
        return;
    }
    for (flaw, case) in MUTATIONS {
        let report = run_suite(&BrokenHarness::new(*flaw));
        print_report(*flaw, &report);
        assert!(report.failed().contains(case), "{flaw:?} passed {case}");
    }
}
