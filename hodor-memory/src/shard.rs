//! One shard: a hash table of slot numbers over a slot array, an expiry queue, and the
//! shard's CLOCK hand.
//!
//! The table holds only `u32` slot numbers, so its load factor costs 5 bytes per bucket
//! instead of a whole entry. A removal leaves a hole where the slot was, so no entry ever
//! moves and the hand sees the entries in one fixed order, as CLOCK's frames are; the next
//! insert fills the most recent hole (after an eviction, the one just behind the hand, as in
//! CLOCK), and the array is compacted, keeping the order, once holes pass a quarter of it,
//! so memory stays proportional to the live entries.

use bytes::Bytes;
use hashbrown::HashTable;

use crate::codec::Codec;
use crate::deadlines::Deadlines;
use crate::index::View;
use crate::key::KeyRef;

/// Bytes an entry is charged beyond its key and value: what it costs the store. The slot
/// (48 bytes), the key allocation's 16-byte header, the ordered index's share of a B-tree
/// node, the hash table bucket, and the slack of growing arrays and of holes not yet
/// reused (see `tidy`); plus the 24-byte shared header `Bytes` allocates for a value built
/// from a `Vec` or `String` the first time it is cloned (read). `tests/heap.rs` checks the
/// total against a counting allocator under churn.
pub(crate) const ENTRY_OVERHEAD: u64 = 120;

/// What an entry with a TTL is charged on top of `ENTRY_OVERHEAD`: its 6-byte deadline
/// record (see `deadlines`), with the stale records `compact_deadlines` allows (a quarter)
/// and the queue's spare capacity (up to a half before it is given back), rounded up; the
/// 12-byte exact records only hold entries due within the current unit, a small share.
pub(crate) const DEADLINE_OVERHEAD: u64 = 16;

/// What an entry is charged against `max_bytes`.
#[inline]
pub(crate) fn charge(key_len: usize, value_len: usize, with_ttl: bool) -> u64 {
    (key_len as u64)
        .saturating_add(value_len as u64)
        .saturating_add(ENTRY_OVERHEAD)
        .saturating_add(if with_ttl { DEADLINE_OVERHEAD } else { 0 })
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
    /// Three things in one word, because a slot is 48 bytes and a field more would pad it
    /// to 56 for every entry of every store. The low 62 bits: the time of the last set on
    /// the store's timeline (`stat` turns it into wall-clock time; the store's clock stops
    /// below `MAX_TIME`). Bit 62 ([`LZ4`]): the value is stored compressed. The top bit:
    /// the parity of the CLOCK round in which the hand last dealt with the entry, or in
    /// which it was inserted (see `Shard::clock_step`).
    stamp: u64,
}

/// The round bit of `Slot::stamp`.
const ROUND: u64 = 1 << 63;
/// The codec bit of `Slot::stamp`: the stored value is `Codec::Lz4`.
const LZ4: u64 = 1 << 62;
/// The latest time a slot can carry; the store's clock stops at or before it.
pub(crate) const MAX_TIME: u64 = LZ4 - 1;

/// The codec bit for `codec`.
#[inline]
fn codec_bit(codec: Codec) -> u64 {
    match codec {
        Codec::Raw => 0,
        Codec::Lz4 => LZ4,
    }
}

impl Slot {
    pub(crate) fn new(key: KeyRef, value: Bytes, modified: u64, codec: Codec) -> Slot {
        Slot {
            key,
            value,
            stamp: modified.min(MAX_TIME) | codec_bit(codec),
        }
    }

    pub(crate) fn charge(&self) -> u64 {
        charge(
            self.key.as_bytes().len(),
            self.value.len(),
            self.key.expires() != 0,
        )
    }

    /// The time of the last set, on the store's timeline.
    #[inline]
    pub(crate) fn modified(&self) -> u64 {
        self.stamp & MAX_TIME
    }

    /// How the value is stored.
    #[inline]
    pub(crate) fn codec(&self) -> Codec {
        if self.stamp & LZ4 == 0 {
            Codec::Raw
        } else {
            Codec::Lz4
        }
    }

    /// Records a set at `at` of a value stored as `codec`, keeping the round bit.
    fn set_written(&mut self, at: u64, codec: Codec) {
        self.stamp = (self.stamp & ROUND) | at.min(MAX_TIME) | codec_bit(codec);
    }

    fn round(&self) -> bool {
        self.stamp & ROUND != 0
    }

    fn set_round(&mut self, round: bool) {
        self.stamp = (self.stamp & !ROUND) | if round { ROUND } else { 0 };
    }
}

/// The deadline of the entry in slot `i`: 0 for none, and for a hole.
#[inline]
fn deadline_in(slots: &[Option<Slot>], i: u32) -> u64 {
    slots
        .get(i as usize)
        .and_then(Option::as_ref)
        .map_or(0, |s| s.key.expires())
}

#[derive(Default)]
pub(crate) struct Shard {
    table: HashTable<u32>,
    /// The entries, with holes (`None`) where entries were removed. The table never points
    /// at a hole.
    slots: Vec<Option<Slot>>,
    /// The holes' positions, the most recent last: inserts fill them.
    holes: Vec<u32>,
    /// Entries in `slots` (not holes).
    live: usize,
    /// The expiry queue. Its records name slot positions: `tidy`, which moves slots,
    /// rebuilds it.
    deadlines: Deadlines,
    /// Slots whose key has an expiry: how many deadline records are current.
    with_expiry: usize,
    /// This shard's CLOCK hand: the next position it looks at.
    hand: usize,
    /// The parity of this shard's CLOCK round: it flips each time the hand wraps around.
    round: bool,
    /// Sum of the slots' charges.
    pub(crate) charged: u64,
    /// Expired entries reclaimed from this shard.
    pub(crate) expirations: u64,
    /// Live entries evicted from this shard.
    pub(crate) evictions: u64,
    /// The ordered index's directory as this shard last used it (see `index::View`).
    pub(crate) view: View,
    /// The stamp of the last write in this shard (see `Shard::stamp`).
    last_stamp: (u64, u16),
}

/// What one step of the CLOCK hand did in a shard.
pub(crate) enum Step {
    /// The shard holds nothing.
    Empty,
    /// The entry under the hand was read since the hand last looked at it: its mark is
    /// cleared.
    Passed,
    /// The entry under the hand was removed.
    Evicted(Slot),
}

/// What an overwrite replaced.
pub(crate) struct Replaced {
    pub(crate) charge: u64,
    pub(crate) expires: u64,
    /// The old value, for the caller to drop once it has unlocked the shard.
    pub(crate) value: Bytes,
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The stamp of a write made now, `now` being the store's time: the time the entry
    /// records as modified, and a tie-breaker. Stamps strictly increase within a shard, so
    /// no two writes of one key get the same one, even with a stopped or coarse clock,
    /// even for a key removed and created again at one clock reading: the entry's version
    /// is built from it (`Store::version`). The time is `now` itself, unless 65,536 writes
    /// in this shard came at one reading of the clock (a stopped test clock): then the
    /// time runs ahead of the clock by a nanosecond for each 65,536 more.
    ///
    /// Relied on: every slot of the shard got its stamp here, so the next one is above all
    /// of them. Code that puts slots in a shard another way (loading a persistent store's
    /// entries at open) must raise `last_stamp` past every stamp it loads, or a write could
    /// give a key the version it already has.
    pub(crate) fn stamp(&mut self, now: u64) -> (u64, u16) {
        let (time, seq) = self.last_stamp;
        self.last_stamp = if now > time {
            (now, 0)
        } else if seq < u16::MAX {
            (time, seq + 1)
        } else {
            (time.saturating_add(1), 0)
        };
        self.last_stamp
    }

    /// Makes every later stamp of this shard come after `(time, 0)`: for a slot put in
    /// the shard without `stamp` (see there), with tie-breaker 0.
    pub(crate) fn raise_stamp(&mut self, time: u64) {
        self.last_stamp = self.last_stamp.max((time, 0));
    }

    /// Every entry, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    /// Makes room for `more` entries at once (recovery knows how many are coming), so the
    /// table is not rehashed again and again as it fills.
    pub(crate) fn reserve(&mut self, more: usize, hash_of: impl Fn(&[u8]) -> u64) {
        let slots = &self.slots;
        self.table.reserve(more, |&i| {
            slots
                .get(i as usize)
                .and_then(Option::as_ref)
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
                    .and_then(Option::as_ref)
                    .is_some_and(|s| same_bytes(s.key.as_bytes(), key))
            })
            .map(|&i| i as usize)
    }

    #[inline]
    pub(crate) fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)?.as_ref()
    }

    /// Replaces the value (stored as `codec`) and expiry of the slot at `index`.
    pub(crate) fn overwrite(
        &mut self,
        index: usize,
        value: Bytes,
        codec: Codec,
        modified: u64,
        expires: u64,
    ) -> Option<Replaced> {
        let slot = self.slots.get_mut(index)?.as_mut()?;
        let old_expires = slot.key.expires();
        let key_len = slot.key.as_bytes().len();
        let old = Replaced {
            charge: charge(key_len, slot.value.len(), old_expires != 0),
            expires: old_expires,
            value: std::mem::replace(&mut slot.value, value),
        };
        slot.set_written(modified, codec);
        if expires != old_expires {
            slot.key.set_expires(expires);
        }
        let new_charge = charge(key_len, slot.value.len(), expires != 0);
        self.charged = self.charged.saturating_sub(old.charge) + new_charge;
        match (old_expires != 0, expires != 0) {
            (false, true) => self.with_expiry += 1,
            (true, false) => self.with_expiry = self.with_expiry.saturating_sub(1),
            _ => {}
        }
        if expires != 0 {
            self.deadlines.push(expires, index as u32);
        }
        if old_expires != 0 || expires != 0 {
            // Only a write with a deadline, old or new, can make a record stale.
            self.compact_deadlines();
        }
        Some(old)
    }

    /// Adds a slot for a key known to be absent, returning its position: the most recent
    /// hole, or a new one at the end. It is stamped with the current round, so the hand
    /// passes over it until the next round: a new entry is never evicted in the round it
    /// was inserted in. `None` if the shard is full (`u32::MAX` slots), leaving it
    /// unchanged.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        mut slot: Slot,
        hash_of: impl Fn(&[u8]) -> u64,
    ) -> Option<usize> {
        let position = match self.holes.last() {
            Some(&hole) => hole as usize,
            None => {
                let end = self.slots.len();
                u32::try_from(end).ok().filter(|&t| t < u32::MAX)?;
                end
            }
        };
        if self.table.len() == self.table.capacity() {
            // Before the new slot is placed: the new table gets every slot the old one has.
            self.grow_table(&hash_of);
        }
        let expires = slot.key.expires();
        self.charged += slot.charge();
        slot.set_round(self.round);
        if position == self.slots.len() {
            if self.slots.len() == self.slots.capacity() {
                // Grow by a quarter rather than doubling: slots are most of an entry's
                // overhead, and doubling leaves up to half of them empty.
                let more = (self.slots.len() / 4).max(16);
                self.slots.reserve_exact(more);
            }
            self.slots.push(Some(slot));
        } else {
            self.holes.pop();
            if let Some(hole) = self.slots.get_mut(position) {
                *hole = Some(slot);
            }
        }
        self.live += 1;
        let slots = &self.slots;
        self.table.insert_unique(hash, position as u32, |&i| {
            slots
                .get(i as usize)
                .and_then(Option::as_ref)
                .map_or(0, |s| hash_of(s.key.as_bytes()))
        });
        // Only now: compaction keeps the records of the slots it finds, so the new slot must
        // be among them or its deadline is lost.
        if expires != 0 {
            self.with_expiry += 1;
            self.deadlines.push(expires, position as u32);
            self.compact_deadlines();
        }
        Some(position)
    }

    /// Doubles the hash table, filling the new one in slot order.
    ///
    /// The table holds only slot numbers, so moving an entry means hashing its key again:
    /// hashbrown's own resize visits entries in bucket order, which is random in the slot
    /// array and in memory, and waits for two cache misses per entry (its slot, then its
    /// key). Slots are in insertion order, and so, mostly, are their key allocations: read
    /// in that order, both stream from memory.
    #[cold]
    fn grow_table(&mut self, hash_of: impl Fn(&[u8]) -> u64) {
        let mut table = HashTable::with_capacity(2 * self.table.capacity().max(8));
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(slot) = slot {
                // Never rehashes: the capacity covers every slot.
                table.insert_unique(hash_of(slot.key.as_bytes()), i as u32, |_| 0);
            }
        }
        self.table = table;
    }

    /// Removes the slot at `index` (whose key hashes to `hash`) and returns it.
    pub(crate) fn remove(
        &mut self,
        hash: u64,
        index: usize,
        hash_of: impl Fn(&[u8]) -> u64,
    ) -> Option<Slot> {
        let slot = self.take(hash, index)?;
        self.tidy(&hash_of);
        self.compact_deadlines();
        Some(slot)
    }

    /// Takes the slot at `index` out, leaving a hole; no compaction.
    fn take(&mut self, hash: u64, index: usize) -> Option<Slot> {
        let slot = self.slots.get_mut(index)?.take()?;
        if let Ok(entry) = self.table.find_entry(hash, |&i| i as usize == index) {
            entry.remove();
        }
        self.holes.push(index as u32);
        self.live -= 1;
        if slot.key.expires() != 0 {
            self.with_expiry = self.with_expiry.saturating_sub(1);
        }
        self.charged = self.charged.saturating_sub(slot.charge());
        Some(slot)
    }

    /// Compacts the slots once holes pass a quarter of them, keeping the entries' order (and
    /// the hand on the same entry), so memory follows the live entries. Each compaction is
    /// paid for by the removals since the last one.
    fn tidy(&mut self, hash_of: impl Fn(&[u8]) -> u64) {
        if self.holes.len() <= self.live / 4 + 16 {
            return;
        }
        let mut kept = 0;
        let mut hand = None;
        for read in 0..self.slots.len() {
            if read == self.hand {
                hand = Some(kept);
            }
            let Some(slot) = self.slots.get_mut(read).and_then(Option::take) else {
                continue;
            };
            if read != kept {
                // `kept` is a hole, so no table entry points at it yet.
                let hash = hash_of(slot.key.as_bytes());
                if let Some(entry) = self.table.find_mut(hash, |&i| i as usize == read) {
                    *entry = kept as u32;
                }
            }
            if let Some(hole) = self.slots.get_mut(kept) {
                *hole = Some(slot);
            }
            kept += 1;
        }
        self.hand = hand.unwrap_or(kept);
        self.slots.truncate(kept);
        self.holes.clear();
        // Deadline records name slot positions, which just changed: relied on by
        // `deadlines` (a record names the slot its entry is in, or a stale one).
        self.deadlines
            .rebuild(self.slots.iter().enumerate().filter_map(|(i, s)| {
                let at = s.as_ref()?.key.expires();
                (at != 0).then_some((at, i as u32))
            }));
        // Give memory back when the shard has shrunk: neither the slot array nor the hash
        // table shrinks on its own.
        if self.slots.capacity() > kept + kept / 2 + 64 {
            self.slots.shrink_to(kept + kept / 8);
            self.holes.shrink_to(kept / 4 + 16);
        }
        if self.table.capacity() > 2 * kept + 64 {
            let slots = &self.slots;
            self.table.shrink_to(kept, |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .map_or(0, |s| hash_of(s.key.as_bytes()))
            });
        }
    }

    /// One step of the store's CLOCK hand in this shard.
    ///
    /// The hand goes round the slots, which never move, so it sees the entries in one fixed
    /// order, passing over holes. Each entry carries the parity of the round in which the
    /// hand last dealt with it, or in which it was inserted; the hand passes over entries
    /// of the current round, so a new entry waits for the next round. An entry read since
    /// the hand last looked at it has its mark cleared and the hand moves on
    /// (`Step::Passed`); one not read (or any, with `force`) is removed, leaving a hole just
    /// behind the hand for the next insert (`Step::Evicted`).
    pub(crate) fn clock_step(&mut self, force: bool, hash_of: impl Fn(&[u8]) -> u64) -> Step {
        let mut wrapped = false;
        loop {
            if self.hand >= self.slots.len() {
                // After one wrap every entry is of the previous round, so a second one
                // means the shard is empty.
                if wrapped || self.live == 0 {
                    return Step::Empty;
                }
                self.hand = 0;
                self.round = !self.round;
                wrapped = true;
            }
            let round = self.round;
            let at = self.hand;
            let Some(slot) = self.slots.get_mut(at).and_then(Option::as_mut) else {
                self.hand += 1;
                continue;
            };
            if slot.round() == round {
                self.hand += 1;
                continue;
            }
            if slot.key.take_visited() && !force {
                slot.set_round(round);
                self.hand += 1;
                return Step::Passed;
            }
            let hash = hash_of(slot.key.as_bytes());
            let Some(evicted) = self.take(hash, at) else {
                return Step::Empty;
            };
            self.evictions += 1;
            self.hand += 1;
            self.tidy(&hash_of);
            self.compact_deadlines();
            return Step::Evicted(evicted);
        }
    }

    /// Drops stale deadline records once they pass a quarter of the current ones (plus a
    /// few), and gives back queue capacity the shard no longer needs. Each compaction sorts
    /// the queue, paid for by the stale records made since the last one.
    fn compact_deadlines(&mut self) {
        let slots = &self.slots;
        self.deadlines
            .compact(self.with_expiry, |i| deadline_in(slots, i));
    }

    /// The earliest pending deadline, possibly stale, possibly rounded down: never later
    /// than the deadline of an entry in the shard, and after `expire(now, ..)` with budget
    /// to spare, later than `now`.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.next()
    }

    /// Removes entries expired at `now`, up to `budget` removals, appending the removed
    /// slots to `removed`.
    pub(crate) fn expire(
        &mut self,
        now: u64,
        budget: usize,
        hash_of: impl Fn(&[u8]) -> u64,
        removed: &mut Vec<Slot>,
    ) {
        let mut left = budget;
        while left > 0 {
            let slots = &self.slots;
            // Only an entry whose own deadline has passed comes back (see `deadlines`).
            let Some(index) = self.deadlines.pop_due(now, |i| deadline_in(slots, i)) else {
                break;
            };
            let index = index as usize;
            let Some(hash) = self.slot(index).map(|s| hash_of(s.key.as_bytes())) else {
                continue;
            };
            if let Some(slot) = self.take(hash, index) {
                self.expirations += 1;
                removed.push(slot);
                left -= 1;
            }
        }
        self.tidy(&hash_of);
        self.compact_deadlines();
    }

    /// Empties the shard, keeping its counters, and returns what it held for the caller to
    /// drop after unlocking.
    #[must_use = "the old contents must be dropped after the shard is unlocked"]
    pub(crate) fn clear(&mut self) -> Shard {
        let (expirations, evictions) = (self.expirations, self.evictions);
        std::mem::replace(
            self,
            Shard {
                expirations,
                evictions,
                // A write racing the release must not reuse a stamp.
                last_stamp: self.last_stamp,
                ..Shard::default()
            },
        )
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
        Slot::new(
            KeyRef::new(key, expires).unwrap(),
            Bytes::from(key.to_owned()),
            0,
            Codec::Raw,
        )
    }

    fn insert(shard: &mut Shard, key: &str, expires: u64) {
        let h = hasher();
        shard
            .insert(h(key.as_bytes()), slot(key, expires), h)
            .unwrap();
    }

    /// Eviction in a one-shard store: steps until something is evicted. Two revolutions at
    /// most: the first may only clear marks.
    fn evict(shard: &mut Shard) -> Option<Slot> {
        for _ in 0..=2 * shard.len() {
            match shard.clock_step(false, hasher()) {
                Step::Evicted(victim) => return Some(victim),
                Step::Passed => {}
                Step::Empty => return None,
            }
        }
        None
    }

    fn assert_consistent(shard: &Shard) {
        let h = hasher();
        for (i, s) in shard.slots.iter().enumerate() {
            if let Some(s) = s {
                assert_eq!(shard.find(h(s.key.as_bytes()), s.key.as_bytes()), Some(i));
            }
        }
        assert_eq!(shard.table.len(), shard.live);
        assert_eq!(shard.iter().count(), shard.live);
        assert_eq!(shard.holes.len(), shard.slots.len() - shard.live);
        let charged: u64 = shard.iter().map(Slot::charge).sum();
        assert_eq!(shard.charged, charged);
    }

    fn mark(shard: &Shard, key: &str) {
        let h = hasher();
        let i = shard.find(h(key.as_bytes()), key.as_bytes()).unwrap();
        shard.slot(i).unwrap().key.mark_visited();
    }

    fn names(slots: impl IntoIterator<Item = Slot>) -> Vec<String> {
        slots.into_iter().map(|s| s.key.to_owned_string()).collect()
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
            insert(&mut shard, k, 0);
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
    fn inserting_and_evicting_keeps_the_table_consistent() {
        let mut shard = Shard::default();
        for i in 0..300 {
            insert(&mut shard, &format!("k{i}"), 0);
            if i % 3 == 0 {
                evict(&mut shard).unwrap();
            }
            assert_consistent(&shard);
        }
    }

    #[test]
    fn clock_evicts_unread_entries_before_read_ones() {
        let mut shard = Shard::default();
        for i in 0..10 {
            insert(&mut shard, &format!("k{i}"), 0);
        }
        mark(&shard, "k2");
        mark(&shard, "k5");
        let mut evicted = Vec::new();
        for _ in 0..8 {
            evicted.push(evict(&mut shard).unwrap().key.to_owned_string());
        }
        assert_eq!(evicted, ["k0", "k1", "k3", "k4", "k6", "k7", "k8", "k9"]);
        assert_eq!(shard.evictions, 8);
        // Their marks were cleared on the way: now they go too.
        assert!(evict(&mut shard).is_some());
        assert!(evict(&mut shard).is_some());
        assert!(evict(&mut shard).is_none());
        assert_consistent(&shard);
    }

    #[test]
    fn a_new_entry_takes_the_hole_behind_the_hand_and_gets_a_full_round() {
        let mut shard = Shard::default();
        for i in 0..4 {
            insert(&mut shard, &format!("old{i}"), 0);
        }
        assert_eq!(evict(&mut shard).unwrap().key.to_owned_string(), "old0");
        insert(&mut shard, "new", 0);
        let order = names(std::iter::from_fn(|| evict(&mut shard)));
        assert_eq!(order, ["old1", "old2", "old3", "new"]);
    }

    #[test]
    fn an_entry_inserted_when_the_hand_finished_its_round_is_looked_at_last() {
        let h = hasher();
        let mut shard = Shard::default();
        for i in 0..4 {
            insert(&mut shard, &format!("old{i}"), 0);
            mark(&shard, &format!("old{i}"));
        }
        // The hand passes every entry, clearing its mark: its round is over.
        for _ in 0..4 {
            assert!(matches!(shard.clock_step(false, h), Step::Passed));
        }
        insert(&mut shard, "new", 0);
        let order = names(std::iter::from_fn(|| evict(&mut shard)));
        assert_eq!(order, ["old0", "old1", "old2", "old3", "new"]);
    }

    #[test]
    fn a_new_entry_is_not_looked_at_in_the_round_it_was_inserted_in() {
        let h = hasher();
        for inserted_after in 0..6 {
            let mut shard = Shard::default();
            for i in 0..6 {
                insert(&mut shard, &format!("old{i}"), 0);
            }
            for _ in 0..inserted_after {
                assert!(matches!(shard.clock_step(false, h), Step::Evicted(_)));
            }
            insert(&mut shard, "new", 0);
            let round = shard.round;
            loop {
                match shard.clock_step(false, h) {
                    Step::Evicted(victim) => {
                        if shard.round == round {
                            assert_ne!(victim.key.to_owned_string(), "new");
                        }
                    }
                    Step::Passed => unreachable!("nothing was read"),
                    Step::Empty => break,
                }
                assert_consistent(&shard);
            }
        }
    }

    #[test]
    fn every_entry_is_looked_at_once_a_round() {
        let h = hasher();
        let mut shard = Shard::default();
        for i in 0..50 {
            insert(&mut shard, &format!("k{i}"), 0);
        }
        // Everything is read but one entry: only it may go, within one round of steps.
        for victim in ["k17", "k3", "k49", "k17"] {
            for slot in shard.iter() {
                if slot.key.as_bytes() != victim.as_bytes() {
                    slot.key.mark_visited();
                }
            }
            let mut steps = 0;
            loop {
                steps += 1;
                assert!(steps <= 51, "{victim} was not looked at within a round");
                if let Step::Evicted(v) = shard.clock_step(false, h) {
                    assert_eq!(v.key.to_owned_string(), victim);
                    break;
                }
            }
            insert(&mut shard, victim, 0);
        }
    }

    #[test]
    fn forcing_evicts_marked_entries() {
        let mut shard = Shard::default();
        insert(&mut shard, "k", 0);
        mark(&shard, "k");
        assert!(matches!(shard.clock_step(true, hasher()), Step::Evicted(_)));
        assert_eq!(shard.len(), 0);
        assert!(matches!(shard.clock_step(true, hasher()), Step::Empty));
    }

    #[test]
    fn holes_are_compacted_in_order_and_the_hand_stays_on_its_entry() {
        let h = hasher();
        let mut shard = Shard::default();
        for i in 0..200 {
            insert(&mut shard, &format!("k{i:03}"), 0);
        }
        // Move the hand into the middle, passing read entries.
        for slot in shard.iter() {
            slot.key.mark_visited();
        }
        for _ in 0..100 {
            assert!(matches!(shard.clock_step(false, h), Step::Passed));
        }
        let at_hand = shard.slot(shard.hand).unwrap().key.to_owned_string();
        for i in (0..200).filter(|i| i % 5 != 0) {
            let key = format!("k{i:03}");
            if key == at_hand {
                continue;
            }
            if let Some(at) = shard.find(h(key.as_bytes()), key.as_bytes()) {
                shard.remove(h(key.as_bytes()), at, h).unwrap();
            }
            assert_consistent(&shard);
        }
        assert!(
            shard.slots.len() <= shard.len() + shard.len() / 4 + 17,
            "not compacted"
        );
        let order: Vec<String> = shard.iter().map(|s| s.key.to_owned_string()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "compaction kept the order");
        assert_eq!(
            shard.slot(shard.hand).unwrap().key.to_owned_string(),
            at_hand
        );
    }

    #[test]
    fn expire_removes_due_entries_and_skips_stale_deadlines() {
        let h = hasher();
        let mut shard = Shard::default();
        for (k, at) in [("a", 10), ("b", 20), ("c", 30), ("d", 0)] {
            insert(&mut shard, k, at);
        }
        // Overwrite "a" with a later expiry: its first deadline becomes stale.
        let i = shard.find(h(b"a"), b"a").unwrap();
        shard.overwrite(i, Bytes::new(), Codec::Raw, 1, 40).unwrap();

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
        insert(&mut shard, "k", 1);
        let i = shard.find(h(b"k"), b"k").unwrap();
        for at in 2..10_000 {
            shard
                .overwrite(i, Bytes::new(), Codec::Raw, at, at)
                .unwrap();
            assert!(shard.deadlines.len() <= shard.with_expiry + shard.with_expiry / 4 + 33);
        }
        // The same instant twice (a stopped clock): the duplicate record is dropped too.
        for _ in 0..1_000 {
            shard
                .overwrite(i, Bytes::new(), Codec::Raw, 5, 20_000)
                .unwrap();
        }
        assert!(shard.deadlines.len() <= 34);
        assert!(shard.deadlines.allocated() <= 12 * (2 * shard.deadlines.len() + 64));
    }

    #[test]
    fn a_removed_entry_keeps_nothing_alive_and_its_records_go_in_time() {
        let h = hasher();
        let mut shard = Shard::default();
        let key = KeyRef::new("k", 1_000).unwrap();
        let probe = key.clone();
        shard
            .insert(h(b"k"), Slot::new(key, Bytes::new(), 0, Codec::Raw), h)
            .unwrap();
        let i = shard.find(h(b"k"), b"k").unwrap();
        shard.remove(h(b"k"), i, h).unwrap();
        assert_eq!(
            probe.header_refs(),
            1,
            "the deadline record still holds the key"
        );
        // Its stale record is dropped once stale records pile up.
        for n in 0..100 {
            insert(&mut shard, &format!("t{n}"), 2_000 + n);
            let i = shard.find(h(format!("t{n}").as_bytes()), format!("t{n}").as_bytes());
            shard
                .remove(h(format!("t{n}").as_bytes()), i.unwrap(), h)
                .unwrap();
        }
        assert!(shard.deadlines.len() <= 33, "{}", shard.deadlines.len());
    }

    #[test]
    fn deadlines_follow_their_entries_when_slots_are_compacted_and_reused() {
        let h = hasher();
        let mut shard = Shard::default();
        // Deadlines in distinct coarse units, the last entries' earliest, so that moved
        // entries would be reclaimed early (or never) by records naming old positions.
        let unit = 1u64 << 26;
        let at = |i: u64| (1_000 - i) * unit + 7;
        for i in 0..200 {
            insert(&mut shard, &format!("k{i:03}"), at(i));
        }
        for i in (0..200).filter(|i| i % 5 != 0) {
            let key = format!("k{i:03}");
            let found = shard.find(h(key.as_bytes()), key.as_bytes()).unwrap();
            shard.remove(h(key.as_bytes()), found, h).unwrap();
        }
        assert!(shard.slots.len() < 100, "the slots were compacted");
        // New entries take the holes left behind the compaction, with later deadlines.
        for i in 0..20 {
            insert(&mut shard, &format!("n{i}"), 2_000 * unit + i);
        }
        assert_consistent(&shard);
        let mut removed = Vec::new();
        for i in (0..200u32).step_by(5).rev().map(u64::from) {
            shard.expire(at(i) - 1, usize::MAX, h, &mut removed);
            assert!(removed.is_empty(), "reclaimed before {}", at(i));
            shard.expire(at(i), usize::MAX, h, &mut removed);
            let names: Vec<_> = removed.drain(..).map(|s| s.key.to_owned_string()).collect();
            assert_eq!(names, [format!("k{i:03}")]);
            assert!(shard.next_deadline().is_some_and(|n| n > at(i)));
        }
        shard.expire(2_000 * unit + 19, usize::MAX, h, &mut removed);
        assert_eq!(removed.len(), 20);
        assert_eq!(shard.len(), 0);
        assert_eq!(shard.deadlines.len(), 0);
    }

    #[test]
    fn the_time_the_codec_and_the_round_share_one_word_without_mixing() {
        let h = hasher();
        let mut shard = Shard::default();
        insert(&mut shard, "k", 0);
        let i = shard.find(h(b"k"), b"k").unwrap();
        for round in [false, true] {
            for (at, codec) in [
                (5, Codec::Lz4),
                (7, Codec::Raw),
                (MAX_TIME, Codec::Lz4),
                (u64::MAX, Codec::Raw),
                (u64::MAX, Codec::Lz4),
            ] {
                let slot = shard.slots[i].as_mut().unwrap();
                slot.set_round(round);
                shard.overwrite(i, Bytes::new(), codec, at, 0).unwrap();
                let slot = shard.slot(i).unwrap();
                assert_eq!(slot.codec(), codec);
                assert_eq!(slot.modified(), at.min(MAX_TIME));
                assert_eq!(slot.round(), round, "a write changed the round");
                let mut slot = Slot::new(KeyRef::new("n", 0).unwrap(), Bytes::new(), at, codec);
                slot.set_round(!round);
                assert_eq!(
                    (slot.codec(), slot.modified(), slot.round()),
                    (codec, at.min(MAX_TIME), !round),
                    "a round change moved the time or the codec"
                );
            }
        }
    }

    #[test]
    fn stamps_strictly_increase_and_keep_the_clock_time_while_they_can() {
        let mut shard = Shard::default();
        assert_eq!(shard.stamp(5), (5, 0));
        assert_eq!(
            shard.stamp(5),
            (5, 1),
            "a stopped clock: the tie-breaker moves"
        );
        assert_eq!(
            shard.stamp(9),
            (9, 0),
            "the clock moved: its time, tie-breaker 0"
        );
        let mut last = shard.stamp(9);
        for _ in 0..(u16::MAX as usize + 10) {
            let next = shard.stamp(9);
            assert!(next > last, "{next:?} after {last:?}");
            last = next;
        }
        assert_eq!(
            last.0, 10,
            "65,536 writes at one reading move the time 1 ns ahead"
        );
        assert_eq!(
            shard.stamp(9),
            (10, last.1 + 1),
            "the clock behind: never back"
        );
        shard.live = 0;
        let kept = shard.clear();
        drop(kept);
        assert!(shard.stamp(10) > last, "clearing a shard keeps its stamps");
        shard.raise_stamp(1_000);
        assert_eq!(shard.stamp(10), (1_000, 1), "stamps pass a loaded one");
        shard.raise_stamp(20);
        assert_eq!(shard.stamp(10), (1_000, 2), "raising never lowers");
    }

    #[test]
    fn charges_follow_inserts_overwrites_and_removals() {
        let h = hasher();
        let mut shard = Shard::default();
        insert(&mut shard, "abc", 0);
        assert_eq!(shard.charged, charge(3, 3, false));
        let i = shard.find(h(b"abc"), b"abc").unwrap();
        let old = shard
            .overwrite(i, Bytes::from_static(b"0123456789"), Codec::Raw, 1, 0)
            .unwrap();
        assert_eq!(old.charge, charge(3, 3, false));
        assert_eq!(shard.charged, charge(3, 10, false));
        shard.remove(h(b"abc"), i, h).unwrap();
        assert_eq!(shard.charged, 0);
    }
}
