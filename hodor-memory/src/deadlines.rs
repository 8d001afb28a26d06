//! A shard's expiry queue: 6 bytes per entry with a TTL.
//!
//! Each record names a slot position (32 bits) and a coarse deadline (16 bits): the number
//! of units (2^26 ns, about 67 ms) from the queue's `base` to the deadline, rounded down.
//! A record holds no key and no exact deadline: the slot holds those, and every decision
//! reads them there. Six bytes rather than the 16 of a `(deadline, key hash)` pair: the
//! queue is the only part of an entry's cost that a TTL adds. So:
//!
//! - A record's time is never later than the deadline it was queued for (rounded down,
//!   clamped down at the 16-bit horizon, about 73 minutes past `base`), so
//!   [`Deadlines::next`] is never later than a deadline in the shard: the store's
//!   earliest-deadline hint, built from it, is never late.
//! - A record is *current* while the slot it names holds an entry whose deadline encodes
//!   to the record's time. Slots move only in `Shard::tidy`, which rebuilds the queue from
//!   the slots ([`Deadlines::rebuild`]); a removed entry's slot may be reused by another
//!   entry, and its old record then names the new entry. That is harmless: an entry is
//!   removed only if its own deadline (read from the slot) has passed, whichever record
//!   led to it, and a record that does not encode the slot's deadline is dropped, the
//!   entry's own record being elsewhere in the queue.
//! - Every entry with a deadline has a current record, here or in the exact queue (see
//!   below): `push` adds one at every write with a deadline, and a current record leaves
//!   only when its entry is removed, when it moves to the exact queue, or when it is
//!   encoded again (a base change), never dropped.
//!
//! A coarse record due by its unit whose entry's deadline is later in that unit moves to a
//! small exact queue (12-byte records holding the full deadline), so reclaim is never late
//! by the rounding and [`Deadlines::next`] moves past `now` once everything due at `now` is
//! gone (the store's reclaim loops rely on it to end). Only records of the current unit
//! wait there. A record clamped at the horizon that comes due moves the base up to `now`
//! and encodes every current record again: a pass over the queue, at most once per
//! horizon (far deadlines stay clamped, each a lower bound of its deadline).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// log2 of the coarse unit in nanoseconds.
const SHIFT: u32 = 26;

/// The largest coarse time: a record at it may stand for any later deadline (clamped).
const HORIZON: u16 = u16::MAX;

/// How far below a deadline the base is put when it must be chosen, in units: a later
/// write with a somewhat earlier deadline then fits without re-encoding the queue.
const MARGIN: u64 = 1 << 12;

/// The unit a deadline falls in.
#[inline]
fn unit(at: u64) -> u64 {
    at >> SHIFT
}

/// The first instant of unit `u`.
#[inline]
fn unit_start(u: u64) -> u64 {
    if u > u64::MAX >> SHIFT {
        u64::MAX
    } else {
        u << SHIFT
    }
}

/// A coarse record: `[time, slot high half, slot low half]`, ordered by time first. Three
/// `u16`s rather than a struct with a `u32`, which would be padded to 8 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Coarse([u16; 3]);

impl Coarse {
    fn new(time: u16, slot: u32) -> Coarse {
        Coarse([time, (slot >> 16) as u16, slot as u16])
    }
    fn time(self) -> u16 {
        self.0[0]
    }
    fn slot(self) -> u32 {
        (u32::from(self.0[1]) << 16) | u32::from(self.0[2])
    }
}

/// An exact record: `[deadline high half, deadline low half, slot]`, ordered by deadline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Exact([u32; 3]);

impl Exact {
    fn new(at: u64, slot: u32) -> Exact {
        Exact([(at >> 32) as u32, at as u32, slot])
    }
    fn at(self) -> u64 {
        (u64::from(self.0[0]) << 32) | u64::from(self.0[1])
    }
    fn slot(self) -> u32 {
        self.0[2]
    }
}

/// The expiry queue of one shard (see the module documentation).
#[derive(Default)]
pub(crate) struct Deadlines {
    coarse: BinaryHeap<Reverse<Coarse>>,
    /// Records of the current unit, exact.
    exact: BinaryHeap<Reverse<Exact>>,
    /// The unit a coarse time of 0 stands for. Relied on: no current coarse record is for
    /// a deadline before it (`push` lowers it first, `rebase` never raises it past one).
    base: u64,
}

impl Deadlines {
    /// Records held, current or stale.
    pub(crate) fn len(&self) -> usize {
        self.coarse.len() + self.exact.len()
    }

    /// Bytes the queue holds allocated.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.coarse.capacity() * std::mem::size_of::<Coarse>()
            + self.exact.capacity() * std::mem::size_of::<Exact>()
    }

    /// The coarse time of deadline `at`: its unit after the base, clamped at the horizon.
    /// For a deadline before the base (only a stale record's slot can have one) it is 0.
    #[inline]
    fn encode(&self, at: u64) -> u16 {
        u16::try_from(unit(at).saturating_sub(self.base)).unwrap_or(HORIZON)
    }

    /// The earliest instant a coarse record stands for.
    #[inline]
    fn start(&self, record: Coarse) -> u64 {
        unit_start(self.base.saturating_add(u64::from(record.time())))
    }

    /// Queues the deadline `at` of the entry in `slot`.
    pub(crate) fn push(&mut self, at: u64, slot: u32) {
        let u = unit(at);
        if self.coarse.is_empty() {
            self.base = u.saturating_sub(MARGIN);
        } else if u < self.base {
            // Lower the base past `at`, by at least as much again as it is short, so a run
            // of ever earlier deadlines re-encodes the queue a logarithmic number of times.
            let base = u.saturating_sub(MARGIN.max(self.base - u));
            let delta = self.base - base;
            let records = std::mem::take(&mut self.coarse).into_vec();
            self.coarse = records
                .into_iter()
                .map(|Reverse(r)| {
                    let time = u64::from(r.time()).saturating_add(delta);
                    Reverse(Coarse::new(
                        u16::try_from(time).unwrap_or(HORIZON),
                        r.slot(),
                    ))
                })
                .collect();
            self.base = base;
        }
        let len = self.coarse.len();
        if len == self.coarse.capacity() {
            // Grow by a quarter rather than doubling: records are part of what a TTL entry
            // costs.
            self.coarse.reserve_exact((len / 4).max(16));
        }
        self.coarse
            .push(Reverse(Coarse::new(self.encode(at), slot)));
    }

    /// The earliest instant a queued record stands for, possibly a stale one's: never
    /// later than the deadline of any entry in the shard.
    pub(crate) fn next(&self) -> Option<u64> {
        let coarse = self.coarse.peek().map(|Reverse(r)| self.start(*r));
        let exact = self.exact.peek().map(|Reverse(r)| r.at());
        match (coarse, exact) {
            (Some(c), Some(e)) => Some(c.min(e)),
            (c, e) => c.or(e),
        }
    }

    /// The next slot whose entry is expired at `now` (`deadline_of(slot)`: the deadline of
    /// the entry in `slot`, 0 for none or a hole), or `None` once no record is due at
    /// `now`. The caller removes the entry before asking again.
    pub(crate) fn pop_due(&mut self, now: u64, deadline_of: impl Fn(u32) -> u64) -> Option<u32> {
        loop {
            let exact = self.exact.peek().map(|Reverse(r)| r.at());
            let coarse = self.coarse.peek().map(|Reverse(r)| self.start(*r));
            let from_exact = match (coarse, exact) {
                (_, Some(e)) if e <= now && coarse.is_none_or(|c| e <= c) => true,
                (Some(c), _) if c <= now => false,
                _ => return None,
            };
            if from_exact {
                let Reverse(record) = self.exact.pop()?;
                let at = deadline_of(record.slot());
                if at != 0 && at <= now {
                    return Some(record.slot());
                }
                continue; // Stale: the entry's deadline is later, with its own record.
            }
            let Reverse(record) = self.coarse.pop()?;
            let slot = record.slot();
            let at = deadline_of(slot);
            if at == 0 {
                continue; // A hole, or an entry without a deadline: stale.
            }
            if at <= now {
                return Some(slot);
            }
            if self.encode(at) != record.time() || unit(at) < self.base {
                continue; // Stale: the entry's own record is elsewhere.
            }
            if unit(at) == self.base + u64::from(record.time()) {
                // Due by its unit, not yet by its deadline.
                self.push_exact(at, slot);
            } else {
                // Clamped at the horizon, which `now` has reached.
                self.coarse.push(Reverse(record));
                self.rebase(now, &deadline_of);
            }
        }
    }

    fn push_exact(&mut self, at: u64, slot: u32) {
        let len = self.exact.len();
        if len == self.exact.capacity() {
            self.exact.reserve_exact((len / 4).max(16));
        }
        self.exact.push(Reverse(Exact::new(at, slot)));
    }

    /// Moves the base up to `now`'s unit once the horizon is due: every coarse record is
    /// then clamped (the earliest is), so each current one is encoded again from its
    /// entry's deadline. One already due at `now` goes to the exact queue instead, so no
    /// current coarse record is for a deadline before the new base.
    #[cold]
    fn rebase(&mut self, now: u64, deadline_of: impl Fn(u32) -> u64) {
        let records = std::mem::take(&mut self.coarse).into_vec();
        let current: Vec<(u64, u32)> = records
            .into_iter()
            .filter_map(|Reverse(r)| {
                let at = deadline_of(r.slot());
                (at != 0 && unit(at) >= self.base && self.encode(at) == r.time())
                    .then_some((at, r.slot()))
            })
            .collect();
        self.base = unit(now);
        let mut coarse = Vec::with_capacity(current.len() + current.len() / 8 + 16);
        for (at, slot) in current {
            if at <= now {
                self.push_exact(at, slot);
            } else {
                coarse.push(Reverse(Coarse::new(self.encode(at), slot)));
            }
        }
        self.coarse = BinaryHeap::from(coarse);
    }

    /// Drops stale and duplicate records once there are more than a quarter more records
    /// than `current` entries with a deadline (plus a few), and gives back capacity the
    /// queue no longer needs.
    pub(crate) fn compact(&mut self, current: usize, deadline_of: impl Fn(u32) -> u64) {
        if self.len() > current + current / 4 + 32 {
            let mut exact = std::mem::take(&mut self.exact).into_vec();
            exact.sort_unstable();
            exact.dedup();
            exact.retain(|Reverse(r)| deadline_of(r.slot()) == r.at());
            // An entry whose record moved to the exact queue and which was then written
            // again with the same deadline has a current record in each: keep the exact.
            let mut in_exact: Vec<u32> = exact.iter().map(|Reverse(r)| r.slot()).collect();
            in_exact.sort_unstable();
            let mut coarse = std::mem::take(&mut self.coarse).into_vec();
            coarse.sort_unstable();
            coarse.dedup();
            coarse.retain(|Reverse(r)| {
                let at = deadline_of(r.slot());
                at != 0
                    && unit(at) >= self.base
                    && self.encode(at) == r.time()
                    && in_exact.binary_search(&r.slot()).is_err()
            });
            self.exact = BinaryHeap::from(exact);
            self.coarse = BinaryHeap::from(coarse);
        }
        let len = self.coarse.len();
        if self.coarse.capacity() > len + len / 2 + 64 {
            self.coarse.shrink_to(len + len / 4 + 16);
        }
        let len = self.exact.len();
        if self.exact.capacity() > len + len / 2 + 64 {
            self.exact.shrink_to(len + len / 4 + 16);
        }
    }

    /// Replaces every record with one per entry of `entries` (`(deadline, slot)`, each
    /// deadline non-zero): for when slots move.
    pub(crate) fn rebuild(&mut self, entries: impl Iterator<Item = (u64, u32)>) {
        let entries: Vec<(u64, u32)> = entries.collect();
        self.exact = BinaryHeap::new();
        self.base = entries
            .iter()
            .map(|&(at, _)| unit(at))
            .min()
            .map_or(0, |u| u.saturating_sub(MARGIN));
        let mut coarse = Vec::with_capacity(entries.len() + entries.len() / 8 + 16);
        coarse.extend(
            entries
                .iter()
                .map(|&(at, slot)| Reverse(Coarse::new(self.encode(at), slot))),
        );
        self.coarse = BinaryHeap::from(coarse);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const U: u64 = 1 << SHIFT;

    /// Slot deadlines as the shard holds them.
    #[derive(Default)]
    struct Slots(HashMap<u32, u64>);

    impl Slots {
        fn of(&self) -> impl Fn(u32) -> u64 + '_ {
            |i| self.0.get(&i).copied().unwrap_or(0)
        }
        /// Pops everything due at `now` the way `Shard::expire` does: the entry goes.
        fn expire(&mut self, q: &mut Deadlines, now: u64) -> Vec<u32> {
            let mut out = Vec::new();
            while let Some(i) = q.pop_due(now, self.of()) {
                assert!(
                    self.0.get(&i).is_some_and(|&at| at != 0 && at <= now),
                    "slot {i} returned at {now}, its deadline is {:?}",
                    self.0.get(&i)
                );
                self.0.remove(&i);
                out.push(i);
            }
            out
        }
    }

    #[test]
    fn records_are_six_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<Coarse>>(), 6);
        assert_eq!(std::mem::size_of::<Reverse<Exact>>(), 12);
        let c = Coarse::new(7, 0xdead_beef);
        assert_eq!((c.time(), c.slot()), (7, 0xdead_beef));
        let e = Exact::new(u64::MAX - 3, 0x1234_5678);
        assert_eq!((e.at(), e.slot()), (u64::MAX - 3, 0x1234_5678));
        assert!(Exact::new(1 << 32, 0) > Exact::new((1 << 32) - 1, 9));
    }

    #[test]
    fn a_reused_slot_is_never_expired_by_its_old_record_and_keeps_its_own() {
        let mut slots = Slots::default();
        let mut q = Deadlines::default();
        // Entry A in slot 3 with a deadline at 10 units; A goes, B takes slot 3 with a
        // deadline at 20 units.
        slots.0.insert(3, 10 * U);
        q.push(10 * U, 3);
        slots.0.insert(3, 20 * U);
        q.push(20 * U, 3);
        assert!(slots.expire(&mut q, 15 * U).is_empty(), "B is not expired");
        assert_eq!(
            q.next(),
            Some(20 * U),
            "the stale record is gone, B's stays"
        );
        assert_eq!(slots.expire(&mut q, 20 * U), [3]);
        // Same again in one unit: the old record (earlier in the unit) finds B not yet due.
        slots.0.insert(4, 30 * U + 5);
        q.push(30 * U + 5, 4);
        slots.0.insert(4, 30 * U + 9);
        q.push(30 * U + 9, 4);
        assert!(slots.expire(&mut q, 30 * U + 7).is_empty());
        assert!(q.next().is_some_and(|n| n > 30 * U + 7 && n <= 30 * U + 9));
        assert_eq!(slots.expire(&mut q, 30 * U + 9), [4]);
        assert_eq!(q.next(), None);
        // An exact record whose slot is reused by an entry with a later deadline.
        slots.0.insert(5, 40 * U + 5);
        q.push(40 * U + 5, 5);
        assert!(slots.expire(&mut q, 40 * U + 2).is_empty());
        slots.0.insert(5, 40 * U + 60);
        q.push(40 * U + 60, 5);
        assert!(slots.expire(&mut q, 40 * U + 6).is_empty(), "not yet");
        assert_eq!(slots.expire(&mut q, 40 * U + 60), [5]);
    }

    #[test]
    fn a_stale_record_may_reclaim_a_reused_slot_only_when_its_entry_expired() {
        let mut slots = Slots::default();
        let mut q = Deadlines::default();
        slots.0.insert(1, 50 * U);
        q.push(50 * U, 1);
        // The slot is reused by an entry with an earlier deadline.
        slots.0.insert(1, 40 * U);
        q.push(40 * U, 1);
        assert_eq!(slots.expire(&mut q, 40 * U), [1]);
        // The old record finds the slot empty, then in use by an entry without a deadline.
        slots.0.insert(1, 0);
        assert!(slots.expire(&mut q, 60 * U).is_empty());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn deadlines_within_one_unit_come_due_exactly() {
        let mut slots = Slots::default();
        let mut q = Deadlines::default();
        for (i, at) in [(0, 100 * U + 30), (1, 100 * U + 10), (2, 100 * U + 20)] {
            slots.0.insert(i, at);
            q.push(at, i);
        }
        assert_eq!(q.next(), Some(100 * U), "rounded down, never late");
        assert!(slots.expire(&mut q, 100 * U + 9).is_empty());
        assert_eq!(q.next(), Some(100 * U + 10), "the exact queue has it now");
        assert_eq!(slots.expire(&mut q, 100 * U + 20), [1, 2]);
        assert_eq!(q.next(), Some(100 * U + 30));
        assert_eq!(slots.expire(&mut q, u64::MAX), [0]);
    }

    #[test]
    fn a_deadline_beyond_the_horizon_is_kept_and_comes_due_on_time() {
        let mut slots = Slots::default();
        let mut q = Deadlines::default();
        let near = 1_000 * U;
        let far = near + 5 * (u64::from(HORIZON) * U) + 12_345;
        slots.0.insert(0, near);
        q.push(near, 0);
        slots.0.insert(1, far);
        q.push(far, 1);
        assert_eq!(slots.expire(&mut q, near), [0]);
        // Walk the clock past several horizons: each rebase keeps the record, the hint
        // stays at or before the deadline and moves past `now` after each sweep.
        let mut now = near;
        let mut rebases = 0;
        while now < far - 1 {
            now = (now + u64::from(HORIZON) * U / 3).min(far - 1);
            let base = q.base;
            assert!(slots.expire(&mut q, now).is_empty(), "early at {now}");
            rebases += usize::from(q.base != base);
            let next = q.next().unwrap();
            assert!(
                next <= far && next > now,
                "next {next}, now {now}, far {far}"
            );
        }
        assert!(rebases >= 4, "{rebases} rebases");
        assert_eq!(slots.expire(&mut q, far), [1]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn an_earlier_deadline_than_the_base_lowers_it_without_losing_records() {
        let mut slots = Slots::default();
        let mut q = Deadlines::default();
        // The first deadline sets the base just below it; an earlier one moves it down,
        // clamping the records that no longer fit.
        let late = 1u64 << 50;
        slots.0.insert(0, late);
        q.push(late, 0);
        slots.0.insert(1, late - 10 * U);
        q.push(late - 10 * U, 1);
        let early = 5 * U + 1;
        slots.0.insert(2, early);
        q.push(early, 2);
        assert!(q.base <= unit(early));
        assert_eq!(q.next(), Some(5 * U));
        assert_eq!(slots.expire(&mut q, early), [2]);
        assert!(q.next().unwrap() <= late - 10 * U);
        assert!(slots.expire(&mut q, late - 10 * U - 1).is_empty());
        assert_eq!(slots.expire(&mut q, late - 10 * U), [1]);
        assert_eq!(slots.expire(&mut q, late), [0]);
    }

    #[test]
    fn compaction_keeps_current_records_and_bounds_stale_ones() {
        let mut slots = Slots::default();
        let mut q = Deadlines::default();
        for i in 0..100 {
            slots.0.insert(i, 1_000 * U + u64::from(i));
            q.push(1_000 * U + u64::from(i), i);
        }
        // Rewrite every deadline many times (each leaves a stale record), compacting as the
        // shard does after every write.
        for round in 1..20u64 {
            for i in 0..100 {
                let at = 1_000 * U + round * 7 * U + u64::from(i);
                slots.0.insert(i, at);
                q.push(at, i);
                q.compact(100, slots.of());
                assert!(q.len() <= 100 + 25 + 32);
            }
        }
        let mut expired = slots.expire(&mut q, u64::MAX);
        expired.sort_unstable();
        assert_eq!(expired, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn rebuilding_keeps_one_record_per_entry() {
        let mut slots = Slots::default();
        let mut q = Deadlines::default();
        for i in 0..50 {
            q.push(7 * U, i);
        }
        for i in 0..10u32 {
            slots.0.insert(i, (1u64 << 40) + u64::from(i) * U * 1_000);
        }
        q.rebuild(slots.0.iter().map(|(&i, &at)| (at, i)));
        assert_eq!(q.len(), 10);
        assert_eq!(q.next(), Some(unit_start(unit(1 << 40))));
        assert_eq!(slots.expire(&mut q, u64::MAX).len(), 10);
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Writes slot (mod 16) with a deadline `now + ttl` (0: none).
        Set(u32, u64),
        Remove(u32),
        /// Moves the clock forward and expires.
        Advance(u64),
        Compact,
        Rebuild,
    }

    fn op() -> impl Strategy<Value = Op> {
        let ttl = prop_oneof![
            Just(0u64),
            0..4 * U,
            0..(u64::from(HORIZON) * U * 3),
            Just(1u64 << 61),
        ];
        let step = prop_oneof![0..U, 0..(u64::from(HORIZON) * U), Just(1u64 << 60)];
        prop_oneof![
            4 => (0..16u32, ttl).prop_map(|(s, t)| Op::Set(s, t)),
            1 => (0..16u32).prop_map(Op::Remove),
            3 => step.prop_map(Op::Advance),
            1 => Just(Op::Compact),
            1 => Just(Op::Rebuild),
        ]
    }

    proptest! {
        /// The promises against a model of the slots: only expired entries come back, every
        /// expired entry comes back, and `next` is never later than a deadline.
        #[test]
        fn the_queue_keeps_its_promises(start in 0u64..(1 << 62), ops in prop::collection::vec(op(), 1..200)) {
            let mut slots = Slots::default();
            let mut q = Deadlines::default();
            let mut now = start;
            for op in ops {
                match op {
                    Op::Set(s, ttl) => {
                        let at = if ttl == 0 { 0 } else { now.saturating_add(ttl).max(1) };
                        slots.0.insert(s, at);
                        if at != 0 {
                            q.push(at, s);
                        }
                    }
                    Op::Remove(s) => {
                        slots.0.remove(&s);
                    }
                    Op::Advance(by) => {
                        now = now.saturating_add(by);
                        slots.expire(&mut q, now);
                        prop_assert!(slots.0.values().all(|&at| at == 0 || at > now), "lost");
                        prop_assert!(q.next().is_none_or(|n| n > now), "next not past now");
                    }
                    Op::Compact => {
                        let with = slots.0.values().filter(|&&at| at != 0).count();
                        q.compact(with, slots.of());
                    }
                    Op::Rebuild => {
                        q.rebuild(slots.0.iter().filter(|(_, at)| **at != 0).map(|(&i, &at)| (at, i)));
                    }
                }
                if let Some(earliest) = slots.0.values().filter(|&&at| at != 0).min() {
                    prop_assert!(q.next().is_some_and(|n| n <= *earliest), "next past a deadline");
                }
            }
        }
    }
}
