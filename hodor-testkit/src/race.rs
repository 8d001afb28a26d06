//! Races that happen in every run: threads released together on the same key, round after
//! round, and readers that keep reading for as long as writers write.
//!
//! A racy driver fails only when two threads are inside the racy window at once. Released
//! from a sleeping barrier, threads wake tens of microseconds apart and rarely meet in a
//! window of a few microseconds; released from a spinning one, the threads that are on a
//! core start within a fraction of a microsecond, on the same key. Readers are paced by the
//! writers the other way round: a writer keeps writing until every reader has read a
//! minimum number of times, so reads overlap writes however the threads are scheduled.
//! Both repeat at least [`MIN_ROUNDS`] (or [`MIN_WRITES`]) times and then for
//! [`RACE_TIME`], so a fast driver is tried thousands of times.
//!
//! What this catches in every run: a window that holds a scheduling point, such as a
//! backend call, a lock the thread waits for, or a yield (the mutation suite's racy
//! drivers, each rejected in every run). What it cannot promise: a window of a few
//! nanoseconds between two holds of an uncontended in-process lock, which a thread can
//! retake before any other is scheduled; such a bug is caught in some runs only, and
//! needs a model checker (loom) to be found every time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hodor_core::Contract;

use crate::ctx::parallel;

/// A barrier whose waiters spin (then yield, so an oversubscribed machine still makes
/// progress), and which any thread can break so the others stop waiting.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    broken: AtomicBool,
}

impl SpinBarrier {
    fn new(threads: usize) -> SpinBarrier {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            broken: AtomicBool::new(false),
        }
    }

    /// Waits until every thread arrived; `false` if the barrier was broken meanwhile.
    fn wait(&self) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // The last to arrive resets the count before releasing the others, who cannot
            // arrive again until they see the new generation.
            self.arrived.store(0, Ordering::Release);
            self.generation.fetch_add(1, Ordering::AcqRel);
            return !self.broken.load(Ordering::Acquire);
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.broken.load(Ordering::Acquire) {
                return false;
            }
            spins = spins.saturating_add(1);
            if spins < 2_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        !self.broken.load(Ordering::Acquire)
    }

    fn break_it(&self) {
        self.broken.store(true, Ordering::Release);
    }
}

/// Sets the flag when dropped, which includes unwinding from a panic: a thread that fails
/// tells the others to stop instead of leaving them waiting for it.
pub(crate) struct SetOnDrop<'a>(pub(crate) &'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Sets the flag if dropped while its thread panics.
struct FlagOnPanic<'a>(&'a AtomicBool);

impl Drop for FlagOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// Breaks the barrier when dropped by a panicking thread.
struct BreakOnPanic<'a>(&'a SpinBarrier);

impl Drop for BreakOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.break_it();
        }
    }
}

/// How long a race keeps repeating once its minimum is done: a fast driver gets many more
/// tries at a narrow window for little time, a slow one (a server) stops at the minimum.
pub(crate) const RACE_TIME: Duration = Duration::from_millis(100);

/// The least number of rounds of a race, whatever the time: each round meets the threads
/// on one key at one instant, and a window that holds a context switch or a backend call
/// is met in the first rounds.
pub(crate) const MIN_ROUNDS: usize = 100;

/// The least number of writes a writer makes, and of reads each reader makes, in a
/// writers-and-readers race.
pub(crate) const MIN_WRITES: usize = 100;
pub(crate) const MIN_READS: usize = 50;

/// No race repeats more than this many times its minimum.
const RACE_MAX_FACTOR: usize = 20;

/// Runs races, one thread per handle, at least `min_rounds` of them and more until
/// [`RACE_TIME`] has passed; returns how many ran. In each round, thread 0 first runs
/// `setup(handle, round)`; then every thread starts `act(thread, handle, round)` at once,
/// and when all are done, thread 0 runs `check(round, results)` with the results in thread
/// order. A panic anywhere stops every thread and is re-raised.
pub(crate) fn rounds<R: Send>(
    handles: Vec<Contract>,
    min_rounds: usize,
    setup: impl Fn(&Contract, usize) + Sync,
    act: impl Fn(usize, &Contract, usize) -> R + Sync,
    check: impl Fn(usize, Vec<R>) + Sync,
) -> usize {
    let threads = handles.len();
    let barrier = SpinBarrier::new(threads);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..threads).map(|_| None).collect());
    let stop = AtomicBool::new(false);
    let ran = AtomicUsize::new(0);
    let started = Instant::now();
    parallel(handles, |i, h| {
        let _guard = BreakOnPanic(&barrier);
        for round in 0.. {
            if i == 0 {
                let more = round < min_rounds
                    || (started.elapsed() < RACE_TIME && round < RACE_MAX_FACTOR * min_rounds);
                if more {
                    setup(&h, round);
                } else {
                    stop.store(true, Ordering::Release);
                }
            }
            // Thread 0 decided before this barrier; everyone reads the decision after it.
            if !barrier.wait() || stop.load(Ordering::Acquire) {
                return;
            }
            let r = act(i, &h, round);
            if let Some(slot) = results.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i) {
                *slot = Some(r);
            }
            if !barrier.wait() {
                return;
            }
            if i == 0 {
                let taken: Vec<R> = results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter_mut()
                    .filter_map(Option::take)
                    .collect();
                check(round, taken);
                ran.store(round + 1, Ordering::Release);
            }
        }
    });
    ran.load(Ordering::Acquire)
}

/// Writers and readers on one store, started together.
///
/// The first `writers` handles write: each calls `write(thread, handle, n)` for n = 0, 1,
/// ... until it has written `min_writes` times, every reader has read `min_reads` times and
/// [`RACE_TIME`] has passed (at most `20 * min_writes` writes, in case readers cannot run).
/// The other handles read: each calls `read(thread, handle)` for as long as any writer
/// writes. So reads overlap writes on any machine, and a reader never stops while a writer
/// still writes.
pub(crate) fn writers_and_readers(
    handles: Vec<Contract>,
    writers: usize,
    min_writes: usize,
    min_reads: usize,
    write: impl Fn(usize, &Contract, usize) + Sync,
    read: impl Fn(usize, &Contract) + Sync,
) {
    let readers = handles.len().saturating_sub(writers);
    let reads: Vec<AtomicUsize> = (0..readers).map(|_| AtomicUsize::new(0)).collect();
    let writing = AtomicUsize::new(writers);
    let failed = AtomicBool::new(false);
    let started = Instant::now();
    parallel(handles, |i, h| {
        if i < writers {
            // A writer that panics stops the readers.
            let _stop = DecrementOnDrop(&writing);
            let mut n = 0;
            loop {
                let readers_behind = reads.iter().any(|r| r.load(Ordering::Acquire) < min_reads);
                let stop = failed.load(Ordering::Acquire)
                    || n >= RACE_MAX_FACTOR * min_writes
                    || (n >= min_writes && !readers_behind && started.elapsed() >= RACE_TIME);
                if stop {
                    break;
                }
                write(i, &h, n);
                n += 1;
            }
        } else {
            let _flag = FlagOnPanic(&failed);
            let counter = reads.get(i - writers);
            loop {
                // Read once more after the last writer stopped: what it wrote last is seen.
                let last = writing.load(Ordering::Acquire) == 0;
                read(i, &h);
                if let Some(c) = counter {
                    c.fetch_add(1, Ordering::AcqRel);
                }
                if last {
                    break;
                }
            }
        }
    });
}

/// Counts a writer out when it stops, normally or by a panic.
struct DecrementOnDrop<'a>(&'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
