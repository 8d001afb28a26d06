//! One shard: a hash table of slot numbers over a dense slot array, an expiry queue, and the
//! eviction hand.
//!
//! The table holds only `u32` slot numbers, so its load factor costs 5 bytes per bucket
//! instead of a whole entry; the slots are dense (a removal moves the last slot into the
//! hole), which keeps memory proportional to the live entries and gives the eviction hand an
//! array to sweep.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::codec::Codec;
use crate::key::KeyRef;

/// Bytes an entry is charged beyond its key and value. Measured with a counting allocator
/// over 10^4 to 3 x 10^6 entries with 21-byte keys and 64-byte values (x86_64): the slot
/// (48), the key allocation's 16-byte header, the ordered index's share (~15), the hash
/// table bucket (~7-10) and slot-array growth slack (~3-5) make 90 to 94 bytes; a value
/// built from a `Vec` or `String` gains `Bytes`' 24-byte shared header the first time it is
/// read. An entry with a TTL also holds a deadline (~17 bytes) that is not charged.
pub(crate) const ENTRY_OVERHEAD: u64 = 120;

/// What an entry is charged against `max_bytes`.
#[inline]
pub(crate) fn charge(key_len: usize, value_len: usize) -> u64 {
    (key_len as u64)
        .saturating_add(value_len as u64)
        .saturating_add(ENTRY_OVERHEAD)
}

/// Key equality for the probe. Keys are usually 8 to 32 bytes, where a call into `memcmp`
/// costs more than the comparison: compare overlapping 8-byte words inline instead.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    // Reads eight bytes at `at` (callers keep `at + 8 <= len`); the fallback never runs.
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    match len {
        8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        17..=32 => {
            ((word(a, 0) ^ word(b, 0))
                | (word(a, 8) ^ word(b, 8))
                | (word(a, len - 16) ^ word(b, len - 16))
                | (word(a, len - 8) ^ word(b, len - 8)))
                == 0
        }
        _ => a == b,
    }
}

/// One entry.
pub(crate) struct Slot {
    pub(crate) key: KeyRef,
    /// The value as stored: compressed when [`Slot::codec`] says so.
    pub(crate) value: Bytes,
    /// Wall-clock time of the last set, ns since the Unix epoch, with [`COMPRESSED`] set
    /// when the value is stored compressed (see [`stamp`]). The tag lives here rather than
    /// in a field of its own because a slot is 48 bytes and a flag byte would pad it to 56
    /// for every entry of every store.
    pub(crate) modified: u64,
}

/// The bit of [`Slot::modified`] that tags a compressed value. Times stay below it until
/// the year 2262 (like deadlines, see `key::MAX_EXPIRY`).
pub(crate) const COMPRESSED: u64 = 1 << 63;

/// The `modified` word for a value stored as `codec`, set at `at` (ns since the epoch).
#[inline]
pub(crate) fn stamp(at: u64, codec: Codec) -> u64 {
    let at = at.min(COMPRESSED - 1);
    match codec {
        Codec::Raw => at,
        Codec::Lz4 => at | COMPRESSED,
    }
}

impl Slot {
    pub(crate) fn charge(&self) -> u64 {
        charge(self.key.as_bytes().len(), self.value.len())
    }

    /// Wall-clock time of the last set, ns since the Unix epoch.
    #[inline]
    pub(crate) fn modified(&self) -> u64 {
        self.modified & !COMPRESSED
    }

    /// How the value is stored.
    #[inline]
    pub(crate) fn codec(&self) -> Codec {
        if self.modified & COMPRESSED == 0 {
            Codec::Raw
        } else {
            Codec::Lz4
        }
    }
}

/// A pending expiry. Deadlines are never removed from the queue eagerly: an overwrite or
/// delete leaves a stale one behind, recognised when popped because the slot's key is gone
/// or carries another expiry.
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
    /// The CLOCK hand: the next slot the eviction looks at.
    hand: usize,
    /// Sum of the slots' charges.
    pub(crate) charged: u64,
    /// Expired entries reclaimed from this shard.
    pub(crate) expirations: u64,
    /// Live entries evicted from this shard.
    pub(crate) evictions: u64,
}

/// What an overwrite replaced.
pub(crate) struct Replaced {
    pub(crate) charge: u64,
    pub(crate) expires: u64,
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Makes room for `more` entries at once (recovery knows how many are coming), so the
    /// table is not rehashed again and again as it fills.
    pub(crate) fn reserve(&mut self, more: usize, hash_of: impl Fn(&[u8]) -> u64) {
        let slots = &self.slots;
        self.table.reserve(more, |&i| {
            slots
                .get(i as usize)
                .map_or(0, |s| hash_of(s.key.as_bytes()))
        });
        self.slots.reserve_exact(more);
    }

    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| {
                slots
                    .get(i as usize)
                    .is_some_and(|s| same_bytes(s.key.as_bytes(), key))
            })
            .map(|&i| i as usize)
    }

    #[inline]
    pub(crate) fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)
    }

    /// Replaces the value and expiry of the slot at `index`.
    pub(crate) fn overwrite(
        &mut self,
        index: usize,
        value: Bytes,
        modified: u64,
        expires: u64,
    ) -> Option<Replaced> {
        let slot = self.slots.get_mut(index)?;
        let old = Replaced {
            charge: slot.charge(),
            expires: slot.key.expires(),
        };
        slot.value = value;
        slot.modified = modified;
        slot.key.set_expires(expires);
        let new_charge = slot.charge();
        let key = slot.key.clone();
        self.charged = self.charged.saturating_sub(old.charge) + new_charge;
        match (old.expires != 0, expires != 0) {
            (false, true) => self.with_expiry += 1,
            (true, false) => self.with_expiry = self.with_expiry.saturating_sub(1),
            _ => {}
        }
        if expires != 0 {
            self.deadlines.push(Reverse(Deadline { at: expires, key }));
            self.compact_deadlines();
        }
        Some(old)
    }

    /// Adds a slot for a key known to be absent. With `at_hand` (eviction is on) the new
    /// entry takes the hand's place and the hand moves past it, so a new entry gets a full
    /// revolution before it is considered, as in classic CLOCK. `None` if the shard is full
    /// (`u32::MAX` slots), leaving it unchanged.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        slot: Slot,
        at_hand: bool,
        hash_of: impl Fn(&[u8]) -> u64,
    ) -> Option<usize> {
        let tail = self.slots.len();
        u32::try_from(tail).ok().filter(|&t| t < u32::MAX)?;
        let expires = slot.key.expires();
        if expires != 0 {
            self.with_expiry += 1;
            self.deadlines.push(Reverse(Deadline {
                at: expires,
                key: slot.key.clone(),
            }));
            self.compact_deadlines();
        }
        self.charged += slot.charge();
        if self.slots.len() == self.slots.capacity() {
            // Grow by a quarter rather than doubling: slots are most of an entry's
            // overhead, and doubling leaves up to half of them empty.
            let more = (self.slots.len() / 4).max(16);
            self.slots.reserve_exact(more);
        }
        self.slots.push(slot);
        let mut position = tail;
        if at_hand {
            if self.hand < tail {
                position = self.hand;
                self.slots.swap(position, tail);
                self.renumber(position, tail, &hash_of);
            }
            self.hand = position + 1;
        }
        let slots = &self.slots;
        self.table.insert_unique(hash, position as u32, |&i| {
            slots
                .get(i as usize)
                .map_or(0, |s| hash_of(s.key.as_bytes()))
        });
        Some(position)
    }

    /// The slot now at `to` used to be at `from`: point its table entry at `to`.
    fn renumber(&mut self, from: usize, to: usize, hash_of: &impl Fn(&[u8]) -> u64) {
        let Some(moved) = self.slots.get(to) else {
            return;
        };
        let hash = hash_of(moved.key.as_bytes());
        if let Some(entry) = self.table.find_mut(hash, |&i| i as usize == from) {
            *entry = to as u32;
        }
    }

    /// Removes the slot at `index` (whose key hashes to `hash`) and returns it.
    pub(crate) fn remove(
        &mut self,
        hash: u64,
        index: usize,
        hash_of: impl Fn(&[u8]) -> u64,
    ) -> Option<Slot> {
        if index >= self.slots.len() {
            return None;
        }
        if let Ok(entry) = self.table.find_entry(hash, |&i| i as usize == index) {
            entry.remove();
        }
        let slot = self.slots.swap_remove(index);
        if slot.key.expires() != 0 {
            self.with_expiry = self.with_expiry.saturating_sub(1);
        }
        self.charged = self.charged.saturating_sub(slot.charge());
        // The last slot moved into the hole.
        let moved_from = self.slots.len();
        if index < moved_from {
            self.renumber(moved_from, index, &hash_of);
        }
        Some(slot)
    }

    /// CLOCK: removes the first entry at or after the hand that was not read since the hand
    /// last passed it, clearing the read marks it passes. `None` only if the shard is empty.
    pub(crate) fn evict(&mut self, hash_of: impl Fn(&[u8]) -> u64) -> Option<Slot> {
        // Two revolutions at most: the first may only clear marks.
        for _ in 0..=2 * self.slots.len() {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let slot = self.slots.get(self.hand)?;
            if slot.key.take_visited() {
                self.hand += 1;
                continue;
            }
            let hash = hash_of(slot.key.as_bytes());
            // The last slot moves into the hand's place and is looked at next.
            let evicted = self.remove(hash, self.hand, &hash_of)?;
            self.evictions += 1;
            return Some(evicted);
        }
        None
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

    /// The earliest pending deadline, possibly stale.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|Reverse(d)| d.at)
    }

    /// Pops deadlines due at `now`, removing their entries if they are still expired, up to
    /// `budget` removals, appending the removed slots to `removed`.
    pub(crate) fn expire(
        &mut self,
        now: u64,
        budget: usize,
        hash_of: impl Fn(&[u8]) -> u64,
        removed: &mut Vec<Slot>,
    ) {
        let mut left = budget;
        while left > 0 {
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
            if current && let Some(slot) = self.remove(hash, index, &hash_of) {
                self.expirations += 1;
                removed.push(slot);
                left -= 1;
            }
        }
    }

    /// Drops every entry, returning the memory; the counters stay.
    pub(crate) fn clear(&mut self) {
        let (expirations, evictions) = (self.expirations, self.evictions);
        *self = Shard {
            expirations,
            evictions,
            ..Shard::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// One hasher for the whole test binary: every call must hash alike.
    fn hasher() -> impl Fn(&[u8]) -> u64 + Copy {
        static STATE: std::sync::OnceLock<hashbrown::DefaultHashBuilder> =
            std::sync::OnceLock::new();
        let state = STATE.get_or_init(Default::default);
        move |k: &[u8]| state.hash_one(k)
    }

    fn slot(key: &str, expires: u64) -> Slot {
        Slot {
            key: KeyRef::new(key, expires),
            value: Bytes::from(key.to_owned()),
            modified: 0,
        }
    }

    fn insert(shard: &mut Shard, key: &str, expires: u64, at_hand: bool) {
        let h = hasher();
        shard
            .insert(h(key.as_bytes()), slot(key, expires), at_hand, h)
            .unwrap();
    }

    fn assert_consistent(shard: &Shard) {
        let h = hasher();
        for (i, s) in shard.slots.iter().enumerate() {
            assert_eq!(shard.find(h(s.key.as_bytes()), s.key.as_bytes()), Some(i));
        }
        assert_eq!(shard.table.len(), shard.slots.len());
        let charged: u64 = shard.slots.iter().map(Slot::charge).sum();
        assert_eq!(shard.charged, charged);
    }

    #[test]
    fn same_bytes_agrees_with_slice_equality() {
        for len in 0..=70 {
            let a: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x40;
                assert!(!same_bytes(&a, &b), "len {len} differ at {at}");
            }
            assert!(!same_bytes(&a, &[a.as_slice(), b"x"].concat()));
        }
    }

    #[test]
    fn removal_keeps_every_other_key_findable() {
        let h = hasher();
        let mut shard = Shard::default();
        let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
        for k in &keys {
            insert(&mut shard, k, 0, false);
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
        }
        assert_eq!(shard.len(), 500 - 167);
        assert_consistent(&shard);
    }

    #[test]
    fn inserting_at_the_hand_keeps_the_table_consistent() {
        let mut shard = Shard::default();
        for i in 0..100 {
            insert(&mut shard, &format!("k{i}"), 0, true);
            if i % 7 == 0 {
                shard.evict(hasher()).unwrap();
            }
            assert_consistent(&shard);
        }
    }

    #[test]
    fn clock_evicts_unread_entries_before_read_ones() {
        let mut shard = Shard::default();
        for i in 0..10 {
            insert(&mut shard, &format!("k{i}"), 0, true);
        }
        let h = hasher();
        for k in ["k2", "k5"] {
            let i = shard.find(h(k.as_bytes()), k.as_bytes()).unwrap();
            shard.slots[i].key.mark_visited();
        }
        let mut evicted = Vec::new();
        for _ in 0..8 {
            evicted.push(shard.evict(h).unwrap().key.to_owned_string());
        }
        evicted.sort();
        assert_eq!(evicted, ["k0", "k1", "k3", "k4", "k6", "k7", "k8", "k9"]);
        assert_eq!(shard.evictions, 8);
        // Their marks were cleared on the way: now they go too.
        assert!(shard.evict(h).is_some());
        assert!(shard.evict(h).is_some());
        assert!(shard.evict(h).is_none());
    }

    #[test]
    fn a_new_entry_gets_a_full_revolution() {
        let mut shard = Shard::default();
        for i in 0..4 {
            insert(&mut shard, &format!("old{i}"), 0, true);
        }
        let h = hasher();
        // Evict one (old0), insert one: the new entry must outlive the other old ones.
        assert_eq!(shard.evict(h).unwrap().key.to_owned_string(), "old0");
        insert(&mut shard, "new", 0, true);
        let mut order = Vec::new();
        while let Some(s) = shard.evict(h) {
            order.push(s.key.to_owned_string());
        }
        assert_eq!(order.last().map(String::as_str), Some("new"), "{order:?}");
    }

    #[test]
    fn expire_removes_due_entries_and_skips_stale_deadlines() {
        let h = hasher();
        let mut shard = Shard::default();
        for (k, at) in [("a", 10), ("b", 20), ("c", 30), ("d", 0)] {
            insert(&mut shard, k, at, false);
        }
        // Overwrite "a" with a later expiry: its first deadline becomes stale.
        let i = shard.find(h(b"a"), b"a").unwrap();
        shard.overwrite(i, Bytes::new(), 1, 40).unwrap();

        let mut removed = Vec::new();
        shard.expire(25, usize::MAX, h, &mut removed);
        let names: Vec<_> = removed.iter().map(|s| s.key.to_owned_string()).collect();
        assert_eq!(names, ["b"]);
        assert!(shard.find(h(b"a"), b"a").is_some());
        assert_eq!(shard.next_deadline(), Some(30));

        removed.clear();
        shard.expire(u64::MAX - 1, usize::MAX, h, &mut removed);
        assert_eq!(removed.len(), 2);
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.expirations, 3);
        assert_consistent(&shard);
    }

    #[test]
    fn the_deadline_queue_stays_proportional_to_entries() {
        let h = hasher();
        let mut shard = Shard::default();
        insert(&mut shard, "k", 1, false);
        let i = shard.find(h(b"k"), b"k").unwrap();
        for at in 2..10_000 {
            shard.overwrite(i, Bytes::new(), at, at).unwrap();
        }
        assert!(shard.deadlines.len() <= 2 * shard.with_expiry + 65);
    }

    #[test]
    fn the_codec_tag_and_the_time_share_one_word_without_mixing() {
        let mut s = slot("k", 0);
        for (at, codec) in [(5, Codec::Lz4), (7, Codec::Raw), (u64::MAX, Codec::Lz4)] {
            s.modified = stamp(at, codec);
            assert_eq!(s.codec(), codec);
            assert_eq!(s.modified(), at.min(COMPRESSED - 1));
        }
    }

    #[test]
    fn charges_follow_inserts_overwrites_and_removals() {
        let h = hasher();
        let mut shard = Shard::default();
        insert(&mut shard, "abc", 0, false);
        assert_eq!(shard.charged, charge(3, 3));
        let i = shard.find(h(b"abc"), b"abc").unwrap();
        let old = shard
            .overwrite(i, Bytes::from_static(b"0123456789"), 1, 0)
            .unwrap();
        assert_eq!(old.charge, charge(3, 3));
        assert_eq!(shard.charged, charge(3, 10));
        shard.remove(h(b"abc"), i, h).unwrap();
        assert_eq!(shard.charged, 0);
    }
}
