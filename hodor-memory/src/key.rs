//! A stored key: one allocation holding the key's bytes and its expiry.
//!
//! This module is the memory driver's only `unsafe` code: a reference-counted thin
//! allocation like `Arc`, with a header a third smaller than a general-purpose one. It pays:
//! measured with a counting allocator over a million entries, an entry's overhead beyond its
//! key and value falls from about 102 to about 90 bytes.
//!
//! The same allocation is shared by a shard's slot, the ordered index and the expiry queue,
//! so a key is stored once. Its expiry lives beside the bytes, in an atomic, so `list` can
//! skip expired keys from the index alone, without locking the shards. The header also
//! keeps the tie-breaker of the entry's version (see `store::Store::version`), in bits a
//! 1024-byte key's length leaves free, so a version costs no byte per entry.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering, fence};

use hodor_core::MAX_KEY_LEN;

/// Set in the expiry word when the entry was read since the eviction hand last passed it.
const VISITED: u64 = 1 << 63;
/// Deadlines are nanoseconds on the store's monotonic timeline below this bound (292 years
/// after the store was opened; its clock stops well before, see `store::NOW_CEILING`).
pub(crate) const MAX_EXPIRY: u64 = VISITED - 1;

/// The start of a key allocation; the key's bytes follow it directly.
///
/// 16 bytes, where a general-purpose thin `Arc` spends 24 (a `usize` count and length) and
/// pads the bytes to 8: at a million entries the key header is a quarter of an entry's
/// overhead, and keys are at most 1024 bytes, so a `u32` count and a `u16` length are
/// plenty, which leaves 16 bits for the version's tie-breaker.
#[repr(C)]
struct Header {
    refs: AtomicU32,
    /// Written once, before the `KeyRef` exists.
    len: u16,
    /// The tie-breaker of the entry's version: written by writers under the shard's write
    /// lock, read under its read lock. Atomic only because the header is shared with the
    /// index, whose readers hold no shard lock (they never read this field).
    seq: AtomicU16,
    /// `expiry & !VISITED` is the instant (ns on the store's monotonic timeline) from which
    /// the entry is gone, 0 for never.
    expiry: AtomicU64,
}

/// A reference-counted key: the same allocation is shared by a shard's slot, the ordered
/// index and the expiry queue.
pub(crate) struct KeyRef {
    header: NonNull<Header>,
}

// SAFETY: a KeyRef is a shared reference to an allocation whose only mutable parts are
// atomics (the count and the expiry word); the key bytes are written once, before the
// KeyRef exists, and never again. Sharing and sending it is as safe as for `Arc<Header>`.
unsafe impl Send for KeyRef {}
// SAFETY: as above.
unsafe impl Sync for KeyRef {}

fn layout(len: usize) -> Layout {
    // `len` is at most MAX_KEY_LEN (see `KeyRef::new`), so this never fails; the fallback
    // keeps a bug from becoming undefined behaviour.
    Layout::new::<Header>()
        .extend(Layout::array::<u8>(len).unwrap_or(Layout::new::<u8>()))
        .map_or(Layout::new::<Header>(), |(layout, _)| layout)
}

impl KeyRef {
    /// A new key allocation, or `None` if `key` is longer than [`MAX_KEY_LEN`]: the
    /// length is stored in 16 bits and the bytes are later read back as UTF-8 without a
    /// check, so a longer key must never get here truncated. The driver refuses such keys
    /// first; this keeps the allocation sound on its own.
    pub(crate) fn new(key: &str, expires: u64) -> Option<KeyRef> {
        let bytes = key.as_bytes();
        if bytes.len() > MAX_KEY_LEN {
            return None;
        }
        let len = u16::try_from(bytes.len()).ok()?;
        let layout = layout(len as usize);
        // SAFETY: the layout has a non-zero size (the header). The header is written in
        // full, then exactly `len` bytes after it, all inside the allocation (the layout is
        // the header extended by `len` bytes, and `len` is all of `bytes`: it was checked
        // to fit in 32 bits, not truncated).
        unsafe {
            let raw = alloc(layout).cast::<Header>();
            let Some(header) = NonNull::new(raw) else {
                handle_alloc_error(layout)
            };
            header.as_ptr().write(Header {
                refs: AtomicU32::new(1),
                len,
                seq: AtomicU16::new(0),
                expiry: AtomicU64::new(expires.min(MAX_EXPIRY)),
            });
            let data = header.as_ptr().add(1).cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, len as usize);
            Some(KeyRef { header })
        }
    }

    /// How many references the allocation has.
    #[cfg(test)]
    pub(crate) fn header_refs(&self) -> u32 {
        self.header().refs.load(Ordering::Relaxed)
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the allocation lives while any KeyRef to it does (reference counted).
        unsafe { self.header.as_ref() }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let len = self.header().len as usize;
        // SAFETY: `len` initialized bytes follow the header (see `new`) and are never
        // written again; they live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.header.as_ptr().add(1).cast::<u8>(), len) }
    }

    /// The tie-breaker of the entry's version (see the header).
    #[inline]
    pub(crate) fn seq(&self) -> u16 {
        self.header().seq.load(Ordering::Relaxed)
    }

    /// Sets the tie-breaker; called by a writer holding the shard's write lock, whose
    /// release publishes it to readers.
    #[inline]
    pub(crate) fn set_seq(&self, seq: u16) {
        self.header().seq.store(seq, Ordering::Relaxed);
    }

    #[inline]
    fn word(&self) -> &AtomicU64 {
        &self.header().expiry
    }

    /// The expiry instant, 0 for never.
    #[inline]
    pub(crate) fn expires(&self) -> u64 {
        self.word().load(Ordering::Acquire) & !VISITED
    }

    /// Live at `now`: no expiry, or `now` strictly before it.
    #[inline]
    pub(crate) fn is_live(&self, now: u64) -> bool {
        let expires = self.expires();
        expires == 0 || now < expires
    }

    /// Replaces the expiry, keeping the visited bit that readers may be setting concurrently.
    pub(crate) fn set_expires(&self, expires: u64) {
        let expires = expires.min(MAX_EXPIRY);
        let _ = self
            .word()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                Some((w & VISITED) | expires)
            });
    }

    /// Marks the entry as read. Writes only when the mark is clear, so a hot key's cache
    /// line stays shared between cores instead of bouncing on every hit.
    #[inline]
    pub(crate) fn mark_visited(&self) {
        let word = self.word();
        if word.load(Ordering::Relaxed) & VISITED == 0 {
            word.fetch_or(VISITED, Ordering::Relaxed);
        }
    }

    /// Clears the read mark and says whether it was set: the eviction hand's second chance.
    pub(crate) fn take_visited(&self) -> bool {
        let word = self.word();
        word.load(Ordering::Relaxed) & VISITED != 0
            && word.fetch_and(!VISITED, Ordering::Relaxed) & VISITED != 0
    }

    /// Whether both handles are on one allocation (the same stored key, not merely equal
    /// bytes).
    #[inline]
    pub(crate) fn same(&self, other: &KeyRef) -> bool {
        self.header == other.header
    }

    /// The key as a `String`, without re-checking UTF-8: listing copies every matching key,
    /// and the check was most of the cost per key.
    pub(crate) fn to_owned_string(&self) -> String {
        let bytes = self.as_bytes().to_vec();
        // SAFETY: the bytes are the whole of a `&str` copied in `new` (which refuses lengths
        // it would have to truncate, so never a cut inside a character) and never written
        // again, so they are valid UTF-8.
        unsafe { String::from_utf8_unchecked(bytes) }
    }
}

impl Clone for KeyRef {
    #[inline]
    fn clone(&self) -> KeyRef {
        // Relaxed, as in `Arc::clone`: a new reference comes from an existing one, which
        // keeps the allocation alive; no other memory is published through the count.
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        // A key has a handful of references (slot, index, deadlines, and one per `list`
        // running over it); running the count towards overflow means a leak bug, and
        // wrapping would free memory still in use.
        if old > u32::MAX / 2 {
            std::process::abort();
        }
        KeyRef {
            header: self.header,
        }
    }
}

impl Drop for KeyRef {
    fn drop(&mut self) {
        // Release, then an Acquire fence before freeing, as in `Arc::drop`: every use of
        // the key by other owners happens before the memory is returned.
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let layout = layout(self.header().len as usize);
        // SAFETY: this was the last reference, so nothing else can reach the allocation;
        // it was allocated in `new` with this same layout (same `len`).
        unsafe { dealloc(self.header.as_ptr().cast::<u8>(), layout) }
    }
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl PartialEq for KeyRef {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for KeyRef {}

impl PartialOrd for KeyRef {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyRef {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Lets the ordered index be searched with a plain `&[u8]` prefix.
impl Borrow<[u8]> for KeyRef {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_read_mark_are_independent() {
        let k = KeyRef::new("a", 10).unwrap();
        assert_eq!(k.expires(), 10);
        k.mark_visited();
        assert_eq!(k.expires(), 10);
        k.set_expires(20);
        assert_eq!(k.expires(), 20);
        assert!(k.take_visited());
        assert!(!k.take_visited());
        assert_eq!(k.expires(), 20);
    }

    #[test]
    fn liveness_is_strictly_before_expiry() {
        let k = KeyRef::new("a", 100).unwrap();
        assert!(k.is_live(99));
        assert!(!k.is_live(100));
        assert!(KeyRef::new("b", 0).unwrap().is_live(u64::MAX));
    }

    #[test]
    fn expiry_beyond_the_representable_range_is_clamped() {
        let k = KeyRef::new("a", u64::MAX).unwrap();
        assert_eq!(k.expires(), MAX_EXPIRY);
    }

    #[test]
    fn ordering_is_by_bytes() {
        let mut keys = [
            KeyRef::new("t/", 0).unwrap(),
            KeyRef::new("T", 0).unwrap(),
            KeyRef::new("t-/", 0).unwrap(),
        ];
        keys.sort();
        let names: Vec<String> = keys.iter().map(KeyRef::to_owned_string).collect();
        assert_eq!(names, ["T", "t-/", "t/"]);
    }

    #[test]
    fn the_allocation_is_one_pointer_wide_with_a_16_byte_header() {
        assert_eq!(std::mem::size_of::<KeyRef>(), 8);
        assert_eq!(std::mem::size_of::<Header>(), 16);
        assert_eq!(layout(21).size(), 37);
        assert_eq!(layout(0).size(), 16);
    }

    #[test]
    fn clones_share_one_allocation_that_outlives_all_but_the_last() {
        let a = KeyRef::new("shared/key", 5).unwrap();
        let b = a.clone();
        let c = b.clone();
        assert!(a.same(&c));
        drop(a);
        drop(b);
        assert_eq!(c.as_bytes(), b"shared/key");
        assert_eq!(c.expires(), 5);
        assert!(!KeyRef::new("shared/key", 5).unwrap().same(&c));
    }

    #[test]
    fn keys_of_every_length_round_trip() {
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 1024] {
            let key = "k".repeat(len);
            let k = KeyRef::new(&key, 0).unwrap();
            assert_eq!(k.as_bytes(), key.as_bytes());
            assert_eq!(k.to_owned_string(), key);
        }
        let emoji = "é😀/..";
        assert_eq!(KeyRef::new(emoji, 0).unwrap().to_owned_string(), emoji);
    }

    #[test]
    fn a_key_longer_than_the_limit_is_refused_not_truncated() {
        assert!(KeyRef::new(&"k".repeat(MAX_KEY_LEN + 1), 0).is_none());
        assert!(KeyRef::new(&"é".repeat(MAX_KEY_LEN), 0).is_none());
        let longest = "é".repeat(MAX_KEY_LEN / 2);
        assert_eq!(KeyRef::new(&longest, 0).unwrap().to_owned_string(), longest);
    }

    #[test]
    fn clones_and_drops_from_many_threads_free_exactly_once() {
        let k = KeyRef::new("contended", 0).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        let c = k.clone();
                        assert_eq!(c.as_bytes(), b"contended");
                    }
                });
            }
        });
        assert_eq!(k.header().refs.load(Ordering::Relaxed), 1);
    }
}
