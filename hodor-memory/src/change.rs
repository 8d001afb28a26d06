//! What a write did to the store: the one hook every change goes through.
//!
//! Every path that changes an entry ends in `Store::write` (an entry is put) or
//! `Store::forget` (entries left: deleted, expired, evicted), and `Store::clear` empties
//! the store; each reports its change to `Store::changed` while it still holds the write
//! lock of the key's shard, which orders that key's writes. So a consumer sees each key's
//! changes in the order they took effect, and a store-wide sequence number taken there
//! orders them for the whole store. That is where persistence logs a write (through the
//! store's `WriteLog`) and where the consumers here see it. A store that nothing observes
//! and that does not log checks [`Changes::observed`] and does nothing else.

use std::sync::atomic::AtomicU64;

/// Why an entry left the store: removed on request (`Delete`), past its deadline
/// (`Expire`: reclaimed, or found expired by a delete), or taken to make room (`Evict`).
/// The log records the same reasons.
pub(crate) use crate::persist::Removal;
use crate::shard::Slot;

/// One change, reported under the write lock of the shard that owns the key (for
/// `Cleared`, of every shard).
#[cfg_attr(not(test), allow(dead_code))] // read by the consumers, which only tests have yet
pub(crate) enum Change<'a> {
    /// The key holds the entry in `slot` now, written at store time `now`: created, or
    /// replacing the one it had. `recovered`: loaded from the log at open, which is
    /// history, not a change (nothing watches yet, and nothing is logged again).
    Put {
        slot: &'a Slot,
        created: bool,
        now: u64,
        recovered: bool,
    },
    /// The entry in `slot` left the store.
    Removed { slot: &'a Slot, why: Removal },
    /// Every entry was released at once: the store's last handle was given back.
    Cleared,
}

/// The consumers of a store's changes and the sequence numbers they share.
#[derive(Default)]
pub(crate) struct Changes {
    /// The sequence number of the last change reported.
    pub(crate) seq: AtomicU64,
    #[cfg(test)]
    recorder: tests::Recorder,
}

impl Changes {
    /// Whether anything consumes changes. Writers check this before building a change:
    /// without a consumer it is `false` and the hook costs nothing.
    #[inline(always)]
    pub(crate) fn observed(&self) -> bool {
        #[cfg(test)]
        return self.recorder.on();
        #[cfg(not(test))]
        false
    }

    /// Hands a change and its sequence number to every consumer here.
    #[inline]
    pub(crate) fn consume(&self, seq: u64, change: &Change<'_>) {
        #[cfg(test)]
        self.recorder.record(seq, change);
        let _ = (seq, change);
    }

    /// Starts recording every change (tests).
    #[cfg(test)]
    pub(crate) fn record(&self) {
        self.recorder.start();
    }

    /// The changes recorded so far, in the order they were reported (tests).
    #[cfg(test)]
    pub(crate) fn recorded(&self) -> Vec<tests::Recorded> {
        self.recorder.take()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// What a test consumer saw of one change.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) struct Recorded {
        pub(crate) seq: u64,
        /// The key; empty for `Cleared`.
        pub(crate) key: String,
        pub(crate) what: What,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum What {
        Put { created: bool, value: Vec<u8> },
        Removed(Removal),
        Cleared,
    }

    #[derive(Default)]
    pub(crate) struct Recorder {
        on: AtomicBool,
        log: parking_lot::Mutex<Vec<Recorded>>,
    }

    impl Recorder {
        pub(crate) fn on(&self) -> bool {
            self.on.load(Ordering::Relaxed)
        }

        pub(crate) fn start(&self) {
            self.on.store(true, Ordering::Relaxed);
        }

        pub(crate) fn take(&self) -> Vec<Recorded> {
            std::mem::take(&mut *self.log.lock())
        }

        pub(crate) fn record(&self, seq: u64, change: &Change<'_>) {
            let (key, what) = match change {
                Change::Put { slot, created, .. } => (
                    slot.key.to_owned_string(),
                    What::Put {
                        created: *created,
                        value: slot.value.to_vec(),
                    },
                ),
                Change::Removed { slot, why } => (slot.key.to_owned_string(), What::Removed(*why)),
                Change::Cleared => (String::new(), What::Cleared),
            };
            self.log.lock().push(Recorded { seq, key, what });
        }
    }
}
