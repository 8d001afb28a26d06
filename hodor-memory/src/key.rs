//! A stored key: one allocation holding the key's bytes and its expiry.
//!
//! The same allocation is shared by a shard's slot, the ordered index and the expiry queue,
//! so a key is stored once. Its expiry lives beside the bytes, in an atomic, so `list` can
//! skip expired keys from the index alone, without locking the shards.

use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use triomphe::ThinArc;

/// Set in the expiry word when the entry was read since the eviction hand last passed it.
const VISITED: u64 = 1 << 63;
/// Expiry instants are nanoseconds since the Unix epoch below this bound (the year 2262).
pub(crate) const MAX_EXPIRY: u64 = VISITED - 1;

/// A key plus its expiry word: `expiry & !VISITED` is the instant (ns since the Unix epoch)
/// from which the entry is gone, 0 for never.
#[derive(Clone)]
pub(crate) struct KeyRef(ThinArc<AtomicU64, u8>);

impl KeyRef {
    pub(crate) fn new(key: &str, expires: u64) -> KeyRef {
        KeyRef(ThinArc::from_header_and_slice(
            AtomicU64::new(expires.min(MAX_EXPIRY)),
            key.as_bytes(),
        ))
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0.slice
    }

    #[inline]
    fn word(&self) -> &AtomicU64 {
        &self.0.header.header
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

    pub(crate) fn same(&self, other: &KeyRef) -> bool {
        std::ptr::eq(self.0.ptr(), other.0.ptr())
    }

    /// The key as a `String`. Keys are built from `&str`, so the bytes are UTF-8; the lossy
    /// conversion only avoids a panic path.
    pub(crate) fn to_string_lossy(&self) -> String {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(self.as_bytes()).into_owned(),
        }
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
        let k = KeyRef::new("a", 10);
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
        let k = KeyRef::new("a", 100);
        assert!(k.is_live(99));
        assert!(!k.is_live(100));
        assert!(KeyRef::new("b", 0).is_live(u64::MAX));
    }

    #[test]
    fn expiry_beyond_the_representable_range_is_clamped() {
        let k = KeyRef::new("a", u64::MAX);
        assert_eq!(k.expires(), MAX_EXPIRY);
    }

    #[test]
    fn ordering_is_by_bytes() {
        let mut keys = [
            KeyRef::new("t/", 0),
            KeyRef::new("T", 0),
            KeyRef::new("t-/", 0),
        ];
        keys.sort();
        let names: Vec<String> = keys.iter().map(KeyRef::to_string_lossy).collect();
        assert_eq!(names, ["T", "t-/", "t/"]);
    }

    #[test]
    fn the_allocation_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<KeyRef>(), 8);
    }
}
