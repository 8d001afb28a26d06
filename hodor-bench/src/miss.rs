//! Reads of absent keys: what a cache-aside caller pays on every miss.
//!
//! Every store of a loaded cell reads keys it does not hold (numbered from [`ABSENT`] up, a
//! range no workload writes) through its usual `get`. hodor is read twice: with `Contract::get`,
//! whose miss is an `Error::NotFound` holding the key, and with `Contract::get_opt`, whose
//! miss is `Ok(None)` and builds nothing.

use std::time::Duration;

use bytes::Bytes;

use crate::Progress;
use crate::keys::{Values, key};
use crate::plan::{Cell, Plan};
use crate::results::{MissRow, MissStore, Summary};
use crate::rng::Rng;
use crate::runner::{Tally, Until, replay_threads};
use crate::stores::{Built, HodorStore, Store};
use crate::stream::{OpKind, Stream};
use crate::throughput::{Run, interleave_runs, measure, participants};

/// hodor read with `Contract::get_opt`; everything else as [`HodorStore`].
struct GetOpt<'a>(&'a HodorStore);

impl Store for GetOpt<'_> {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.0.get_opt(key).ok().flatten()
    }
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> bool {
        self.0.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> bool {
        self.0.delete(key)
    }
    fn list(&self, prefix: &str) -> Option<Vec<String>> {
        self.0.list(prefix)
    }
    fn resident(&self) -> u64 {
        self.0.resident()
    }
}

/// The first absent key's number: above every key a cell loads (at most a million) and the
/// keys the `list` workload's writer adds to a loaded store (numbered right after the
/// cell's), below the 10^7 keys [`key`] can number.
pub const ABSENT: u64 = 5_000_000;

/// One thread's stream of reads of `n` absent keys, uniform.
fn stream(n: usize, len: usize, seed: u64) -> Stream {
    let mut rng = Rng::new(seed);
    let mut s = Stream::with_capacity(len);
    for _ in 0..len {
        let i = ABSENT + rng.below(n as u64);
        s.push(OpKind::Get, &key(i), i, 0, 0);
    }
    s
}

/// Reads absent keys from every store of a loaded cell, on each thread count.
pub fn run(
    plan: &Plan,
    cell: Cell,
    stores: &[Built],
    values: &Values,
    rows: &mut Vec<MissRow>,
    progress: &Progress,
) {
    let max_threads = plan.threads.iter().copied().max().unwrap_or(1);
    let streams: Vec<Stream> = (0..max_threads)
        .map(|t| {
            stream(
                cell.keys,
                plan.stream_ops,
                0x6e55 ^ (cell.keys as u64) << 8 ^ t as u64,
            )
        })
        .collect();
    let hodor = stores.iter().find_map(|b| match b {
        Built::Hodor(h) => Some(GetOpt(h)),
        _ => None,
    });
    for &threads in &plan.threads {
        progress.say(&format!(
            "get of absent keys | {} keys | {} B | {threads} thread(s)",
            cell.keys, cell.value
        ));
        let streams = &streams[..threads];
        let built = participants(stores, threads);
        let store_runs: Vec<Box<dyn Fn(Until) -> Vec<Tally> + '_>> = built
            .iter()
            .map(|&b| {
                Box::new(move |until| measure(b, streams, values, until))
                    as Box<dyn Fn(Until) -> Vec<Tally>>
            })
            .collect();
        let get_opt_run = hodor
            .as_ref()
            .map(|h| move |until| replay_threads(h, streams, values, until));
        let mut runs: Vec<(MissStore, Run<'_>)> = built
            .iter()
            .zip(&store_runs)
            .map(|(b, run)| {
                (
                    MissStore::Store(b.kind()),
                    &**run as &dyn Fn(Until) -> Vec<Tally>,
                )
            })
            .collect();
        if let Some(run) = &get_opt_run {
            runs.insert(0, (MissStore::GetOpt, run));
        }
        for (store, (mops, total)) in interleave_runs(plan, &runs) {
            rows.push(MissRow {
                keys: cell.keys,
                threads,
                store,
                mops: Summary::of(mops),
                hits: total.hits,
            });
        }
    }
}
