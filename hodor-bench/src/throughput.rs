//! The throughput workloads: get hits, the Zipf mixes and inserts of new keys.
//!
//! Every store of a cell is loaded with the same keys in the same (shuffled) order and then
//! replays the same pre-generated streams. Repetitions interleave the stores, and the
//! starting store rotates each repetition so none always runs right after the same neighbour.

use std::collections::BTreeMap;

use crate::keys::Values;
use crate::memory::{self, MemoryRow};
use crate::plan::{Cell, Plan};
use crate::results::{Summary, ThroughputRow, Workload};
use crate::rng::{Rng, Zipf};
use crate::runner::{Tally, Until, mops, replay, replay_threads};
use crate::stores::{Built, Kind, Limit, Spec};
use crate::stream::{OpKind, Stream};
use crate::{Progress, with_store};

/// The Zipf exponent of the mixed workloads.
pub const ZIPF_S: f64 = 0.99;

/// Replays `streams` (one per thread) against any store. The single-threaded hash map only
/// ever gets one stream.
pub fn measure(built: &Built, streams: &[Stream], values: &Values, until: Until) -> Vec<Tally> {
    with_store!(
        built,
        s => replay_threads(s, streams, values, until),
        l => streams.iter().take(1).map(|st| replay(l, st, values, until)).collect()
    )
}

/// One thread's stream of `workload` over keys `0..n`.
pub fn stream(
    workload: Workload,
    keys: &[String],
    n: usize,
    len: usize,
    zipf: &Zipf,
    hot: &[u32],
    seed: u64,
) -> Stream {
    let mut rng = Rng::new(seed);
    let mut s = Stream::with_capacity(len);
    let set_share = match workload {
        Workload::Mix95 => 0.05,
        Workload::Mix50 => 0.5,
        _ => 0.0,
    };
    for _ in 0..len {
        let i = match workload {
            Workload::GetHit => rng.below(n as u64) as usize,
            _ => hot[zipf.sample(&mut rng)] as usize,
        };
        let kind = if rng.unit() < set_share {
            OpKind::Set
        } else {
            OpKind::Get
        };
        let value = rng.below(u64::from(u32::MAX)) as usize;
        s.push(kind, &keys[i], i as u64, value, 0);
    }
    s
}

/// The participants for a thread count: the single-threaded store runs only with one thread.
pub(crate) fn participants(stores: &[Built], threads: usize) -> Vec<&Built> {
    stores
        .iter()
        .filter(|b| threads == 1 || b.kind().concurrent())
        .collect()
}

/// Per participant: the throughput of each repetition and the summed tallies.
pub(crate) type Samples<K> = BTreeMap<K, (Vec<f64>, Tally)>;

/// Adds one repetition's tallies to `key`'s samples.
fn record<K: Ord>(samples: &mut Samples<K>, key: K, tallies: &[Tally], until: Until) {
    let entry = samples.entry(key).or_default();
    entry.0.push(mops(tallies, until));
    for t in tallies {
        entry.1.add(t);
    }
}

/// One row per store from its samples.
fn push_rows(
    rows: &mut Vec<ThroughputRow>,
    samples: Samples<Kind>,
    workload: Workload,
    cell: Cell,
    threads: usize,
) {
    for (store, (mops, total)) in samples {
        rows.push(ThroughputRow {
            workload,
            keys: cell.keys,
            value_bytes: cell.value,
            threads,
            store,
            mops: Summary::of(mops),
            hits: total.hits,
            misses: total.misses,
            failed: total.failed,
        });
    }
}

/// What runs one participant of an interleaved measurement for a given time: one tally
/// per thread.
pub(crate) type Run<'a> = &'a dyn Fn(Until) -> Vec<Tally>;

/// Warms every participant up, then runs `plan.reps` timed repetitions of each, the
/// starting participant rotating every repetition. A participant is a name and what runs
/// it for a given time.
pub(crate) fn interleave_runs<K: Copy + Ord>(
    plan: &Plan,
    participants: &[(K, Run<'_>)],
) -> Samples<K> {
    let until = Until::Elapsed(plan.duration);
    for (_, run) in participants {
        run(Until::Elapsed(plan.warmup));
    }
    let mut samples = Samples::new();
    for rep in 0..plan.reps {
        for j in 0..participants.len() {
            let (key, run) = participants[(j + rep) % participants.len()];
            record(&mut samples, key, &run(until), until);
        }
    }
    samples
}

/// Runs `reps` interleaved repetitions of every store and returns its rows.
#[allow(clippy::too_many_arguments)]
fn interleave(
    plan: &Plan,
    cell: Cell,
    workload: Workload,
    threads: usize,
    stores: &[&Built],
    streams: &[Stream],
    values: &Values,
    rows: &mut Vec<ThroughputRow>,
) {
    let runs: Vec<Box<dyn Fn(Until) -> Vec<Tally> + '_>> = stores
        .iter()
        .map(|&built| {
            Box::new(move |until| measure(built, streams, values, until))
                as Box<dyn Fn(Until) -> Vec<Tally>>
        })
        .collect();
    let participants: Vec<(Kind, Run<'_>)> = stores
        .iter()
        .zip(&runs)
        .map(|(built, run)| (built.kind(), &**run))
        .collect();
    let samples = interleave_runs(plan, &participants);
    push_rows(rows, samples, workload, cell, threads);
}

/// The stream that loads keys `0..n` in a shuffled order (the same for every store), value
/// `i` for key `i`, with `ttl_ms` on every set (0 for none).
pub fn load_stream(keys: &[String], n: usize, ttl_ms: u32) -> Stream {
    let mut order: Vec<u32> = (0..n as u32).collect();
    Rng::new(n as u64).shuffle(&mut order);
    let mut s = Stream::with_capacity(n);
    for &i in &order {
        s.push(
            OpKind::Set,
            &keys[i as usize],
            u64::from(i),
            i as usize,
            ttl_ms,
        );
    }
    s
}

/// Builds and loads every store of a cell, counting their memory when `count`. Stores that
/// fail to build are noted and skipped.
#[allow(clippy::too_many_arguments)]
pub fn build_cell(
    cell: Cell,
    kinds: &[Kind],
    keys: &[String],
    values: &Values,
    count: bool,
    memory: &mut Vec<MemoryRow>,
    notes: &mut Vec<String>,
    progress: &Progress,
) -> Vec<Built> {
    let load = load_stream(keys, cell.keys, 0);
    let spec = Spec {
        entries: cell.keys,
        limit: Limit::None,
    };
    let mut stores = Vec::new();
    for &kind in kinds {
        let started = std::time::Instant::now();
        match memory::build_and_load(kind, spec, &load, values, count) {
            Ok((built, row)) => {
                progress.detail(&format!(
                    "loaded {} in {:.2?}",
                    kind.label(),
                    started.elapsed()
                ));
                let resident = built.as_dyn().resident();
                if resident != cell.keys as u64 {
                    notes.push(format!(
                        "{} holds {resident} of {} loaded keys ({} B values)",
                        kind.label(),
                        cell.keys,
                        cell.value
                    ));
                }
                memory.extend(row);
                stores.push(built);
            }
            Err(e) => notes.push(format!("{} could not be built: {e}", kind.label())),
        }
    }
    stores
}

/// get-hit, 95/5 and 50/50 on a loaded cell.
pub fn run_loaded(
    plan: &Plan,
    cell: Cell,
    stores: &[Built],
    keys: &[String],
    values: &Values,
    rows: &mut Vec<ThroughputRow>,
    progress: &Progress,
) {
    let max_threads = plan.threads.iter().copied().max().unwrap_or(1);
    let zipf = Zipf::new(cell.keys, ZIPF_S);
    let mut hot: Vec<u32> = (0..cell.keys as u32).collect();
    Rng::new(cell.keys as u64 ^ 0x407).shuffle(&mut hot);
    for (w, workload) in [Workload::GetHit, Workload::Mix95, Workload::Mix50]
        .into_iter()
        .enumerate()
    {
        let big = cell.keys >= plan.target_keys;
        if big && workload != Workload::GetHit && !plan.big_mixes.contains(&workload) {
            continue;
        }
        let streams: Vec<Stream> = (0..max_threads)
            .map(|t| {
                let seed = (cell.keys as u64) << 20 ^ (cell.value as u64) << 8 ^ (w as u64) << 4;
                stream(
                    workload,
                    keys,
                    cell.keys,
                    plan.stream_ops,
                    &zipf,
                    &hot,
                    seed ^ t as u64,
                )
            })
            .collect();
        for &threads in &plan.threads {
            progress.say(&format!(
                "{} | {} keys | {} B | {} thread(s)",
                workload.label(),
                cell.keys,
                cell.value,
                threads
            ));
            let stores = participants(stores, threads);
            interleave(
                plan,
                cell,
                workload,
                threads,
                &stores,
                &streams[..threads],
                values,
                rows,
            );
        }
    }
}

/// Inserts every key of the cell into a fresh, empty store.
pub fn run_set_new(
    plan: &Plan,
    cell: Cell,
    keys: &[String],
    values: &Values,
    rows: &mut Vec<ThroughputRow>,
    notes: &mut Vec<String>,
    progress: &Progress,
) {
    let all = load_stream(keys, cell.keys, 0);
    let spec = Spec {
        entries: cell.keys,
        limit: Limit::None,
    };
    for &threads in &plan.threads {
        progress.say(&format!(
            "{} | {} keys | {} B | {} thread(s)",
            Workload::SetNew.label(),
            cell.keys,
            cell.value,
            threads
        ));
        let streams = all.split(threads);
        let big = cell.keys >= plan.target_keys;
        let kinds: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| threads == 1 || k.concurrent())
            .filter(|k| !big || plan.set_new_big_stores.contains(k))
            .collect();
        let mut samples = Samples::<Kind>::new();
        let reps = if big {
            plan.set_new_big_reps
        } else {
            plan.reps
        };
        for rep in 0..reps {
            for j in 0..kinds.len() {
                let kind = kinds[(j + rep) % kinds.len()];
                let built = match Built::open(kind, spec) {
                    Ok(b) => b,
                    Err(e) => {
                        notes.push(format!("{} could not be built: {e}", kind.label()));
                        continue;
                    }
                };
                let tallies = measure(&built, &streams, values, Until::Once);
                built.as_dyn().settle();
                let resident = built.as_dyn().resident();
                record(&mut samples, kind, &tallies, Until::Once);
                if let Some((_, total)) = samples.get_mut(&kind) {
                    total.failed += (cell.keys as u64).saturating_sub(resident);
                }
                drop(built);
            }
        }
        push_rows(rows, samples, Workload::SetNew, cell, threads);
    }
}
