//! `list(prefix)` with a concurrent writer, for the stores that can list keys in order.
//!
//! The lister runs on the calling thread, calling `list` with prefixes that each match
//! exactly 10, 100 or 1,000 keys. A second thread writes at a fixed pace meanwhile (same
//! pace for every store): it overwrites existing keys, inserts new keys and deletes them
//! again, so the store's size stays constant.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::keys::{Values, key, prefix};
use crate::plan::Plan;
use crate::results::{ListRow, Summary};
use crate::rng::Rng;
use crate::runner::{Tally, exec};
use crate::stores::{Built, Kind, Store};
use crate::stream::{OpKind, Stream};
use crate::{Progress, with_store};

/// New keys the writer cycles through (inserted, then deleted half a cycle later).
const NEW_KEYS: u64 = 512;

fn writer_stream(n: usize, keys: &[String], seed: u64) -> Stream {
    let mut rng = Rng::new(seed);
    let rounds = 30_000;
    let mut s = Stream::with_capacity(rounds * 3);
    for j in 0..rounds as u64 {
        let i = rng.below(n as u64);
        s.push(OpKind::Set, &keys[i as usize], i, j as usize, 0);
        let fresh = n as u64 + j % NEW_KEYS;
        s.push(OpKind::Set, &key(fresh), fresh, j as usize, 0);
        let old = n as u64 + (j + NEW_KEYS / 2) % NEW_KEYS;
        s.push(OpKind::Delete, &key(old), old, 0, 0);
    }
    s
}

/// Writes `per_ms` operations each millisecond until `stop`; returns how many it did.
fn paced_writer<S: Store + ?Sized>(
    store: &S,
    stream: &Stream,
    values: &Values,
    per_ms: usize,
    stop: &AtomicBool,
) -> u64 {
    let ops = stream.ops();
    let mut at = 0;
    let mut done = 0;
    let start = Instant::now();
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let end = (at + per_ms).min(ops.len());
        let mut tally = Tally::default();
        for op in &ops[at..end] {
            exec(store, stream, op, values, &mut tally);
        }
        done += (end - at) as u64;
        at = if end == ops.len() { 0 } else { end };
        tick += 1;
        let next = start + Duration::from_millis(u64::from(tick));
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    done
}

/// Lists prefixes for `duration` while the writer runs; returns (µs per list, writes/s).
fn lister<S: Store + Sync + ?Sized>(
    store: &S,
    prefixes: &[String],
    writer: &Stream,
    values: &Values,
    plan: &Plan,
) -> (f64, f64) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            paced_writer(
                store,
                writer,
                values,
                plan.list.writes_per_ms as usize,
                &stop,
            )
        });
        let start = Instant::now();
        let mut calls = 0u64;
        let mut returned = 0usize;
        'timed: loop {
            for p in prefixes {
                returned += store.list(p).map_or(0, |keys| keys.len());
                calls += 1;
                if calls.is_multiple_of(16) && start.elapsed() >= plan.list.duration {
                    break 'timed;
                }
            }
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        let writes = handle.join().expect("the writer thread panicked");
        std::hint::black_box(returned);
        (
            elapsed.as_secs_f64() * 1e6 / calls.max(1) as f64,
            writes as f64 / elapsed.as_secs_f64(),
        )
    })
}

/// Runs the `list` workload on the ordered stores of a loaded cell.
pub fn run(
    plan: &Plan,
    stores: &[Built],
    keys: &[String],
    values: &Values,
    rows: &mut Vec<ListRow>,
    notes: &mut Vec<String>,
    progress: &Progress,
) {
    let n = plan.list.keys;
    let ordered: Vec<&Built> = stores.iter().filter(|b| b.kind().ordered()).collect();
    for (s, &matches) in plan.list.sizes.iter().enumerate() {
        if matches as usize * 10 > n {
            continue;
        }
        progress.say(&format!("list {matches} of {n} keys, concurrent writer"));
        let mut rng = Rng::new(0x1157 + s as u64);
        let prefixes: Vec<String> = (0..4096)
            .map(|_| prefix(rng.below(n as u64 / matches) * matches, matches))
            .collect();
        // Both stores must return the same, complete answer before their speed means anything.
        let answers: Vec<(Kind, Option<Vec<String>>)> = ordered
            .iter()
            .map(|b| (b.kind(), b.as_dyn().list(&prefixes[0])))
            .collect();
        for (kind, answer) in &answers {
            let len = answer.as_ref().map_or(0, Vec::len);
            if len != matches as usize || *answer != answers[0].1 {
                notes.push(format!(
                    "list: {} returned {len} keys for {:?}, expected {matches}",
                    kind.label(),
                    prefixes[0]
                ));
            }
        }
        let writer = writer_stream(n, keys, 0x3717 + s as u64);
        let mut samples: BTreeMap<Kind, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for rep in 0..plan.reps {
            for j in 0..ordered.len() {
                let built = ordered[(j + rep) % ordered.len()];
                let (micros, writes) = with_store!(
                    built,
                    st => lister(st, &prefixes, &writer, values, plan),
                    _l => (f64::NAN, f64::NAN)
                );
                let entry = samples.entry(built.kind()).or_default();
                entry.0.push(micros);
                entry.1.push(writes);
            }
        }
        for (store, (micros, writes)) in samples {
            rows.push(ListRow {
                store,
                keys: n,
                matches,
                micros: Summary::of(micros),
                writer_ops_per_sec: Summary::of(writes).median,
            });
        }
    }
}
