//! The ordered key index: every key of the store sorted by bytes, for `list`.
//!
//! # Shape
//! The key space is cut into **partitions** by range, each behind its own lock, so writers
//! creating or removing keys in different ranges never wait for each other, and a `list`
//! locks only the partitions its prefix spans (usually one). A **directory** maps ranges to
//! partitions; it is immutable and replaced (copy-on-write) when a partition splits or
//! merges, which happens once per few thousand creations. Each shard keeps the directory it
//! last used ([`View`]), checked against the index's version (one shared load, no write) on
//! every use, so writers never touch a shared counter or lock to find their partition.
//!
//! Inside a partition the keys sit in sorted **leaves** of at most [`LEAF_MAX`] handles,
//! found through the partition's fences. Comparisons rarely follow a key's pointer:
//! - every range (directory, partition, leaf) is bounded by separator strings, and all the
//!   keys inside a range share the longest common prefix of its two bounds;
//! - so each level compares a few bytes taken right after that shared prefix, kept inline
//!   beside the handles ("heads": 8 bytes per fence, 4 per leaf entry);
//! - only keys whose heads are equal are compared in full.
//!
//! Following a key's pointer costs a dependent cache miss per comparison once the store
//! outgrows the CPU caches, and a `BTreeSet` of handles paid about 28 of them per insert at
//! a million keys; here an insert touches the partition (small, usually cached), one leaf,
//! and rarely a key. A removal finds its entry by the handle's address, never reading a key.
//!
//! # Invariants (checked by `Index::check` in the tests)
//! - Directory: `seps[0]` is empty, separators strictly increase, partition `p` holds the
//!   keys in `[seps[p], seps[p + 1])`.
//! - Partition: `lo`/`hi` are its directory bounds; `fences[j]` is the lower bound of
//!   `leaves[j + 1]`, strictly increasing inside `(lo, hi)`; an empty partition has no
//!   leaves, a non-empty one has no empty leaf.
//! - Leaf: its keys are strictly increasing within its bounds; `offset` is the length of
//!   the common prefix of its bounds (0 when one is open), and `heads[i]` is the 4 bytes of
//!   `keys[i]` from `offset` (0 past the end; keys contain no NUL, so a 0 means the end).
//! - A retired partition is empty and no longer in the current directory; whoever finds
//!   one after locking it looks at the current directory again.
//!
//! Lock order: the index's `current` mutex, then partitions in key order (lists lock every
//! partition they span, in order, before reading any). Writers hold one partition at a
//! time and take `current` only while holding none.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use crate::key::KeyRef;

/// The most keys a leaf holds before it splits. Large enough that a leaf's fixed costs
/// (its two arrays' headers, its fence) are small per key; small enough that inserting
/// moves little memory.
pub(crate) const LEAF_MAX: usize = 128;
/// A leaf with fewer keys is merged with (or refilled from) a neighbour.
const LEAF_MIN: usize = LEAF_MAX / 4;
/// How many unused entries a leaf's arrays keep after removals before they shrink. Leaves
/// grow only by merging batches, which allocates their arrays at their exact new size.
const LEAF_SLACK: usize = 16;
/// The most leaves a partition holds before it splits in two.
pub(crate) const PART_MAX: usize = 32;
/// A partition with fewer leaves is merged with a neighbour when they fit together.
const PART_MIN: usize = PART_MAX / 8;
/// How many new keys a partition takes before it merges them into its leaves, all at once.
const PENDING: usize = 256;

/// `key`'s four bytes from `at`, big-endian, 0 past its end.
#[inline]
fn head32(key: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    if let Some(rest) = key.get(at..) {
        for (to, from) in bytes.iter_mut().zip(rest) {
            *to = *from;
        }
    }
    u32::from_be_bytes(bytes)
}

/// `key`'s eight bytes from `at`, big-endian, 0 past its end.
#[inline]
fn head64(key: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(rest) = key.get(at..) {
        for (to, from) in bytes.iter_mut().zip(rest) {
            *to = *from;
        }
    }
    u64::from_be_bytes(bytes)
}

/// How many of `heads` (sorted, none below `head`) equal `head`. Almost always none or one,
/// so the first two are looked at before a binary search of the whole rest.
#[inline]
fn equal_run<T: Copy + Eq>(heads: &[T], head: T) -> usize {
    match heads {
        [a, b, ..] if *a == head && *b == head => heads.partition_point(|&h| h == head),
        [a, ..] if *a == head => 1,
        _ => 0,
    }
}

/// The length of the common prefix of `a` and `b`.
#[inline]
fn common(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The common prefix length of the keys a range can hold: that of its bounds when both are
/// set (every string between two strings shares their common prefix), else 0.
fn range_offset(lo: &[u8], hi: Option<&[u8]>) -> usize {
    match hi {
        Some(hi) if !lo.is_empty() => common(lo, hi),
        _ => 0,
    }
}

/// The shortest string `s` with `left < s <= right` (`left < right`): `right` cut just after
/// where they differ. Separators stay short, so the fences of a leaf keep little memory and
/// nothing of a key that may later be removed.
fn separator(left: &[u8], right: &[u8]) -> Box<[u8]> {
    let keep = common(left, right) + 1;
    right.get(..keep).unwrap_or(right).into()
}

/// Sorted handles with their heads.
#[derive(Default)]
struct Leaf {
    /// Where the heads are taken: the common prefix length of the leaf's bounds.
    offset: usize,
    heads: Vec<u32>,
    keys: Vec<KeyRef>,
}

impl Leaf {
    fn with_offset(offset: usize) -> Leaf {
        Leaf {
            offset,
            ..Leaf::default()
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// The position of the first key not less than `key` (which lies within the leaf's
    /// bounds). Compares heads; reads keys only where the heads are equal.
    #[inline]
    fn lower_bound(&self, key: &[u8]) -> usize {
        let head = head32(key, self.offset);
        let start = self.heads.partition_point(|&h| h < head);
        let rest = self.heads.get(start..).unwrap_or_default();
        let run = equal_run(rest, head);
        if run == 0 || head & 0xff == 0 {
            // No equal head, or the key ends inside its head: an equal head is the same key.
            return start;
        }
        let equal = self.keys.get(start..start + run).unwrap_or_default();
        start + equal.partition_point(|k| k.as_bytes() < key)
    }

    /// The position of the entry that is this very handle, found by address.
    fn position_of(&self, key: &KeyRef) -> Option<usize> {
        let head = head32(key.as_bytes(), self.offset);
        let start = self.heads.partition_point(|&h| h < head);
        let rest = self.keys.get(start..)?;
        let heads = self.heads.get(start..)?;
        rest.iter()
            .zip(heads)
            .take_while(|(_, h)| **h == head)
            .position(|(k, _)| k.same(key))
            .map(|i| start + i)
    }

    /// Merges `batch` (sorted, distinct from the leaf's keys, within its bounds) into the
    /// leaf in one pass over its arrays. Each key comes with its 8 bytes from `at`, which
    /// hold its head here when the leaf's offset is close enough: then the key is not read.
    ///
    /// A few keys into a big leaf (the usual case: a batch spreads over every leaf of its
    /// partition) are inserted in place, each moving the entries after it with one
    /// `memmove`, and the arrays grow once to their exact new size. Many keys are merged
    /// into new arrays in one pass, which moves each entry once.
    fn merge(&mut self, batch: impl ExactSizeIterator<Item = (u64, KeyRef)>, at: usize) {
        let offset = self.offset;
        // Where this leaf's head sits in the 8 bytes given, if it does.
        let shift = offset
            .checked_sub(at)
            .filter(|&skip| skip <= 4)
            .map(|skip| 8 * skip as u32);
        let head_of = |wide: u64, key: &KeyRef| match shift {
            Some(shift) => (wide << shift >> 32) as u32,
            None => head32(key.as_bytes(), offset),
        };
        if batch.len() * 4 <= self.len() {
            self.keys.reserve_exact(batch.len());
            self.heads.reserve_exact(batch.len());
            // The batch is sorted: each key goes after the one before it.
            let mut from = 0;
            for (wide, key) in batch {
                let head = head_of(wide, &key);
                let heads = self.heads.get(from..).unwrap_or_default();
                let start = heads.partition_point(|&h| h < head);
                let run = equal_run(heads.get(start..).unwrap_or_default(), head);
                let equal = self
                    .keys
                    .get(from + start..from + start + run)
                    .unwrap_or_default();
                let at = from + start + equal.partition_point(|k| k.as_bytes() < key.as_bytes());
                self.heads.insert(at, head);
                self.keys.insert(at, key);
                from = at + 1;
            }
            return;
        }
        let total = self.len() + batch.len();
        let mut heads = Vec::with_capacity(total);
        let mut keys = Vec::with_capacity(total);
        let mut old = std::mem::take(&mut self.keys)
            .into_iter()
            .zip(std::mem::take(&mut self.heads))
            .peekable();
        for (wide, key) in batch {
            let head = head_of(wide, &key);
            while let Some((k, h)) =
                old.next_if(|(k, h)| *h < head || (*h == head && k.as_bytes() < key.as_bytes()))
            {
                heads.push(h);
                keys.push(k);
            }
            heads.push(head);
            keys.push(key);
        }
        for (k, h) in old {
            heads.push(h);
            keys.push(k);
        }
        self.heads = heads;
        self.keys = keys;
    }

    fn remove(&mut self, at: usize) -> KeyRef {
        self.heads.remove(at);
        let key = self.keys.remove(at);
        if self.keys.capacity() >= self.keys.len() + LEAF_SLACK {
            self.keys.shrink_to_fit();
            self.heads.shrink_to_fit();
        }
        key
    }

    /// Moves the heads to `offset` (the leaf's bounds changed). Reads every key, but the
    /// reads do not depend on each other, so their misses overlap.
    fn rehead(&mut self, offset: usize) {
        if offset == self.offset {
            return;
        }
        self.offset = offset;
        for (head, key) in self.heads.iter_mut().zip(&self.keys) {
            *head = head32(key.as_bytes(), offset);
        }
    }

    /// Splits off the keys from `at` into a new leaf (heads still at this leaf's offset).
    fn split_off(&mut self, at: usize) -> Leaf {
        let mut right = Leaf {
            offset: self.offset,
            heads: Vec::with_capacity(self.len() - at),
            keys: Vec::with_capacity(self.len() - at),
        };
        right.heads.extend(self.heads.drain(at..));
        right.keys.extend(self.keys.drain(at..));
        self.keys.shrink_to_fit();
        self.heads.shrink_to_fit();
        right
    }

    /// Appends `right`'s keys, which all follow this leaf's (heads at this leaf's offset,
    /// which the caller then fixes).
    fn append(&mut self, right: Leaf) {
        self.keys.reserve_exact(right.len());
        self.heads.reserve_exact(right.len());
        let offset = self.offset;
        for key in right.keys {
            self.heads.push(head32(key.as_bytes(), offset));
            self.keys.push(key);
        }
    }
}

/// The keys of one range of the key space.
#[derive(Default)]
struct PartData {
    /// Set when the partition was replaced in the directory; it is then empty.
    retired: bool,
    /// Keys added since the leaves were last brought up to date, in no order, each with
    /// its `head64` from `offset`. A creating writer appends here, next to the lock it just
    /// took, and touches no leaf; once [`PENDING`] wait, they are sorted and merged into
    /// their leaves, each leaf in one pass (see [`PartData::flush`]). The array grows as
    /// keys arrive and is given back when they are merged: a fixed array of [`PENDING`]
    /// keys in every partition cost about 2 bytes per entry of a store with a million.
    pending: Vec<(u64, KeyRef)>,
    /// Inclusive lower bound (empty: from the start).
    lo: Box<[u8]>,
    /// Exclusive upper bound (`None`: to the end).
    hi: Option<Box<[u8]>>,
    /// Where fence and pending heads are taken: the common prefix length of `lo` and `hi`.
    offset: usize,
    /// `fences[j]` is the lower bound of `leaves[j + 1]`.
    fences: Vec<Box<[u8]>>,
    /// `head64` of each fence from `offset`.
    fence_heads: Vec<u64>,
    leaves: Vec<Leaf>,
    /// Keys in all leaves and in `pending`.
    len: usize,
}

impl PartData {
    fn bounded(lo: Box<[u8]>, hi: Option<Box<[u8]>>) -> PartData {
        PartData {
            offset: range_offset(&lo, hi.as_deref()),
            lo,
            hi,
            ..PartData::default()
        }
    }

    /// Leaf `j`'s bounds.
    fn leaf_bounds(&self, j: usize) -> (&[u8], Option<&[u8]>) {
        let lo = match j.checked_sub(1) {
            None => &self.lo[..],
            Some(f) => self.fences.get(f).map_or(&self.lo[..], |f| &f[..]),
        };
        let hi = match self.fences.get(j) {
            Some(f) => Some(&f[..]),
            None => self.hi.as_deref(),
        };
        (lo, hi)
    }

    fn leaf_offset(&self, j: usize) -> usize {
        let (lo, hi) = self.leaf_bounds(j);
        range_offset(lo, hi)
    }

    /// The leaf whose range holds a key with this head (from `offset`) and these bytes: the
    /// number of fences not above it.
    #[inline]
    fn leaf_for_head(&self, head: u64, key: &[u8]) -> usize {
        let start = self.fence_heads.partition_point(|&h| h < head);
        let rest = self.fence_heads.get(start..).unwrap_or_default();
        let run = equal_run(rest, head);
        let equal = self.fences.get(start..start + run).unwrap_or_default();
        start + equal.partition_point(|f| &f[..] <= key)
    }

    /// The leaf whose range holds `key`.
    #[inline]
    fn leaf_for(&self, key: &[u8]) -> usize {
        self.leaf_for_head(head64(key, self.offset), key)
    }

    /// The keys not yet in a leaf, with their heads.
    fn pending(&self) -> impl Iterator<Item = (u64, &KeyRef)> {
        self.pending.iter().map(|(h, k)| (*h, k))
    }

    /// The pending keys from `seek` on that start with `prefix`. Their heads tell most keys
    /// apart without reading them: every key here starts with `lo[..offset]`, then its head.
    fn pending_matching(&self, seek: &[u8], prefix: &[u8]) -> Vec<&KeyRef> {
        let offset = self.offset;
        // The bytes of the prefix past the shared part, as far as a head reaches.
        let (want, mask) = match prefix.len().checked_sub(offset) {
            // Every key here starts with `lo[..offset]`: all of them have the prefix, or none.
            Some(0) | None if !self.lo.starts_with(prefix) => return Vec::new(),
            Some(0) | None => (0, 0),
            Some(extra) => {
                let bytes = extra.min(8) as u32;
                (head64(prefix, offset), u64::MAX << (64 - 8 * bytes))
            }
        };
        self.pending()
            .filter(|(h, _)| h & mask == want & mask)
            .map(|(_, k)| k)
            .filter(|k| k.as_bytes() >= seek && k.as_bytes().starts_with(prefix))
            .collect()
    }

    /// Walks this partition's keys with `prefix` (from `seek` on, when given), leaves and
    /// pending keys merged in order, into `out`. Returns `true` when the walk is over:
    /// `out` is full, or a key past the prefix was reached.
    fn collect_into(&self, seek: Option<&[u8]>, prefix: &[u8], out: &mut Collected<'_>) -> bool {
        // The pending keys in range, in order, merged into the leaves' order.
        let mut waiting = self.pending_matching(seek.unwrap_or_default(), prefix);
        waiting.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut waiting = waiting.into_iter().peekable();
        let first_leaf = seek.map_or(0, |seek| self.leaf_for(seek));
        for (j, leaf) in self.leaves.iter().enumerate().skip(first_leaf) {
            let begin = match seek {
                Some(seek) if j == first_leaf => leaf.lower_bound(seek),
                _ => 0,
            };
            for key in leaf.keys.iter().skip(begin) {
                let bytes = key.as_bytes();
                while let Some(w) = waiting.next_if(|w| w.as_bytes() < bytes) {
                    if out.take(w) {
                        return true;
                    }
                }
                // Past the prefix: so is every key after, and every pending key in range
                // came before.
                if !bytes.starts_with(prefix) {
                    return true;
                }
                if out.take(key) {
                    return true;
                }
            }
        }
        for w in waiting {
            if out.take(w) {
                return true;
            }
        }
        false
    }

    /// Adds `key`: to the pending keys, merging them into the leaves once [`PENDING`] wait.
    /// Returns whether merged keys went after every key of the partition (keys created in
    /// ascending order).
    #[inline]
    fn add(&mut self, key: KeyRef) -> bool {
        let head = head64(key.as_bytes(), self.offset);
        self.len += 1;
        self.pending.push((head, key));
        if self.pending.len() < PENDING {
            return false;
        }
        self.flush()
    }

    /// Merges the pending keys into the leaves.
    fn flush(&mut self) -> bool {
        let batch = std::mem::take(&mut self.pending);
        self.merge(batch)
    }

    /// Merges `batch` (keys of this partition, none indexed yet; `len` already counts
    /// them) into the leaves: sorted first (by heads, so rarely reading a key), then each
    /// leaf takes its run in one pass over its arrays. A leaf is then read and written once
    /// per batch, not once per key. Returns whether the batch ended after every key of the
    /// partition.
    fn merge(&mut self, mut batch: Vec<(u64, KeyRef)>) -> bool {
        if batch.is_empty() {
            return false;
        }
        batch.sort_unstable_by(|(ha, a), (hb, b)| {
            ha.cmp(hb).then_with(|| a.as_bytes().cmp(b.as_bytes()))
        });
        if self.leaves.is_empty() {
            let offset = range_offset(&self.lo, self.hi.as_deref());
            self.leaves.push(Leaf::with_offset(offset));
        }
        let mut ascending = false;
        let mut rest = batch.into_iter();
        while let Some((head, first)) = rest.as_slice().first() {
            let j = self
                .leaf_for_head(*head, first.as_bytes())
                .min(self.leaves.len() - 1);
            // The run of keys below leaf `j`'s upper bound goes into leaf `j`: found by a
            // search of the sorted batch, not gathered key by key.
            let run = match (self.fence_heads.get(j), self.fences.get(j)) {
                (Some(&hi_head), Some(hi)) => rest.as_slice().partition_point(|(h, k)| {
                    *h < hi_head || (*h == hi_head && k.as_bytes() < &hi[..])
                }),
                _ => rest.len(),
            };
            let last_leaf = j + 1 == self.leaves.len();
            let Some(leaf) = self.leaves.get_mut(j) else {
                break;
            };
            let appended = last_leaf
                && match (leaf.keys.last(), rest.as_slice().first()) {
                    (Some(old), Some((_, new))) => old.as_bytes() < new.as_bytes(),
                    _ => true,
                };
            ascending = appended;
            // At least the first key, which `leaf_for_head` placed in this leaf.
            leaf.merge(rest.by_ref().take(run.max(1)), self.offset);
            self.split_leaf(j, appended);
        }
        ascending
    }

    /// Splits leaf `j` while it holds more than [`LEAF_MAX`] keys: in halves, or, for keys
    /// arriving in ascending order at the end of the partition, into full leaves (so the
    /// leaves such keys fill stay full).
    fn split_leaf(&mut self, mut j: usize, ascending: bool) {
        while let Some(leaf) = self.leaves.get_mut(j) {
            let len = leaf.len();
            if len <= LEAF_MAX {
                break;
            }
            let at = if ascending {
                LEAF_MAX
            } else if len <= 2 * LEAF_MAX {
                len / 2
            } else {
                LEAF_MAX * 3 / 4
            };
            let (Some(left), Some(right)) = (leaf.keys.get(at - 1), leaf.keys.get(at)) else {
                return;
            };
            let fence = separator(left.as_bytes(), right.as_bytes());
            let right = leaf.split_off(at);
            self.fence_heads.insert(j, head64(&fence, self.offset));
            self.fences.insert(j, fence);
            self.leaves.insert(j + 1, right);
            self.fix_offset(j);
            self.fix_offset(j + 1);
            j += 1;
        }
    }

    /// Re-heads leaf `j` if its bounds changed its offset.
    fn fix_offset(&mut self, j: usize) {
        let offset = self.leaf_offset(j);
        if let Some(leaf) = self.leaves.get_mut(j) {
            leaf.rehead(offset);
        }
    }

    /// Removes this very handle; `None` if it is not here.
    fn remove(&mut self, key: &KeyRef) -> Option<KeyRef> {
        let waiting = self.pending.iter().position(|(_, p)| p.same(key));
        if let Some(at) = waiting {
            self.len -= 1;
            return Some(self.pending.swap_remove(at).1);
        }
        let j = self
            .leaf_for(key.as_bytes())
            .min(self.leaves.len().checked_sub(1)?);
        let leaf = self.leaves.get_mut(j)?;
        let at = leaf.position_of(key)?;
        let removed = leaf.remove(at);
        self.len -= 1;
        if leaf.len() < LEAF_MIN {
            self.refill(j);
        }
        Some(removed)
    }

    /// Leaf `j` is short: merges it with a neighbour, or takes keys from one; an empty
    /// partition keeps no leaf.
    fn refill(&mut self, j: usize) {
        if self.leaves.len() == 1 {
            if self.leaves.first().is_some_and(|l| l.len() == 0) {
                self.leaves.clear();
            }
            return;
        }
        // The neighbour to the right, or to the left for the last leaf.
        let left = if j + 1 < self.leaves.len() { j } else { j - 1 };
        let (Some(a), Some(b)) = (self.leaves.get(left), self.leaves.get(left + 1)) else {
            return;
        };
        if a.len() + b.len() <= LEAF_MAX * 3 / 4 {
            let right = self.leaves.remove(left + 1);
            self.fences.remove(left);
            self.fence_heads.remove(left);
            if let Some(a) = self.leaves.get_mut(left) {
                a.append(right);
            }
            self.fix_offset_forced(left);
            return;
        }
        // Too many for one leaf: share them evenly, with a new fence between.
        let total = a.len() + b.len();
        let keep = total / 2;
        let right = self.leaves.remove(left + 1);
        let Some(a) = self.leaves.get_mut(left) else {
            return;
        };
        a.append(right);
        let (Some(l), Some(r)) = (a.keys.get(keep - 1), a.keys.get(keep)) else {
            return;
        };
        let fence = separator(l.as_bytes(), r.as_bytes());
        let right = a.split_off(keep);
        if let (Some(f), Some(h)) = (self.fences.get_mut(left), self.fence_heads.get_mut(left)) {
            *h = head64(&fence, self.offset);
            *f = fence;
        }
        self.leaves.insert(left + 1, right);
        self.fix_offset_forced(left);
        self.fix_offset_forced(left + 1);
    }

    /// Re-heads leaf `j` after its keys moved between leaves: their heads were taken at
    /// another leaf's offset.
    fn fix_offset_forced(&mut self, j: usize) {
        let offset = self.leaf_offset(j);
        if let Some(leaf) = self.leaves.get_mut(j) {
            leaf.offset = usize::MAX;
            leaf.rehead(offset);
        }
    }

    /// Cuts this partition into pieces of at most [`PART_MAX`] leaves at leaf boundaries,
    /// emptying it; returns each piece with its lower bound. In halves, or, for keys
    /// created in ascending order, into full pieces. Leaves keep their bounds, so no key is
    /// read.
    fn split(&mut self, ascending: bool) -> Vec<PartData> {
        self.flush();
        let mut leaves = std::mem::take(&mut self.leaves);
        let mut fences = std::mem::take(&mut self.fences);
        self.fence_heads.clear();
        self.len = 0;
        let hi = self.hi.take();
        let mut lo = std::mem::take(&mut self.lo);
        let mut pieces = Vec::new();
        while leaves.len() > PART_MAX {
            let at = if ascending {
                PART_MAX
            } else if leaves.len() <= 2 * PART_MAX {
                leaves.len() / 2
            } else {
                PART_MAX * 3 / 4
            };
            let rest_leaves = leaves.split_off(at);
            let rest_fences = fences.split_off(at);
            // `fences[at - 1]`, the lower bound of the first leaf of the rest, separates them.
            let sep = fences.pop().unwrap_or_default();
            let mut piece = PartData::bounded(lo, Some(sep.clone()));
            piece.fill(leaves, fences);
            pieces.push(piece);
            lo = sep;
            leaves = rest_leaves;
            fences = rest_fences;
        }
        let mut piece = PartData::bounded(lo, hi);
        piece.fill(leaves, fences);
        pieces.push(piece);
        pieces
    }

    /// Takes `leaves` and their fences (whose bounds fit this partition's).
    fn fill(&mut self, leaves: Vec<Leaf>, fences: Vec<Box<[u8]>>) {
        self.len = leaves.iter().map(Leaf::len).sum();
        self.fence_heads = fences.iter().map(|f| head64(f, self.offset)).collect();
        self.fences = fences;
        self.leaves = leaves;
    }

    /// This partition followed by `right` (the next one), as one; empties both.
    fn merge_with(&mut self, right: &mut PartData) -> PartData {
        self.flush();
        right.flush();
        let lo = std::mem::take(&mut self.lo);
        let hi = right.hi.take();
        let sep = std::mem::take(&mut right.lo);
        let mut merged = PartData::bounded(lo, hi);
        let mut leaves = std::mem::take(&mut self.leaves);
        let mut fences = std::mem::take(&mut self.fences);
        let right_leaves = std::mem::take(&mut right.leaves);
        let right_fences = std::mem::take(&mut right.fences);
        let (left_had, right_has) = (!leaves.is_empty(), !right_leaves.is_empty());
        if left_had && right_has {
            fences.push(sep);
        }
        fences.extend(right_fences);
        leaves.extend(right_leaves);
        merged.fill(leaves, fences);
        self.len = 0;
        right.len = 0;
        self.fence_heads.clear();
        right.fence_heads.clear();
        // Without the separator, the leaf next to it now spans the other partition's range
        // too: its bounds (and maybe its offset) changed.
        if left_had != right_has {
            for j in 0..merged.leaves.len() {
                merged.fix_offset(j);
            }
        }
        merged
    }
}

/// One partition: its keys behind their own lock.
struct Part {
    data: RwLock<PartData>,
}

impl Part {
    fn new(data: PartData) -> Arc<Part> {
        Arc::new(Part {
            data: RwLock::new(data),
        })
    }
}

/// The partitions and their ranges at one version. Never changed once published.
struct Directory {
    version: u64,
    /// `seps[p]` is partition `p`'s lower bound; `seps[0]` is empty.
    seps: Vec<Box<[u8]>>,
    /// `head64` of each separator from 0.
    heads: Vec<u64>,
    parts: Vec<Arc<Part>>,
}

impl Directory {
    fn empty(version: u64) -> Directory {
        Directory {
            version,
            seps: vec![Box::default()],
            heads: vec![0],
            parts: vec![Part::new(PartData::default())],
        }
    }

    /// The partition whose range holds `key`.
    #[inline]
    fn find(&self, key: &[u8]) -> usize {
        let head = head64(key, 0);
        let start = self.heads.partition_point(|&h| h < head);
        let rest = self.heads.get(start..).unwrap_or_default();
        let run = equal_run(rest, head);
        let equal = self.seps.get(start..start + run).unwrap_or_default();
        (start + equal.partition_point(|s| &s[..] <= key)).saturating_sub(1)
    }

    /// This directory with the `removed` partitions from `p` replaced by `pieces` (which
    /// cover the same range, in order).
    fn replace(&self, p: usize, removed: usize, pieces: Vec<PartData>) -> Directory {
        let mut seps = Vec::with_capacity(self.seps.len() + pieces.len());
        let mut parts = Vec::with_capacity(self.parts.len() + pieces.len());
        seps.extend(self.seps.iter().take(p).cloned());
        parts.extend(self.parts.iter().take(p).cloned());
        for piece in pieces {
            seps.push(piece.lo.clone());
            parts.push(Part::new(piece));
        }
        seps.extend(self.seps.iter().skip(p + removed).cloned());
        parts.extend(self.parts.iter().skip(p + removed).cloned());
        Directory {
            version: self.version + 1,
            heads: seps.iter().map(|s| head64(s, 0)).collect(),
            seps,
            parts,
        }
    }
}

/// What a `collect` gathers.
struct Collected<'a> {
    keys: Vec<KeyRef>,
    limit: usize,
    /// The start when it is excluded.
    after: Option<&'a [u8]>,
    now: u64,
}

impl Collected<'_> {
    /// Takes `key` if it is live and not the excluded start; `true` once `limit` are taken.
    fn take(&mut self, key: &KeyRef) -> bool {
        if self.keys.len() >= self.limit {
            return true;
        }
        if self.after != Some(key.as_bytes()) && key.is_live(self.now) {
            self.keys.push(key.clone());
        }
        self.keys.len() >= self.limit
    }
}

/// The directory a shard last used, so writers find their partition without a shared write.
/// Each shard keeps one, under its own lock.
#[derive(Default)]
pub(crate) struct View {
    dir: Option<Arc<Directory>>,
}

/// What the index held, returned by [`Index::clear`] to be dropped after the store's locks
/// are released.
pub(crate) struct Cleared(
    // Never read: held only to be dropped later.
    #[allow(dead_code)] Vec<PartData>,
);

/// The ordered key index (see the module docs).
pub(crate) struct Index {
    /// The current directory; locked to replace it, or to take a reference for a `list`.
    current: Mutex<Arc<Directory>>,
    /// The current directory's version: a shard's [`View`] is stale when they differ.
    version: AtomicU64,
    /// How many partitions `collect` has read (tests).
    #[cfg(test)]
    partitions_read: AtomicU64,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            current: Mutex::new(Arc::new(Directory::empty(0))),
            version: AtomicU64::new(0),
            #[cfg(test)]
            partitions_read: AtomicU64::new(0),
        }
    }
}

impl Index {
    /// The current directory, through `view`.
    #[inline]
    fn directory<'v>(&self, view: &'v mut View) -> &'v Arc<Directory> {
        let version = self.version.load(Ordering::Acquire);
        let fresh = matches!(&view.dir, Some(d) if d.version == version);
        if !fresh {
            view.dir = Some(self.current.lock().clone());
        }
        view.dir.get_or_insert_with(|| self.current.lock().clone())
    }

    /// Adds `key`. Called under the write lock of the key's shard, whose `view` this is.
    pub(crate) fn insert(&self, view: &mut View, key: KeyRef) {
        let mut key = key;
        while let Err(back) = self.try_insert(view, key) {
            // The partition was split or merged since the view was taken.
            view.dir = None;
            key = back;
        }
    }

    /// Inserts through `view`; gives the key back if its partition is retired.
    #[inline]
    fn try_insert(&self, view: &mut View, key: KeyRef) -> Result<(), KeyRef> {
        let dir = self.directory(view);
        let Some(part) = dir.parts.get(dir.find(key.as_bytes())) else {
            return Ok(()); // `find` returns a partition of the directory.
        };
        let mut data = part.data.write();
        if data.retired {
            return Err(key);
        }
        let ascending = data.add(key);
        let split = data.leaves.len() > PART_MAX;
        drop(data);
        if split {
            let part = part.clone();
            self.split(&part, ascending);
        }
        Ok(())
    }

    /// Removes this very handle (found by address, not by reading the key); returns the
    /// index's own handle on it. Called under the write lock of the key's shard.
    pub(crate) fn remove(&self, view: &mut View, key: &KeyRef) -> Option<KeyRef> {
        loop {
            let dir = self.directory(view);
            let part = dir.parts.get(dir.find(key.as_bytes()))?;
            let mut data = part.data.write();
            if data.retired {
                drop(data);
                view.dir = None;
                continue;
            }
            let leaves = data.leaves.len();
            let removed = data.remove(key);
            // Only when a leaf went away: a small partition whose neighbours are too big to
            // merge with is not looked at again on every removal.
            let merge = data.leaves.len() < leaves.min(PART_MIN) && dir.parts.len() > 1;
            drop(data);
            if merge {
                let part = part.clone();
                self.merge(&part);
            }
            return removed;
        }
    }

    /// Splits a partition that grew past [`PART_MAX`] leaves, if it still has.
    #[cold]
    fn split(&self, part: &Arc<Part>, ascending: bool) {
        let mut current = self.current.lock();
        let Some(p) = current.parts.iter().position(|x| Arc::ptr_eq(x, part)) else {
            return;
        };
        let mut data = part.data.write();
        if data.retired || data.leaves.len() <= PART_MAX {
            return;
        }
        let pieces = data.split(ascending);
        data.retired = true;
        let dir = current.replace(p, 1, pieces);
        self.publish(&mut current, dir);
    }

    /// Merges a small partition with a neighbour, if they fit together.
    #[cold]
    fn merge(&self, part: &Arc<Part>) {
        let mut current = self.current.lock();
        let Some(p) = current.parts.iter().position(|x| Arc::ptr_eq(x, part)) else {
            return;
        };
        let leaves = |q: usize| current.parts.get(q).map(|x| x.data.read().leaves.len());
        // The smaller neighbour.
        let left = match (p.checked_sub(1).and_then(leaves), leaves(p + 1)) {
            (Some(a), Some(b)) if a <= b => p - 1,
            (Some(_), None) => p - 1,
            (_, Some(_)) => p,
            (None, None) => return,
        };
        let (Some(a), Some(b)) = (current.parts.get(left), current.parts.get(left + 1)) else {
            return;
        };
        // In key order, as every holder of several partitions.
        let mut a = a.data.write();
        let mut b = b.data.write();
        if a.retired || b.retired || a.leaves.len() + b.leaves.len() > PART_MAX {
            return;
        }
        let mut merged = a.merge_with(&mut b);
        a.retired = true;
        b.retired = true;
        drop((a, b));
        // Their pending keys may have added leaves.
        let pieces = if merged.leaves.len() > PART_MAX {
            merged.split(false)
        } else {
            vec![merged]
        };
        let dir = current.replace(left, 2, pieces);
        self.publish(&mut current, dir);
    }

    fn publish(&self, current: &mut Arc<Directory>, dir: Directory) {
        let version = dir.version;
        *current = Arc::new(dir);
        self.version.store(version, Ordering::Release);
    }

    /// Up to `limit` live keys starting with `prefix`, from `from` on, in order: one
    /// atomic look at the partitions it reads, so a single write is either wholly seen or
    /// not at all.
    ///
    /// Partitions are read-locked in key order as the walk reaches them, and every one
    /// stays locked until the walk ends (two-phase locking): the result is what the index
    /// held at the moment the last of them was locked, as if all had been locked at once.
    /// The walk locks only the partitions it reads keys from, plus at most the one after,
    /// so a page of `limit` keys costs O(log n + limit) whatever the prefix spans (locking
    /// every partition the prefix spans up front made a page of an `""` prefix cost
    /// O(n)).
    pub(crate) fn collect(
        &self,
        from: Bound<&[u8]>,
        prefix: &[u8],
        now: u64,
        limit: usize,
    ) -> Vec<KeyRef> {
        let start = match from {
            Bound::Included(k) if k > prefix => from,
            Bound::Excluded(k) if k >= prefix => from,
            _ => Bound::Included(prefix),
        };
        let seek = match start {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => prefix,
        };
        'retry: loop {
            let dir = self.current.lock().clone();
            let mut out = Collected {
                keys: Vec::new(),
                limit,
                after: match start {
                    Bound::Excluded(after) => Some(after),
                    _ => None,
                },
                now,
            };
            if limit == 0 {
                return out.keys;
            }
            // Held until the walk ends: see above.
            let mut held: Vec<RwLockReadGuard<'_, PartData>> = Vec::new();
            let first = dir.find(seek);
            for (p, part) in dir.parts.iter().enumerate().skip(first) {
                let data = part.data.read();
                if data.retired {
                    // Split or merged since the directory was taken: look again.
                    continue 'retry;
                }
                #[cfg(test)]
                self.partitions_read.fetch_add(1, Ordering::Relaxed);
                let from = if p == first { Some(seek) } else { None };
                let done = data.collect_into(from, prefix, &mut out);
                held.push(data);
                // The next partition can hold matches only if its lower bound has the prefix.
                let more = dir.seps.get(p + 1).is_some_and(|s| s.starts_with(prefix));
                if done || !more {
                    break;
                }
            }
            drop(held);
            return out.keys;
        }
    }

    /// Empties the index. Called with every shard write-locked; the old contents are
    /// returned to be dropped after the store's locks are released.
    #[must_use = "the old contents are dropped after the store's locks are released"]
    pub(crate) fn clear(&self) -> Cleared {
        let mut current = self.current.lock();
        let mut old = Vec::new();
        for part in &current.parts {
            let mut data = part.data.write();
            data.retired = true;
            old.push(std::mem::take(&mut *data));
            data.retired = true;
        }
        let dir = Directory::empty(current.version + 1);
        self.publish(&mut current, dir);
        Cleared(old)
    }

    /// Every key, live or not, in order (tests).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> Vec<KeyRef> {
        self.collect(Bound::Unbounded, b"", 0, usize::MAX)
    }

    /// Whether no partition is locked at the moment (tests).
    #[cfg(test)]
    pub(crate) fn is_free(&self) -> bool {
        let dir = self.current.lock().clone();
        dir.parts.iter().all(|p| p.data.try_write().is_some())
    }

    /// How many partitions the current directory has (tests).
    #[cfg(test)]
    pub(crate) fn partitions(&self) -> usize {
        self.current.lock().parts.len()
    }

    /// Checks every invariant of the module docs; panics on the first broken one (tests).
    #[cfg(test)]
    #[allow(clippy::indexing_slicing)]
    pub(crate) fn check(&self) {
        let dir = self.current.lock().clone();
        assert_eq!(dir.version, self.version.load(Ordering::Acquire));
        assert!(dir.seps[0].is_empty(), "the first separator is empty");
        assert_eq!(dir.seps.len(), dir.parts.len());
        assert_eq!(dir.heads.len(), dir.seps.len());
        for w in dir.seps.windows(2) {
            assert!(w[0] < w[1], "separators increase: {:?} {:?}", w[0], w[1]);
        }
        for (p, part) in dir.parts.iter().enumerate() {
            assert_eq!(dir.heads[p], head64(&dir.seps[p], 0));
            let data = part.data.read();
            assert!(
                !data.retired,
                "a retired partition is in the current directory"
            );
            assert_eq!(data.lo, dir.seps[p]);
            assert_eq!(data.hi.as_deref(), dir.seps.get(p + 1).map(|s| &s[..]));
            assert_eq!(data.offset, range_offset(&data.lo, data.hi.as_deref()));
            let mut count = 0;
            for (head, key) in data.pending() {
                let bytes = key.as_bytes();
                assert_eq!(head, head64(bytes, data.offset), "a stale pending head");
                assert!(bytes >= &data.lo[..], "a pending key below its partition");
                assert!(
                    data.hi.as_deref().is_none_or(|hi| bytes < hi),
                    "a pending key above"
                );
                count += 1;
            }
            assert!(data.pending.len() < PENDING, "a full batch was not merged");
            if data.leaves.is_empty() {
                assert!(data.fences.is_empty() && data.len == count);
                continue;
            }
            assert!(data.leaves.len() <= PART_MAX, "an unsplit partition");
            assert_eq!(data.fences.len() + 1, data.leaves.len());
            assert_eq!(data.fence_heads.len(), data.fences.len());
            for (j, leaf) in data.leaves.iter().enumerate() {
                assert!(!leaf.keys.is_empty(), "an empty leaf");
                assert!(leaf.len() <= LEAF_MAX, "an unsplit leaf");
                assert_eq!(leaf.heads.len(), leaf.keys.len());
                let (lo, hi) = data.leaf_bounds(j);
                assert_eq!(leaf.offset, range_offset(lo, hi), "leaf offset");
                for (i, key) in leaf.keys.iter().enumerate() {
                    let bytes = key.as_bytes();
                    assert!(bytes >= lo, "a key below its leaf");
                    assert!(hi.is_none_or(|hi| bytes < hi), "a key above its leaf");
                    assert_eq!(leaf.heads[i], head32(bytes, leaf.offset), "a stale head");
                    if i > 0 {
                        assert!(leaf.keys[i - 1].as_bytes() < bytes, "keys out of order");
                    }
                }
                count += leaf.len();
            }
            for (f, fence) in data.fences.iter().enumerate() {
                assert_eq!(data.fence_heads[f], head64(fence, data.offset));
                assert!(fence[..] > data.lo[..]);
                assert!(data.hi.as_deref().is_none_or(|hi| &fence[..] < hi));
            }
            assert_eq!(count, data.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn key(s: &str) -> KeyRef {
        KeyRef::new(s, 0).unwrap()
    }

    fn names(keys: &[KeyRef]) -> Vec<String> {
        keys.iter().map(KeyRef::to_owned_string).collect()
    }

    /// Keys of many shapes: long shared prefixes, prefixes of each other, short ones.
    fn awkward(rng: &mut Rng) -> String {
        match rng.below(6) {
            0 => format!("k/{:07}/{}", rng.below(1_000_000), rng.below(100)),
            1 => format!("tenant/acme/users/profile/{:05}", rng.below(100_000)),
            2 => "a".repeat(1 + rng.below(40) as usize),
            3 => format!("{:x}", rng.next()),
            4 => format!("é😀/{}", rng.below(5000)),
            _ => {
                let len = 1 + rng.below(12) as usize;
                (0..len)
                    .map(|_| char::from(b'!' + rng.below(90) as u8))
                    .collect()
            }
        }
    }

    /// Random inserts and removals against a `BTreeSet` model, checking every invariant
    /// along the way and listing random prefixes.
    fn run_model(seed: u64, ops: usize, check_every: usize) {
        let index = Index::default();
        let mut view = View::default();
        let mut model: BTreeSet<String> = BTreeSet::new();
        let mut held: std::collections::HashMap<String, KeyRef> = Default::default();
        let mut rng = Rng(seed);
        for op in 0..ops {
            let k = awkward(&mut rng);
            if rng.below(3) == 0 {
                if let Some(handle) = held.remove(&k) {
                    let removed = index.remove(&mut view, &handle).expect("indexed");
                    assert!(removed.same(&handle));
                    model.remove(&k);
                }
            } else if model.insert(k.clone()) {
                let handle = key(&k);
                index.insert(&mut view, handle.clone());
                held.insert(k, handle);
            }
            if op % check_every == 0 {
                index.check();
                let prefix: String = awkward(&mut rng)
                    .chars()
                    .take(rng.below(6) as usize)
                    .collect();
                let want: Vec<&String> = model.iter().filter(|m| m.starts_with(&prefix)).collect();
                let got = names(&index.collect(Bound::Unbounded, prefix.as_bytes(), 0, usize::MAX));
                assert_eq!(got.len(), want.len(), "prefix {prefix:?}");
                assert!(
                    got.iter().zip(&want).all(|(a, b)| a == *b),
                    "prefix {prefix:?}"
                );
            }
        }
        index.check();
        assert_eq!(
            names(&index.keys()),
            model.iter().cloned().collect::<Vec<_>>()
        );
        // Remove everything: the index shrinks back to one partition.
        for handle in held.values() {
            index.remove(&mut view, handle).expect("indexed");
        }
        index.check();
        assert!(index.keys().is_empty());
        assert_eq!(index.partitions(), 1, "empty partitions were merged");
    }

    #[test]
    fn agrees_with_a_sorted_set_under_random_inserts_and_removals() {
        for seed in 1..=4 {
            run_model(seed * 0x9e37_79b9, 30_000, 997);
        }
    }

    #[test]
    fn keys_in_ascending_order_fill_their_leaves() {
        let index = Index::default();
        let mut view = View::default();
        let n = 20_000;
        for i in 0..n {
            index.insert(&mut view, key(&format!("log/{i:08}")));
        }
        index.check();
        let dir = index.current.lock().clone();
        let leaves: usize = dir.parts.iter().map(|p| p.data.read().leaves.len()).sum();
        assert!(
            leaves <= n / LEAF_MAX + dir.parts.len() + 1,
            "{leaves} leaves for {n} ascending keys"
        );
        let keys = index.keys();
        assert_eq!(keys.len(), n);
        assert_eq!(keys[0].as_bytes(), b"log/00000000");
    }

    #[test]
    fn collect_pages_from_a_start_and_stops_at_the_limit() {
        let index = Index::default();
        let mut view = View::default();
        for i in 0..10_000 {
            index.insert(&mut view, key(&format!("p/{i:05}")));
        }
        index.insert(&mut view, key("q"));
        let page = index.collect(Bound::Excluded(b"p/04999"), b"p/", 0, 3);
        assert_eq!(names(&page), ["p/05000", "p/05001", "p/05002"]);
        let page = index.collect(Bound::Included(b"p/09998"), b"p/", 0, 10);
        assert_eq!(names(&page), ["p/09998", "p/09999"]);
        // A key equal to the prefix, excluded as the start.
        index.insert(&mut view, key("p/"));
        let page = index.collect(Bound::Excluded(b"p/"), b"p/", 0, 1);
        assert_eq!(names(&page), ["p/00000"]);
        let page = index.collect(Bound::Included(b"p/"), b"p/", 0, 1);
        assert_eq!(names(&page), ["p/"]);
        // A start before the prefix starts at the prefix.
        let page = index.collect(Bound::Included(b"a"), b"p/0999", 0, 100);
        assert_eq!(page.len(), 10);
        assert!(index.collect(Bound::Unbounded, b"p/", 0, 0).is_empty());
    }

    #[test]
    fn collect_skips_expired_keys() {
        let index = Index::default();
        let mut view = View::default();
        index.insert(&mut view, KeyRef::new("a", 10).unwrap());
        index.insert(&mut view, KeyRef::new("b", 0).unwrap());
        index.insert(&mut view, KeyRef::new("c", 20).unwrap());
        let live = |now| names(&index.collect(Bound::Unbounded, b"", now, usize::MAX));
        assert_eq!(live(9), ["a", "b", "c"]);
        assert_eq!(live(10), ["b", "c"]);
        assert_eq!(live(20), ["b"]);
    }

    #[test]
    fn removal_finds_the_handle_without_reading_equal_keys() {
        // Two handles on equal bytes: only the indexed one is removed.
        let index = Index::default();
        let mut view = View::default();
        let indexed = key("same");
        index.insert(&mut view, indexed.clone());
        assert!(index.remove(&mut view, &key("same")).is_none());
        assert!(index.remove(&mut view, &indexed).is_some());
        assert!(index.keys().is_empty());
    }

    /// How many keys of the current directory wait in pending batches.
    fn pending_count(index: &Index) -> usize {
        let dir = index.current.lock().clone();
        dir.parts.iter().map(|p| p.data.read().pending.len()).sum()
    }

    #[test]
    fn removal_by_address_in_a_leaf_and_in_a_pending_batch() {
        let index = Index::default();
        let mut view = View::default();
        let in_leaf = key("m/0000");
        index.insert(&mut view, in_leaf.clone());
        // Enough keys after it to merge the first batch into the leaves, then a few more.
        for i in 1..=PENDING + 10 {
            index.insert(&mut view, key(&format!("m/{i:04}")));
        }
        let waiting = key("m/zzzz");
        index.insert(&mut view, waiting.clone());
        assert!(pending_count(&index) > 0, "some keys wait in a batch");
        // Equal bytes on another allocation are not the indexed key, in a leaf or pending.
        assert!(index.remove(&mut view, &key("m/0000")).is_none());
        assert!(index.remove(&mut view, &key("m/zzzz")).is_none());
        assert!(index.remove(&mut view, &in_leaf).unwrap().same(&in_leaf));
        assert!(index.remove(&mut view, &waiting).unwrap().same(&waiting));
        index.check();
        assert_eq!(index.keys().len(), PENDING + 10);
        assert_eq!(in_leaf.header_refs(), 1);
        assert_eq!(waiting.header_refs(), 1);
    }

    #[test]
    fn a_list_sees_pending_keys_in_order_among_the_leaves() {
        let index = Index::default();
        let mut view = View::default();
        let mut model = BTreeSet::new();
        // Even numbers first (merged into leaves), then odd ones, which interleave with
        // them and partly stay pending.
        for i in (0..4 * PENDING).step_by(2) {
            let k = format!("s/{i:05}");
            index.insert(&mut view, key(&k));
            model.insert(k);
        }
        for i in (1..PENDING).step_by(2) {
            let k = format!("s/{i:05}");
            index.insert(&mut view, key(&k));
            model.insert(k);
        }
        assert!(pending_count(&index) > 0, "the odd keys wait in a batch");
        index.check();
        let all: Vec<String> = model.iter().cloned().collect();
        assert_eq!(names(&index.keys()), all);
        // From a start between a leaf key and a pending one, a few at a time.
        let page = index.collect(Bound::Excluded(b"s/00010"), b"s/", 0, 4);
        assert_eq!(names(&page), ["s/00011", "s/00012", "s/00013", "s/00014"]);
        let page = index.collect(Bound::Included(b"s/00101"), b"s/001", 0, usize::MAX);
        let want: Vec<&String> = all
            .iter()
            .filter(|k| k.starts_with("s/001") && k.as_str() >= "s/00101")
            .collect();
        assert_eq!(names(&page).iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn partitions_split_as_keys_arrive_and_merge_back_as_they_leave() {
        for order in ["ascending", "descending", "scattered"] {
            let index = Index::default();
            let mut view = View::default();
            let n = 60_000u64;
            let handles: Vec<KeyRef> = (0..n)
                .map(|i| match order {
                    "ascending" => i,
                    "descending" => n - 1 - i,
                    _ => i * 7919 % n,
                })
                .map(|i| key(&format!("t/{i:06}")))
                .collect();
            let mut most = 1;
            for (i, h) in handles.iter().enumerate() {
                index.insert(&mut view, h.clone());
                if i % 5000 == 0 {
                    index.check();
                    most = most.max(index.partitions());
                }
            }
            index.check();
            let parts = index.partitions();
            // Each partition holds up to PART_MAX leaves of up to LEAF_MAX keys.
            let least = n as usize / (PART_MAX * LEAF_MAX);
            assert!(parts > least, "{order}: {parts} partitions for {n} keys");
            assert_eq!(index.keys().len(), n as usize, "{order}");
            // Half the keys leave: partitions merge as they empty, and every key left is
            // still listed in order.
            for (i, h) in handles.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
                assert!(index.remove(&mut view, h).is_some(), "{order}");
                if i % 5000 == 0 {
                    index.check();
                }
            }
            index.check();
            let left: Vec<String> = {
                let mut v: Vec<String> = handles
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .map(KeyRef::to_owned_string)
                    .collect();
                v.sort();
                v
            };
            assert_eq!(names(&index.keys()), left, "{order}");
            for h in handles.iter().skip(1).step_by(2) {
                assert!(index.remove(&mut view, h).is_some(), "{order}");
            }
            index.check();
            assert_eq!(index.partitions(), 1, "{order}: merged back to one");
            assert!(most >= parts.min(2));
        }
    }

    #[test]
    fn a_page_locks_only_the_partitions_it_reads() {
        let index = Arc::new(Index::default());
        let mut view = View::default();
        for i in 0..50_000 {
            index.insert(&mut view, key(&format!("a/{i:06}")));
        }
        let dir = index.current.lock().clone();
        assert!(dir.parts.len() > 4, "{} partitions", dir.parts.len());
        // A writer holds the last partition: a page of the first keys must not wait for it.
        let last = dir.parts.last().unwrap().clone();
        let busy = last.data.write();
        let (tx, rx) = std::sync::mpsc::channel();
        let lister = index.clone();
        std::thread::spawn(move || {
            let page = lister.collect(Bound::Unbounded, b"", 0, 10);
            let _ = tx.send(names(&page));
        });
        let page = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a page of 10 waited for a partition it does not read");
        drop(busy);
        assert_eq!(page.len(), 10);
        assert_eq!(page[0], "a/000000");
        // And it read one or two partitions, not all of them.
        index.partitions_read.store(0, Ordering::Relaxed);
        let page = index.collect(Bound::Excluded(b"a/020000"), b"a/", 0, 100);
        assert_eq!(page.len(), 100);
        assert!(index.partitions_read.load(Ordering::Relaxed) <= 2);
    }

    #[test]
    fn removed_keys_keep_nothing_alive() {
        let index = Index::default();
        let mut view = View::default();
        let handles: Vec<KeyRef> = (0..5_000).map(|i| key(&format!("r/{i:05}"))).collect();
        for h in &handles {
            index.insert(&mut view, h.clone());
        }
        for h in &handles {
            drop(index.remove(&mut view, h));
            // Fences are copies of key bytes: no handle of a removed key stays behind.
            assert_eq!(h.header_refs(), 1);
        }
    }

    #[test]
    fn a_stale_view_finds_the_current_partition() {
        let index = Index::default();
        let mut stale = View::default();
        let mut fresh = View::default();
        index.insert(&mut stale, key("x/0"));
        // Another shard's writes split the partition many times over.
        for i in 0..20_000 {
            index.insert(&mut fresh, key(&format!("x/{i:06}")));
        }
        assert!(index.partitions() > 1);
        index.insert(&mut stale, key("x/1"));
        index.check();
        assert_eq!(index.keys().len(), 20_002);
    }

    #[test]
    fn clear_empties_and_stale_views_recover() {
        let index = Index::default();
        let mut view = View::default();
        for i in 0..10_000 {
            index.insert(&mut view, key(&format!("c/{i:05}")));
        }
        drop(index.clear());
        index.check();
        assert!(index.keys().is_empty());
        index.insert(&mut view, key("after"));
        assert_eq!(names(&index.keys()), ["after"]);
    }

    #[test]
    fn equal_runs_of_heads() {
        assert_eq!(equal_run::<u32>(&[], 5), 0);
        assert_eq!(equal_run(&[6, 7], 5), 0);
        assert_eq!(equal_run(&[5, 7], 5), 1);
        assert_eq!(equal_run(&[5], 5), 1);
        assert_eq!(equal_run(&[5, 5, 5, 9], 5), 3);
        assert_eq!(equal_run(&[5, 5], 5), 2);
    }

    #[test]
    fn heads_and_separators() {
        assert_eq!(head32(b"abcde", 1), u32::from_be_bytes(*b"bcde"));
        assert_eq!(head32(b"abc", 2), u32::from_be_bytes([b'c', 0, 0, 0]));
        assert_eq!(head32(b"abc", 5), 0);
        assert_eq!(
            head64(b"ab", 0),
            u64::from_be_bytes([b'a', b'b', 0, 0, 0, 0, 0, 0])
        );
        assert_eq!(&*separator(b"k/0123/x", b"k/0124/a"), b"k/0124");
        assert_eq!(&*separator(b"ab", b"abc"), b"abc");
        assert_eq!(range_offset(b"", Some(b"abc")), 0);
        assert_eq!(range_offset(b"abx", None), 0);
        assert_eq!(range_offset(b"abx", Some(b"aby")), 2);
    }

    #[test]
    fn lists_see_every_write_whole_while_partitions_split_and_merge() {
        let index = Arc::new(Index::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Two writers on disjoint key sets; each key's handle is inserted and removed by
        // its own writer, as a shard would.
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let index = index.clone();
                std::thread::spawn(move || {
                    let mut view = View::default();
                    let mut rng = Rng(w + 7);
                    let mut held = Vec::new();
                    for round in 0..60_000u64 {
                        // Distinct keys (7919 is prime to 60,000), in a scattered order.
                        let k = key(&format!("w/{:06}/{w}", round * 7919 % 60_000));
                        index.insert(&mut view, k.clone());
                        held.push(k);
                        if round % 3 == 2 {
                            let at = rng.below(held.len() as u64) as usize;
                            let k = held.swap_remove(at);
                            assert!(index.remove(&mut view, &k).is_some());
                        }
                    }
                    held.len()
                })
            })
            .collect();
        let lister = {
            let index = index.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut lists = 0;
                while !stop.load(Ordering::Relaxed) {
                    let listed = index.collect(Bound::Unbounded, b"w/0", 0, usize::MAX);
                    for pair in listed.windows(2) {
                        assert!(pair[0].as_bytes() < pair[1].as_bytes(), "not sorted");
                    }
                    lists += 1;
                }
                lists
            })
        };
        let held: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        assert!(lister.join().unwrap() > 0);
        index.check();
        assert_eq!(index.keys().len(), held);
    }
}
