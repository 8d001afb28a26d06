//! One shard: a hash table of slot numbers over a dense slot array, and an expiry queue.
//!
//! The table holds only `u32` slot numbers, so its load factor costs 5 bytes per bucket
//! instead of a whole entry; the slots are dense (a removal moves the last slot into the
//! hole), which keeps memory proportional to the live entries and gives the eviction hand
//! an array to sweep.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::key::KeyRef;

/// One entry.
pub(crate) struct Slot {
    pub(crate) key: KeyRef,
    pub(crate) value: Bytes,
    /// Wall-clock time of the last set, ns since the Unix epoch.
    pub(crate) modified: u64,
}

/// A pending expiry. Entries are never removed from the queue eagerly: an overwrite or
/// delete leaves a stale deadline behind, recognised when it is popped because the slot's
/// key is gone or carries another expiry.
struct Deadline {
    at: u64,
    key: KeyRef,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Deadline {}
impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

#[derive(Default)]
pub(crate) struct Shard {
    table: HashTable<u32>,
    slots: Vec<Slot>,
    deadlines: BinaryHeap<Reverse<Deadline>>,
    /// Slots whose key has an expiry: bounds how many deadlines can be live.
    with_expiry: usize,
    /// Expired entries reclaimed from this shard.
    pub(crate) expirations: u64,
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| {
                slots
                    .get(i as usize)
                    .is_some_and(|s| s.key.as_bytes() == key)
            })
            .map(|&i| i as usize)
    }

    #[inline]
    pub(crate) fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)
    }

    pub(crate) fn slot_mut(&mut self, index: usize) -> Option<&mut Slot> {
        self.slots.get_mut(index)
    }

    /// Appends a slot for a key known to be absent. `None` if the shard is full (more than
    /// `u32::MAX` slots), leaving the shard unchanged.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        slot: Slot,
        hash_of: impl Fn(&[u8]) -> u64,
    ) -> Option<usize> {
        let index = self.slots.len();
        let number = u32::try_from(index).ok()?;
        let expires = slot.key.expires();
        if expires != 0 {
            self.push_deadline(expires, &slot.key);
        }
        self.slots.push(slot);
        let slots = &self.slots;
        self.table.insert_unique(hash, number, |&i| {
            slots
                .get(i as usize)
                .map_or(0, |s| hash_of(s.key.as_bytes()))
        });
        Some(index)
    }

    /// Records that the slot at `index` now expires at `expires` (0 = never), where it
    /// expired at `old` before.
    pub(crate) fn expiry_changed(&mut self, index: usize, old: u64, expires: u64) {
        match (old != 0, expires != 0) {
            (false, true) => self.with_expiry += 1,
            (true, false) => self.with_expiry = self.with_expiry.saturating_sub(1),
            _ => {}
        }
        if expires != 0 {
            if let Some(key) = self.slots.get(index).map(|s| s.key.clone()) {
                self.deadlines.push(Reverse(Deadline { at: expires, key }));
                self.compact_deadlines();
            }
        }
    }

    fn push_deadline(&mut self, at: u64, key: &KeyRef) {
        self.with_expiry += 1;
        self.deadlines.push(Reverse(Deadline {
            at,
            key: key.clone(),
        }));
        self.compact_deadlines();
    }

    /// Stale deadlines pile up when entries with a TTL are overwritten or deleted; rebuild the
    /// queue from the slots once they outnumber the live ones, so the queue stays O(entries).
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() <= 2 * self.with_expiry + 64 {
            return;
        }
        self.deadlines = self
            .slots
            .iter()
            .filter_map(|s| {
                let at = s.key.expires();
                (at != 0).then(|| {
                    Reverse(Deadline {
                        at,
                        key: s.key.clone(),
                    })
                })
            })
            .collect();
    }

    /// Removes the slot at `index` (which must hold a key hashing to `hash`) and returns it.
    pub(crate) fn remove(
        &mut self,
        hash: u64,
        index: usize,
        hash_of: impl Fn(&[u8]) -> u64,
    ) -> Option<Slot> {
        let number = u32::try_from(index).ok()?;
        if index >= self.slots.len() {
            return None;
        }
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == number) {
            entry.remove();
        }
        let slot = self.slots.swap_remove(index);
        if slot.key.expires() != 0 {
            self.with_expiry = self.with_expiry.saturating_sub(1);
        }
        // The last slot moved into the hole: point its table entry at the new place.
        let moved_from = self.slots.len();
        if index < moved_from {
            if let Some(moved) = self.slots.get(index) {
                let moved_hash = hash_of(moved.key.as_bytes());
                let from = u32::try_from(moved_from).unwrap_or(u32::MAX);
                if let Some(entry) = self.table.find_mut(moved_hash, |&i| i == from) {
                    *entry = number;
                }
            }
        }
        Some(slot)
    }

    /// The earliest pending deadline, possibly stale.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|Reverse(d)| d.at)
    }

    /// Pops deadlines due at `now`, removing their entries if they are still expired, up to
    /// `budget` removals. Returns the removed slots (for the index).
    pub(crate) fn expire(
        &mut self,
        now: u64,
        budget: usize,
        hash_of: impl Fn(&[u8]) -> u64,
        removed: &mut Vec<Slot>,
    ) {
        let start = removed.len();
        while removed.len() - start < budget {
            let due = matches!(self.deadlines.peek(), Some(Reverse(d)) if d.at <= now);
            if !due {
                break;
            }
            let Some(Reverse(deadline)) = self.deadlines.pop() else {
                break;
            };
            let hash = hash_of(deadline.key.as_bytes());
            let Some(index) = self.find(hash, deadline.key.as_bytes()) else {
                continue;
            };
            let current = self
                .slots
                .get(index)
                .is_some_and(|s| s.key.same(&deadline.key) && s.key.expires() == deadline.at);
            if current {
                if let Some(slot) = self.remove(hash, index, &hash_of) {
                    self.expirations += 1;
                    removed.push(slot);
                }
            }
        }
    }

    /// Drops everything, returning the memory.
    pub(crate) fn clear(&mut self) {
        *self = Shard::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hasher() -> impl Fn(&[u8]) -> u64 + Copy {
        let state: &'static _ = Box::leak(Box::new(hashbrown::DefaultHashBuilder::default()));
        move |k: &[u8]| state.hash_one(k)
    }

    fn slot(key: &str, expires: u64) -> Slot {
        Slot {
            key: KeyRef::new(key, expires),
            value: Bytes::from(key.to_owned()),
            modified: 0,
        }
    }

    #[test]
    fn removal_keeps_every_other_key_findable() {
        let h = hasher();
        let mut shard = Shard::default();
        let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
        for k in &keys {
            shard.insert(h(k.as_bytes()), slot(k, 0), h).unwrap();
        }
        for k in keys.iter().step_by(3) {
            let hash = h(k.as_bytes());
            let i = shard.find(hash, k.as_bytes()).unwrap();
            assert_eq!(
                shard.remove(hash, i, h).unwrap().key.as_bytes(),
                k.as_bytes()
            );
        }
        for (n, k) in keys.iter().enumerate() {
            let found = shard.find(h(k.as_bytes()), k.as_bytes());
            assert_eq!(found.is_some(), n % 3 != 0, "{k}");
            if let Some(i) = found {
                assert_eq!(shard.slot(i).unwrap().value, k.as_bytes());
            }
        }
        assert_eq!(shard.len(), 500 - 167);
    }

    #[test]
    fn expire_removes_due_entries_and_skips_stale_deadlines() {
        let h = hasher();
        let mut shard = Shard::default();
        for (k, at) in [("a", 10), ("b", 20), ("c", 30), ("d", 0)] {
            shard.insert(h(k.as_bytes()), slot(k, at), h).unwrap();
        }
        // Overwrite "a" with a later expiry: its first deadline becomes stale.
        let i = shard.find(h(b"a"), b"a").unwrap();
        shard.slot(i).unwrap().key.set_expires(40);
        shard.expiry_changed(i, 10, 40);

        let mut removed = Vec::new();
        shard.expire(25, usize::MAX, h, &mut removed);
        let names: Vec<_> = removed.iter().map(|s| s.key.to_string_lossy()).collect();
        assert_eq!(names, ["b"]);
        assert!(shard.find(h(b"a"), b"a").is_some());
        assert_eq!(shard.next_deadline(), Some(30));

        removed.clear();
        shard.expire(u64::MAX - 1, usize::MAX, h, &mut removed);
        assert_eq!(removed.len(), 2);
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.expirations, 3);
    }

    #[test]
    fn the_deadline_queue_stays_proportional_to_entries() {
        let h = hasher();
        let mut shard = Shard::default();
        shard.insert(h(b"k"), slot("k", 1), h).unwrap();
        let i = shard.find(h(b"k"), b"k").unwrap();
        for at in 2..10_000 {
            shard.slot(i).unwrap().key.set_expires(at);
            shard.expiry_changed(i, at - 1, at);
        }
        assert!(shard.deadlines.len() <= 2 * shard.with_expiry + 65);
    }
}
