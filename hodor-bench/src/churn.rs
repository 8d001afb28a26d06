//! Churn: a working set three times the size limit, and the hit ratio each evicting store
//! reaches against an exact LRU on the same trace.
//!
//! The caller is cache-aside: `get`, and on a miss `set`. Two traces: Zipf(0.99) over the
//! whole key space, and a scan-heavy one where every 2,000 Zipf accesses are followed by a
//! sequential scan of 1,000 cold keys that no Zipf access touches. The first fifth of each
//! trace warms the cache and is not counted.

use std::time::Instant;

use crate::Progress;
use crate::keys::Values;
use crate::lru::Lru;
use crate::plan::Plan;
use crate::results::ChurnRow;
use crate::rng::{Rng, Zipf};
use crate::stores::{Built, Kind, Limit, Spec, Store, charge};
use crate::throughput::ZIPF_S;

const VALUE_BYTES: usize = 64;

/// A trace of key numbers.
fn zipf_trace(hot_keys: usize, len: usize, seed: u64) -> Vec<u32> {
    let zipf = Zipf::new(hot_keys, ZIPF_S);
    let mut perm: Vec<u32> = (0..hot_keys as u32).collect();
    let mut rng = Rng::new(seed);
    rng.shuffle(&mut perm);
    (0..len).map(|_| perm[zipf.sample(&mut rng)]).collect()
}

/// Zipf over keys `0..hot`, interleaved with scans over `hot..hot + cold`.
fn scan_trace(hot: usize, cold: usize, len: usize, seed: u64) -> Vec<u32> {
    let zipf = zipf_trace(hot, len, seed);
    let mut out = Vec::with_capacity(len);
    let mut z = zipf.into_iter();
    let mut next_cold = 0usize;
    while out.len() < len {
        out.extend(z.by_ref().take(2000));
        for _ in 0..1000 {
            out.push((hot + next_cold % cold.max(1)) as u32);
            next_cold += 1;
        }
    }
    out.truncate(len);
    out
}

fn warmup(len: usize) -> usize {
    len / 5
}

fn lru_hit_ratio(trace: &[u32], weights: &[u64], capacity: u64) -> f64 {
    let mut lru = Lru::new(capacity);
    let skip = warmup(trace.len());
    let mut hits = 0u64;
    for (i, &k) in trace.iter().enumerate() {
        if lru.access(k, weights[k as usize]) && i >= skip {
            hits += 1;
        }
    }
    hits as f64 / (trace.len() - skip).max(1) as f64
}

/// Replays the trace cache-aside; returns (hit ratio, M accesses per second).
fn replay(store: &dyn Store, trace: &[u32], keys: &[String], values: &Values) -> (f64, f64) {
    let skip = warmup(trace.len());
    let mut hits = 0u64;
    let start = Instant::now();
    for (i, &k) in trace.iter().enumerate() {
        let key = &keys[k as usize];
        if store.get(key).is_some() {
            if i >= skip {
                hits += 1;
            }
        } else {
            store.set(key, values.get(k as usize).clone(), None);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    (
        hits as f64 / (trace.len() - skip).max(1) as f64,
        trace.len() as f64 / secs / 1e6,
    )
}

/// Runs both traces on hodor (byte and entry limits), moka and quick_cache.
pub fn run(plan: &Plan, keys: &[String], rows: &mut Vec<ChurnRow>, progress: &Progress) {
    let hot = plan.churn.keys;
    let cold = hot;
    let total_keys = hot + cold;
    let values = Values::new(VALUE_BYTES, total_keys, 0xc4);
    let weights: Vec<u64> = keys[..total_keys]
        .iter()
        .map(|k| charge(k.len(), VALUE_BYTES))
        .collect();
    // The Zipf key space holds three times what the limit allows.
    let max_bytes = weights[..hot].iter().sum::<u64>() / 3;
    let max_entries = hot as u64 / 3;
    let traces = [
        ("zipf", zipf_trace(hot, plan.churn.trace_len, 0x21f)),
        ("scan", scan_trace(hot, cold, plan.churn.trace_len, 0x5ca)),
    ];
    let configs = [
        (Kind::Hodor, Limit::Bytes(max_bytes)),
        (Kind::Hodor, Limit::Entries(max_entries)),
        (Kind::Moka, Limit::Bytes(max_bytes)),
        (Kind::QuickCache, Limit::Bytes(max_bytes)),
    ];
    for (name, trace) in &traces {
        progress.say(&format!(
            "churn, {name} trace: {} accesses, {hot} hot keys, limit {max_bytes} B or {max_entries} entries",
            trace.len()
        ));
        let lru_bytes = lru_hit_ratio(trace, &weights, max_bytes);
        let lru_entries = lru_hit_ratio(trace, &vec![1; total_keys], max_entries);
        for (kind, limit) in configs {
            let lru_hit_ratio = match limit {
                Limit::Entries(_) => lru_entries,
                _ => lru_bytes,
            };
            let spec = Spec {
                entries: hot / 3,
                limit,
            };
            let (hit_ratio, mops) = match Built::open(kind, spec) {
                Ok(built) => {
                    let (ratio, mops) = replay(built.as_dyn(), trace, keys, &values);
                    (Ok(ratio), Some(mops))
                }
                Err(e) => (Err(e), None),
            };
            rows.push(ChurnRow {
                trace: name,
                store: kind,
                limit,
                hit_ratio,
                lru_hit_ratio,
                mops,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_trace_alternates_hot_accesses_with_cold_scans() {
        let t = scan_trace(100, 50, 6000, 1);
        assert_eq!(t.len(), 6000);
        assert!(t[..2000].iter().all(|&k| k < 100));
        assert_eq!(&t[2000..2003], &[100, 101, 102]);
        assert_eq!(t[2050], 100); // the scan wraps around the cold range
        assert!(t[3000..5000].iter().all(|&k| k < 100));
    }

    #[test]
    fn lru_on_a_skewed_trace_beats_the_cache_share() {
        let trace = zipf_trace(3000, 50_000, 2);
        let ratio = lru_hit_ratio(&trace, &vec![1; 3000], 1000);
        // A third of the keys hold far more than a third of a Zipf(0.99) trace.
        assert!(ratio > 0.6 && ratio < 1.0, "{ratio}");
    }
}
