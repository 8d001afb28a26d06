//! The recursion guard: a thread-local flag that is set on the sink's worker thread for its
//! whole life, and on an application thread while it formats a record.
//!
//! An event that arrives while the flag is set is ignored. That covers the two ways a sink
//! could feed itself: the storage calls the worker makes (a driver, or `hodor-core`, that
//! logs through `tracing` or `log` does so on the worker thread), and a value whose `Debug`
//! or `Display` implementation logs while a record is being formatted (which would also
//! re-enter the thread's format buffer).

use std::cell::Cell;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Proof that this thread entered the sink; leaving is on drop, so a panic in a user's
/// `Debug` implementation does not leave the flag set.
pub(crate) struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = ACTIVE.try_with(|a| a.set(false));
    }
}

/// Enters the sink on this thread, or `None` when this thread is already inside it (or is
/// being torn down, when its thread-locals are gone).
pub(crate) fn enter() -> Option<Entered> {
    ACTIVE
        .try_with(|a| {
            if a.get() {
                None
            } else {
                a.set(true);
                Some(Entered(()))
            }
        })
        .ok()
        .flatten()
}

/// Marks the calling thread as a sink worker, for good.
pub(crate) fn mark_worker() {
    let _ = ACTIVE.try_with(|a| a.set(true));
}

/// Whether this thread is inside a sink (or is a worker).
pub(crate) fn active() -> bool {
    ACTIVE.try_with(Cell::get).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entering_twice_is_refused_until_the_first_leaves() {
        let outer = enter().expect("first entry");
        assert!(active());
        assert!(enter().is_none());
        drop(outer);
        assert!(!active());
        assert!(enter().is_some());
    }

    #[test]
    fn a_worker_thread_never_enters() {
        std::thread::spawn(|| {
            mark_worker();
            assert!(enter().is_none());
        })
        .join()
        .unwrap();
        assert!(enter().is_some(), "other threads are unaffected");
    }
}
