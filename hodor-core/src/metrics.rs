//! Operation counters kept by the `Contract` layer, and the [`Metrics`] snapshot.
//!
//! Counting must not serialize threads, so there is no single atomic that every `get` bumps:
//! each thread adds to one of several cache-line-sized stripes, and a snapshot sums them.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::driver::Gauges;

/// A snapshot of a contract's counters and its driver's gauges.
///
/// Operation counters (`gets` ... `lists`) count calls through this contract handle and its
/// clones since it was opened; a second `Contract::new` on the same store counts separately.
/// Bulk calls count once per key. Gauges (`entries` onwards) describe the whole store and
/// come from the driver, `None` where it cannot tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Keys read by `get`, `get_json` and `get_many`: `hits + misses`.
    pub gets: u64,
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing (missing or expired).
    pub misses: u64,
    /// Entries written by `set`, `set_json` and `set_many`.
    pub sets: u64,
    /// Keys passed to `delete` and `delete_many`, removed or not.
    pub deletes: u64,
    /// Calls to `list`.
    pub lists: u64,
    /// Entries resident in the store now.
    pub entries: Option<u64>,
    /// Bytes charged against the byte limit now.
    pub bytes: Option<u64>,
    /// Live entries evicted to make room, since the store was created.
    pub evictions: Option<u64>,
    /// Expired entries reclaimed, since the store was created.
    pub expirations: Option<u64>,
    /// The configured byte limit, if any.
    pub max_bytes: Option<u64>,
    /// The configured entry limit, if any.
    pub max_entries: Option<u64>,
}

#[derive(Default)]
#[repr(align(128))] // two cache lines: adjacent-line prefetch would otherwise share them
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    lists: AtomicU64,
}

/// Striped operation counters.
pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
}

/// Which counter to bump.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Hits,
    Misses,
    Sets,
    Deletes,
    Lists,
}

fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, usize::from);
        cpus.next_power_of_two().clamp(2, 32)
    })
}

/// This thread's stripe number, assigned round-robin the first time a thread counts.
#[inline]
fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        // A const initializer makes the access a plain load, with no lazy-init state check.
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let stripe = s.get();
        if stripe != usize::MAX {
            return stripe;
        }
        let assigned = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
        s.set(assigned);
        assigned
    })
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            stripes: (0..stripe_count()).map(|_| Stripe::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let len = self.stripes.len();
        // len is a power of two and never zero, so the mask keeps the index in range.
        let Some(stripe) = self.stripes.get(thread_stripe() & (len - 1)) else {
            return;
        };
        let cell = match counter {
            Counter::Hits => &stripe.hits,
            Counter::Misses => &stripe.misses,
            Counter::Sets => &stripe.sets,
            Counter::Deletes => &stripe.deletes,
            Counter::Lists => &stripe.lists,
        };
        cell.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, gauges: Gauges) -> Metrics {
        let sum = |f: fn(&Stripe) -> &AtomicU64| {
            self.stripes
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .fold(0u64, u64::wrapping_add)
        };
        let hits = sum(|s| &s.hits);
        let misses = sum(|s| &s.misses);
        Metrics {
            gets: hits.wrapping_add(misses),
            hits,
            misses,
            sets: sum(|s| &s.sets),
            deletes: sum(|s| &s.deletes),
            lists: sum(|s| &s.lists),
            entries: gauges.entries,
            bytes: gauges.bytes,
            evictions: gauges.evictions,
            expirations: gauges.expirations,
            max_bytes: gauges.max_bytes,
            max_entries: gauges.max_entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counters = std::sync::Arc::new(Counters::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = counters.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(Counter::Hits, 1);
                        c.add(Counter::Sets, 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        counters.add(Counter::Misses, 5);
        let m = counters.snapshot(Gauges::default());
        assert_eq!((m.hits, m.misses, m.gets, m.sets), (8000, 5, 8005, 16000));
        assert_eq!(m.entries, None);
    }

    #[test]
    fn stripes_are_cache_line_sized_and_a_power_of_two() {
        assert_eq!(std::mem::align_of::<Stripe>(), 128);
        assert!(stripe_count().is_power_of_two());
    }
}
