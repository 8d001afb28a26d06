//! The store behind one memory contract name: sharded slots plus one ordered key index.
//!
//! Point operations hash the key to one of N shards, each behind its own `RwLock`; a `get`
//! takes one shard's read lock and writes nothing shared. The ordered index (a `BTreeSet`
//! of the same key allocations) is touched only when a key is created or removed, and lets
//! `list(prefix)` seek to the prefix and walk only the matching keys: O(log n + k).
//!
//! Lock order: the batch gate, then shards, then the index, then the persistence log's
//! buffer; several shards only in ascending order (bulk operations). Eviction and sweeping
//! hold one shard at a time. Every index change happens while the shard that owns the key
//! is locked, so the index never disagrees with the shards about a key that is not being
//! written at that moment.
//!
//! Persistence hooks (marked `PERSIST HOOK` below). `set` and `delete` are generic over
//! [`WriteLog`], so a store without persistence checks for it once per call (`hook()`)
//! and its steps compile to nothing:
//! 1. Before a write changes anything: `hook()`, which refuses the write if the store's
//!    log failed, and `fits` (the record's size).
//! 2. Under the shard lock, right after the change: `p.next_seq()` and `p.log(..)` with the
//!    key's new state (`WriteLog::put`, `WriteLog::delete`), one `p.log_batch(..)` for
//!    `set_many` and `delete_many` (under all their shard locks), and `p.log(..)` for each
//!    expiry and eviction the store makes on its own (in `forget`). Under the lock, so each
//!    key's records are in the log in the order its writes took effect.
//! 3. After releasing every lock: `WriteLog::commit` (waits for the sync with
//!    `fsync = always`).
//!
//! Plus recovery (`Store::open` feeds `persist::Replay` to `restore`), snapshots
//! (`persist::Source`, read shard by shard) and close (`close_persist`).

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::DefaultHashBuilder;
use hodor_core::Metadata;
use hodor_core::clock::{Clock, from_nanos};
use hodor_core::driver::{DriverError, DriverResult, Gauges};
use parking_lot::{RwLock, RwLockWriteGuard};

use crate::codec::{self, Codec, Compressor};
use crate::config::MemoryConfig;
use crate::key::{KeyRef, MAX_EXPIRY};
use crate::persist::{self, Persist, Record, Removal, Replay, Ticket};
use crate::shard::{Shard, Slot, charge, stamp};

/// How many expired entries one lock hold may reclaim, so a sweep never stalls readers long.
const SWEEP_BATCH: usize = 1024;
/// How many expired entries a write reclaims from its own shard on the way.
const WRITE_RECLAIM: usize = 4;
/// Compressed values up to this size are decompressed under the shard's read lock.
const DECODE_UNDER_LOCK: u64 = 64 << 10;
/// How long a writer keeps trying to make room while other writers hold all of it.
const MAKE_ROOM_PATIENCE: Duration = Duration::from_secs(5);

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
}

impl Limits {
    fn try_add(counter: &AtomicU64, n: u64, max: u64) -> bool {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(n).filter(|&next| next <= max)
            })
            .is_ok()
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
    }
}

pub(crate) struct Store {
    pub(crate) name: String,
    pub(crate) config: MemoryConfig,
    pub(crate) clock: Clock,
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
    /// Compresses values on the way in, when configured.
    compressor: Option<Compressor>,
    /// Some entry may hold a compressed value: reads check each entry's codec. True with a
    /// compressor, or after recovery loaded compressed values into a store without one.
    decode_values: bool,
    /// The log and snapshots, when the store is persistent. Set once, at open, after
    /// recovery.
    persist: Option<Persist>,
    /// Neither persistent nor compressing: `set` takes the plain path.
    plain: bool,
}

fn shard_count() -> usize {
    let cpus = std::thread::available_parallelism().map_or(4, usize::from);
    (cpus * 8).next_power_of_two().clamp(16, 1024)
}

fn expiry_for(now: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => {
            let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
            now.saturating_add(ttl).min(MAX_EXPIRY)
        }
    }
}

fn inconsistent() -> DriverError {
    DriverError::backend("the memory store's slot table is inconsistent (a bug in hodor-memory)")
}

/// A value read under a shard lock: ready, or still to decompress once the lock is gone.
enum Read {
    Value(Bytes),
    Compressed(Bytes),
}

impl Read {
    fn finish(self) -> DriverResult<Bytes> {
        match self {
            Read::Value(v) => Ok(v),
            Read::Compressed(stored) => Store::decode(stored, Codec::Lz4),
        }
    }
}

/// What a write does with the new state of a key: nothing (no persistence; every call
/// compiles away), or log it. Writes are generic over it so a store without persistence
/// checks for it once per call, not at each step.
trait WriteLog: Copy {
    /// PERSIST HOOK 2: logs the state of the slot at `index`, just written, under the
    /// shard lock.
    fn put(self, shard: &Shard, index: usize) -> DriverResult<Option<Ticket>>;
    /// PERSIST HOOK 2: logs the removal of `key`, under its shard lock.
    fn delete(self, key: &str) -> DriverResult<Option<Ticket>>;
    /// PERSIST HOOK 3: after every lock is released, returns once the write is as durable
    /// as the fsync mode promises.
    fn commit(self, ticket: Option<Ticket>) -> DriverResult<()>;
}

#[derive(Clone, Copy)]
struct NotLogged;

impl WriteLog for NotLogged {
    #[inline(always)]
    fn put(self, _: &Shard, _: usize) -> DriverResult<Option<Ticket>> {
        Ok(None)
    }
    #[inline(always)]
    fn delete(self, _: &str) -> DriverResult<Option<Ticket>> {
        Ok(None)
    }
    #[inline(always)]
    fn commit(self, _: Option<Ticket>) -> DriverResult<()> {
        Ok(())
    }
}

impl WriteLog for &Persist {
    fn put(self, shard: &Shard, index: usize) -> DriverResult<Option<Ticket>> {
        let slot = shard.slot(index).ok_or_else(inconsistent)?;
        let record = Record::Put {
            key: slot.key.as_bytes(),
            value: &slot.value,
            codec: slot.codec(),
            modified: slot.modified(),
            expires: slot.key.expires(),
        };
        self.log(self.next_seq(), record)
            .map(Some)
            .map_err(persist_error)
    }

    fn delete(self, key: &str) -> DriverResult<Option<Ticket>> {
        let record = Record::Remove {
            key: key.as_bytes(),
            why: Removal::Delete,
        };
        self.log(self.next_seq(), record)
            .map(Some)
            .map_err(persist_error)
    }

    fn commit(self, ticket: Option<Ticket>) -> DriverResult<()> {
        match ticket {
            Some(t) => Persist::commit(self, t).map_err(persist_error),
            None => Ok(()),
        }
    }
}

fn persist_error(e: persist::PersistError) -> DriverError {
    DriverError::backend(e)
}

fn corrupt_value(e: codec::CorruptValue) -> DriverError {
    DriverError::backend(e)
}

/// The largest value a persistent store can log: the record's length field is a `u32`.
fn fits(key: &str, value: &[u8]) -> DriverResult<()> {
    let len = (key.len() + value.len()) as u64 + 64;
    if len > u64::from(u32::MAX) {
        return Err(DriverError::CapacityExceeded(format!(
            "a value of {} bytes is over the 4 GiB a persistent memory store can log",
            value.len()
        )));
    }
    Ok(())
}

impl Store {
    pub(crate) fn new(name: &str, config: MemoryConfig, clock: Clock) -> Store {
        let limits = (config.max_bytes.is_some() || config.max_entries.is_some()).then(|| Limits {
            max_bytes: config.max_bytes.unwrap_or(u64::MAX),
            max_entries: config.max_entries.unwrap_or(u64::MAX),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        });
        Store {
            name: name.to_owned(),
            clock,
            hasher: DefaultHashBuilder::default(),
            shards: (0..shard_count())
                .map(|_| RwLock::new(Shard::default()))
                .collect(),
            index: RwLock::new(BTreeSet::new()),
            batches: RwLock::new(()),
            limits,
            earliest_deadline: AtomicU64::new(u64::MAX),
            compressor: config.compression.as_ref().map(Compressor::new),
            decode_values: config.compression.is_some(),
            persist: None,
            plain: config.compression.is_none(),
            config,
        }
    }

    /// A new store; a persistent one is recovered from its directory first.
    pub(crate) fn open(name: &str, config: MemoryConfig, clock: Clock) -> DriverResult<Store> {
        Store::open_with(name, config, clock, persist::Fs::default())
    }

    /// [`Store::open`] with the file operations given (tests inject faults).
    pub(crate) fn open_with(
        name: &str,
        config: MemoryConfig,
        clock: Clock,
        fs: persist::Fs,
    ) -> DriverResult<Store> {
        let mut store = Store::new(name, config, clock);
        let Some(persist_config) = store.config.persist.clone() else {
            return Ok(store);
        };
        let saw_compressed = std::sync::atomic::AtomicBool::new(false);
        let evictions = store.gauges().evictions;
        let now = store.clock.now_nanos();
        let persist = Persist::open(name, &persist_config, fs, now, &mut |r| {
            if let Replay::Put(p) | Replay::Load(p) = &r
                && p.codec != Codec::Raw
            {
                saw_compressed.store(true, Ordering::Relaxed);
            }
            store.restore(r);
        })
        .map_err(persist_error)?;
        store.decode_values |= saw_compressed.into_inner();
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

    /// Applies one recovered state change. The store is not shared yet and logs nothing.
    fn restore(&self, r: Replay<'_>) {
        match r {
            Replay::Load(p) if self.limits.is_none() => self.load(p),
            Replay::Put(p) | Replay::Load(p) => {
                let value = Bytes::copy_from_slice(p.value);
                if self
                    .put(p.key, value, p.codec, p.modified, p.expires)
                    .is_err()
                {
                    // Only a value larger than a (since lowered) max_bytes fails: the put
                    // replaced the key's old state, and cannot be held, so the key is gone.
                    self.delete(p.key).ok();
                }
            }
            Replay::Remove(key) => {
                self.delete(key).ok();
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

    /// Inserts a snapshot's entry without looking its key up first: it is new to the store
    /// (a snapshot holds each key once and is loaded first). The index says if it was there
    /// after all (a damaged snapshot); then the insert is undone and the entry stored the
    /// usual way. Only for stores without limits, which never need to make room.
    fn load(&self, p: crate::persist::PutRef<'_>) {
        let hash = self.hash(p.key.as_bytes());
        let hash_of = |k: &[u8]| self.hash(k);
        let mut shard = self.shard(self.shard_of(hash)).write();
        let slot = Slot {
            key: KeyRef::new(p.key, p.expires),
            value: Bytes::copy_from_slice(p.value),
            modified: stamp(p.modified, p.codec),
        };
        let key = slot.key.clone();
        let Some(index) = shard.insert(hash, slot, false, hash_of) else {
            return; // A full shard (2^32 - 1 entries): the entry cannot be held.
        };
        if self.index.write().insert(key) {
            if p.expires != 0 {
                self.note_deadline(p.expires);
            }
            return;
        }
        let again = shard.remove(hash, index, hash_of);
        drop(shard);
        if let Some(slot) = again {
            let _ = self.put(p.key, slot.value, p.codec, p.modified, p.expires);
        }
    }

    /// Starts the background work of a store that is now shared: persistence's threads.
    pub(crate) fn start(self: &std::sync::Arc<Self>) {
        if let Some(p) = &self.persist {
            let weak = std::sync::Arc::downgrade(self);
            let source: std::sync::Weak<dyn persist::Source> = weak;
            p.start(source);
        }
    }

    /// The persistent store's directory, if it is one.
    pub(crate) fn persist_dir(&self) -> Option<&std::path::Path> {
        self.persist.as_ref().map(Persist::dir)
    }

    /// Writes and syncs the log and releases the directory (the last close of a persistent
    /// store); the data stays on disk.
    pub(crate) fn close_persist(&self) -> DriverResult<()> {
        match &self.persist {
            Some(p) => p.close().map_err(persist_error),
            None => Ok(()),
        }
    }

    /// Whether the persistence log has failed (tests).
    #[cfg(test)]
    pub(crate) fn persist_failed(&self) -> bool {
        self.persist.as_ref().is_some_and(Persist::failed)
    }

    /// Takes a snapshot now, on this thread; `Ok(false)` if none was taken.
    pub(crate) fn snapshot(&self) -> DriverResult<bool> {
        match &self.persist {
            Some(p) => p.snapshot_now(self).map_err(persist_error),
            None => Ok(false),
        }
    }

    /// The stored form of a value: compressed when the store compresses and it pays.
    #[inline]
    fn encode(&self, value: Bytes) -> (Bytes, Codec) {
        match &self.compressor {
            None => (value, Codec::Raw),
            Some(c) => c.encode(value),
        }
    }

    /// The value a caller sees, from a stored value read under a lock and released since.
    #[inline]
    fn decode(stored: Bytes, codec: Codec) -> DriverResult<Bytes> {
        codec::decode(stored, codec).map_err(corrupt_value)
    }

    /// PERSIST HOOK 1, for `set`, `delete` and their batches: the one branch a store
    /// without persistence takes; a persistent store whose log failed refuses the write
    /// before anything changes.
    #[inline]
    fn hook(&self) -> DriverResult<Option<&Persist>> {
        match &self.persist {
            None => Ok(None),
            Some(p) => p.writable().map(|()| Some(p)).map_err(persist_error),
        }
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

    #[inline]
    fn live_slot<'s>(&self, shard: &'s Shard, hash: u64, key: &str) -> Option<&'s Slot> {
        let slot = shard.slot(shard.find(hash, key.as_bytes())?)?;
        if slot.key.expires() != 0 && !slot.key.is_live(self.clock.now_nanos()) {
            return None;
        }
        if self.evicts() {
            slot.key.mark_visited();
        }
        Some(slot)
    }

    #[inline]
    pub(crate) fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(self.shard_of(hash)).read();
        let Some(slot) = self.live_slot(&shard, hash, key) else {
            return Ok(None);
        };
        if !self.decode_values {
            return Ok(Some(slot.value.clone()));
        }
        let read = Store::read_value(slot);
        drop(shard);
        read.and_then(Read::finish).map(Some)
    }

    /// The value of a slot in a read-locked shard. A small compressed value is decompressed
    /// under the read lock, which only makes a writer of this shard wait a moment, and saves
    /// cloning and dropping the stored buffer's handle (two atomic operations on a line
    /// nothing else touches); a large one is decompressed after the lock is released.
    fn read_value(slot: &Slot) -> DriverResult<Read> {
        match slot.codec() {
            Codec::Raw => Ok(Read::Value(slot.value.clone())),
            Codec::Lz4 if codec::logical_len(&slot.value, Codec::Lz4) <= DECODE_UNDER_LOCK => {
                let value = codec::decompress(&slot.value).map_err(corrupt_value)?;
                Ok(Read::Value(Bytes::from(value)))
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
        Some(Metadata {
            size: codec::logical_len(&slot.value, slot.codec()),
            modified: from_nanos(slot.modified()),
            expires_at: (expires != 0).then(|| from_nanos(expires)),
        })
    }

    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        let now = self.clock.now_nanos();
        let prefix = prefix.as_bytes();
        let _batches = self.batches.read();
        let index = self.index.read();
        index
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|k| k.as_bytes().starts_with(prefix))
            .filter(|k| k.is_live(now))
            .map(KeyRef::to_owned_string)
            .collect()
    }

    pub(crate) fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        let now = self.clock.now_nanos();
        let expires = expiry_for(now, ttl);
        if self.plain {
            // PERSIST HOOK 1: the one check a store without persistence (or compression)
            // makes.
            return self.put_logged(NotLogged, key, value, Codec::Raw, now, expires);
        }
        // Compression is CPU work: done before any lock is taken.
        let (value, codec) = self.encode(value);
        self.put(key, value, codec, now, expires)
    }

    /// Stores a value already in its stored form, set at `modified` with deadline
    /// `expires` (0: none).
    fn put(
        &self,
        key: &str,
        value: Bytes,
        codec: Codec,
        modified: u64,
        expires: u64,
    ) -> DriverResult<()> {
        match self.hook()? {
            None => self.put_logged(NotLogged, key, value, codec, modified, expires),
            Some(p) => {
                fits(key, &value)?;
                self.put_logged(p, key, value, codec, modified, expires)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn put_logged(
        &self,
        log: impl WriteLog,
        key: &str,
        value: Bytes,
        codec: Codec,
        modified: u64,
        expires: u64,
    ) -> DriverResult<()> {
        let hash = self.hash(key.as_bytes());
        let number = self.shard_of(hash);
        let Some(limits) = &self.limits else {
            let mut shard = self.shard(number).write();
            let (_, ticket) =
                self.write(&mut shard, hash, key, value, codec, modified, expires, log)?;
            drop(shard);
            return log.commit(ticket);
        };
        let new_charge = charge(key.len(), value.len());
        self.check_fits(key, new_charge, 1)?;
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
            self.make_room(limits, bytes, entries, number)?;
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
            let (_, ticket) =
                self.write(&mut shard, hash, key, value, codec, modified, expires, log)?;
            if let Some(old) = existing {
                limits.release(old.saturating_sub(new_charge), 0);
            }
            drop(shard);
            return log.commit(ticket);
        }
    }

    /// Stores one entry in a locked shard and hands its new state to `log`; returns the
    /// charge of the entry it replaced and the log's ticket. Then reclaims a few expired
    /// entries of the shard: after the write (and its log record), so the entry being
    /// replaced is never reclaimed under the caller's reservation (the new entry's
    /// deadline is in the future).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn write(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &str,
        value: Bytes,
        codec: Codec,
        now: u64,
        expires: u64,
        log: impl WriteLog,
    ) -> DriverResult<(Option<u64>, Option<Ticket>)> {
        let hash_of = |k: &[u8]| self.hash(k);
        let modified = stamp(now, codec);
        let written = match shard.find(hash, key.as_bytes()) {
            Some(index) => {
                let old = shard
                    .overwrite(index, value, modified, expires)
                    .ok_or_else(inconsistent)?;
                if old.expires != 0 && old.expires <= now {
                    // The old entry was already dead; replacing it reclaims it.
                    shard.expirations += 1;
                }
                (Some(old.charge), index)
            }
            None => {
                let slot = Slot {
                    key: KeyRef::new(key, expires),
                    value,
                    modified,
                };
                let key_ref = slot.key.clone();
                let index = shard
                    .insert(hash, slot, self.evicts(), hash_of)
                    .ok_or_else(|| {
                        DriverError::CapacityExceeded(
                            "a memory shard holds at most 2^32 - 1 entries".to_owned(),
                        )
                    })?;
                self.index.write().insert(key_ref);
                (None, index)
            }
        };
        if expires != 0 {
            self.note_deadline(expires);
        }
        let (replaced, index) = written;
        let ticket = log.put(shard, index)?;
        self.reclaim(shard, now);
        Ok((replaced, ticket))
    }

    /// Reclaims a few expired entries of a shard a write just changed.
    #[inline]
    fn reclaim(&self, shard: &mut Shard, now: u64) {
        if shard.next_deadline().is_some_and(|at| at <= now) {
            self.reclaim_due(shard, now);
        }
    }

    #[cold]
    fn reclaim_due(&self, shard: &mut Shard, now: u64) {
        let hash_of = |k: &[u8]| self.hash(k);
        let mut reclaimed = Vec::new();
        shard.expire(now, WRITE_RECLAIM, hash_of, &mut reclaimed);
        self.forget(&mut reclaimed, Removal::Expire);
    }

    /// Removes slots that left a shard (still locked by the caller) from the index and
    /// releases their charges. Expiries and evictions are logged here (PERSIST HOOK 2);
    /// deletes are logged by their callers, as one batch for `delete_many`.
    fn forget(&self, removed: &mut Vec<Slot>, why: Removal) {
        if removed.is_empty() {
            return;
        }
        if let Some(p) = &self.persist
            && why != Removal::Delete
        {
            for slot in removed.iter() {
                let key = slot.key.as_bytes();
                // Nobody waits for these: a failure leaves the log failed, and the next
                // write reports it.
                let _ = p.log(p.next_seq(), Record::Remove { key, why });
            }
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
        removed.clear();
    }

    fn note_deadline(&self, at: u64) {
        if self.evicts() && self.earliest_deadline.load(Ordering::Acquire) > at {
            self.earliest_deadline.fetch_min(at, Ordering::AcqRel);
        }
    }

    /// `CapacityExceeded` for what no eviction can make room for.
    fn check_fits(&self, key: &str, bytes: u64, entries: u64) -> DriverResult<()> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        if bytes > limits.max_bytes {
            let what = if entries == 1 {
                format!(
                    "the entry is charged {bytes} bytes (key {} + value {} + {} overhead)",
                    key.len(),
                    bytes.saturating_sub(key.len() as u64 + crate::shard::ENTRY_OVERHEAD),
                    crate::shard::ENTRY_OVERHEAD
                )
            } else {
                format!("the batch of {entries} entries is charged {bytes} bytes")
            };
            return Err(DriverError::CapacityExceeded(format!(
                "{what}, more than max_bytes = {}; nothing was evicted. Raise max_bytes or \
                 store less",
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

    /// Reserves space, evicting until it fits: expired entries first, then CLOCK victims,
    /// starting in the writer's own shard. Holds no lock while it waits.
    fn make_room(
        &self,
        limits: &Limits,
        bytes: u64,
        entries: u64,
        home: usize,
    ) -> DriverResult<()> {
        let mut waiting_since = None;
        while !limits.try_reserve(bytes, entries) {
            if self.evict_one(home) {
                continue;
            }
            // Everything left is reserved by writers that have not inserted yet; they will
            // insert or release in a moment.
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if since.elapsed() > MAKE_ROOM_PATIENCE {
                return Err(DriverError::CapacityExceeded(format!(
                    "could not make room for {bytes} bytes within {MAKE_ROOM_PATIENCE:?}: \
                     concurrent writers hold all of max_bytes = {} / max_entries = {}",
                    limits.max_bytes, limits.max_entries
                )));
            }
            std::thread::yield_now();
        }
        Ok(())
    }

    /// Frees one entry's worth of room, or more. `false` if the store has nothing to evict.
    fn evict_one(&self, home: usize) -> bool {
        let now = self.clock.now_nanos();
        if self.earliest_deadline.load(Ordering::Acquire) <= now && self.expire_all(now) > 0 {
            return true;
        }
        let hash_of = |k: &[u8]| self.hash(k);
        for step in 0..self.shards.len() {
            let mut shard = self.shard(home.wrapping_add(step)).write();
            if let Some(victim) = shard.evict(hash_of) {
                self.forget(&mut vec![victim], Removal::Evict);
                return true;
            }
        }
        false
    }

    /// Reclaims every entry expired at `now` in every shard, a batch per lock hold; returns
    /// how many. Refreshes the earliest-deadline hint.
    fn expire_all(&self, now: u64) -> usize {
        let hint = self.earliest_deadline.load(Ordering::Acquire);
        let hash_of = |k: &[u8]| self.hash(k);
        let mut removed = Vec::new();
        let mut total = 0;
        let mut earliest = u64::MAX;
        for shard in self.shards.iter() {
            loop {
                if shard.read().next_deadline().is_none_or(|at| at > now) {
                    break;
                }
                let mut guard = shard.write();
                guard.expire(now, SWEEP_BATCH, hash_of, &mut removed);
                total += removed.len();
                self.forget(&mut removed, Removal::Expire);
                if guard.next_deadline().is_none_or(|at| at > now) {
                    break;
                }
            }
            if let Some(at) = shard.read().next_deadline() {
                earliest = earliest.min(at);
            }
        }
        // Only raise the hint if no writer lowered it meanwhile.
        let _ = self.earliest_deadline.compare_exchange(
            hint,
            earliest,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        total
    }

    /// The background sweep: reclaims everything expired now.
    pub(crate) fn sweep(&self) {
        self.expire_all(self.clock.now_nanos());
    }

    pub(crate) fn delete(&self, key: &str) -> DriverResult<bool> {
        match self.hook()? {
            None => self.delete_logged(NotLogged, key),
            Some(p) => self.delete_logged(p, key),
        }
    }

    #[inline(always)]
    fn delete_logged(&self, log: impl WriteLog, key: &str) -> DriverResult<bool> {
        let hash = self.hash(key.as_bytes());
        let mut shard = self.shard(self.shard_of(hash)).write();
        let Some(live) = self.remove_locked(&mut shard, hash, key) else {
            return Ok(false);
        };
        let ticket = log.delete(key)?;
        drop(shard);
        log.commit(ticket)?;
        Ok(live)
    }

    /// Removes `key` from its locked shard; `Some(live)` if it was there.
    fn remove_locked(&self, shard: &mut Shard, hash: u64, key: &str) -> Option<bool> {
        let index = shard.find(hash, key.as_bytes())?;
        let slot = shard.remove(hash, index, |k| self.hash(k))?;
        let live = slot.key.expires() == 0 || slot.key.is_live(self.clock.now_nanos());
        if !live {
            shard.expirations += 1;
        }
        self.forget(&mut vec![slot], Removal::Delete);
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
    pub(crate) fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k.as_bytes())).collect();
        let mut numbers: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let guards: Vec<_> = numbers.iter().map(|&n| (n, self.shard(n).read())).collect();
        let read: Vec<Option<DriverResult<Read>>> = keys
            .iter()
            .zip(&hashes)
            .map(|(key, &hash)| {
                let number = self.shard_of(hash);
                let at = guards.binary_search_by_key(&number, |(n, _)| *n).ok()?;
                let (_, shard) = guards.get(at)?;
                self.live_slot(shard, hash, key).map(Store::read_value)
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
        let now = self.clock.now_nanos();
        let expires = expiry_for(now, ttl);
        let stored: Vec<(&str, Bytes, Codec)> = last
            .iter()
            .map(|(k, v)| {
                let (v, codec) = self.encode(v.clone());
                (*k, v, codec)
            })
            .collect();
        let persist = self.hook()?;
        if persist.is_some() {
            for (key, value, _) in &stored {
                fits(key, value)?;
            }
        }
        let hashes: Vec<u64> = stored
            .iter()
            .map(|(k, _, _)| self.hash(k.as_bytes()))
            .collect();
        let reserved = match &self.limits {
            None => None,
            Some(limits) => {
                for (key, value, _) in &stored {
                    self.check_fits(key, charge(key.len(), value.len()), 1)?;
                }
                let bytes: u64 = stored
                    .iter()
                    .map(|(k, v, _)| charge(k.len(), v.len()))
                    .sum();
                let count = stored.len() as u64;
                self.check_fits("", bytes, count)?;
                let home = hashes.first().map_or(0, |&h| self.shard_of(h));
                self.make_room(limits, bytes, count, home)?;
                Some((limits, bytes, count))
            }
        };
        let _batches = self.batches.write();
        let mut guards = self.lock_all(&hashes);
        let mut replaced_bytes = 0;
        let mut replaced_entries = 0;
        for ((key, value, codec), &hash) in stored.iter().zip(&hashes) {
            let shard = Store::locked(&mut guards, self.shard_of(hash)).ok_or_else(inconsistent)?;
            // Logged below, as one record for the whole batch.
            let (replaced, _) = self.write(
                shard,
                hash,
                key,
                value.clone(),
                *codec,
                now,
                expires,
                NotLogged,
            )?;
            if let Some(old) = replaced {
                replaced_bytes += old;
                replaced_entries += 1;
            }
        }
        // PERSIST HOOK 2: the whole batch as one record, under every shard lock.
        let ticket = match persist {
            Some(p) if !stored.is_empty() => {
                let records: Vec<(u64, Record<'_>)> = stored
                    .iter()
                    .map(|(key, value, codec)| {
                        let record = Record::Put {
                            key: key.as_bytes(),
                            value,
                            codec: *codec,
                            modified: stamp(now, Codec::Raw),
                            expires,
                        };
                        (p.next_seq(), record)
                    })
                    .collect();
                Some(p.log_batch(&records).map_err(persist_error)?)
            }
            _ => None,
        };
        drop(guards);
        if let Some((limits, _, _)) = reserved {
            limits.release(replaced_bytes, replaced_entries);
        }
        persist.map_or(Ok(()), |p| WriteLog::commit(p, ticket))
    }

    /// Removes every key while holding every involved shard; returns how many live entries
    /// were removed (a key listed twice counts once).
    pub(crate) fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        let persist = self.hook()?;
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k.as_bytes())).collect();
        let _batches = self.batches.write();
        let mut guards = self.lock_all(&hashes);
        let mut removed = 0;
        let mut gone: Vec<&str> = Vec::new();
        for (key, &hash) in keys.iter().zip(&hashes) {
            let Some(shard) = Store::locked(&mut guards, self.shard_of(hash)) else {
                continue;
            };
            if let Some(live) = self.remove_locked(shard, hash, key) {
                removed += usize::from(live);
                gone.push(key);
            }
        }
        // PERSIST HOOK 2: the keys removed, as one record, under every shard lock.
        let ticket = match persist {
            Some(p) if !gone.is_empty() => {
                let records: Vec<(u64, Record<'_>)> = gone
                    .iter()
                    .map(|key| {
                        let record = Record::Remove {
                            key: key.as_bytes(),
                            why: Removal::Delete,
                        };
                        (p.next_seq(), record)
                    })
                    .collect();
                Some(p.log_batch(&records).map_err(persist_error)?)
            }
            _ => None,
        };
        drop(guards);
        persist.map_or(Ok(()), |p| WriteLog::commit(p, ticket))?;
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
        if let Some(p) = &self.persist {
            p.gauges(self.clock.now_nanos(), &mut gauges);
        }
        gauges
    }

    /// Releases all data; called when the last contract on this store closes.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            let (bytes, entries) = (shard.charged, shard.len() as u64);
            shard.clear();
            if let Some(limits) = &self.limits {
                limits.release(bytes, entries);
            }
        }
        *self.index.write() = BTreeSet::new();
    }
}

/// A snapshot reads the store through this, shard by shard.
impl persist::Source for Store {
    fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn visit_shard(&self, shard: usize, f: &mut dyn FnMut(persist::EntryRef<'_>)) {
        let Some(shard) = self.shards.get(shard) else {
            return;
        };
        let now = self.clock.now_nanos();
        let shard = shard.read();
        let mut index = 0;
        while let Some(slot) = shard.slot(index) {
            index += 1;
            if !slot.key.is_live(now) {
                continue;
            }
            f(persist::EntryRef {
                key: &slot.key,
                value: &slot.value,
                codec: slot.codec(),
                modified: slot.modified(),
                expires: slot.key.expires(),
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
        assert!(s.get("a").unwrap().is_none());
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
    fn byte_accounting_matches_the_entries() {
        let limit = 100 * charge(4, 100);
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
            .map(|k| charge(k.len(), s.get(k).unwrap().unwrap().len()))
            .sum();
        assert_eq!(s.gauges().bytes, Some(resident));
    }
}
