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
/// They count what the calls did, exactly:
///
/// - A call that fails counts nothing: a rejected key or TTL, a closed contract, a write
///   refused by the store (`CapacityExceeded`, `Unsupported`) and a backend failure alike.
///   (A failed write may still have reached the backend: see [`Error::Backend`].) The one
///   exception is `get_json`, whose read counts even when the value then fails to decode.
/// - Reads count per key given: `get_many(&["a", "a"])` is two reads, each a hit or a miss.
/// - Bulk writes count per distinct key: `set_many` with a key given twice wrote that key
///   once (its last value), so it counts once; `delete_many` likewise.
/// - `exists` and `stat` count nothing.
///
/// Counts are read without stopping other threads: a snapshot taken while calls run may
/// miss calls that have not returned yet, never counts a call twice.
///
/// Gauges (`entries` onwards) describe the whole store and come from the driver, `None`
/// where it cannot tell.
///
/// Counting costs a few instructions per call and no shared write. A program built with
/// `RUSTFLAGS="--cfg hodor_no_counters"` compiles it out: the operation counters then stay
/// zero and the gauges are unchanged. The switch exists so that `hodor-bench` can measure
/// what counting costs, by timing the same calls built with and without it.
///
/// [`Error::Backend`]: crate::Error::Backend
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Keys read by successful `get`, `get_opt`, `get_json`, `get_many` and
    /// `get_or_insert_with` calls, one per key given: always `hits + misses`.
    pub gets: u64,
    /// Keys read that had a live entry (for `get_or_insert_with`: a value this caller did
    /// not load, found in the store or stored by the caller it waited for).
    pub hits: u64,
    /// Keys read that had none (missing or expired; for `get_or_insert_with`: this caller
    /// ran its loader).
    pub misses: u64,
    /// Keys written by successful `set`, `set_json`, `set_many` and `increment` calls, and
    /// by `create`, `set_if_version` and `get_or_insert_with` calls that wrote; a
    /// `set_many` counts each distinct key once.
    pub sets: u64,
    /// Keys given to successful `delete` and `delete_many` calls, whether or not a live
    /// entry was there to remove; a `delete_many` counts each distinct key once.
    pub deletes: u64,
    /// Successful calls to `list` and `list_page` (one per page).
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
    /// Watches open on the store in this process (every contract's), if the driver can
    /// watch.
    pub watches: Option<u64>,
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
/// stripes with `fetch_add`; such a thread remembers its shared stripe, so it pays one scan
/// of the claims at its first count and one every [`RECLAIM_EVERY`] counts after, never
/// one per count. A thread gives its owned stripe back when it exits.
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

/// [`STRIPE`] before a thread's first count.
const UNASSIGNED: usize = usize::MAX;

/// A thread that found no free owned stripe looks again after this many counts on a shared
/// one: rarely enough that the scan costs nothing per call, often enough that a long-lived
/// thread of a pool whose other threads exited gets back to counting without a locked
/// instruction.
const RECLAIM_EVERY: u32 = 4096;

#[cfg(test)]
thread_local! {
    /// How often this thread scanned the claims: what the tests check instead of timing.
    static CLAIM_SCANS: Cell<usize> = const { Cell::new(0) };
}

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
/// first owns a stripe, so the hot path reads just [`STRIPE`], a plain thread-local with no
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
    /// This thread's stripe: an index below `claims().len()` is owned, [`UNASSIGNED`] means
    /// the thread has not counted yet, anything else is a shared stripe the thread keeps
    /// until its next reclaim attempt. Remembering the shared stripe is what keeps a thread
    /// beyond the owned stripes at O(1) per count: without it, every count rescanned the
    /// claims.
    static STRIPE: Cell<usize> = const { Cell::new(UNASSIGNED) };
    static GUARD: Cell<Option<StripeGuard>> = const { Cell::new(None) };
    /// Counts left on a shared stripe before the next reclaim attempt.
    static SHARED_LEFT: Cell<u32> = const { Cell::new(0) };
}

/// This thread's stripe, assigning one at its first count.
fn thread_stripe() -> usize {
    let index = STRIPE.get();
    if index != UNASSIGNED {
        return index;
    }
    assign_stripe()
}

/// Claims a free owned stripe for this thread, or makes it a sharer that will not look
/// again for [`RECLAIM_EVERY`] counts. Returns the stripe to count on now.
#[cold]
fn assign_stripe() -> usize {
    static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);
    let claims = claims();
    #[cfg(test)]
    CLAIM_SCANS.set(CLAIM_SCANS.get() + 1);
    // A plain load first: a full table costs one shared read per stripe, not a
    // read-modify-write that would pull every line exclusive.
    let owned = claims.iter().position(|c| {
        !c.load(Ordering::Relaxed)
            && c.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    });
    let shared = || claims.len() + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % shared_stripes();
    let Some(index) = owned else {
        let index = shared();
        STRIPE.set(index);
        SHARED_LEFT.set(RECLAIM_EVERY);
        return index;
    };
    // If the guard cannot be stored (the thread is exiting), give the stripe back now and
    // count on a shared one; STRIPE stays unset, so nothing outlives the thread's locals.
    if GUARD.try_with(|g| g.set(Some(StripeGuard(index)))).is_err() {
        if let Some(claim) = claims.get(index) {
            claim.store(false, Ordering::Release);
        }
        return shared();
    }
    STRIPE.set(index);
    index
}

/// The shared path's bookkeeping: after [`RECLAIM_EVERY`] counts on a shared stripe the
/// thread forgets it, so its next count looks for a free owned stripe again.
#[inline]
fn count_down_to_reclaim() {
    let left = SHARED_LEFT.get();
    if left > 1 {
        SHARED_LEFT.set(left - 1);
    } else {
        STRIPE.set(UNASSIGNED);
    }
}

/// Adds to a counter of an owned stripe. Only the owning thread writes it, so no
/// read-modify-write is needed; readers may see a count a moment old, never a torn one.
#[inline]
fn add_owned(cell: &AtomicU64, n: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl Counters {
    pub(crate) fn new() -> Counters {
        let stripes = |n: usize| (0..n).map(|_| Stripe::default()).collect();
        Counters {
            owned: stripes(claims().len()),
            shared: stripes(shared_stripes()),
        }
    }

    /// The owned-stripe case is all the hot path holds: one thread-local read, and one
    /// bounds check that also sends [`UNASSIGNED`] (a thread's first count) and the shared
    /// stripes' indexes to [`Counters::add_slow`]. Anything more inline (a separate test
    /// for `UNASSIGNED`, the shared path's bookkeeping) cost every `get` instructions and
    /// registers (callgrind, `Contract::get` hit).
    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        match self.owned.get(STRIPE.get()) {
            Some(stripe) => add_owned(stripe.cell(counter), n),
            None => self.add_slow(counter, n),
        }
    }

    /// A thread's first count, and every count of a thread on a shared stripe.
    #[cold]
    #[inline(never)]
    fn add_slow(&self, counter: Counter, n: u64) {
        let index = thread_stripe();
        if let Some(stripe) = self.owned.get(index) {
            add_owned(stripe.cell(counter), n);
        } else if let Some(stripe) = self.shared.get(index % self.shared.len().max(1)) {
            stripe.cell(counter).fetch_add(n, Ordering::Relaxed);
            count_down_to_reclaim();
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
            watches: gauges.watches,
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

    /// Holds every owned stripe with live threads until the returned guard is dropped, so
    /// any other thread that counts meanwhile must share.
    fn occupy_every_owned_stripe(counters: &std::sync::Arc<Counters>) -> impl Drop {
        struct Release(
            Option<std::sync::mpsc::Sender<()>>,
            Vec<std::thread::JoinHandle<()>>,
        );
        impl Drop for Release {
            fn drop(&mut self) {
                drop(self.0.take());
                for h in self.1.drain(..) {
                    h.join().unwrap();
                }
            }
        }
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let stop_rx = std::sync::Arc::new(std::sync::Mutex::new(stop_rx));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handles = (0..claims().len())
            .map(|_| {
                let (c, ready, stop) = (counters.clone(), ready_tx.clone(), stop_rx.clone());
                std::thread::spawn(move || {
                    c.add(Counter::Hits, 1);
                    ready.send(thread_stripe()).unwrap();
                    // Wait for the sender to go: every holder wakes with an error then.
                    let _ = stop.lock().unwrap().recv();
                })
            })
            .collect();
        let held: Vec<usize> = (0..claims().len())
            .map(|_| ready_rx.recv().unwrap())
            .collect();
        // The test holds SERIAL, so only its own threads claim: all of them own one.
        assert!(held.iter().all(|&i| i < claims().len()), "{held:?}");
        Release(Some(stop_tx), handles)
    }

    #[test]
    fn a_thread_that_finds_no_free_stripe_shares_without_scanning_again() {
        let _serial = serial();
        let counters = std::sync::Arc::new(Counters::new());
        let holders = occupy_every_owned_stripe(&counters);
        let c = counters.clone();
        let (first, later_scans, index) = std::thread::spawn(move || {
            c.add(Counter::Sets, 1);
            let first = CLAIM_SCANS.get();
            for _ in 0..1000 {
                c.add(Counter::Sets, 1);
            }
            (first, CLAIM_SCANS.get() - first, STRIPE.get())
        })
        .join()
        .unwrap();
        drop(holders);
        assert_eq!(first, 1, "the first call looks for a free stripe once");
        assert!(
            later_scans <= 1000 / RECLAIM_EVERY as usize,
            "a sharer scanned the claims {later_scans} times in 1000 calls"
        );
        assert!(
            index >= claims().len() && index != UNASSIGNED,
            "after a failed claim the thread remembers it shares (stripe {index})"
        );
        assert_eq!(counters.snapshot(Gauges::default()).sets, 1001);
    }

    #[test]
    fn a_sharer_takes_an_owned_stripe_once_one_is_free() {
        let _serial = serial();
        let counters = std::sync::Arc::new(Counters::new());
        let holders = occupy_every_owned_stripe(&counters);
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (shared_tx, shared_rx) = std::sync::mpsc::channel();
        let c = counters.clone();
        let sharer = std::thread::spawn(move || {
            c.add(Counter::Lists, 1);
            shared_tx.send(STRIPE.get()).unwrap();
            go_rx.recv().unwrap();
            for _ in 0..2 * RECLAIM_EVERY {
                c.add(Counter::Lists, 1);
            }
            STRIPE.get()
        });
        let shared = shared_rx.recv().unwrap();
        drop(holders); // the owners exit and give their stripes back
        go_tx.send(()).unwrap();
        let later = sharer.join().unwrap();
        assert!(
            shared >= claims().len() && shared != UNASSIGNED,
            "first a sharer that remembers it shares: {shared}"
        );
        assert!(later < claims().len(), "then an owner: {later}");
        assert_eq!(
            counters.snapshot(Gauges::default()).lists,
            1 + 2 * u64::from(RECLAIM_EVERY)
        );
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
