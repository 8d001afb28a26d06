//! One store, one workload, for as long as asked: something to attach `perf` or
//! `valgrind --tool=callgrind` to when a target is missed.
//!
//! `hodor-bench --profile STORE WORKLOAD KEYS THREADS SECONDS`, e.g.
//! `perf record -g target/release/hodor-bench --profile hodor get 1000000 1 10`.

use std::time::Duration;

use crate::keys::{Values, keys};
use crate::results::Workload;
use crate::rng::{Rng, Zipf};
use crate::runner::{Until, mops};
use crate::stores::{Kind, Limit, Spec};
use crate::throughput::{ZIPF_S, load_stream, measure, stream};

/// Parses a store name: a label from the report, or a short form.
pub fn kind(name: &str) -> Option<Kind> {
    let name = name.to_ascii_lowercase();
    Kind::ALL.into_iter().find(|k| {
        let label = k.label().to_ascii_lowercase();
        name == label
            || matches!(
                (name.as_str(), k),
                ("contract", Kind::Hodor)
                    | ("driver", Kind::HodorDriver)
                    | ("quick-cache", Kind::QuickCache)
                    | ("btreemap", Kind::BTreeMap)
            )
    })
}

/// Parses a workload name: `get`, `mix95`, `mix50` or `set-new`.
pub fn workload(name: &str) -> Option<Workload> {
    match name {
        "get" => Some(Workload::GetHit),
        "mix95" => Some(Workload::Mix95),
        "mix50" => Some(Workload::Mix50),
        "set-new" => Some(Workload::SetNew),
        _ => None,
    }
}

/// Loads `n` keys into `kind` and runs `workload` on `threads` threads for `seconds` (or
/// each thread's 2^20-operation stream once, for 0); returns million operations per second.
pub fn run(kind: Kind, workload: Workload, n: usize, threads: usize, seconds: f64) -> f64 {
    let keys = keys(n);
    let values = Values::new(64, n, 64);
    let spec = Spec {
        entries: n,
        limit: Limit::None,
    };
    let built = crate::stores::Built::open(kind, spec).expect("the store builds");
    let load = load_stream(&keys, n, 0);
    if workload == Workload::SetNew {
        let streams = load.split(threads);
        let tallies = measure(&built, &streams, &values, Until::Once);
        return mops(&tallies, Until::Once);
    }
    measure(&built, &[load], &values, Until::Once);
    let zipf = Zipf::new(n, ZIPF_S);
    let mut hot: Vec<u32> = (0..n as u32).collect();
    Rng::new(n as u64 ^ 0x407).shuffle(&mut hot);
    let streams: Vec<_> = (0..threads)
        .map(|t| stream(workload, &keys, n, 1 << 20, &zipf, &hot, t as u64))
        .collect();
    // Zero seconds replays each stream exactly once: a fixed amount of work, so
    // instruction counts (callgrind) can be divided by the 2^20 operations per thread.
    let until = if seconds > 0.0 {
        Until::Elapsed(Duration::from_secs_f64(seconds))
    } else {
        Until::Once
    };
    let tallies = measure(&built, &streams, &values, until);
    mops(&tallies, until)
}
