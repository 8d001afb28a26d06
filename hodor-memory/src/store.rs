//! The store behind one memory contract name: sharded slots plus one ordered key index.
//!
//! Point operations hash the key to one of N shards, each behind its own `RwLock`; a `get`
//! takes one shard's read lock and writes nothing shared. The ordered index (a `BTreeSet`
//! of the same key allocations) is touched only when a key is created or removed, and lets
//! `list(prefix)` seek to the prefix and walk only the matching keys: O(log n + k).

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::time::Duration;

use bytes::Bytes;
use hashbrown::DefaultHashBuilder;
use hodor_core::Metadata;
use hodor_core::clock::{Clock, from_nanos};
use hodor_core::driver::{DriverError, DriverResult, Gauges};
use parking_lot::RwLock;

use crate::config::MemoryConfig;
use crate::key::{KeyRef, MAX_EXPIRY};
use crate::shard::{Shard, Slot};

/// How many expired entries one lock hold may reclaim, so a sweep never stalls readers for
/// long.
const SWEEP_BATCH: usize = 1024;
/// How many expired entries a write reclaims from its own shard on the way.
const WRITE_RECLAIM: usize = 4;

pub(crate) struct Store {
    pub(crate) name: String,
    pub(crate) config: MemoryConfig,
    pub(crate) clock: Clock,
    hasher: DefaultHashBuilder,
    shards: Box<[RwLock<Shard>]>,
    index: RwLock<BTreeSet<KeyRef>>,
}

fn shard_count() -> usize {
    let cpus = std::thread::available_parallelism().map_or(4, usize::from);
    (cpus * 8).next_power_of_two().clamp(16, 1024)
}

impl Store {
    pub(crate) fn new(name: &str, config: MemoryConfig, clock: Clock) -> Store {
        Store {
            name: name.to_owned(),
            config,
            clock,
            hasher: DefaultHashBuilder::default(),
            shards: (0..shard_count())
                .map(|_| RwLock::new(Shard::default()))
                .collect(),
            index: RwLock::new(BTreeSet::new()),
        }
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard for a hash. hashbrown uses the low bits (bucket) and the top seven (tag)
    /// inside a table, so the shard comes from bits in between.
    #[inline]
    #[allow(clippy::indexing_slicing)] // the shard count is a power of two; the mask keeps i in range
    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        let i = (hash >> 32) as usize & (self.shards.len() - 1);
        &self.shards[i]
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

    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(hash).read();
        let slot = shard.slot(shard.find(hash, key.as_bytes())?)?;
        if slot.key.expires() != 0 && !slot.key.is_live(self.clock.now_nanos()) {
            return None;
        }
        Some(slot.value.clone())
    }

    pub(crate) fn exists(&self, key: &str) -> bool {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(hash).read();
        let Some(slot) = shard.find(hash, key.as_bytes()).and_then(|i| shard.slot(i)) else {
            return false;
        };
        slot.key.expires() == 0 || slot.key.is_live(self.clock.now_nanos())
    }

    pub(crate) fn stat(&self, key: &str) -> Option<Metadata> {
        let hash = self.hash(key.as_bytes());
        let shard = self.shard(hash).read();
        let slot = shard.slot(shard.find(hash, key.as_bytes())?)?;
        let expires = slot.key.expires();
        if expires != 0 && !slot.key.is_live(self.clock.now_nanos()) {
            return None;
        }
        Some(Metadata {
            size: slot.value.len() as u64,
            modified: from_nanos(slot.modified),
            expires_at: (expires != 0).then(|| from_nanos(expires)),
        })
    }

    pub(crate) fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        let now = self.clock.now_nanos();
        let expires = Store::expiry_for(now, ttl);
        let hash = self.hash(key.as_bytes());
        let hash_of = |k: &[u8]| self.hash(k);
        let mut shard = self.shard(hash).write();
        let mut reclaimed = Vec::new();
        if shard.next_deadline().is_some_and(|at| at <= now) {
            shard.expire(now, WRITE_RECLAIM, hash_of, &mut reclaimed);
        }
        if let Some(index) = shard.find(hash, key.as_bytes()) {
            let Some(slot) = shard.slot_mut(index) else {
                return Err(DriverError::backend(
                    "memory store slot table is inconsistent",
                ));
            };
            let old = slot.key.expires();
            let was_expired = old != 0 && old <= now;
            slot.value = value;
            slot.modified = now;
            slot.key.set_expires(expires);
            shard.expiry_changed(index, old, expires);
            if was_expired {
                // The old entry was dead; replacing it reclaims it.
                shard.expirations += 1;
            }
        } else {
            let slot = Slot {
                key: KeyRef::new(key, expires),
                value,
                modified: now,
            };
            let key_ref = slot.key.clone();
            if shard.insert(hash, slot, hash_of).is_none() {
                return Err(DriverError::CapacityExceeded(
                    "a memory shard holds at most 2^32 entries".to_owned(),
                ));
            }
            let mut index = self.index.write();
            index.insert(key_ref);
            for slot in &reclaimed {
                index.remove(slot.key.as_bytes());
            }
            return Ok(());
        }
        if !reclaimed.is_empty() {
            let mut index = self.index.write();
            for slot in &reclaimed {
                index.remove(slot.key.as_bytes());
            }
        }
        Ok(())
    }

    pub(crate) fn delete(&self, key: &str) -> bool {
        let hash = self.hash(key.as_bytes());
        let mut shard = self.shard(hash).write();
        let Some(index) = shard.find(hash, key.as_bytes()) else {
            return false;
        };
        let Some(slot) = shard.remove(hash, index, |k| self.hash(k)) else {
            return false;
        };
        let live = slot.key.expires() == 0 || slot.key.is_live(self.clock.now_nanos());
        if !live {
            shard.expirations += 1;
        }
        self.index.write().remove(slot.key.as_bytes());
        drop(shard);
        live
    }

    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        let now = self.clock.now_nanos();
        let prefix = prefix.as_bytes();
        let index = self.index.read();
        index
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|k| k.as_bytes().starts_with(prefix))
            .filter(|k| k.is_live(now))
            .map(KeyRef::to_string_lossy)
            .collect()
    }

    /// Reclaims every entry expired at the clock's current time, a batch per lock hold.
    pub(crate) fn sweep(&self) {
        let now = self.clock.now_nanos();
        let hash_of = |k: &[u8]| self.hash(k);
        let mut removed = Vec::new();
        for shard in self.shards.iter() {
            loop {
                if shard.read().next_deadline().is_none_or(|at| at > now) {
                    break;
                }
                let mut guard = shard.write();
                guard.expire(now, SWEEP_BATCH, hash_of, &mut removed);
                let more = guard.next_deadline().is_some_and(|at| at <= now);
                if !removed.is_empty() {
                    let mut index = self.index.write();
                    for slot in removed.drain(..) {
                        index.remove(slot.key.as_bytes());
                    }
                }
                drop(guard);
                if !more {
                    break;
                }
            }
        }
    }

    pub(crate) fn gauges(&self) -> Gauges {
        let mut entries = 0u64;
        let mut expirations = 0u64;
        for shard in self.shards.iter() {
            let shard = shard.read();
            entries += shard.len() as u64;
            expirations += shard.expirations;
        }
        let mut gauges = Gauges::default();
        gauges.entries = Some(entries);
        gauges.expirations = Some(expirations);
        gauges.evictions = Some(0);
        gauges
    }

    /// Releases all data; called when the last contract on this store closes.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            shard.write().clear();
        }
        *self.index.write() = BTreeSet::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hodor_core::clock::ManualClock;

    fn store() -> (Store, ManualClock) {
        let clock = ManualClock::new();
        (
            Store::new("t", MemoryConfig::default(), clock.clone().into()),
            clock,
        )
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
        // Each write reclaims up to a few expired entries from its shard, without a sweep.
        let resident = s.gauges().entries.unwrap();
        assert!(resident < 3000, "{resident} entries resident");
    }

    #[test]
    fn clear_releases_everything() {
        let (s, _) = store();
        s.set("a", Bytes::from_static(b"1"), Some(Duration::from_secs(1)))
            .unwrap();
        s.clear();
        assert_eq!(s.gauges().entries, Some(0));
        assert!(s.list("").is_empty());
        assert!(s.get("a").is_none());
    }
}
