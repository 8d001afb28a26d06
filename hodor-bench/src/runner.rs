//! Timed replay of streams against a store: one thread on the caller's thread, several behind
//! a barrier.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::keys::Values;
use crate::stores::Store;
use crate::stream::{Op, OpKind, Stream};

/// How often (in operations) a timed loop looks at the clock.
const CHECK_EVERY: usize = 512;

/// What one thread did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Operations completed.
    pub ops: u64,
    /// Nanoseconds from this thread's start to its end.
    pub nanos: u64,
    /// Gets that returned a value.
    pub hits: u64,
    /// Gets that returned nothing.
    pub misses: u64,
    /// Sets the store refused.
    pub failed: u64,
}

impl Tally {
    /// Adds another thread's counts (not its time).
    pub fn add(&mut self, other: &Tally) {
        self.ops += other.ops;
        self.hits += other.hits;
        self.misses += other.misses;
        self.failed += other.failed;
    }
}

/// How long a replay runs.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// Loop over the stream until this much time has passed.
    Elapsed(Duration),
    /// Run the stream once.
    Once,
}

/// Runs one operation, counting its outcome in `t`.
#[inline(always)]
pub fn exec<S: Store + ?Sized>(
    store: &S,
    stream: &Stream,
    op: &Op,
    values: &Values,
    t: &mut Tally,
) {
    let key = stream.key(op);
    match op.kind {
        OpKind::Get => match store.get(key) {
            Some(value) => {
                black_box(value);
                t.hits += 1;
            }
            None => t.misses += 1,
        },
        OpKind::Set => {
            let value = values.get(op.value as usize).clone();
            if !store.set(key, value, op.ttl()) {
                t.failed += 1;
            }
        }
        OpKind::Delete => {
            black_box(store.delete(key));
        }
    }
}

/// Replays `stream` against `store` on this thread.
pub fn replay<S: Store + ?Sized>(
    store: &S,
    stream: &Stream,
    values: &Values,
    until: Until,
) -> Tally {
    let ops = stream.ops();
    let mut t = Tally::default();
    let start = Instant::now();
    match until {
        Until::Once => {
            for op in ops {
                exec(store, stream, op, values, &mut t);
            }
            t.ops = ops.len() as u64;
        }
        Until::Elapsed(limit) => {
            if ops.is_empty() {
                return t;
            }
            let mut at = 0;
            loop {
                let end = (at + CHECK_EVERY).min(ops.len());
                for op in &ops[at..end] {
                    exec(store, stream, op, values, &mut t);
                }
                t.ops += (end - at) as u64;
                at = if end == ops.len() { 0 } else { end };
                if start.elapsed() >= limit {
                    break;
                }
            }
        }
    }
    t.nanos = start.elapsed().as_nanos() as u64;
    t
}

/// Replays one stream per thread, all starting together at a barrier. One stream runs on the
/// calling thread.
pub fn replay_threads<S: Store + Sync + ?Sized>(
    store: &S,
    streams: &[Stream],
    values: &Values,
    until: Until,
) -> Vec<Tally> {
    if let [stream] = streams {
        return vec![replay(store, stream, values, until)];
    }
    let barrier = Barrier::new(streams.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|stream| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    replay(store, stream, values, until)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect()
    })
}

/// Million operations per second over all threads. A timed run adds each thread's own rate;
/// a fixed run divides all operations by the slowest thread's time.
pub fn mops(tallies: &[Tally], until: Until) -> f64 {
    match until {
        Until::Elapsed(_) => tallies
            .iter()
            .map(|t| t.ops as f64 * 1e3 / t.nanos.max(1) as f64)
            .sum(),
        Until::Once => {
            let ops: u64 = tallies.iter().map(|t| t.ops).sum();
            let nanos = tallies.iter().map(|t| t.nanos).max().unwrap_or(1).max(1);
            ops as f64 * 1e3 / nanos as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::{Built, Kind, Limit, Spec};

    #[test]
    fn a_timed_replay_loops_over_its_stream_and_counts_hits() {
        let built = Built::open(
            Kind::DashMap,
            Spec {
                entries: 10,
                limit: Limit::None,
            },
        )
        .unwrap();
        let store = built.as_dyn();
        let values = Values::new(8, 4, 1);
        let mut s = Stream::with_capacity(3);
        s.push(OpKind::Set, "a", 0, 1, 0);
        s.push(OpKind::Get, "a", 0, 0, 0);
        s.push(OpKind::Get, "b", 1, 0, 0);
        let t = replay(store, &s, &values, Until::Elapsed(Duration::from_millis(5)));
        assert!(t.ops >= 3 && t.ops.is_multiple_of(3), "{t:?}");
        assert_eq!(t.hits, t.ops / 3);
        assert_eq!(t.misses, t.ops / 3);
        assert!(t.nanos >= 5_000_000);
        let once = replay(store, &s, &values, Until::Once);
        assert_eq!(once.ops, 3);
    }

    #[test]
    fn rates_add_per_thread_or_divide_by_the_slowest() {
        let a = Tally {
            ops: 1000,
            nanos: 1000,
            ..Tally::default()
        };
        let b = Tally {
            ops: 1000,
            nanos: 2000,
            ..Tally::default()
        };
        let timed = mops(&[a, b], Until::Elapsed(Duration::ZERO));
        assert!((timed - 1500.0).abs() < 1e-9);
        assert!((mops(&[a, b], Until::Once) - 1000.0).abs() < 1e-9);
    }
}
