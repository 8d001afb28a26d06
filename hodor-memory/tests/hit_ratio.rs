//! The eviction policy's hit ratio against exact LRU, on the traces the benchmark uses: it
//! must be within 2 percentage points of LRU or better, at every capacity, whatever the
//! shard count (it is pinned here, so the result does not depend on the machine's CPUs).
//! Deterministic: fixed seeds, no time.

use std::collections::{BTreeMap, HashMap};

use hodor_core::Error;
use hodor_memory::{MemoryConfig, open};

mod common;
use common::Rng;

/// Zipf(s) over `n` keys by inverse CDF.
fn zipf_trace(n: usize, s: f64, len: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for rank in 1..=n {
        total += 1.0 / (rank as f64).powf(s);
        cdf.push(total);
    }
    let mut rng = Rng(seed);
    (0..len)
        .map(|_| {
            let u = rng.unit() * total;
            cdf.partition_point(|&c| c < u) as u64
        })
        .collect()
}

/// Zipf traffic with long one-pass scans over cold keys mixed in.
fn scan_trace(n: usize, len: usize, seed: u64) -> Vec<u64> {
    let hot = zipf_trace(n, 0.99, len, seed);
    let mut out = Vec::with_capacity(len * 2);
    let mut cold = 10_000_000u64;
    for (i, key) in hot.into_iter().enumerate() {
        out.push(key);
        // Every 20,000 requests, a scan of 5,000 keys nobody asks for again.
        if i % 20_000 == 19_999 {
            for _ in 0..5_000 {
                out.push(cold);
                cold += 1;
            }
        }
    }
    out
}

/// Exact LRU: hit ratio of `trace` with room for `capacity` keys, read-through on a miss.
fn lru_hit_ratio(trace: &[u64], capacity: usize, warmup: usize) -> f64 {
    let mut last_use: HashMap<u64, u64> = HashMap::new();
    let mut by_age: BTreeMap<u64, u64> = BTreeMap::new();
    let mut hits = 0;
    for (tick, &key) in trace.iter().enumerate() {
        let tick = tick as u64;
        if let Some(old) = last_use.insert(key, tick) {
            by_age.remove(&old);
            if tick as usize >= warmup {
                hits += 1;
            }
        } else if last_use.len() > capacity {
            let (_, victim) = by_age.pop_first().unwrap();
            last_use.remove(&victim);
        }
        by_age.insert(tick, key);
    }
    hits as f64 / (trace.len() - warmup) as f64
}

/// Shard counts every policy test runs with: one, a typical machine's, the most.
const SHARDS: [usize; 3] = [1, 16, 1024];

/// The memory driver with `max_entries = capacity` and `shards` shards, read-through on a
/// miss.
fn hodor_hit_ratio(
    name: &str,
    trace: &[u64],
    capacity: usize,
    shards: usize,
    warmup: usize,
) -> f64 {
    let config = MemoryConfig::default()
        .max_entries(capacity as u64)
        .shards(shards);
    let c = open(name, config).unwrap();
    let mut hits = 0;
    for (i, key) in trace.iter().enumerate() {
        let key = format!("key:{key}");
        match c.get(&key) {
            Ok(_) => {
                if i >= warmup {
                    hits += 1;
                }
            }
            Err(Error::NotFound { .. }) => c.set(&key, "v", None).unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
    hits as f64 / (trace.len() - warmup) as f64
}

fn compare(name: &str, trace: &[u64], capacity: usize) {
    let warmup = trace.len() / 5;
    let lru = lru_hit_ratio(trace, capacity, warmup);
    for shards in SHARDS {
        let ours = hodor_hit_ratio(&format!("{name}-{shards}"), trace, capacity, shards, warmup);
        println!(
            "{name}: capacity {capacity}, {shards} shards: exact LRU {:.2}%, hodor {:.2}%",
            lru * 100.0,
            ours * 100.0
        );
        assert!(
            ours >= lru - 0.02,
            "{name}: capacity {capacity}, {shards} shards: hodor {:.2}% is more than 2 points \
             below exact LRU {:.2}%",
            ours * 100.0,
            lru * 100.0
        );
    }
}

#[test]
fn zipf_hit_ratio_is_within_two_points_of_exact_lru() {
    let small = zipf_trace(1_000, 0.99, 60_000, 5);
    for capacity in [8, 64] {
        compare(&format!("hit-ratio-zipf-{capacity}"), &small, capacity);
    }
    let trace = zipf_trace(100_000, 0.99, 300_000, 7);
    for capacity in [1_000, 10_000] {
        compare(&format!("hit-ratio-zipf-{capacity}"), &trace, capacity);
    }
}

#[test]
fn scan_heavy_hit_ratio_is_within_two_points_of_exact_lru() {
    let small = scan_trace(1_000, 60_000, 13);
    for capacity in [8, 64] {
        compare(&format!("hit-ratio-scan-{capacity}"), &small, capacity);
    }
    let trace = scan_trace(100_000, 200_000, 11);
    for capacity in [2_000, 10_000] {
        compare(&format!("hit-ratio-scan-{capacity}"), &trace, capacity);
    }
}

/// Exact LRU never evicts a key that is read before every insert; neither may the store,
/// however small it is and however many shards it has.
#[test]
fn a_key_read_before_every_insert_is_never_evicted() {
    for capacity in [2u64, 8, 64] {
        for shards in SHARDS {
            let name = format!("hot-key-{capacity}-{shards}");
            let c = open(
                &name,
                MemoryConfig::default().max_entries(capacity).shards(shards),
            )
            .unwrap();
            c.set("hot", "v", None).unwrap();
            for i in 0..2_000 {
                assert!(
                    c.get("hot").is_ok(),
                    "capacity {capacity}, {shards} shards: the hot key was evicted after {i} inserts"
                );
                c.set(&format!("cold/{i}"), "v", None).unwrap();
            }
        }
    }
}
