//! Operation counters kept by the `Contract` layer, and the [`Metrics`] snapshot.
//!
//! Counting must not serialize threads, so there is no single atomic that every `get` bumps:
//! each thread adds to one of several cache-line-sized stripes, and a snapshot sums them.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

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
    /// Persistent stores: bytes of log on disk since the latest snapshot.
    pub log_bytes: Option<u64>,
    /// Persistent stores: milliseconds since the latest snapshot was begun.
    pub snapshot_age_ms: Option<u64>,
    /// Persistent stores: `fsync` calls on the log since the store was opened.
    pub fsyncs: Option<u64>,
    /// Persistent stores: how long recovery took at open, in microseconds.
    pub recovery_micros: Option<u64>,
    /// Persistent stores: snapshot entries and log records replayed at open.
    pub recovery_records: Option<u64>,
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

impl Stripe {
    #[inline]
    fn cell(&self, counter: Counter) -> &AtomicU64 {
        match counter {
            Counter::Hits => &self.hits,
            Counter::Misses => &self.misses,
            Counter::Sets => &self.sets,
            Counter::Deletes => &self.deletes,
            Counter::Lists => &self.lists,
        }
    }
}

/// Striped operation counters.
///
/// A live thread owns one of the `owned` stripes exclusively (the same index in every
/// `Counters`), so it counts with a plain load and store. A locked read-modify-write would
/// cost little by itself, but on x86 it is a full barrier: it waits for the `get`'s cache
/// misses and keeps the next call's loads from starting early, which measured 17% of a get
/// at a million keys. Threads beyond the number of owned stripes share a few `shared`
/// stripes with `fetch_add`. A thread gives its stripe back when it exits.
pub(crate) struct Counters {
    owned: Box<[Stripe]>,
    shared: Box<[Stripe]>,
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

/// Stripes shared by threads beyond the owned ones: half as many as owned, at least four,
/// so a large thread pool spreads over several lines instead of piling onto one.
fn shared_stripes() -> usize {
    (claims().len() / 2).max(4)
}
const UNASSIGNED: usize = usize::MAX;

/// Which owned stripes live threads hold.
fn claims() -> &'static [AtomicBool] {
    static CLAIMS: OnceLock<Box<[AtomicBool]>> = OnceLock::new();
    CLAIMS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, usize::from);
        let count = (cpus * 2).next_power_of_two().clamp(8, 128);
        (0..count).map(|_| AtomicBool::new(false)).collect()
    })
}

/// Gives a thread's owned stripe back when the thread exits. Created only when a thread
/// first counts, so the hot path reads just [`STRIPE`], a plain thread-local with no
/// destructor and hence no liveness check.
struct StripeGuard(usize);

impl Drop for StripeGuard {
    fn drop(&mut self) {
        STRIPE.set(UNASSIGNED);
        if let Some(claim) = claims().get(self.0) {
            // Release: the stripe's next owner starts from this thread's last counts.
            claim.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    /// This thread's stripe: an index below `claims().len()` is owned, anything else picks
    /// a shared stripe.
    static STRIPE: Cell<usize> = const { Cell::new(UNASSIGNED) };
    static GUARD: Cell<Option<StripeGuard>> = const { Cell::new(None) };
}

#[inline]
fn thread_stripe() -> usize {
    let index = STRIPE.get();
    if index != UNASSIGNED {
        return index;
    }
    assign_stripe()
}

#[cold]
fn assign_stripe() -> usize {
    static OVERFLOW: AtomicUsize = AtomicUsize::new(0);
    let claims = claims();
    let owned = claims.iter().position(|c| {
        c.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    });
    let Some(index) = owned else {
        return claims.len() + OVERFLOW.fetch_add(1, Ordering::Relaxed) % shared_stripes();
    };
    // If the guard cannot be stored (the thread is exiting), give the stripe back now and
    // count on a shared one.
    if GUARD.try_with(|g| g.set(Some(StripeGuard(index)))).is_err() {
        if let Some(claim) = claims.get(index) {
            claim.store(false, Ordering::Release);
        }
        return claims.len();
    }
    STRIPE.set(index);
    index
}

impl Counters {
    pub(crate) fn new() -> Counters {
        let stripes = |n: usize| (0..n).map(|_| Stripe::default()).collect();
        Counters {
            owned: stripes(claims().len()),
            shared: stripes(shared_stripes()),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let index = thread_stripe();
        if let Some(stripe) = self.owned.get(index) {
            // Only the owning thread writes this stripe, so no read-modify-write is needed;
            // readers may see a count a moment old, never a torn one.
            let cell = stripe.cell(counter);
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        } else if let Some(stripe) = self.shared.get(index % self.shared.len().max(1)) {
            stripe.cell(counter).fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, gauges: Gauges) -> Metrics {
        let sum = |f: fn(&Stripe) -> &AtomicU64| {
            self.owned
                .iter()
                .chain(self.shared.iter())
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
            log_bytes: gauges.log_bytes,
            snapshot_age_ms: gauges.snapshot_age_ms,
            fsyncs: gauges.fsyncs,
            recovery_micros: gauges.recovery_micros,
            recovery_records: gauges.recovery_records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that spawn counting threads run one at a time: one checks which stripes
    /// threads get, which the others' threads would disturb.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn counts_from_many_threads_add_up() {
        let _serial = serial();
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
    fn stripes_are_cache_line_sized() {
        assert_eq!(std::mem::align_of::<Stripe>(), 128);
    }

    #[test]
    fn more_threads_than_owned_stripes_still_count_exactly() {
        let _serial = serial();
        let threads = claims().len() * 3;
        let counters = std::sync::Arc::new(Counters::new());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (c, b) = (counters.clone(), barrier.clone());
                // All alive at once, so most of them must share stripes.
                std::thread::spawn(move || {
                    b.wait();
                    for _ in 0..500 {
                        c.add(Counter::Deletes, 1);
                    }
                    b.wait();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let m = counters.snapshot(Gauges::default());
        assert_eq!(m.deletes, threads as u64 * 500);
    }

    #[test]
    fn an_exited_thread_gives_its_stripe_back() {
        let _serial = serial();
        // Threads one after another, many more than there are owned stripes: each must
        // still get an owned stripe, which holds only if exited threads give theirs back.
        let owned = claims().len();
        let counters = std::sync::Arc::new(Counters::new());
        for _ in 0..owned * 3 {
            let c = counters.clone();
            let index = std::thread::spawn(move || {
                c.add(Counter::Lists, 1);
                thread_stripe()
            })
            .join()
            .unwrap();
            assert!(
                index < owned,
                "thread got shared stripe {index}: owned stripes leak"
            );
        }
        assert_eq!(counters.snapshot(Gauges::default()).lists, owned as u64 * 3);
    }
}
