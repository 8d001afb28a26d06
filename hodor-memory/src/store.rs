//! The store behind one memory contract name: sharded slots plus one ordered key index.
//!
//! Point operations hash the key to one of N shards, each behind its own `RwLock`; a `get`
//! takes one shard's read lock and writes nothing shared. The ordered index (a `BTreeSet`
//! of the same key allocations) is touched only when a key is created or removed, and lets
//! `list(prefix)` seek to the prefix and walk only the matching keys: O(log n + k).
//!
//! Lock order: the batch gate, then shards, then the index; several shards only in
//! ascending order (bulk operations, `clear`, refreshing the deadline hint). Eviction and
//! sweeping hold one shard at a time. `Limits::evicting` is taken before any of them, and
//! only by writers making room. Every index change happens while the shard that owns the
//! key is locked, so the index never disagrees with the shards about a key that is not
//! being written at that moment. Nothing a caller owns runs under any of these locks (see
//! `Dead`).

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hashbrown::DefaultHashBuilder;
use hodor_core::clock::Clock;
use hodor_core::driver::{DriverError, DriverResult, Gauges};
use hodor_core::watch::{EventKind, Hub, HubConfig, Watch, WatchRequest};
use hodor_core::{MAX_TTL, Metadata, Version};
use parking_lot::{RwLock, RwLockWriteGuard};

use crate::config::MemoryConfig;
use crate::key::{KeyRef, MAX_EXPIRY};
use crate::shard::{Shard, Slot, Step, charge};

/// How many expired entries one lock hold may reclaim, so a sweep never stalls readers long.
const SWEEP_BATCH: usize = 1024;
/// How many expired entries a write reclaims from its own shard on the way.
const WRITE_RECLAIM: usize = 4;
/// How long a writer waiting for room sleeps before it looks again if no wake-up came
/// (a wake-up can be missed in a narrow window; this bounds what that costs).
const ROOM_RECHECK: Duration = Duration::from_millis(1);

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
    /// The clock's wall-clock and monotonic time when the store was opened. The store's
    /// timeline starts there: its time is the monotonic time since `opened_at`, and `stat`
    /// reports an instant `t` on it as `opened_wall + t`.
    opened_wall: SystemTime,
    opened_at: u64,
    hasher: DefaultHashBuilder,
    shards: Box<[RwLock<Shard>]>,
    index: RwLock<BTreeSet<KeyRef>>,
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
    /// Which store of this process this is, for versions (see `Store::version`).
    incarnation: u64,
    /// Where changes are published for watches, under the lock of the shard that owns the
    /// key, so each key's events are in the order its writes took effect and the hub's
    /// `seq` order is the order of the whole store. While nobody watches, a change costs
    /// one relaxed load (`Hub::is_watched`).
    hub: Hub,
}

/// Why entries left a shard, for their watch events.
#[derive(Clone, Copy)]
enum Removal {
    /// Reclaimed after their deadline.
    Expired,
    /// Evicted by CLOCK to make room.
    Evicted,
    /// Deleted on request: `Expired` for an entry already past its deadline.
    Deleted,
}

/// Stores opened so far in this process: each gets the next number as its incarnation.
static INCARNATIONS: AtomicU64 = AtomicU64::new(0);

/// Where the store's clock stops: the latest `now` from which every TTL up to `MAX_TTL` still
/// ends at a representable deadline (about 192 years after the store was opened). Past it
/// time stands still, so an entry is never expired early: those already due expire, those
/// set then never do.
const NOW_CEILING: u64 = MAX_EXPIRY - MAX_TTL.as_secs() * 1_000_000_000;

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

/// What a conditional write does with a key, shown its live entry (see
/// [`Store::write_if`]).
pub(crate) enum Decision<T> {
    /// Leave the key as it is; the call returns `T`.
    Keep(T),
    /// Write `value` with `ttl`; the call returns `answer`.
    Write {
        value: Bytes,
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

impl Store {
    pub(crate) fn new(name: &str, config: MemoryConfig, clock: Clock) -> Store {
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
            hasher: DefaultHashBuilder::default(),
            shards: (0..shards).map(|_| RwLock::new(Shard::default())).collect(),
            index: RwLock::new(BTreeSet::new()),
            batches: RwLock::new(()),
            limits,
            earliest_deadline: AtomicU64::new(u64::MAX),
            hand: AtomicUsize::new(0),
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
                    let index = self.index.read();
                    let keys: Vec<KeyRef> = index
                        .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                        .take_while(|k| k.as_bytes().starts_with(prefix))
                        .filter(|k| k.is_live(now))
                        .cloned()
                        .collect();
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

    /// The store's time: monotonic nanoseconds since it was opened, stopped at
    /// `NOW_CEILING`. Every deadline and `modified` stamp is on this timeline, so a
    /// wall-clock step moves none of them.
    #[inline]
    fn now(&self) -> u64 {
        self.clock
            .monotonic_nanos()
            .saturating_sub(self.opened_at)
            .min(NOW_CEILING)
    }

    /// The wall-clock instant of `at` on the store's timeline.
    fn wall_time(&self, at: u64) -> SystemTime {
        self.opened_wall
            .checked_add(Duration::from_nanos(at))
            .unwrap_or(self.opened_wall)
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

    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(self.shard_of(hash)).read();
        self.live_slot(&shard, hash, key).map(|s| s.value.clone())
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
            slot.value.len() as u64,
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
            let index = self.index.read();
            index
                .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|k| k.as_bytes().starts_with(prefix))
                .filter(|k| k.is_live(now))
                .cloned()
                .collect()
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
            let index = self.index.read();
            index
                .range::<[u8], _>((from, Bound::Unbounded))
                .take_while(|k| k.as_bytes().starts_with(prefix))
                .filter(|k| k.is_live(now))
                .take(limit.saturating_add(1))
                .cloned()
                .collect()
        };
        let more = keys.len() > limit;
        keys.truncate(limit);
        (keys.iter().map(KeyRef::to_owned_string).collect(), more)
    }

    pub(crate) fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        let hash = self.hash(key.as_bytes());
        let number = self.shard_of(hash);
        let mut dead = Dead::default();
        let Some(limits) = &self.limits else {
            let mut shard = self.shard(number).write();
            self.write(&mut shard, hash, key, value, ttl, &mut dead)?;
            self.reclaim_some(&mut shard, &mut dead);
            return Ok(());
        };
        let new_charge = charge(key.len(), value.len(), ttl.is_some());
        self.check_entry_fits(key, value.len(), ttl.is_some())?;
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
            self.write(&mut shard, hash, key, value, ttl, &mut dead)?;
            self.reclaim_some(&mut shard, &mut dead);
            drop(shard);
            match existing {
                // Releases what the overwrite freed, and wakes waiting writers.
                Some(old) => limits.release(old.saturating_sub(new_charge), 0),
                // The new entry can be evicted now: a waiting writer may take it.
                None => limits.wake(),
            }
            return Ok(());
        }
    }

    /// Writes `key` if `decide`, shown its live entry (`None`: missing or expired) under
    /// the shard's write lock, says so: the one primitive of the conditional writes
    /// (`crate::conditional`). The decision and the write happen in one hold of the lock,
    /// so they are one step for every other writer and reader of the key, in every handle
    /// on the store. It writes as [`Store::set`] does, through [`Store::write_at`]: same
    /// stamp, same index and deadline bookkeeping, same reclaim on the way. Whatever `set`
    /// does around its write under the shard lock (a persistent store logging the key's new
    /// state, then waiting for the log after the lock is released) this must do too.
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
        let hash = self.hash(key.as_bytes());
        let number = self.shard_of(hash);
        let Some(limits) = &self.limits else {
            let mut dead = Dead::default();
            let mut shard = self.shard(number).write();
            let now = self.now();
            let (_, live) = Store::present(&shard, hash, key, now);
            let (value, ttl, answer) = match decide(live)? {
                Decision::Keep(answer) => return Ok(answer),
                Decision::Write { value, ttl, answer } => (value, ttl, answer),
            };
            let expires = ttl.deadline(live, now);
            self.write_at(&mut shard, hash, key, value, now, expires, &mut dead)?;
            self.reclaim_some(&mut shard, &mut dead);
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
            let decided = decide(live);
            let (value, expires, answer) = match decided {
                Ok(Decision::Write { value, ttl, answer }) => {
                    let expires = ttl.deadline(live, now);
                    (value, expires, answer)
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
            if let Err(e) = self.write_at(&mut shard, hash, key, value, now, expires, &mut dead) {
                drop(shard);
                limits.release(bytes, entries);
                return Err(e);
            }
            self.reclaim_some(&mut shard, &mut dead);
            drop(shard);
            match existing {
                // Releases what the overwrite freed, and wakes waiting writers.
                Some(old) => limits.release(old.saturating_sub(new_charge), 0),
                // The new entry can be evicted now: a waiting writer may take it.
                None => limits.wake(),
            }
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

    /// Stores one entry in a locked shard; returns the charge of the entry it replaced,
    /// whose value goes to `dead`.
    fn write(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        dead: &mut Dead,
    ) -> DriverResult<Option<u64>> {
        let now = self.now();
        self.write_at(shard, hash, key, value, now, expiry_for(now, ttl), dead)
    }

    /// [`Store::write`] with the deadline given (0: none), `now` being the store's time.
    #[allow(clippy::too_many_arguments)]
    fn write_at(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &str,
        value: Bytes,
        now: u64,
        expires: u64,
        dead: &mut Dead,
    ) -> DriverResult<Option<u64>> {
        let hash_of = |k: &[u8]| self.hash(k);
        let (modified, seq) = shard.stamp(now);
        let replaced = match shard.find(hash, key.as_bytes()) {
            Some(index) => {
                let old = shard
                    .overwrite(hash, index, value, modified, expires, hash_of)
                    .ok_or_else(inconsistent)?;
                if let Some(slot) = shard.slot(index) {
                    slot.key.set_seq(seq);
                }
                if old.expires != 0 && old.expires <= now {
                    // The old entry was already dead; replacing it reclaims it.
                    shard.expirations += 1;
                }
                dead.push(old.value);
                Some(old.charge)
            }
            None => {
                // The driver checked the key; KeyRef refuses a too-long one on its own too.
                let stored = KeyRef::new(key, expires).ok_or_else(|| {
                    DriverError::InvalidInput(format!(
                        "the key is {} bytes, longer than the limit of {} bytes",
                        key.len(),
                        hodor_core::MAX_KEY_LEN
                    ))
                })?;
                stored.set_seq(seq);
                let key_ref = stored.clone();
                let slot = Slot::new(stored, value, modified);
                shard.insert(hash, slot, hash_of).ok_or_else(|| {
                    DriverError::CapacityExceeded(
                        "a memory shard holds at most 2^32 - 1 entries".to_owned(),
                    )
                })?;
                self.index.write().insert(key_ref);
                None
            }
        };
        if expires != 0 {
            self.note_deadline(expires);
        }
        if self.watched() {
            self.hub.publish(key, EventKind::Put);
        }
        Ok(replaced)
    }

    /// Reclaims a few expired entries of a locked shard, as writes do on their way.
    ///
    /// Only after the caller's writes to the shard: an entry a write was about to replace
    /// must not be reclaimed under the writer's reservation, or the writer would insert a
    /// key it reserved as an overwrite (its entry uncounted). The entries just written have
    /// deadlines in the future.
    fn reclaim_some(&self, shard: &mut Shard, dead: &mut Dead) {
        let now = self.now();
        if shard.next_deadline().is_some_and(|at| at <= now) {
            let mut reclaimed = Vec::new();
            shard.expire(now, WRITE_RECLAIM, |k| self.hash(k), &mut reclaimed);
            self.forget(&mut reclaimed, dead, Removal::Expired);
        }
    }

    /// Removes slots that left a shard (still locked by the caller) from the index, releases
    /// their charges, publishes their events and hands their values to `dead`.
    fn forget(&self, removed: &mut Vec<Slot>, dead: &mut Dead, why: Removal) {
        if removed.is_empty() {
            return;
        }
        if self.watched() {
            self.publish_removals(removed, why);
        }
        let mut index = self.index.write();
        for slot in removed.iter() {
            index.remove(slot.key.as_bytes());
        }
        drop(index);
        if let Some(limits) = &self.limits {
            let bytes = removed.iter().map(Slot::charge).sum();
            limits.release(bytes, removed.len() as u64);
        }
        for slot in removed.drain(..) {
            dead.push(slot.value);
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

    /// The events of entries that left a locked shard.
    #[cold]
    fn publish_removals(&self, removed: &[Slot], why: Removal) {
        let now = self.now();
        for slot in removed {
            let expired = slot.key.expires() != 0 && !slot.key.is_live(now);
            let kind = match why {
                Removal::Expired => EventKind::Expired,
                Removal::Evicted => EventKind::Evicted,
                Removal::Deleted if expired => EventKind::Expired,
                Removal::Deleted => EventKind::Delete,
            };
            // Stored keys are the `&str`s they were written with.
            if let Ok(key) = std::str::from_utf8(slot.key.as_bytes()) {
                self.hub.publish(key, kind);
            }
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
                    self.forget(&mut vec![victim], &mut dead, Removal::Evicted);
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
                self.forget(&mut removed, &mut dead, Removal::Expired);
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

    pub(crate) fn delete(&self, key: &str) -> bool {
        let hash = self.hash(key.as_bytes());
        let mut dead = Dead::default();
        let mut shard = self.shard(self.shard_of(hash)).write();
        self.remove_locked(&mut shard, hash, key, &mut dead)
            .unwrap_or(false)
    }

    /// Removes `key` from its locked shard; `Some(live)` if it was there.
    fn remove_locked(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &str,
        dead: &mut Dead,
    ) -> Option<bool> {
        let index = shard.find(hash, key.as_bytes())?;
        let slot = shard.remove(hash, index, |k| self.hash(k))?;
        let live = slot.key.expires() == 0 || slot.key.is_live(self.now());
        if !live {
            shard.expirations += 1;
        }
        self.forget(&mut vec![slot], dead, Removal::Deleted);
        Some(live)
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

    /// All values read at one moment: every involved shard is read-locked at once.
    pub(crate) fn get_many(&self, keys: &[&str]) -> Vec<Option<Bytes>> {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k.as_bytes())).collect();
        let mut numbers: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let guards: Vec<_> = numbers.iter().map(|&n| (n, self.shard(n).read())).collect();
        keys.iter()
            .zip(&hashes)
            .map(|(key, &hash)| {
                let number = self.shard_of(hash);
                let at = guards.binary_search_by_key(&number, |(n, _)| *n).ok()?;
                let (_, shard) = guards.get(at)?;
                self.live_slot(shard, hash, key).map(|s| s.value.clone())
            })
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
        let hashes: Vec<u64> = last.iter().map(|(k, _)| self.hash(k.as_bytes())).collect();
        let Some(limits) = &self.limits else {
            return self.write_batch(&last, &hashes, ttl, None).map(drop);
        };
        for (key, value) in &last {
            self.check_entry_fits(key, value.len(), ttl.is_some())?;
        }
        let new_bytes: u64 = last
            .iter()
            .map(|(k, v)| charge(k.len(), v.len(), ttl.is_some()))
            .sum();
        self.check_batch_fits(new_bytes, last.len() as u64)?;
        loop {
            // Reserve only the growth, as `set` does: overwriting keys of a full store
            // must not evict other keys. What the keys hold now is read at one moment.
            let existing = self.charges_of(&last, &hashes);
            let old_bytes: u64 = existing.iter().flatten().sum();
            let new_entries = existing.iter().filter(|c| c.is_none()).count() as u64;
            let growth = new_bytes.saturating_sub(old_bytes);
            self.make_room(limits, growth, new_entries)?;
            match self.write_batch(&last, &hashes, ttl, Some(&existing)) {
                Ok(true) => {
                    // Give back what the batch shrank (and wake waiting writers: its new
                    // entries can be evicted now).
                    limits.release(old_bytes.saturating_sub(new_bytes), 0);
                    return Ok(());
                }
                // Another writer changed a key between the look and the locks.
                Ok(false) => limits.release(growth, new_entries),
                Err(e) => {
                    limits.release(growth, new_entries);
                    return Err(e);
                }
            }
        }
    }

    /// The charge of each key's entry now (`None` if absent), read under the read locks of
    /// every involved shard at once.
    fn charges_of(&self, entries: &[&(&str, Bytes)], hashes: &[u64]) -> Vec<Option<u64>> {
        let mut numbers: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let guards: Vec<_> = numbers.iter().map(|&n| (n, self.shard(n).read())).collect();
        entries
            .iter()
            .zip(hashes)
            .map(|((key, _), &hash)| {
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

    /// Writes a batch under the batch gate and every involved shard's write lock. With
    /// `expected`, first checks that each key still holds what the caller reserved for, and
    /// writes nothing (`Ok(false)`) if one does not.
    fn write_batch(
        &self,
        entries: &[&(&str, Bytes)],
        hashes: &[u64],
        ttl: Option<Duration>,
        expected: Option<&[Option<u64>]>,
    ) -> DriverResult<bool> {
        let mut dead = Dead::default();
        let _batches = self.batches.write();
        let mut guards = self.lock_all(hashes);
        if let Some(expected) = expected {
            for (((key, _), &hash), want) in entries.iter().zip(hashes).zip(expected) {
                let shard =
                    Store::locked(&mut guards, self.shard_of(hash)).ok_or_else(inconsistent)?;
                let now = shard
                    .find(hash, key.as_bytes())
                    .and_then(|i| shard.slot(i))
                    .map(Slot::charge);
                if now != *want {
                    return Ok(false);
                }
            }
        }
        for ((key, value), &hash) in entries.iter().zip(hashes) {
            let shard = Store::locked(&mut guards, self.shard_of(hash)).ok_or_else(inconsistent)?;
            self.write(shard, hash, key, value.clone(), ttl, &mut dead)?;
        }
        // Only once every key of the batch is written (see `reclaim_some`).
        for (_, shard) in &mut guards {
            self.reclaim_some(shard, &mut dead);
        }
        Ok(true)
    }

    /// Removes every key while holding every involved shard; returns how many live entries
    /// were removed (a key listed twice counts once).
    pub(crate) fn delete_many(&self, keys: &[&str]) -> usize {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k.as_bytes())).collect();
        let mut dead = Dead::default();
        let _batches = self.batches.write();
        let mut guards = self.lock_all(&hashes);
        let mut removed = 0;
        for (key, &hash) in keys.iter().zip(&hashes) {
            let Some(shard) = Store::locked(&mut guards, self.shard_of(hash)) else {
                continue;
            };
            if self.remove_locked(shard, hash, key, &mut dead) == Some(true) {
                removed += 1;
            }
        }
        removed
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
        gauges
    }

    /// Releases all data; called when the last handle on this store is given back.
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
            let mut index = self.index.write();
            let (bytes, entries) = shards
                .iter()
                .fold((0, 0), |(b, e), s| (b + s.charged, e + s.len() as u64));
            if let Some(limits) = &self.limits {
                limits.release(bytes, entries);
            }
            let released: Vec<Shard> = shards.iter_mut().map(|s| s.clear()).collect();
            (released, std::mem::take(&mut *index))
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
            let index_free = probe.index.try_write().is_some();
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
        let indexed: Vec<String> = s.index.read().iter().map(KeyRef::to_owned_string).collect();
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
}
