//! The store behind one memory contract name: sharded slots plus one ordered key index.
//!
//! Point operations hash the key to one of N shards, each behind its own `RwLock`; a `get`
//! takes one shard's read lock and writes nothing shared. The ordered index (range
//! partitions of the same key allocations, see `crate::index`) is touched only when a key
//! is created or removed, and lets `list(prefix)` seek to the prefix and walk only the
//! matching keys: O(log n + k).
//!
//! ## The change hook
//! Every write of an entry ends in `Store::write`, every removal (delete, expiry,
//! eviction) in `Store::forget`, and the release of the whole store is `Store::clear`;
//! each reports its change to `Store::changed` while it holds the write lock of the key's
//! shard (for `clear`, of every shard), which orders that key's writes. That one place
//! takes the change's store-wide sequence number and hands the change to every consumer:
//! the persistence log (through the caller's [`WriteLog`]) and the store's other observers
//! (`Changes`). So each change is logged and published exactly once, and each key's
//! changes in the order they took effect.
//!
//! Lock order: the batch gate, then shards, then the index, then the persistence log's
//! buffer; several shards only in ascending order (bulk operations, `clear`, refreshing the
//! deadline hint). Eviction and sweeping hold one shard at a time. `Limits::evicting` is
//! taken before any of them, and only by writers making room. Every index change happens
//! while the shard that owns the key is locked, so the index never disagrees with the
//! shards about a key that is not being written at that moment. Nothing a caller owns runs
//! under any of these locks (see `Dead`).
//!
//! ## Persistence and compression hooks
//! Both are optional, and a store with neither (`plain`) takes the same steps it would
//! without them: the hooks are marked `PERSIST HOOK` and `COMPRESSION HOOK` below, and the
//! write paths are generic over [`WriteLog`], whose no-op `NotLogged` compiles away.
//! 1. Before a write changes anything: `hook()` refuses it if the store's log failed, and
//!    `fits` checks the record's size. Compression (`encode`) also happens here, before
//!    any lock.
//! 2. Under the shard lock, right after the change: the change hook hands the key's new
//!    state to the log (`WriteLog::put`, `WriteLog::remove`; for `set_many` and
//!    `delete_many` a `Batched` log gathers the records, logged as one `log_batch` under
//!    all their shard locks), as it does the expiries and evictions the store makes on its
//!    own (through `forget`). The one invariant the log needs: each key's
//!    records reach it in the order that key's writes took effect, which holding the shard
//!    lock gives. Records of different keys may arrive out of sequence order.
//! 3. After releasing every lock: `WriteLog::commit` (waits for the sync with
//!    `fsync = always`).
//!
//! Plus recovery (`Store::open_with` feeds `persist::Replay` to `restore`), snapshots
//! (`persist::Source`, read shard by shard), close (`close_persist`), gauges, and the
//! conversion between the store's monotonic timeline and the wall-clock instants records
//! carry (`WallMap`, `on_timeline`).

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hashbrown::DefaultHashBuilder;
use hodor_core::clock::{Clock, to_nanos};
use hodor_core::driver::{DriverError, DriverResult, Gauges};
use hodor_core::watch::{EventKind, Hub, HubConfig, Watch, WatchRequest};
use hodor_core::{Applied, BackendKind, MAX_TTL, Metadata, Version};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::change::{Change, Changes};
use crate::codec::{self, Codec, Compressor};
use crate::config::MemoryConfig;
use crate::index::Index;
use crate::input;
use crate::key::{KeyRef, MAX_EXPIRY};
use crate::persist::{self, Persist, PersistError, Record, Removal, Replay, Ticket};
use crate::shard::{MAX_TIME, Shard, Slot, Step, charge};

/// How many expired entries one lock hold may reclaim, so a sweep never stalls readers long.
const SWEEP_BATCH: usize = 1024;
/// How many expired entries a write reclaims from its own shard on the way.
const WRITE_RECLAIM: usize = 4;
/// How long a writer waiting for room sleeps before it looks again if no wake-up came
/// (a wake-up can be missed in a narrow window; this bounds what that costs).
const ROOM_RECHECK: Duration = Duration::from_millis(1);
/// COMPRESSION HOOK: compressed values up to this size are decompressed under the shard's
/// read lock (see `read_value`).
const DECODE_UNDER_LOCK: u64 = 64 << 10;

/// Byte and entry limits, with the space reserved against them.
///
/// A writer reserves before it inserts and releases after it removes, so the reserved
/// counters are never below what is resident, and a compare-and-swap never lets them pass
/// the limits: what a caller can observe never exceeds a limit, even mid-write.
struct Limits {
    max_bytes: u64,
    max_entries: u64,
    bytes: AtomicU64,
    entries: AtomicU64,
    /// Held by the one writer at a time that makes room by evicting (see `make_room`).
    evicting: parking_lot::Mutex<()>,
    /// Writers blocked in `make_room`, and where they sleep: woken when room is released or
    /// an entry is inserted (and so becomes evictable).
    waiting: AtomicUsize,
    room: parking_lot::Mutex<()>,
    freed: parking_lot::Condvar,
    #[cfg(test)]
    waits: AtomicU64,
}

impl Limits {
    fn try_add(counter: &AtomicU64, n: u64, max: u64) -> bool {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(n).filter(|&next| next <= max)
            })
            .is_ok()
    }

    /// Adds as much of `n` as fits under `max`; returns how much.
    fn add_some(counter: &AtomicU64, n: u64, max: u64) -> u64 {
        let mut got = 0;
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
            got = n.min(max.saturating_sub(cur));
            Some(cur + got)
        });
        got
    }

    /// Reserves both or neither.
    fn try_reserve(&self, bytes: u64, entries: u64) -> bool {
        if !Limits::try_add(&self.bytes, bytes, self.max_bytes) {
            return false;
        }
        if !Limits::try_add(&self.entries, entries, self.max_entries) {
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn release(&self, bytes: u64, entries: u64) {
        // Saturating: a release is always preceded by its reservation, so this never wraps;
        // saturating keeps a bug from turning into an absurd gauge.
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(bytes))
            });
        let _ = self
            .entries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(entries))
            });
        self.wake();
    }

    /// Wakes writers waiting for room, if any: something was released or inserted. Takes no
    /// lock (callers may hold a shard's), and costs one load when nobody waits.
    #[inline]
    fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_all();
        }
    }

    /// Sleeps until `wake` or `ROOM_RECHECK`, whichever comes first.
    fn wait(&self) {
        #[cfg(test)]
        self.waits.fetch_add(1, Ordering::Relaxed);
        let mut room = self.room.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.freed.wait_for(&mut room, ROOM_RECHECK);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) struct Store {
    pub(crate) name: String,
    pub(crate) config: MemoryConfig,
    pub(crate) clock: Clock,
    /// The clock's wall-clock and monotonic time when the store was opened, and the store's
    /// time then (`origin`). The store's time is `origin` plus the monotonic time since
    /// `opened_at`, and `stat` reports an instant `t` on it as `opened_wall + (t - origin)`.
    opened_wall: SystemTime,
    opened_at: u64,
    /// 0, or for a persistent store `PERSIST_ORIGIN`, so that instants recovered from
    /// before the open have a place on the timeline.
    origin: u64,
    hasher: DefaultHashBuilder,
    shards: Box<[RwLock<Shard>]>,
    index: Index,
    /// Held exclusively by `set_many` and `delete_many` while they change the index key by
    /// key, and shared by `list`, so a list never sees part of a batch.
    batches: RwLock<()>,
    limits: Option<Limits>,
    /// With limits: no deadline in any shard is earlier than this (`u64::MAX`: none), so an
    /// eviction can tell without locking every shard that nothing has expired.
    earliest_deadline: AtomicU64,
    /// The store's CLOCK hand: the shard of its next step, modulo the shard count (a power
    /// of two, so wrapping around `usize` keeps the rotation). See `evict_one`.
    hand: AtomicUsize,
    /// COMPRESSION HOOK: compresses values on the way in, when configured.
    compressor: Option<Compressor>,
    /// COMPRESSION HOOK: some entry may hold a compressed value, so reads check each
    /// entry's codec. True with a compressor, or after recovery loaded compressed values
    /// into a store configured without one.
    decode_values: bool,
    /// PERSIST HOOK: the log and snapshots, when the store is persistent. Set once, at
    /// open, after recovery.
    persist: Option<Persist>,
    /// Neither persistent nor compressing: `set` takes the plain path.
    plain: bool,
    /// Who else consumes the store's changes (see `Store::changed`).
    pub(crate) changes: Changes,
    /// Which store of this process this is, or for a persistent store which opening of
    /// its directory, for versions (see `Store::version`).
    incarnation: u64,
    /// Where changes are published for watches, under the lock of the shard that owns the
    /// key, so each key's events are in the order its writes took effect and the hub's
    /// `seq` order is the order of the whole store. While nobody watches, a change costs
    /// one relaxed load (`Hub::is_watched`).
    hub: Hub,
}

/// Stores opened so far in this process: each gets the next number as its incarnation.
/// A persistent store first raises it past every incarnation its directory has had (see
/// `Store::open_with`).
static INCARNATIONS: AtomicU64 = AtomicU64::new(0);

/// Where the store's clock stops: the latest `now` from which every TTL up to `MAX_TTL`
/// still ends at a representable deadline, and that a slot can carry as its `modified`
/// time (`MAX_TIME`): about 146 years after the store's time 0. Past it time stands
/// still, so an entry is never expired early: those already due expire, those set then
/// never do.
const NOW_CEILING: u64 = {
    let by_ttl = MAX_EXPIRY - MAX_TTL.as_secs() * 1_000_000_000;
    if by_ttl < MAX_TIME { by_ttl } else { MAX_TIME }
};

/// PERSIST HOOK: a persistent store's time when it opens, about 73 years. Recovered
/// instants up to that long before the open keep their place on its timeline (an older
/// `modified` is reported as that old; a deadline that old is long past and not loaded),
/// and its clock stops about 73 years after the open instead of 146.
const PERSIST_ORIGIN: u64 = 1 << 61;

/// The deadline of an entry set at `now` with `ttl` (0: none). With `now` at most
/// `NOW_CEILING` and a TTL the driver accepted, it is exactly `now + ttl`.
fn expiry_for(now: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => {
            let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
            now.saturating_add(ttl).clamp(1, MAX_EXPIRY)
        }
    }
}

fn inconsistent() -> DriverError {
    DriverError::backend("the memory store's slot table is inconsistent (a bug in hodor-memory)")
}

/// Values an operation removed while it held a lock, to be dropped after it unlocks.
///
/// A value may be `Bytes::from_owner` with any `Drop`, and that `Drop` may call the store
/// again: run under a shard or index lock it would deadlock (on the sweeper thread, reclaim
/// would stop for every store). So nothing user-visible is dropped under a lock: every
/// operation declares its `Dead` *before* taking its guards, and locals drop in reverse
/// order, so the guards are released first, on every return path. The first value is kept
/// inline: an overwrite, the common case, allocates nothing.
#[derive(Default)]
struct Dead {
    first: Option<Bytes>,
    rest: Vec<Bytes>,
}

impl Dead {
    fn push(&mut self, value: Bytes) {
        if self.first.is_none() {
            self.first = Some(value);
        } else {
            self.rest.push(value);
        }
    }
}

/// When a write takes effect: now, with an optional TTL, or at given instants on the
/// store's timeline.
#[derive(Clone, Copy)]
enum When {
    Now(Option<Duration>),
    /// A batch's one moment, or a conditional write's decision: stamped from `modified`
    /// like a write made then (see `Shard::stamp`).
    At {
        modified: u64,
        expires: u64,
    },
    /// A recovered record's instants, kept as they are: the entry keeps its `modified`
    /// (tie-breaker 0), and the shard's stamps are raised past it.
    Recovered {
        modified: u64,
        expires: u64,
    },
}

impl When {
    #[inline]
    fn with_ttl(self) -> bool {
        match self {
            When::Now(ttl) => ttl.is_some(),
            When::At { expires, .. } | When::Recovered { expires, .. } => expires != 0,
        }
    }
}

/// What a conditional write does with a key, shown its live entry (see
/// [`Store::write_if`]).
pub(crate) enum Decision<T> {
    /// Leave the key as it is; the call returns `T`.
    Keep(T),
    /// Write `value`, stored as `codec` says (see `Store::encode`), with `ttl`; the call
    /// returns `answer`.
    Write {
        value: Bytes,
        codec: Codec,
        ttl: NewTtl,
        answer: T,
    },
}

/// The TTL a conditional write gives its entry.
#[derive(Clone, Copy)]
pub(crate) enum NewTtl {
    /// As `set` does: `None` clears an earlier TTL.
    Set(Option<Duration>),
    /// The live entry's deadline stays; a new entry gets none.
    KeepCurrent,
}

impl NewTtl {
    /// The deadline of the entry written at `now` over `live`.
    fn deadline(self, live: Option<&Slot>, now: u64) -> u64 {
        match self {
            NewTtl::Set(ttl) => expiry_for(now, ttl),
            NewTtl::KeepCurrent => live.map_or(0, |s| s.key.expires()),
        }
    }
}

/// COMPRESSION HOOK: a value read under a shard lock, ready, or still to decompress once
/// the lock is released.
enum Read {
    Value(Bytes),
    Compressed(Bytes),
}

impl Read {
    fn finish(self) -> DriverResult<Bytes> {
        match self {
            Read::Value(v) => Ok(v),
            Read::Compressed(stored) => codec::decode(stored, Codec::Lz4).map_err(corrupt_value),
        }
    }
}

/// PERSIST HOOK: what logging a write gave: nothing to wait for (no persistence), a ticket
/// to commit once the locks are released, or the log's failure (the write took effect in
/// memory all the same, see `unsure`).
type Logged = DriverResult<Option<Ticket>>;

/// PERSIST HOOK: what a change does with the new state of a key: nothing (`NotLogged`,
/// every call compiles away), log it (`Logging`), or gather it for a batch logged as one
/// unit (`Batched`). Writes are generic over it, so a store without persistence checks for
/// it once per call, not at each step. Only `Store::changed` calls `put` and `remove`.
trait WriteLog: Copy {
    /// Whether this logs anything (a persistent store).
    fn logs(self) -> bool;
    /// Under the shard lock, right after `slot` was written at store time `now`: logs its
    /// new state as change number `seq`.
    fn put(self, seq: u64, slot: &Slot, now: u64) -> Logged;
    /// Under the shard lock, right after `key` left the store: logs that it is gone, as
    /// change number `seq`.
    fn remove(self, seq: u64, key: &[u8], why: Removal) -> Logged;
    /// After every lock is released: returns once the write is as durable as the fsync
    /// mode promises.
    fn commit(self, logged: Logged) -> DriverResult<()>;
}

#[derive(Clone, Copy)]
struct NotLogged;

impl WriteLog for NotLogged {
    #[inline(always)]
    fn logs(self) -> bool {
        false
    }
    #[inline(always)]
    fn put(self, _: u64, _: &Slot, _: u64) -> Logged {
        Ok(None)
    }
    #[inline(always)]
    fn remove(self, _: u64, _: &[u8], _: Removal) -> Logged {
        Ok(None)
    }
    #[inline(always)]
    fn commit(self, _: Logged) -> DriverResult<()> {
        Ok(())
    }
}

/// PERSIST HOOK: a persistent store's log, and the clock its records' instants are read on.
#[derive(Clone, Copy)]
struct Logging<'a> {
    persist: &'a Persist,
    clock: &'a Clock,
}

impl WriteLog for Logging<'_> {
    fn logs(self) -> bool {
        true
    }

    fn put(self, seq: u64, slot: &Slot, now: u64) -> Logged {
        let wall = WallMap::read(self.clock, now);
        let record = Record::Put {
            key: slot.key.as_bytes(),
            value: &slot.value,
            codec: slot.codec(),
            modified: wall.modified(slot.modified()),
            expires: wall.expires(slot.key.expires()),
        };
        self.persist.log(seq, record).map(Some).map_err(unsure)
    }

    fn remove(self, seq: u64, key: &[u8], why: Removal) -> Logged {
        let record = Record::Remove { key, why };
        self.persist.log(seq, record).map(Some).map_err(unsure)
    }

    fn commit(self, logged: Logged) -> DriverResult<()> {
        match logged? {
            Some(ticket) => self.persist.commit(ticket).map_err(unsure),
            None => Ok(()),
        }
    }
}

/// PERSIST HOOK: the sequence numbers of a batch's changes, in the order they took effect,
/// gathered under the batch's shard locks; the batch then logs its records with them, as
/// one unit (`Persist::log_batch`), before it releases the locks.
#[derive(Clone, Copy)]
struct Batched<'a> {
    seqs: &'a RefCell<Vec<u64>>,
}

impl WriteLog for Batched<'_> {
    fn logs(self) -> bool {
        true
    }

    fn put(self, seq: u64, _: &Slot, _: u64) -> Logged {
        self.seqs.borrow_mut().push(seq);
        Ok(None)
    }

    fn remove(self, seq: u64, _: &[u8], _: Removal) -> Logged {
        self.seqs.borrow_mut().push(seq);
        Ok(None)
    }

    fn commit(self, logged: Logged) -> DriverResult<()> {
        logged.map(drop)
    }
}

/// PERSIST HOOK: the map from the store's monotonic timeline to the wall clock for what is
/// logged now: store time `now` is wall-clock time `wall` (ns since the epoch).
///
/// Records carry absolute wall-clock instants (a restart never extends a TTL), taken as
/// the entry's remaining time counted from the wall clock at the moment it is logged. So a
/// wall-clock step while the store is open moves nothing already logged, and one before a
/// write does not move that write's deadline either: only a step between the logging and
/// the next open does (see "Time across restarts" in the crate docs).
#[derive(Clone, Copy)]
struct WallMap {
    now: u64,
    wall: u64,
}

impl WallMap {
    fn read(clock: &Clock, now: u64) -> WallMap {
        WallMap {
            now,
            wall: clock.now_nanos(),
        }
    }

    /// The wall-clock instant of store time `t`.
    fn wall_of(self, t: u64) -> u64 {
        if t >= self.now {
            self.wall.saturating_add(t - self.now)
        } else {
            self.wall.saturating_sub(self.now - t)
        }
    }

    fn modified(self, t: u64) -> u64 {
        self.wall_of(t)
    }

    /// A deadline (0: none) as a wall-clock deadline (0: none; never 0 for one).
    fn expires(self, t: u64) -> u64 {
        if t == 0 { 0 } else { self.wall_of(t).max(1) }
    }
}

/// PERSIST HOOK: a persistent store refused a write before changing anything: its log
/// failed earlier, so it is read-only.
fn refused(e: PersistError) -> DriverError {
    DriverError::backend_failure(BackendKind::Other, Applied::No, e)
}

/// PERSIST HOOK: logging or syncing failed after the write took effect in memory: readers
/// see it, but it may not be on disk, so it may be gone after a restart.
fn unsure(e: PersistError) -> DriverError {
    DriverError::backend_failure(BackendKind::Other, Applied::Unknown, e)
}

/// COMPRESSION HOOK: a stored value that does not decompress (only damage on disk that its
/// checksum missed, or a bug, can make one).
fn corrupt_value(e: codec::CorruptValue) -> DriverError {
    DriverError::backend_failure(BackendKind::Other, Applied::No, e)
}

/// PERSIST HOOK: `CapacityExceeded` for a value larger than a persistent store can log:
/// the record's length field is a `u32`.
fn fits(key: &str, value: &[u8]) -> DriverResult<()> {
    let len = (key.len() + value.len()) as u64 + 64;
    if len > persist::MAX_RECORD {
        return Err(DriverError::CapacityExceeded(format!(
            "a value of {} bytes is over the 4 GiB a persistent memory store can log",
            value.len()
        )));
    }
    Ok(())
}

impl Store {
    pub(crate) fn new(name: &str, config: MemoryConfig, clock: Clock) -> Store {
        Store::starting_at(name, config, clock, 0)
    }

    /// A new, empty store whose time at open is `origin`.
    fn starting_at(name: &str, config: MemoryConfig, clock: Clock, origin: u64) -> Store {
        let limits = (config.max_bytes.is_some() || config.max_entries.is_some()).then(|| Limits {
            max_bytes: config.max_bytes.unwrap_or(u64::MAX),
            max_entries: config.max_entries.unwrap_or(u64::MAX),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            evicting: parking_lot::Mutex::new(()),
            waiting: AtomicUsize::new(0),
            room: parking_lot::Mutex::new(()),
            freed: parking_lot::Condvar::new(),
            #[cfg(test)]
            waits: AtomicU64::new(0),
        });
        let (opened_wall, opened_at) = (clock.now(), clock.monotonic_nanos());
        let shards = config.shard_count();
        Store {
            name: name.to_owned(),
            clock,
            opened_wall,
            opened_at,
            origin,
            hasher: DefaultHashBuilder::default(),
            shards: (0..shards).map(|_| RwLock::new(Shard::default())).collect(),
            index: Index::default(),
            batches: RwLock::new(()),
            limits,
            earliest_deadline: AtomicU64::new(u64::MAX),
            hand: AtomicUsize::new(0),
            compressor: config.compression.as_ref().map(Compressor::new),
            decode_values: config.compression.is_some(),
            persist: None,
            plain: config.compression.is_none(),
            changes: Changes::default(),
            incarnation: INCARNATIONS.fetch_add(1, Ordering::Relaxed),
            hub: Hub::new(
                crate::DRIVER_NAME,
                name,
                HubConfig::new().history(config.watch_history),
            ),
            config,
        }
    }

    /// Starts a watch. A snapshot lists the keys and attaches the watch while every shard
    /// is read-locked (and the batch gate held): every change publishes under its shard's
    /// write lock, so none is in flight, and the keys are exactly the state at the watch's
    /// start.
    pub(crate) fn watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        match request.start {
            hodor_core::watch::Start::Snapshot => {
                let now = self.now();
                let prefix = request.prefix.as_bytes();
                let (keys, watch) = {
                    let _batches = self.batches.read();
                    let _shards: Vec<_> = self.shards.iter().map(|s| s.read()).collect();
                    let keys = self
                        .index
                        .collect(Bound::Unbounded, prefix, now, usize::MAX);
                    (keys, self.hub.subscribe_now(request)?)
                };
                let keys = keys
                    .iter()
                    .map(KeyRef::to_owned_string)
                    .filter(|k| request.matches(k))
                    .collect();
                Ok(watch.with_snapshot(keys))
            }
            hodor_core::watch::Start::After(seq) => self.hub.subscribe(request, seq),
            _ => self.hub.subscribe_now(request),
        }
    }

    /// A new store; a persistent one is recovered from its directory first.
    pub(crate) fn open(name: &str, config: MemoryConfig, clock: Clock) -> DriverResult<Store> {
        Store::open_with(name, config, clock, persist::Fs::default())
    }

    /// PERSIST HOOK: [`Store::open`] with the file operations given (tests inject faults).
    pub(crate) fn open_with(
        name: &str,
        config: MemoryConfig,
        clock: Clock,
        fs: persist::Fs,
    ) -> DriverResult<Store> {
        let Some(persist_config) = config.persist.clone() else {
            return Ok(Store::new(name, config, clock));
        };
        let mut store = Store::starting_at(name, config, clock, PERSIST_ORIGIN);
        let saw_compressed = std::sync::atomic::AtomicBool::new(false);
        let evictions = store.gauges().evictions;
        // Recovery drops what was due by the wall clock of the store's opening, the instant
        // `on_timeline` counts recovered deadlines from: the two agree on what is live.
        let opened = to_nanos(store.opened_wall);
        let floor = store.incarnation;
        let persist = Persist::open(name, &persist_config, fs, opened, floor, &mut |r| {
            if let Replay::Put(p) | Replay::Load(p) = &r
                && p.codec != Codec::Raw
            {
                saw_compressed.store(true, Ordering::Relaxed);
            }
            store.restore(r);
        })
        .map_err(DriverError::backend)?;
        store.decode_values |= saw_compressed.into_inner();
        // Versions across restarts: the clock starts over at every open, so the versions
        // of this opening must differ from every earlier one's by their incarnation: the
        // directory's epoch, past every earlier opening's (durably, before any version is
        // handed out) and past this process's other stores, which later ones stay past.
        store.incarnation = persist.epoch();
        INCARNATIONS.fetch_max(persist.epoch().saturating_add(1), Ordering::Relaxed);
        // Watch numbering starts at the log's last sequence number plus this opening's
        // epoch. An opening numbers at most one event per change it logs, so its events
        // stay at or below its log's last number plus its epoch, and every later opening
        // starts past that (a larger epoch, a log number at least as large). A `seq` kept
        // from before a restart is therefore older than the history, `Compacted`: its
        // holder resyncs (recovery drops expired entries without events) and never takes
        // an event of this opening for one it missed.
        store
            .hub
            .restart_at(persist.last_seq().saturating_add(persist.epoch()));
        store.persist = Some(persist);
        store.plain = false;
        if store.gauges().evictions != evictions {
            // The limits evicted entries the log still holds: a snapshot records that they
            // are gone, so a crash cannot bring them back. If it fails they may come back
            // at the next open, and be evicted again.
            let _ = store.snapshot();
        }
        Ok(store)
    }

    /// PERSIST HOOK: a recovered wall-clock instant (ns since the epoch) on this store's
    /// timeline: as far from the store's time at open as it was from the wall clock then.
    fn on_timeline(&self, wall: u64) -> u64 {
        let opened = to_nanos(self.opened_wall);
        if wall >= opened {
            self.origin.saturating_add(wall - opened)
        } else {
            self.origin.saturating_sub(opened - wall)
        }
    }

    /// PERSIST HOOK: applies one recovered state change. The store is not shared yet and
    /// logs nothing; its values are copies of the log's bytes, so dropping them runs no
    /// caller's code.
    fn restore(&self, r: Replay<'_>) {
        match r {
            Replay::Load(p) if self.limits.is_none() => self.load(p),
            Replay::Put(p) | Replay::Load(p) => {
                let value = Bytes::copy_from_slice(p.value);
                let when = self.recovered_when(&p);
                if self.put(NotLogged, p.key, value, p.codec, when).is_err() {
                    // Only a value larger than a (since lowered) max_bytes fails: the put
                    // replaced the key's old state, and cannot be held, so the key is gone.
                    let _ = self.delete(p.key);
                }
            }
            Replay::Remove(key) => {
                let _ = self.delete(key);
            }
            Replay::Clear => self.clear(),
            Replay::Reserve(entries) => {
                let entries = entries.min(self.config.max_entries.unwrap_or(u64::MAX));
                let per_shard = entries.div_ceil(self.shards.len() as u64);
                let hash_of = |k: &[u8]| self.hash(k);
                for shard in self.shards.iter() {
                    shard
                        .write()
                        .reserve(usize::try_from(per_shard).unwrap_or(0), hash_of);
                }
            }
        }
    }

    /// A recovered record's instants on this store's timeline.
    fn recovered_when(&self, p: &persist::PutRef<'_>) -> When {
        When::Recovered {
            modified: self.on_timeline(p.modified).min(NOW_CEILING),
            expires: if p.expires == 0 {
                0
            } else {
                self.on_timeline(p.expires).clamp(1, MAX_EXPIRY)
            },
        }
    }

    /// PERSIST HOOK: inserts a snapshot's entry straight into its shard and the index, past
    /// the write path: it is new to the store (a snapshot holds each key once and is loaded
    /// first), and recovery logs nothing and nobody watches yet. A key the shard holds
    /// already (a damaged snapshot) is stored the usual way. Only for stores without limits,
    /// which never need to make room.
    fn load(&self, p: persist::PutRef<'_>) {
        let When::Recovered { modified, expires } = self.recovered_when(&p) else {
            return;
        };
        let hash = self.hash(p.key.as_bytes());
        let hash_of = |k: &[u8]| self.hash(k);
        let Some(key) = KeyRef::new(p.key, expires) else {
            return; // Longer than any key a write accepts: the record is not ours.
        };
        let value = Bytes::copy_from_slice(p.value);
        let mut shard = self.shard(self.shard_of(hash)).write();
        if shard.find(hash, p.key.as_bytes()).is_some() {
            drop(shard);
            let when = When::Recovered { modified, expires };
            let _ = self.put(NotLogged, p.key, value, p.codec, when);
            return;
        }
        let slot = Slot::new(key.clone(), value, modified, p.codec);
        // Relied on by `Shard::stamp`: the slot did not get its stamp there.
        shard.raise_stamp(modified);
        if shard.insert(hash, slot, hash_of).is_none() {
            return; // A full shard (2^32 - 1 entries): the entry cannot be held.
        }
        self.index.insert(&mut shard.view, key);
        if expires != 0 {
            self.note_deadline(expires);
        }
    }

    /// PERSIST HOOK: starts the background work of a store that is now shared.
    pub(crate) fn start(self: &std::sync::Arc<Self>) {
        if let Some(p) = &self.persist {
            let weak = std::sync::Arc::downgrade(self);
            let source: std::sync::Weak<dyn persist::Source> = weak;
            p.start(source);
        }
    }

    /// PERSIST HOOK: the persistent store's directory, if it is one.
    pub(crate) fn persist_dir(&self) -> Option<&std::path::Path> {
        self.persist.as_ref().map(Persist::dir)
    }

    /// PERSIST HOOK: writes and syncs the log and releases the directory (the last close of
    /// a persistent store); the data stays on disk.
    pub(crate) fn close_persist(&self) -> DriverResult<()> {
        match &self.persist {
            Some(p) => p.close().map_err(DriverError::backend),
            None => Ok(()),
        }
    }

    /// Whether the persistence log has failed (tests).
    #[cfg(test)]
    pub(crate) fn persist_failed(&self) -> bool {
        self.persist.as_ref().is_some_and(Persist::failed)
    }

    /// PERSIST HOOK: takes a snapshot now, on this thread; `Ok(false)` if none was taken.
    pub(crate) fn snapshot(&self) -> DriverResult<bool> {
        match &self.persist {
            Some(p) => p.snapshot_now(self).map_err(DriverError::backend),
            None => Ok(false),
        }
    }

    /// PERSIST HOOK 1, for `set`, `delete` and their batches: the one branch a store
    /// without persistence takes; a persistent store whose log failed refuses the write
    /// before anything changes.
    #[inline]
    fn hook(&self) -> DriverResult<Option<Logging<'_>>> {
        match &self.persist {
            None => Ok(None),
            Some(persist) => persist.writable().map_err(refused).map(|()| {
                Some(Logging {
                    persist,
                    clock: &self.clock,
                })
            }),
        }
    }

    /// COMPRESSION HOOK: the stored form of a value: compressed when the store compresses
    /// and it pays.
    #[inline]
    pub(crate) fn encode(&self, value: Bytes) -> (Bytes, Codec) {
        match &self.compressor {
            None => (value, Codec::Raw),
            Some(c) => c.encode(value),
        }
    }

    /// The version of an entry, from what the entry already keeps: its stamp (the time it
    /// was written, in its slot, and the tie-breaker, in its key's header; see
    /// `Shard::stamp`), and the store's incarnation. It costs no byte per entry.
    ///
    /// Stamps strictly increase within a shard and a key always lives in one shard, so
    /// every write of a key gets a new one. The time is nanoseconds since this store was
    /// opened, so a store of the same name released and opened again starts over: the
    /// incarnation, different for every store opened in the process, keeps a version of
    /// the old store from matching one of the new.
    pub(crate) fn version(&self, slot: &Slot) -> Version {
        let time = u128::from(slot.modified());
        let seq = u128::from(slot.key.seq());
        Version::from_raw(u128::from(self.incarnation) << 80 | time << 16 | seq)
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard number for a hash. hashbrown uses the low bits (bucket) and the top seven
    /// (tag) inside a table, so the shard comes from bits in between.
    #[inline]
    fn shard_of(&self, hash: u64) -> usize {
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    #[inline]
    #[allow(clippy::indexing_slicing)] // shard_of masks with len - 1, len a power of two
    fn shard(&self, number: usize) -> &RwLock<Shard> {
        &self.shards[number & (self.shards.len() - 1)]
    }

    fn evicts(&self) -> bool {
        self.limits.is_some()
    }

    /// The store's time: `origin` plus the monotonic nanoseconds since it was opened,
    /// stopped at `NOW_CEILING`. Every deadline and `modified` stamp is on this timeline,
    /// so a wall-clock step moves none of them.
    #[inline]
    fn now(&self) -> u64 {
        self.clock
            .monotonic_nanos()
            .saturating_sub(self.opened_at)
            .saturating_add(self.origin)
            .min(NOW_CEILING)
    }

    /// The wall-clock instant of `at` on the store's timeline.
    fn wall_time(&self, at: u64) -> SystemTime {
        let wall = if at >= self.origin {
            self.opened_wall
                .checked_add(Duration::from_nanos(at - self.origin))
        } else {
            self.opened_wall
                .checked_sub(Duration::from_nanos(self.origin - at))
        };
        wall.unwrap_or(self.opened_wall)
    }

    #[inline]
    fn live_slot<'s>(&self, shard: &'s Shard, hash: u64, key: &str) -> Option<&'s Slot> {
        let slot = shard.slot(shard.find(hash, key.as_bytes())?)?;
        if slot.key.expires() != 0 && !slot.key.is_live(self.now()) {
            return None;
        }
        if self.evicts() {
            slot.key.mark_visited();
        }
        Some(slot)
    }

    /// COMPRESSION HOOK: whether reads must check each entry's codec (`get_decoded`), or
    /// may hand out the stored buffer (`get`).
    #[inline]
    pub(crate) fn decodes(&self) -> bool {
        self.decode_values
    }

    /// The stored buffer of `key`'s live entry: the value itself, unless `decodes()`.
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(self.shard_of(hash)).read();
        self.live_slot(&shard, hash, key).map(|s| s.value.clone())
    }

    /// COMPRESSION HOOK: `key`'s value when some entry may hold a compressed one.
    pub(crate) fn get_decoded(&self, key: &str) -> DriverResult<Option<Bytes>> {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(self.shard_of(hash)).read();
        let Some(slot) = self.live_slot(&shard, hash, key) else {
            return Ok(None);
        };
        let read = Store::read_value(slot);
        drop(shard);
        read.and_then(Read::finish).map(Some)
    }

    /// COMPRESSION HOOK: the value of a slot in a read-locked shard. A small compressed
    /// value is decompressed under the read lock, which only makes a writer of this shard
    /// wait a moment, and saves cloning and dropping the stored buffer's handle (two atomic
    /// operations on a line nothing else touches); a large one is decompressed after the
    /// lock is released.
    fn read_value(slot: &Slot) -> DriverResult<Read> {
        match slot.codec() {
            Codec::Raw => Ok(Read::Value(slot.value.clone())),
            Codec::Lz4 if codec::logical_len(&slot.value, Codec::Lz4) <= DECODE_UNDER_LOCK => {
                codec::decompress(&slot.value)
                    .map(|v| Read::Value(Bytes::from(v)))
                    .map_err(corrupt_value)
            }
            Codec::Lz4 => Ok(Read::Compressed(slot.value.clone())),
        }
    }

    pub(crate) fn exists(&self, key: &str) -> bool {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(self.shard_of(hash)).read();
        self.live_slot(&shard, hash, key).is_some()
    }

    pub(crate) fn stat(&self, key: &str) -> Option<Metadata> {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(self.shard_of(hash)).read();
        let slot = self.live_slot(&shard, hash, key)?;
        let expires = slot.key.expires();
        Some(Metadata::new(
            codec::logical_len(&slot.value, slot.codec()),
            self.wall_time(slot.modified()),
            (expires != 0).then(|| self.wall_time(expires)),
            self.version(slot),
        ))
    }

    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        let now = self.now();
        let prefix = prefix.as_bytes();
        // Under the locks, only copy the matching keys' handles (a reference count each);
        // build the strings after. A key-creating writer waits for the index while it holds
        // its shard's write lock, so a long list building strings under the index lock
        // stalled that shard's readers too.
        let keys: Vec<KeyRef> = {
            let _batches = self.batches.read();
            self.index
                .collect(Bound::Unbounded, prefix, now, usize::MAX)
        };
        keys.iter()
            .map(|k| {
                #[cfg(test)]
                crate::pause::reach("list: building a string");
                k.to_owned_string()
            })
            .collect()
    }

    /// At most `limit` live keys starting with `prefix` and after `start_after`, and
    /// whether more follow: a seek in the index to the later of the two, then a walk of at
    /// most `limit + 1` live keys. Built like [`Store::list`]: handles copied under the
    /// locks, strings built after.
    pub(crate) fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> (Vec<String>, bool) {
        let now = self.now();
        let prefix = prefix.as_bytes();
        let from = match start_after.map(str::as_bytes) {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut keys: Vec<KeyRef> = {
            let _batches = self.batches.read();
            self.index
                .collect(from, prefix, now, limit.saturating_add(1))
        };
        let more = keys.len() > limit;
        keys.truncate(limit);
        (keys.iter().map(KeyRef::to_owned_string).collect(), more)
    }

    pub(crate) fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        if self.plain {
            // PERSIST HOOK 1: the one check a store without persistence or compression
            // makes.
            return self.put(NotLogged, key, value, Codec::Raw, When::Now(ttl));
        }
        // A key that breaks the rules is `InvalidInput` before anything else is looked at
        // (the plain path checks it where it creates the entry; see `Store::write`).
        input::check_key(key)?;
        // COMPRESSION HOOK: CPU work, done before any lock is taken.
        let (value, codec) = self.encode(value);
        match self.hook()? {
            None => self.put(NotLogged, key, value, codec, When::Now(ttl)),
            Some(log) => {
                fits(key, &value)?;
                self.put(log, key, value, codec, When::Now(ttl))
            }
        }
    }

    /// Stores one value, already in its stored form (`codec`).
    #[inline(always)]
    fn put(
        &self,
        log: impl WriteLog,
        key: &str,
        value: Bytes,
        codec: Codec,
        when: When,
    ) -> DriverResult<()> {
        let hash = self.hash(key.as_bytes());
        let number = self.shard_of(hash);
        let mut dead = Dead::default();
        let Some(limits) = &self.limits else {
            let mut shard = self.shard(number).write();
            let logged = self.write(&mut shard, hash, key, value, codec, when, &mut dead, log)?;
            self.reclaim_some(&mut shard, &mut dead);
            drop(shard);
            return log.commit(logged);
        };
        // With limits every key is checked first, so a key that breaks the rules is
        // `InvalidInput` before the limits are looked at.
        input::check_key(key)?;
        let with_ttl = when.with_ttl();
        let new_charge = charge(key.len(), value.len(), with_ttl);
        self.check_entry_fits(key, value.len(), with_ttl)?;
        loop {
            // Reserve only the growth: an overwrite of a bigger value needs nothing.
            let existing = {
                let shard = self.shard(number).read();
                shard
                    .find(hash, key.as_bytes())
                    .and_then(|i| shard.slot(i))
                    .map(Slot::charge)
            };
            let (bytes, entries) = match existing {
                Some(old) => (new_charge.saturating_sub(old), 0),
                None => (new_charge, 1),
            };
            self.make_room(limits, bytes, entries)?;
            let mut shard = self.shard(number).write();
            let now_existing = shard
                .find(hash, key.as_bytes())
                .and_then(|i| shard.slot(i))
                .map(Slot::charge);
            if now_existing != existing {
                // Another writer changed this key between the look and the lock.
                drop(shard);
                limits.release(bytes, entries);
                continue;
            }
            let logged = match self.write(&mut shard, hash, key, value, codec, when, &mut dead, log)
            {
                Ok(logged) => logged,
                Err(e) => {
                    // Nothing was written: give the reservation back.
                    drop(shard);
                    limits.release(bytes, entries);
                    return Err(e);
                }
            };
            self.reclaim_some(&mut shard, &mut dead);
            drop(shard);
            match existing {
                // Releases what the overwrite freed, and wakes waiting writers.
                Some(old) => limits.release(old.saturating_sub(new_charge), 0),
                // The new entry can be evicted now: a waiting writer may take it.
                None => limits.wake(),
            }
            return log.commit(logged);
        }
    }

    /// Writes `key` if `decide`, shown its live entry (`None`: missing or expired) under
    /// the shard's write lock, says so: the one primitive of the conditional writes
    /// (`crate::conditional`). The decision and the write happen in one hold of the lock,
    /// so they are one step for every other writer and reader of the key, in every handle
    /// on the store. It writes as [`Store::set`] does, through [`Store::write`]: same
    /// stamp, same index and deadline bookkeeping, same reclaim on the way, and for a
    /// persistent store the same log record under the lock (PERSIST HOOK 2) and the same
    /// wait for the log after it (PERSIST HOOK 3). A persistent store whose log failed
    /// refuses it before deciding anything (PERSIST HOOK 1). `decide` gives the value in
    /// its stored form (`Store::encode`).
    ///
    /// With limits, room is reserved before the write lock, as `set` does: for the write
    /// `decide` asks for when shown the entry under the read lock. Under the write lock it
    /// decides again; if the entry's charge or the write's size differ from what was
    /// reserved for (another writer got in between), the reservation is given back and it
    /// starts over. A decision not to write (or an error) under the read lock is an answer
    /// at that instant, and returned as it is.
    pub(crate) fn write_if<T>(
        &self,
        key: &str,
        decide: impl Fn(Option<&Slot>) -> DriverResult<Decision<T>>,
    ) -> DriverResult<T> {
        match self.hook()? {
            None => self.write_if_logged(NotLogged, key, decide),
            Some(log) => self.write_if_logged(log, key, decide),
        }
    }

    fn write_if_logged<T>(
        &self,
        log: impl WriteLog,
        key: &str,
        decide: impl Fn(Option<&Slot>) -> DriverResult<Decision<T>>,
    ) -> DriverResult<T> {
        let hash = self.hash(key.as_bytes());
        let number = self.shard_of(hash);
        let Some(limits) = &self.limits else {
            let mut dead = Dead::default();
            let mut shard = self.shard(number).write();
            let now = self.now();
            let (_, live) = Store::present(&shard, hash, key, now);
            let (value, codec, ttl, answer) = match decide(live)? {
                Decision::Keep(answer) => return Ok(answer),
                Decision::Write {
                    value,
                    codec,
                    ttl,
                    answer,
                } => (value, codec, ttl, answer),
            };
            let expires = ttl.deadline(live, now);
            if log.logs() {
                fits(key, &value)?;
            }
            let when = When::At {
                modified: now,
                expires,
            };
            let logged = self.write(&mut shard, hash, key, value, codec, when, &mut dead, log)?;
            self.reclaim_some(&mut shard, &mut dead);
            drop(shard);
            log.commit(logged)?;
            return Ok(answer);
        };
        loop {
            let (existing, planned) = {
                let shard = self.shard(number).read();
                let now = self.now();
                let (existing, live) = Store::present(&shard, hash, key, now);
                match decide(live)? {
                    Decision::Keep(answer) => return Ok(answer),
                    Decision::Write { value, ttl, .. } => {
                        let with_ttl = ttl.deadline(live, now) != 0;
                        (existing, (value.len(), with_ttl))
                    }
                }
            };
            let (value_len, with_ttl) = planned;
            self.check_entry_fits(key, value_len, with_ttl)?;
            let new_charge = charge(key.len(), value_len, with_ttl);
            let (bytes, entries) = match existing {
                Some(old) => (new_charge.saturating_sub(old), 0),
                None => (new_charge, 1),
            };
            self.make_room(limits, bytes, entries)?;
            let mut dead = Dead::default();
            let mut shard = self.shard(number).write();
            let now = self.now();
            let (now_existing, live) = Store::present(&shard, hash, key, now);
            let decided = decide(live).and_then(|d| match d {
                Decision::Write { ref value, .. } if log.logs() => fits(key, value).map(|()| d),
                d => Ok(d),
            });
            let (value, codec, expires, answer) = match decided {
                Ok(Decision::Write {
                    value,
                    codec,
                    ttl,
                    answer,
                }) => {
                    let expires = ttl.deadline(live, now);
                    (value, codec, expires, answer)
                }
                Ok(Decision::Keep(answer)) => {
                    drop(shard);
                    limits.release(bytes, entries);
                    return Ok(answer);
                }
                Err(e) => {
                    drop(shard);
                    limits.release(bytes, entries);
                    return Err(e);
                }
            };
            if now_existing != existing || (value.len(), expires != 0) != planned {
                // Another writer changed this key between the look and the lock.
                drop(shard);
                limits.release(bytes, entries);
                continue;
            }
            let when = When::At {
                modified: now,
                expires,
            };
            let logged = match self.write(&mut shard, hash, key, value, codec, when, &mut dead, log)
            {
                Ok(logged) => logged,
                Err(e) => {
                    drop(shard);
                    limits.release(bytes, entries);
                    return Err(e);
                }
            };
            self.reclaim_some(&mut shard, &mut dead);
            drop(shard);
            match existing {
                // Releases what the overwrite freed, and wakes waiting writers.
                Some(old) => limits.release(old.saturating_sub(new_charge), 0),
                // The new entry can be evicted now: a waiting writer may take it.
                None => limits.wake(),
            }
            log.commit(logged)?;
            return Ok(answer);
        }
    }

    /// The charge of `key`'s entry in a locked shard, if one is there (live or not), and
    /// the entry if it is live at `now`.
    fn present<'s>(
        shard: &'s Shard,
        hash: u64,
        key: &str,
        now: u64,
    ) -> (Option<u64>, Option<&'s Slot>) {
        let slot = shard.find(hash, key.as_bytes()).and_then(|i| shard.slot(i));
        let live = slot.filter(|s| s.key.expires() == 0 || s.key.is_live(now));
        (slot.map(Slot::charge), live)
    }

    /// Stores one entry in a locked shard, handing the value it replaced to `dead` and its
    /// new state to `log`. An `Err` means nothing was written; what logging gave (which may
    /// be a failure of the log after the write took effect) is the `Ok` value.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn write(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &str,
        value: Bytes,
        codec: Codec,
        when: When,
        dead: &mut Dead,
        log: impl WriteLog,
    ) -> DriverResult<Logged> {
        let now = self.now();
        let ((modified, seq), expires) = match when {
            When::Now(ttl) => (shard.stamp(now), expiry_for(now, ttl)),
            When::At { modified, expires } => (shard.stamp(modified), expires),
            When::Recovered { modified, expires } => {
                // Relied on by `Shard::stamp`: this slot does not get its stamp there.
                shard.raise_stamp(modified);
                ((modified, 0), expires)
            }
        };
        let hash_of = |k: &[u8]| self.hash(k);
        let (index, created) = match shard.find(hash, key.as_bytes()) {
            Some(index) => {
                let old = shard
                    .overwrite(index, value, codec, modified, expires)
                    .ok_or_else(inconsistent)?;
                if let Some(slot) = shard.slot(index) {
                    slot.key.set_seq(seq);
                }
                if old.expires != 0 && old.expires <= now {
                    // The old entry was already dead; replacing it reclaims it.
                    shard.expirations += 1;
                }
                dead.push(old.value);
                (index, false)
            }
            None => {
                // A key is checked only here, when it is created: every stored key passed,
                // so an overwrite needs no check (the driver leaves a single write's check
                // to this point). KeyRef refuses a too-long one on its own too.
                input::check_key(key)?;
                let stored = KeyRef::new(key, expires).ok_or_else(|| {
                    DriverError::InvalidInput(format!(
                        "the key is {} bytes, longer than the limit of {} bytes",
                        key.len(),
                        hodor_core::MAX_KEY_LEN
                    ))
                })?;
                stored.set_seq(seq);
                let key_ref = stored.clone();
                let slot = Slot::new(stored, value, modified, codec);
                let index = shard.insert(hash, slot, hash_of).ok_or_else(|| {
                    DriverError::CapacityExceeded(
                        "a memory shard holds at most 2^32 - 1 entries".to_owned(),
                    )
                })?;
                self.index.insert(&mut shard.view, key_ref);
                (index, true)
            }
        };
        if expires != 0 {
            self.note_deadline(expires);
        }
        // PERSIST HOOK 2: the key's new state, under its shard's lock, once it took effect.
        let slot = shard.slot(index).ok_or_else(inconsistent)?;
        // A recovered record is history, not a change: recovery runs before the store is
        // shared, so no watch exists yet, and it is not published even if one did.
        let recovered = matches!(when, When::Recovered { .. });
        Ok(self.changed(
            log,
            Change::Put {
                slot,
                created,
                now,
                recovered,
            },
        ))
    }

    /// Reclaims a few expired entries of a locked shard, as writes do on their way.
    ///
    /// Only after the caller's writes to the shard (and their log records): an entry a
    /// write was about to replace must not be reclaimed under the writer's reservation, or
    /// the writer would insert a key it reserved as an overwrite (its entry uncounted). The
    /// entries just written have deadlines in the future.
    #[inline]
    fn reclaim_some(&self, shard: &mut Shard, dead: &mut Dead) {
        if shard.next_deadline().is_some_and(|at| at <= self.now()) {
            self.reclaim_due(shard, dead);
        }
    }

    #[cold]
    fn reclaim_due(&self, shard: &mut Shard, dead: &mut Dead) {
        let mut reclaimed = Vec::new();
        shard.expire(self.now(), WRITE_RECLAIM, |k| self.hash(k), &mut reclaimed);
        self.forget_on_its_own(shard, &mut reclaimed, Removal::Expire, dead);
    }

    /// [`Store::forget`] for removals the store makes on its own (expiries, evictions):
    /// logged when the store is persistent, but nobody waits for them. A failure leaves
    /// the log failed, and the next write reports it.
    fn forget_on_its_own(
        &self,
        shard: &mut Shard,
        removed: &mut Vec<Slot>,
        why: Removal,
        dead: &mut Dead,
    ) {
        match &self.persist {
            Some(persist) => {
                let log = Logging {
                    persist,
                    clock: &self.clock,
                };
                let _ = self.forget(log, shard, removed, why, dead);
            }
            None => {
                let _ = self.forget(NotLogged, shard, removed, why, dead);
            }
        }
    }

    /// Slots that left `shard` (still locked by the caller): the one path every removal
    /// takes. Takes them out of the index, reports each to the change hook (and so to
    /// `log`), releases their charges and hands their values to `dead`. Returns what
    /// logging gave: the last ticket, which covers the earlier ones (the log is in order),
    /// or the first failure.
    fn forget(
        &self,
        log: impl WriteLog,
        shard: &mut Shard,
        removed: &mut Vec<Slot>,
        why: Removal,
        dead: &mut Dead,
    ) -> Logged {
        let mut logged: Logged = Ok(None);
        for slot in removed.iter() {
            self.index.remove(&mut shard.view, &slot.key);
            // PERSIST HOOK 2, under the shard's lock.
            let this = self.changed(log, Change::Removed { slot, why });
            if logged.is_ok() {
                logged = match (this, logged) {
                    (Ok(None), earlier) => earlier,
                    (this, _) => this,
                };
            }
        }
        if let Some(limits) = &self.limits
            && !removed.is_empty()
        {
            let bytes = removed.iter().map(Slot::charge).sum();
            limits.release(bytes, removed.len() as u64);
        }
        for slot in removed.drain(..) {
            dead.push(slot.value);
        }
        logged
    }

    /// The one place every change of the store is known: called under the write lock of
    /// the shard that owns the key (for `Cleared`, under every shard's), right after the
    /// change, so each key's changes come in the order they took effect. Here the change
    /// is published to the store's watches (the hub numbers its events in this order), and
    /// when something else consumes changes it gets the store's next sequence number (a
    /// persistent store's is its log's) and goes to the persistence log through `log` and
    /// to the store's other observers (`Changes`). A store that nobody watches or
    /// observes, and that does not log, pays one relaxed load and two checks that are
    /// constant for its life.
    #[inline(always)]
    fn changed(&self, log: impl WriteLog, change: Change<'_>) -> Logged {
        if self.watched() {
            self.publish(&change);
        }
        let observed = self.changes.observed();
        if !log.logs() && !observed {
            return Ok(None);
        }
        let seq = self.next_seq();
        if observed {
            self.changes.consume(seq, &change);
        }
        match change {
            Change::Put { slot, now, .. } => log.put(seq, slot, now),
            Change::Removed { slot, why } => log.remove(seq, slot.key.as_bytes(), why),
            // Releasing the store is no change to its data on disk: nothing is logged.
            Change::Cleared => Ok(None),
        }
    }

    /// The next store-wide sequence number: the log's for a persistent store (it goes on
    /// across restarts), else the store's own. Taken under the shard lock of the change.
    fn next_seq(&self) -> u64 {
        match &self.persist {
            Some(p) => p.next_seq(),
            None => self.changes.seq.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Whether changes are published: one relaxed load. `--cfg hodor_no_watch` compiles the
    /// hooks out, which is how hodor-bench measures what they cost a write while nobody
    /// watches (watches then receive nothing).
    #[inline(always)]
    fn watched(&self) -> bool {
        #[cfg(hodor_no_watch)]
        return false;
        #[cfg(not(hodor_no_watch))]
        self.hub.is_watched()
    }

    /// A change's event for the store's watches.
    #[cold]
    fn publish(&self, change: &Change<'_>) {
        let (slot, kind) = match *change {
            Change::Put {
                recovered: true, ..
            } => return,
            Change::Put { slot, .. } => (slot, EventKind::Put),
            Change::Removed { slot, why } => {
                let kind = match why {
                    Removal::Expire => EventKind::Expired,
                    Removal::Evict => EventKind::Evicted,
                    Removal::Delete => EventKind::Delete,
                };
                (slot, kind)
            }
            // The hub is closed once the locks are released (see `Store::clear`).
            Change::Cleared => return,
        };
        // Stored keys are the `&str`s they were written with.
        if let Ok(key) = std::str::from_utf8(slot.key.as_bytes()) {
            self.hub.publish(key, kind);
        }
    }

    /// Lowers the earliest-deadline hint to `at`. Called with the shard that queued `at`
    /// write-locked (see `refresh_deadline_hint`).
    fn note_deadline(&self, at: u64) {
        if self.evicts() && self.earliest_deadline.load(Ordering::Acquire) > at {
            self.earliest_deadline.fetch_min(at, Ordering::AcqRel);
        }
    }

    /// `CapacityExceeded` for an entry no eviction can make room for.
    fn check_entry_fits(&self, key: &str, value_len: usize, with_ttl: bool) -> DriverResult<()> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        let bytes = charge(key.len(), value_len, with_ttl);
        if bytes <= limits.max_bytes {
            return Ok(());
        }
        let overhead = bytes.saturating_sub(key.len() as u64 + value_len as u64);
        Err(DriverError::CapacityExceeded(format!(
            "the entry is charged {bytes} bytes (key {} + value {value_len} + {overhead} \
             overhead), more than max_bytes = {}; nothing was evicted. Raise max_bytes or \
             store less",
            key.len(),
            limits.max_bytes
        )))
    }

    /// `CapacityExceeded` for a batch no eviction can make room for.
    fn check_batch_fits(&self, bytes: u64, entries: u64) -> DriverResult<()> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        if bytes > limits.max_bytes {
            return Err(DriverError::CapacityExceeded(format!(
                "the batch of {entries} entries is charged {bytes} bytes, more than max_bytes = \
                 {}; nothing was evicted. Raise max_bytes or store less",
                limits.max_bytes
            )));
        }
        if entries > limits.max_entries {
            return Err(DriverError::CapacityExceeded(format!(
                "the batch has {entries} distinct keys, more than max_entries = {}; nothing was \
                 evicted. Raise max_entries or split the batch",
                limits.max_entries
            )));
        }
        Ok(())
    }

    /// Reserves space, evicting until it fits: expired entries first, then CLOCK victims.
    /// Holds no lock of the store while it waits, and never gives up: `check_fits` has
    /// refused what could never fit.
    ///
    /// One writer at a time evicts (the others queue on `evicting`), and it keeps the room
    /// it frees as it frees it: writers that find room free cannot take it from under a
    /// large reservation (a big value, a batch) again and again, so every writer gets its
    /// room. Two writers each holding part of the room and waiting for the rest cannot
    /// happen, as only the evicting writer holds part. When nothing is left to evict,
    /// everything is reserved by writers between their reservation and their insert; they
    /// wait for nothing the evicting writer holds, so they finish, and their insert (which
    /// makes room evictable) or release wakes it. It sleeps meanwhile instead of spinning.
    fn make_room(&self, limits: &Limits, bytes: u64, entries: u64) -> DriverResult<()> {
        if limits.try_reserve(bytes, entries) {
            return Ok(());
        }
        let _evicting = limits.evicting.lock();
        let (mut held_bytes, mut held_entries) = (0, 0);
        loop {
            held_bytes += Limits::add_some(&limits.bytes, bytes - held_bytes, limits.max_bytes);
            held_entries +=
                Limits::add_some(&limits.entries, entries - held_entries, limits.max_entries);
            if (held_bytes, held_entries) == (bytes, entries) {
                return Ok(());
            }
            if !self.evict_one(limits) {
                limits.wait();
            }
        }
    }

    /// Frees one entry's worth of room, or more: every expired entry if there is one, else
    /// the next CLOCK victim. `false` if the store has nothing to evict.
    ///
    /// CLOCK runs over the whole store, not in the writer's shard: each shard has its hand
    /// (see `Shard::clock_step`), and the store's hand takes one step in each shard in turn.
    /// A step clears the read mark of the entry under the shard's hand and moves on, or
    /// evicts the entry if it was not read since the hand last looked at it. A new entry
    /// waits for the next round of its shard's hand. With similar shard sizes every entry is
    /// looked at about once per round of the store, as in one CLOCK over all entries.
    /// Confined to the writer's shard, a small store (8 entries over 16 shards) evicted a
    /// key read before every insert, and the hit ratio depended on the shard count.
    fn evict_one(&self, limits: &Limits) -> bool {
        let now = self.now();
        if self.earliest_deadline.load(Ordering::Acquire) <= now && self.expire_all(now) > 0 {
            return true;
        }
        let hash_of = |k: &[u8]| self.hash(k);
        let shards = self.shards.len() as u64;
        // Enough steps to clear every mark and come round again; after that the hand takes
        // entries whatever their marks, so eviction ends even if readers re-mark entries as
        // fast as it clears them.
        let entries = limits.entries.load(Ordering::Acquire);
        let patient = entries.saturating_mul(2).saturating_add(2 * shards);
        let mut empty_in_a_row = 0;
        let mut step = 0u64;
        while empty_in_a_row < shards {
            let force = step >= patient;
            step += 1;
            let mut dead = Dead::default();
            let number = self.hand.fetch_add(1, Ordering::Relaxed);
            let mut shard = self.shard(number).write();
            match shard.clock_step(force, hash_of) {
                Step::Evicted(victim) => {
                    let mut victim = vec![victim];
                    self.forget_on_its_own(&mut shard, &mut victim, Removal::Evict, &mut dead);
                    return true;
                }
                Step::Passed => empty_in_a_row = 0,
                Step::Empty => empty_in_a_row += 1,
            }
        }
        false
    }

    /// Reclaims every entry expired at `now` in every shard, a batch per lock hold; returns
    /// how many. Then refreshes the earliest-deadline hint.
    fn expire_all(&self, now: u64) -> usize {
        let hash_of = |k: &[u8]| self.hash(k);
        let mut removed = Vec::new();
        let mut total = 0;
        for shard in self.shards.iter() {
            loop {
                if shard.read().next_deadline().is_none_or(|at| at > now) {
                    break;
                }
                let mut dead = Dead::default();
                let mut guard = shard.write();
                guard.expire(now, SWEEP_BATCH, hash_of, &mut removed);
                total += removed.len();
                self.forget_on_its_own(&mut guard, &mut removed, Removal::Expire, &mut dead);
                if guard.next_deadline().is_none_or(|at| at > now) {
                    break;
                }
            }
        }
        #[cfg(test)]
        crate::pause::reach("expire_all: shards scanned");
        self.refresh_deadline_hint();
        total
    }

    /// Sets the earliest-deadline hint to the earliest deadline queued in any shard.
    ///
    /// The hint must never be later than a deadline in the store, or an eviction would take
    /// a live entry while an expired one remains. A writer queues a deadline and lowers the
    /// hint under its shard's write lock; here every shard is read under its read lock, all
    /// held at once, so no deadline can be queued between reading its shard and storing the
    /// hint. (Computing the minimum one shard at a time and then raising the hint lost a
    /// deadline queued in an already-read shard while the hint was still below it.)
    fn refresh_deadline_hint(&self) {
        if !self.evicts() {
            return;
        }
        // Ascending order, as every holder of several shard locks.
        let guards: Vec<_> = self.shards.iter().map(|s| s.read()).collect();
        let earliest = guards
            .iter()
            .filter_map(|g| g.next_deadline())
            .min()
            .unwrap_or(u64::MAX);
        self.earliest_deadline.store(earliest, Ordering::Release);
    }

    /// The background sweep: reclaims everything expired now.
    pub(crate) fn sweep(&self) {
        self.expire_all(self.now());
    }

    pub(crate) fn delete(&self, key: &str) -> DriverResult<bool> {
        // PERSIST HOOK 1.
        match self.hook()? {
            None => Ok(self.remove(NotLogged, key).is_some_and(|(live, _)| live)),
            Some(log) => match self.remove(log, key) {
                None => Ok(false),
                Some((live, logged)) => {
                    // PERSIST HOOK 3, once the shard is unlocked.
                    log.commit(logged)?;
                    Ok(live)
                }
            },
        }
    }

    /// Removes `key`, handing the removal to `log` under its shard's lock; `Some(live)` if
    /// it was there, with what logging gave.
    #[inline(always)]
    fn remove(&self, log: impl WriteLog, key: &str) -> Option<(bool, Logged)> {
        let hash = self.hash(key.as_bytes());
        let mut dead = Dead::default();
        let mut shard = self.shard(self.shard_of(hash)).write();
        self.remove_locked(log, &mut shard, hash, key, &mut dead)
    }

    /// Removes `key` from its locked shard, through `forget` (which reports it to the
    /// change hook and so to `log`); `Some(live)` if it was there, with what logging gave.
    /// A delete that finds the entry expired reports an expiry.
    fn remove_locked(
        &self,
        log: impl WriteLog,
        shard: &mut Shard,
        hash: u64,
        key: &str,
        dead: &mut Dead,
    ) -> Option<(bool, Logged)> {
        let index = shard.find(hash, key.as_bytes())?;
        let slot = shard.remove(hash, index, |k| self.hash(k))?;
        let live = slot.key.expires() == 0 || slot.key.is_live(self.now());
        let why = if live {
            Removal::Delete
        } else {
            shard.expirations += 1;
            Removal::Expire
        };
        let logged = self.forget(log, shard, &mut vec![slot], why, dead);
        Some((live, logged))
    }

    /// Locks the shards of `hashes` for writing, each once, in ascending order.
    fn lock_all(&self, hashes: &[u64]) -> Vec<(usize, RwLockWriteGuard<'_, Shard>)> {
        let mut numbers: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
            .into_iter()
            .map(|n| (n, self.shard(n).write()))
            .collect()
    }

    fn locked<'g, 's>(
        guards: &'g mut [(usize, RwLockWriteGuard<'s, Shard>)],
        number: usize,
    ) -> Option<&'g mut Shard> {
        let at = guards.binary_search_by_key(&number, |(n, _)| *n).ok()?;
        guards.get_mut(at).map(|(_, g)| &mut **g)
    }

    /// Locks the shards of `hashes` for reading, each once, in ascending order.
    fn read_all(&self, hashes: &[u64]) -> Vec<(usize, RwLockReadGuard<'_, Shard>)> {
        let mut numbers: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
            .into_iter()
            .map(|n| (n, self.shard(n).read()))
            .collect()
    }

    /// All values read at one moment: every involved shard is read-locked at once.
    pub(crate) fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k.as_bytes())).collect();
        let guards = self.read_all(&hashes);
        let read: Vec<Option<DriverResult<Read>>> = keys
            .iter()
            .zip(&hashes)
            .map(|(key, &hash)| {
                let number = self.shard_of(hash);
                let at = guards.binary_search_by_key(&number, |(n, _)| *n).ok()?;
                let (_, shard) = guards.get(at)?;
                let slot = self.live_slot(shard, hash, key)?;
                Some(if self.decode_values {
                    // COMPRESSION HOOK.
                    Store::read_value(slot)
                } else {
                    Ok(Read::Value(slot.value.clone()))
                })
            })
            .collect();
        drop(guards);
        read.into_iter()
            .map(|r| r.map(|r| r.and_then(Read::finish)).transpose())
            .collect()
    }

    /// Stores every entry while holding every involved shard: no reader sees part of it.
    pub(crate) fn set_many(
        &self,
        entries: &[(&str, Bytes)],
        ttl: Option<Duration>,
    ) -> DriverResult<()> {
        // A key given twice ends with its last value: keep only the last occurrence.
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        let mut last: Vec<&(&str, Bytes)> = entries
            .iter()
            .rev()
            .filter(|(k, _)| seen.insert(*k))
            .collect();
        last.reverse();
        // COMPRESSION HOOK: CPU work, done before any lock is taken.
        let stored: Vec<(&str, Bytes, Codec)> = last
            .iter()
            .map(|(k, v)| {
                let (v, codec) = self.encode(v.clone());
                (*k, v, codec)
            })
            .collect();
        // PERSIST HOOK 1.
        let log = self.hook()?;
        if log.is_some() {
            for (key, value, _) in &stored {
                fits(key, value)?;
            }
        }
        let hashes: Vec<u64> = stored
            .iter()
            .map(|(k, _, _)| self.hash(k.as_bytes()))
            .collect();
        let Some(limits) = &self.limits else {
            return match self.write_batch(&stored, &hashes, ttl, None, log)? {
                Some(logged) => Store::commit_batch(log, logged),
                None => Err(inconsistent()),
            };
        };
        for (key, value, _) in &stored {
            self.check_entry_fits(key, value.len(), ttl.is_some())?;
        }
        let new_bytes: u64 = stored
            .iter()
            .map(|(k, v, _)| charge(k.len(), v.len(), ttl.is_some()))
            .sum();
        self.check_batch_fits(new_bytes, stored.len() as u64)?;
        loop {
            // Reserve only the growth, as `set` does: overwriting keys of a full store
            // must not evict other keys. What the keys hold now is read at one moment.
            let existing = self.charges_of(&stored, &hashes);
            let old_bytes: u64 = existing.iter().flatten().sum();
            let new_entries = existing.iter().filter(|c| c.is_none()).count() as u64;
            let growth = new_bytes.saturating_sub(old_bytes);
            self.make_room(limits, growth, new_entries)?;
            match self.write_batch(&stored, &hashes, ttl, Some(&existing), log) {
                Ok(Some(logged)) => {
                    // Give back what the batch shrank (and wake waiting writers: its new
                    // entries can be evicted now).
                    limits.release(old_bytes.saturating_sub(new_bytes), 0);
                    return Store::commit_batch(log, logged);
                }
                // Another writer changed a key between the look and the locks.
                Ok(None) => limits.release(growth, new_entries),
                Err(e) => {
                    limits.release(growth, new_entries);
                    return Err(e);
                }
            }
        }
    }

    /// PERSIST HOOK 3 for batches.
    fn commit_batch(log: Option<Logging<'_>>, logged: Logged) -> DriverResult<()> {
        match log {
            Some(log) => log.commit(logged),
            None => NotLogged.commit(logged),
        }
    }

    /// The charge of each key's entry now (`None` if absent), read under the read locks of
    /// every involved shard at once.
    fn charges_of(&self, entries: &[(&str, Bytes, Codec)], hashes: &[u64]) -> Vec<Option<u64>> {
        let guards = self.read_all(hashes);
        entries
            .iter()
            .zip(hashes)
            .map(|((key, _, _), &hash)| {
                let at = guards
                    .binary_search_by_key(&self.shard_of(hash), |(n, _)| *n)
                    .ok()?;
                let (_, shard) = guards.get(at)?;
                shard
                    .find(hash, key.as_bytes())
                    .and_then(|i| shard.slot(i))
                    .map(Slot::charge)
            })
            .collect()
    }

    /// Writes a batch (values in their stored form) under the batch gate and every involved
    /// shard's write lock, all at one instant, and logs it as one record. With `expected`,
    /// first checks that each key still holds what the caller reserved for, and writes
    /// nothing (`Ok(None)`) if one does not.
    fn write_batch(
        &self,
        entries: &[(&str, Bytes, Codec)],
        hashes: &[u64],
        ttl: Option<Duration>,
        expected: Option<&[Option<u64>]>,
        log: Option<Logging<'_>>,
    ) -> DriverResult<Option<Logged>> {
        let mut dead = Dead::default();
        let _batches = self.batches.write();
        let mut guards = self.lock_all(hashes);
        if let Some(expected) = expected {
            for (((key, _, _), &hash), want) in entries.iter().zip(hashes).zip(expected) {
                let shard =
                    Store::locked(&mut guards, self.shard_of(hash)).ok_or_else(inconsistent)?;
                let now = shard
                    .find(hash, key.as_bytes())
                    .and_then(|i| shard.slot(i))
                    .map(Slot::charge);
                if now != *want {
                    return Ok(None);
                }
            }
        }
        let now = self.now();
        let expires = expiry_for(now, ttl);
        let when = When::At {
            modified: now,
            expires,
        };
        // Each write reports its change to the hook, which takes its sequence number; with
        // persistence the numbers are gathered and the whole batch logged below as one
        // record, under every shard lock.
        let seqs = RefCell::new(Vec::new());
        for ((key, value, codec), &hash) in entries.iter().zip(hashes) {
            let shard = Store::locked(&mut guards, self.shard_of(hash)).ok_or_else(inconsistent)?;
            let value = value.clone();
            let written = match log {
                Some(_) => {
                    let log = Batched { seqs: &seqs };
                    self.write(shard, hash, key, value, *codec, when, &mut dead, log)
                }
                None => self.write(shard, hash, key, value, *codec, when, &mut dead, NotLogged),
            };
            // Nothing to wait for: `Batched` and `NotLogged` only gather or drop.
            let _ = written?;
        }
        // PERSIST HOOK 2: the whole batch as one record, under every shard lock.
        let logged = match log {
            Some(Logging { persist: p, clock }) if !entries.is_empty() => {
                let wall = WallMap::read(clock, now);
                let seqs = seqs.into_inner();
                if seqs.len() != entries.len() {
                    return Err(inconsistent());
                }
                let records: Vec<(u64, Record<'_>)> = entries
                    .iter()
                    .zip(seqs)
                    .map(|((key, value, codec), seq)| {
                        let record = Record::Put {
                            key: key.as_bytes(),
                            value,
                            codec: *codec,
                            modified: wall.modified(now),
                            expires: wall.expires(expires),
                        };
                        (seq, record)
                    })
                    .collect();
                p.log_batch(&records).map(Some).map_err(unsure)
            }
            _ => Ok(None),
        };
        // Only once every key of the batch is written and logged (see `reclaim_some`).
        for (_, shard) in &mut guards {
            self.reclaim_some(shard, &mut dead);
        }
        Ok(Some(logged))
    }

    /// Removes every key while holding every involved shard; returns how many live entries
    /// were removed (a key listed twice counts once).
    pub(crate) fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        // PERSIST HOOK 1.
        let log = self.hook()?;
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k.as_bytes())).collect();
        let mut dead = Dead::default();
        let (removed, logged) = {
            let _batches = self.batches.write();
            let mut guards = self.lock_all(&hashes);
            let mut removed = 0;
            // The keys removed, in order, and the sequence numbers the hook gave them.
            let mut gone: Vec<&str> = Vec::new();
            let seqs = RefCell::new(Vec::new());
            for (key, &hash) in keys.iter().zip(&hashes) {
                let Some(shard) = Store::locked(&mut guards, self.shard_of(hash)) else {
                    continue;
                };
                let found = match log {
                    Some(_) => {
                        let log = Batched { seqs: &seqs };
                        self.remove_locked(log, shard, hash, key, &mut dead)
                    }
                    None => self.remove_locked(NotLogged, shard, hash, key, &mut dead),
                };
                if let Some((live, _)) = found {
                    removed += usize::from(live);
                    if log.is_some() {
                        gone.push(key);
                    }
                }
            }
            // PERSIST HOOK 2: the keys removed, as one record, under every shard lock.
            let logged = match log {
                Some(Logging { persist: p, .. }) if !gone.is_empty() => {
                    let seqs = seqs.into_inner();
                    if seqs.len() != gone.len() {
                        return Err(inconsistent());
                    }
                    let records: Vec<(u64, Record<'_>)> = gone
                        .iter()
                        .zip(seqs)
                        .map(|(key, seq)| {
                            let record = Record::Remove {
                                key: key.as_bytes(),
                                why: Removal::Delete,
                            };
                            (seq, record)
                        })
                        .collect();
                    p.log_batch(&records).map(Some).map_err(unsure)
                }
                _ => Ok(None),
            };
            (removed, logged)
        };
        // PERSIST HOOK 3, once every lock is released.
        Store::commit_batch(log, logged)?;
        Ok(removed)
    }

    pub(crate) fn gauges(&self) -> Gauges {
        let (mut entries, mut bytes, mut expirations, mut evictions) = (0u64, 0u64, 0u64, 0u64);
        for shard in self.shards.iter() {
            let shard = shard.read();
            entries += shard.len() as u64;
            bytes += shard.charged;
            expirations += shard.expirations;
            evictions += shard.evictions;
        }
        if let Some(limits) = &self.limits {
            // The shards are read one after another, so their sum can mix moments; the
            // reserved counters are one moment and never pass the limits.
            entries = limits.entries.load(Ordering::Acquire);
            bytes = limits.bytes.load(Ordering::Acquire);
        }
        let mut gauges = Gauges::default();
        gauges.entries = Some(entries);
        gauges.bytes = Some(bytes);
        gauges.expirations = Some(expirations);
        gauges.evictions = Some(evictions);
        gauges.max_bytes = self.config.max_bytes;
        gauges.max_entries = self.config.max_entries;
        gauges.watches = Some(self.hub.watch_count());
        // PERSIST HOOK.
        if let Some(p) = &self.persist {
            p.gauges(self.clock.now_nanos(), &mut gauges);
        }
        gauges
    }

    /// Releases all data; called when the last handle on this store is given back. A
    /// persistent store's data stays on disk: nothing is logged.
    ///
    /// One atomic step under the batch gate, every shard's write lock and the index lock: a
    /// write racing it lands wholly before (and is cleared) or wholly after (and stays, in
    /// its shard and in the index). Emptying shard by shard and then resetting the index
    /// let a write land in an emptied shard and lose its index entry: a key that existed
    /// but was never listed.
    pub(crate) fn clear(&self) {
        let (released, old_index) = {
            let _batches = self.batches.write();
            let mut shards: Vec<_> = self.shards.iter().map(|s| s.write()).collect();
            let (bytes, entries) = shards
                .iter()
                .fold((0, 0), |(b, e), s| (b + s.charged, e + s.len() as u64));
            if let Some(limits) = &self.limits {
                limits.release(bytes, entries);
            }
            let released: Vec<Shard> = shards.iter_mut().map(|s| s.clear()).collect();
            let _ = self.changed(NotLogged, Change::Cleared);
            (released, self.index.clear())
        };
        #[cfg(test)]
        crate::pause::reach("clear: shards emptied");
        // The store is gone for its watches too.
        self.hub.close();
        // The values go after the locks (see `Dead`).
        drop(old_index);
        drop(released);
    }
}

/// PERSIST HOOK: a snapshot reads the store through this, shard by shard.
impl persist::Source for Store {
    fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn visit_shard(&self, shard: usize, f: &mut dyn FnMut(persist::EntryRef<'_>)) {
        let Some(shard) = self.shards.get(shard) else {
            return;
        };
        let shard = shard.read();
        let now = self.now();
        let wall = WallMap::read(&self.clock, now);
        for slot in shard.iter() {
            if !slot.key.is_live(now) {
                continue;
            }
            f(persist::EntryRef {
                key: &slot.key,
                value: &slot.value,
                codec: slot.codec(),
                modified: wall.modified(slot.modified()),
                expires: wall.expires(slot.key.expires()),
            });
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_nanos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hodor_core::clock::ManualClock;

    fn store_with(config: MemoryConfig) -> (Store, ManualClock) {
        let clock = ManualClock::new();
        (Store::new("t", config, clock.clone().into()), clock)
    }

    fn store() -> (Store, ManualClock) {
        store_with(MemoryConfig::default())
    }

    /// The deadline `key`'s entry carries, in the store's time.
    fn deadline_of(s: &Store, key: &str) -> u64 {
        let hash = s.hash(key.as_bytes());
        let shard = s.shard(s.shard_of(hash)).read();
        let slot = shard
            .slot(shard.find(hash, key.as_bytes()).unwrap())
            .unwrap();
        slot.key.expires()
    }

    #[test]
    fn list_seeks_to_the_prefix_and_stops_after_it() {
        let (s, _) = store();
        for k in ["a", "ab", "abc", "abd", "b", "ab/x"] {
            s.set(k, Bytes::new(), None).unwrap();
        }
        assert_eq!(s.list("ab"), ["ab", "ab/x", "abc", "abd"]);
        assert_eq!(s.list("abc"), ["abc"]);
        assert!(s.list("c").is_empty());
        assert_eq!(s.list("").len(), 6);
    }

    #[test]
    fn a_writer_waits_for_room_other_writers_hold_as_long_as_they_hold_it() {
        let (s, _) = store_with(MemoryConfig::default().max_entries(1));
        let s = std::sync::Arc::new(s);
        // Another writer has reserved the only entry and not inserted yet.
        let limits = s.limits.as_ref().unwrap();
        assert!(limits.try_reserve(charge(1, 0, false), 1));
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || s.set("k", Bytes::new(), None))
        };
        // Longer than any patience a writer might have: it must still be waiting, not fail.
        std::thread::sleep(Duration::from_millis(5_500));
        assert!(
            !writer.is_finished(),
            "the writer gave up: {:?}",
            writer.join()
        );
        // It slept between looks rather than spinning.
        let waits = limits.waits.load(Ordering::Relaxed);
        assert!(waits < 6_000, "{waits} looks in 5.5 s: spinning");
        limits.release(charge(1, 0, false), 1);
        writer.join().unwrap().unwrap();
        assert_eq!(s.list(""), ["k"]);
    }

    #[test]
    fn list_builds_its_strings_without_holding_the_index_or_the_batch_gate() {
        let (s, _) = store();
        for i in 0..100 {
            s.set(&format!("k{i:03}"), Bytes::new(), None).unwrap();
        }
        let s = std::sync::Arc::new(s);
        let probe = s.clone();
        let free = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = free.clone();
        // While list turns keys into strings, a writer creating a key must not wait for it:
        // the index and the batch gate are free.
        crate::pause::at("list: building a string", move || {
            let index_free = probe.index.is_free();
            let gate_free = probe.batches.try_write().is_some();
            *seen.lock().unwrap() = Some(index_free && gate_free);
        });
        assert_eq!(s.list("").len(), 100);
        assert_eq!(
            *free.lock().unwrap(),
            Some(true),
            "list held a lock while building strings"
        );
    }

    #[test]
    fn sweep_reclaims_expired_entries_nobody_reads() {
        let (s, clock) = store();
        for i in 0..5000 {
            s.set(
                &format!("k{i}"),
                Bytes::from_static(b"v"),
                Some(Duration::from_millis(10)),
            )
            .unwrap();
        }
        s.set("forever", Bytes::from_static(b"v"), None).unwrap();
        clock.advance(Duration::from_millis(10));
        s.sweep();
        let g = s.gauges();
        assert_eq!(g.entries, Some(1));
        assert_eq!(g.expirations, Some(5000));
        assert_eq!(s.list(""), ["forever"]);
    }

    #[test]
    fn writes_reclaim_expired_entries_in_their_shard() {
        let (s, clock) = store();
        for i in 0..2000 {
            s.set(
                &format!("k{i}"),
                Bytes::new(),
                Some(Duration::from_millis(1)),
            )
            .unwrap();
        }
        clock.advance(Duration::from_millis(1));
        for i in 0..2000 {
            s.set(&format!("n{i}"), Bytes::new(), None).unwrap();
        }
        let resident = s.gauges().entries.unwrap();
        assert!(resident < 3000, "{resident} entries resident");
    }

    #[test]
    fn clear_releases_everything() {
        let (s, _) = store_with(MemoryConfig::default().max_entries(10));
        s.set("a", Bytes::from_static(b"1"), Some(Duration::from_secs(1)))
            .unwrap();
        s.clear();
        let g = s.gauges();
        assert_eq!((g.entries, g.bytes), (Some(0), Some(0)));
        assert!(s.list("").is_empty());
        assert!(s.get("a").is_none());
    }

    /// Every key in a shard is in the index, and every indexed key is in its shard.
    fn assert_index_agrees(s: &Store) {
        let mut in_shards = Vec::new();
        for shard in s.shards.iter() {
            let shard = shard.read();
            in_shards.extend(shard.iter().map(|slot| slot.key.to_owned_string()));
        }
        in_shards.sort();
        let indexed: Vec<String> = s.index.keys().iter().map(KeyRef::to_owned_string).collect();
        s.index.check();
        assert_eq!(in_shards, indexed, "the shards and the index disagree");
    }

    #[test]
    fn a_write_racing_clear_leaves_the_index_agreeing_with_the_shards() {
        let clock = ManualClock::new();
        let s = std::sync::Arc::new(Store::new("t", MemoryConfig::default(), clock.into()));
        s.set("old", Bytes::new(), None).unwrap();
        // A write lands after clear emptied the shards and before it is done.
        let writer = s.clone();
        crate::pause::at("clear: shards emptied", move || {
            writer.set("racer", Bytes::new(), None).unwrap();
        });
        s.clear();
        assert_index_agrees(&s);
        assert_eq!(s.list("").len(), s.gauges().entries.unwrap() as usize);
    }

    #[test]
    fn the_entry_limit_evicts_and_the_index_follows() {
        let (s, _) = store_with(MemoryConfig::default().max_entries(100));
        for i in 0..1000 {
            s.set(&format!("k{i:04}"), Bytes::from_static(b"v"), None)
                .unwrap();
            assert!(s.gauges().entries.unwrap() <= 100);
        }
        let listed = s.list("");
        assert_eq!(listed.len(), 100);
        for k in &listed {
            assert!(s.exists(k), "{k} listed but evicted");
        }
        assert_eq!(s.gauges().evictions, Some(900));
    }

    #[test]
    fn overwrites_near_the_limit_evict_nothing() {
        let (s, _) = store_with(MemoryConfig::default().max_entries(10));
        for i in 0..10 {
            s.set(&format!("k{i}"), Bytes::from_static(b"v"), None)
                .unwrap();
        }
        for round in 0..5 {
            for i in 0..10 {
                s.set(&format!("k{i}"), Bytes::from(vec![round; 10]), None)
                    .unwrap();
            }
        }
        assert_eq!(s.gauges().evictions, Some(0));
        assert_eq!(s.list("").len(), 10);
    }

    #[test]
    fn the_deadline_hint_never_passes_a_deadline_added_during_a_sweep() {
        let clock = ManualClock::new();
        let s = std::sync::Arc::new(Store::new(
            "t",
            MemoryConfig::default().max_entries(2),
            clock.clone().into(),
        ));
        let second = Duration::from_secs(1);
        s.set("a", Bytes::new(), Some(second)).unwrap();
        clock.advance(second);
        // While the sweep reclaims "a", a writer adds a deadline to a shard it has
        // already scanned (they all are at this point).
        let writer = s.clone();
        crate::pause::at("expire_all: shards scanned", move || {
            writer.set("b", Bytes::new(), Some(second)).unwrap();
        });
        s.sweep();
        let b_expires = deadline_of(&s, "b");
        let hint = s.earliest_deadline.load(Ordering::Acquire);
        assert!(
            hint <= b_expires,
            "the hint {hint} is past the deadline of b, {b_expires}"
        );
        // What the hint is for: once "b" is due, room comes from it, not from a live entry.
        clock.advance(second);
        s.set("live/1", Bytes::new(), None).unwrap();
        s.set("live/2", Bytes::new(), None).unwrap();
        let g = s.gauges();
        assert_eq!(
            (g.evictions, g.expirations),
            (Some(0), Some(2)),
            "a live entry was evicted while an expired one remained"
        );
        assert_eq!(s.list(""), ["live/1", "live/2"]);
    }

    /// A value whose drop calls back into its store.
    struct Reentrant {
        store: std::sync::Weak<Store>,
        key: &'static str,
        drops: std::sync::Arc<AtomicU64>,
    }

    impl AsRef<[u8]> for Reentrant {
        fn as_ref(&self) -> &[u8] {
            b"reentrant"
        }
    }

    impl Drop for Reentrant {
        fn drop(&mut self) {
            if let Some(s) = self.store.upgrade() {
                let _ = s.get(self.key);
                let _ = s.list("");
                let _ = s.gauges();
                let _ = s.set("from-drop", Bytes::new(), None);
                let _ = s.delete("from-drop");
            }
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs `steps` on another thread; a deadlock fails the test instead of hanging it.
    fn without_deadlock(what: &str, steps: impl FnOnce() + Send + 'static) {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            steps();
            let _ = done.send(());
        });
        if finished.recv_timeout(Duration::from_secs(10)).is_err() {
            panic!("{what}: deadlocked: a value was dropped under a store lock");
        }
    }

    #[test]
    fn clear_and_write_reclaim_drop_values_outside_the_locks() {
        let clock = ManualClock::new();
        let s = std::sync::Arc::new(Store::new(
            "t",
            MemoryConfig::default(),
            clock.clone().into(),
        ));
        let drops = std::sync::Arc::new(AtomicU64::new(0));
        let value = |key: &'static str| {
            Bytes::from_owner(Reentrant {
                store: std::sync::Arc::downgrade(&s),
                key,
                drops: drops.clone(),
            })
        };
        // A write reclaims expired entries of its own shard on the way.
        s.set("expired", value("expired"), Some(Duration::from_millis(1)))
            .unwrap();
        let home = s.shard_of(s.hash(b"expired"));
        let neighbour = (0..)
            .map(|i| format!("n{i}"))
            .find(|k| s.shard_of(s.hash(k.as_bytes())) == home)
            .unwrap();
        clock.advance(Duration::from_millis(1));
        let writer = s.clone();
        without_deadlock("write reclaim", move || {
            writer.set(&neighbour, Bytes::new(), None).unwrap();
        });
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // The last close releases everything.
        s.set("kept", value("kept"), None).unwrap();
        let closer = s.clone();
        without_deadlock("clear", move || closer.clear());
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn byte_accounting_matches_the_entries() {
        let limit = 100 * charge(4, 100, false);
        let (s, _) = store_with(MemoryConfig::default().max_bytes(limit));
        for i in 0..1000u32 {
            let len = (i % 200) as usize;
            s.set(&format!("{i:04}"), Bytes::from(vec![0; len]), None)
                .unwrap();
            let g = s.gauges();
            assert!(g.bytes.unwrap() <= limit);
        }
        let resident: u64 = s
            .list("")
            .iter()
            .map(|k| charge(k.len(), s.get(k).unwrap().len(), false))
            .sum();
        assert_eq!(s.gauges().bytes, Some(resident));
    }

    fn resident(s: &Store) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut all = std::collections::BTreeMap::new();
        for shard in s.shards.iter() {
            for slot in shard.read().iter() {
                all.insert(slot.key.to_owned_string(), slot.value.to_vec());
            }
        }
        all
    }

    /// Replays recorded changes into a map of the store's contents, checking each against
    /// the state before it: a creation of an absent key, a replacement or removal of a
    /// present one, sequence numbers increasing for each key.
    fn replay(
        changes: &[crate::change::tests::Recorded],
        model: &mut std::collections::BTreeMap<String, Vec<u8>>,
        last_seq: &mut std::collections::HashMap<String, u64>,
    ) {
        use crate::change::tests::What;
        for c in changes {
            if let Some(&before) = last_seq.get(&c.key) {
                assert!(c.seq > before, "{c:?} after seq {before}");
            }
            last_seq.insert(c.key.clone(), c.seq);
            match &c.what {
                What::Put { created, value } => {
                    let had = model.insert(c.key.clone(), value.clone()).is_some();
                    assert_eq!(*created, !had, "{c:?}: created is wrong");
                }
                What::Removed(_) => {
                    assert!(
                        model.remove(&c.key).is_some(),
                        "{c:?}: removed an absent key"
                    );
                }
                What::Cleared => model.clear(),
            }
        }
    }

    /// Random writes of every kind on 60 keys (with TTLs, so expiries; the stores these
    /// tests open have an entry limit, so evictions), clock steps and sweeps: the traffic
    /// the change-hook tests check the hook against.
    fn churn(s: &Store, clock: &ManualClock, seed: u64, rounds: u64) {
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..rounds {
            let key = format!("k{}", next(60));
            let value = Bytes::from(round.to_string());
            let ttl = (next(3) == 0).then(|| Duration::from_millis(1 + next(20)));
            match next(12) {
                0..=2 => s.set(&key, value, ttl).unwrap(),
                3 => {
                    s.create(&key, value, ttl).unwrap();
                }
                4 => {
                    // Fails on a value that is not a counter: nothing changes then.
                    let _ = s.increment(&format!("n{}", next(5)), 1);
                }
                5 => {
                    if let Some(meta) = s.stat(&key) {
                        s.set_if_version(&key, value, ttl, meta.version).unwrap();
                    }
                }
                6 => {
                    s.delete(&key).unwrap();
                }
                7 => {
                    let other = format!("k{}", next(60));
                    s.set_many(&[(&key, value.clone()), (&other, value)], ttl)
                        .unwrap();
                }
                8 => {
                    s.delete_many(&[&key, "k1", "k2"]).unwrap();
                }
                9 => clock.advance(Duration::from_millis(next(8))),
                _ => s.sweep(),
            }
        }
    }

    /// The recorded changes, replayed into a model, give what the store holds, and every
    /// kind of removal happened.
    fn assert_changes_add_up(s: &Store, changes: &[crate::change::tests::Recorded]) {
        use crate::change::Removal;
        use crate::change::tests::What;
        let mut model = Default::default();
        replay(changes, &mut model, &mut Default::default());
        assert_eq!(model, resident(s), "the changes do not add up to the store");
        for why in [Removal::Delete, Removal::Expire, Removal::Evict] {
            assert!(
                changes.iter().any(|c| c.what == What::Removed(why)),
                "no {why:?} change seen"
            );
        }
    }

    #[test]
    fn every_change_goes_through_the_hook_once_in_order() {
        use crate::change::Removal;
        use crate::change::tests::What;
        let clock = ManualClock::new();
        let s = Store::new(
            "t",
            MemoryConfig::default().max_entries(40),
            clock.clone().into(),
        );
        s.changes.record();
        let options = hodor_core::watch::WatchOptions::new().buffer(1 << 20);
        let mut watch = s
            .watch(&hodor_core::watch::WatchRequest::new("", options))
            .unwrap();
        churn(&s, &clock, 0x2545_f491_4f6c_dd1d, 4_000);
        let changes = s.changes.recorded();
        assert_changes_add_up(&s, &changes);
        let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "sequence numbers repeat or go back"
        );
        // The watch got one event per change, in the same order.
        let mut events = Vec::new();
        while let Ok(Some(hodor_core::watch::Item::Event(e))) = watch.recv_timeout(Duration::ZERO) {
            events.push((e.key.to_string(), e.kind));
        }
        let expected: Vec<(String, EventKind)> = changes
            .iter()
            .map(|c| {
                let kind = match c.what {
                    What::Put { .. } => EventKind::Put,
                    What::Removed(Removal::Delete) => EventKind::Delete,
                    What::Removed(Removal::Expire) => EventKind::Expired,
                    What::Removed(Removal::Evict) => EventKind::Evicted,
                    What::Cleared => unreachable!("no clear yet"),
                };
                (c.key.clone(), kind)
            })
            .collect();
        assert_eq!(
            events.len(),
            expected.len(),
            "events and changes differ in number"
        );
        assert!(
            events == expected,
            "the watch saw other changes than the hook"
        );
        s.clear();
        let after = s.changes.recorded();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].what, What::Cleared);
    }

    #[test]
    fn each_keys_changes_arrive_in_the_order_they_took_effect_under_concurrency() {
        let (s, _) = store();
        s.changes.record();
        let s = std::sync::Arc::new(s);
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..3_000u64 {
                        let key = format!("c{}", (i * 7 + t) % 50);
                        if i % 5 == 4 {
                            s.delete(&key).unwrap();
                        } else {
                            s.set(&key, Bytes::from(format!("{t}/{i}")), None).unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let changes = s.changes.recorded();
        // Recorded in the order they were reported; each key's in its shard's lock order.
        let mut model = Default::default();
        replay(&changes, &mut model, &mut Default::default());
        assert_eq!(model, resident(&s));
    }

    /// A persistent store, with a limit (evictions), TTLs (expiries) and every kind of
    /// write: each change goes through the hook once, takes one sequence number of the
    /// log's, and the log gets every one of them (a reopened store holds what this one
    /// held).
    #[test]
    fn a_persistent_store_logs_every_change_once_through_the_hook() {
        use crate::config::{Fsync, PersistConfig};
        /// Removed when the test ends, passed or not.
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = std::env::temp_dir().join(format!("hodor-store-hook-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _cleanup = Dir(dir.clone());
        let config = || {
            MemoryConfig::default()
                .max_entries(40)
                .persist(PersistConfig::new(&dir).fsync(Fsync::Always))
        };
        let clock = ManualClock::new();
        let s = Store::open("hook", config(), clock.clone().into()).unwrap();
        s.changes.record();
        let first_seq = s.next_seq();
        churn(&s, &clock, 0x9e37_79b9_7f4a_7c15, 3_000);
        let changes = s.changes.recorded();
        assert_changes_add_up(&s, &changes);
        // One number of the log's per change, in the order they were reported.
        let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
        assert_eq!(seqs.first(), Some(&(first_seq + 1)));
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "a number skipped"
        );
        assert_eq!(s.next_seq(), first_seq + 1 + changes.len() as u64);
        // Whatever is live now is what the log says, read back after a restart (the clock
        // stands still in between).
        let live = |st: &Store| -> std::collections::BTreeMap<String, Vec<u8>> {
            st.list("")
                .into_iter()
                .filter_map(|k| Some((k.clone(), st.get(&k)?.to_vec())))
                .collect()
        };
        let before = live(&s);
        assert!(!before.is_empty());
        s.close_persist().unwrap();
        drop(s);
        let again = Store::open("hook", config(), clock.clone().into()).unwrap();
        assert_eq!(live(&again), before, "the log missed a change");
        again.close_persist().unwrap();
    }
}
