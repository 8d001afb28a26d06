//! What a run measured, in the shape the report, the JSON file and the chart read.

use serde::Serialize;

use crate::logging::LogResults;
use crate::memory::MemoryRow;
use crate::persist::PersistResults;
use crate::plan::Plan;
use crate::stores::{Kind, Limit};

/// The median, minimum and maximum of repeated measurements.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Middle value (mean of the two middle ones for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Every repetition, in the order measured.
    pub samples: Vec<f64>,
}

impl Summary {
    /// Summarizes `samples`; all zero when there are none.
    pub fn of(samples: Vec<f64>) -> Summary {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return Summary::default();
        }
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            samples,
        }
    }
}

/// The throughput workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// 100% `get` of loaded keys, uniform.
    GetHit,
    /// 95% get / 5% set (overwrite), Zipf(0.99) keys.
    Mix95,
    /// 50% get / 50% set (overwrite), Zipf(0.99) keys.
    Mix50,
    /// `set` of keys not yet in the store, into an empty store, in random order.
    SetNew,
}

impl Workload {
    /// The row title.
    pub fn label(self) -> &'static str {
        match self {
            Workload::GetHit => "get (100% hit)",
            Workload::Mix95 => "95/5 get/set, Zipf",
            Workload::Mix50 => "50/50 get/set, Zipf",
            Workload::SetNew => "set new keys",
        }
    }
}

/// One store's throughput in one configuration.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputRow {
    /// Which workload.
    pub workload: Workload,
    /// Keys in the store.
    pub keys: usize,
    /// Value size in bytes.
    pub value_bytes: usize,
    /// Threads.
    pub threads: usize,
    /// Which store.
    pub store: Kind,
    /// Million operations per second, over the repetitions.
    pub mops: Summary,
    /// Gets that found a value, over all repetitions.
    pub hits: u64,
    /// Gets that found nothing (0 expected in every workload here).
    pub misses: u64,
    /// Sets the store refused (0 expected).
    pub failed: u64,
}

/// `list(prefix)` latency with a concurrent writer.
#[derive(Clone, Debug, Serialize)]
pub struct ListRow {
    /// Which store.
    pub store: Kind,
    /// Keys in the store.
    pub keys: usize,
    /// Keys each listed prefix matches.
    pub matches: u64,
    /// Microseconds per `list` call.
    pub micros: Summary,
    /// Writes the concurrent writer completed per second (median over repetitions).
    pub writer_ops_per_sec: f64,
}

/// One sample of the TTL workload.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TtlSample {
    /// Milliseconds since the workers started.
    pub at_ms: u64,
    /// Entries the store holds.
    pub resident: u64,
    /// Entries whose TTL has not run out.
    pub live: u64,
    /// Live entries as the store itself lists them (`list("")`), for stores that can list:
    /// a check of the benchmark's own count.
    pub listed: Option<u64>,
    /// A worker waited over a millisecond for a CPU shortly before.
    pub disturbed: bool,
}

/// Expired-but-resident entries under a random short TTL on every set.
#[derive(Clone, Debug, Serialize)]
pub struct TtlRow {
    /// Which store.
    pub store: Kind,
    /// Mean share of resident entries that had expired, per repetition.
    pub expired_mean: Summary,
    /// The 90th percentile of the share over a repetition's samples, per repetition.
    pub expired_p90: Summary,
    /// Largest share seen in any sample, per repetition.
    pub expired_max: Summary,
    /// The 90th percentile over the snapshots no worker stall preceded, per repetition: a
    /// diagnosis of machine noise, not the target.
    pub expired_p90_undisturbed: Summary,
    /// Mean resident entries, per repetition.
    pub resident_mean: Summary,
    /// Mean live entries, per repetition.
    pub live_mean: Summary,
    /// Million operations per second, per repetition.
    pub mops: Summary,
    /// Snapshots taken, over all repetitions.
    pub samples_total: usize,
    /// Snapshots shortly after a worker waited over a millisecond for a CPU.
    pub samples_disturbed: usize,
    /// The last repetition's samples.
    pub samples: Vec<TtlSample>,
}

/// Hit ratio of a size-limited store on a trace, against exact LRU.
#[derive(Clone, Debug, Serialize)]
pub struct ChurnRow {
    /// `zipf` or `scan`.
    pub trace: &'static str,
    /// Which store.
    pub store: Kind,
    /// The limit it ran with.
    pub limit: Limit,
    /// Its hit ratio, or why there is none.
    pub hit_ratio: Result<f64, String>,
    /// Exact LRU's hit ratio on the same trace with the same limit.
    pub lru_hit_ratio: f64,
    /// Million cache-aside accesses per second (one thread).
    pub mops: Option<f64>,
}

/// Who answers a miss: hodor through `Contract::get_opt`, or a store of the table through
/// its `get` (for [`Kind::Hodor`], `Contract::get`, whose miss is an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissStore {
    /// `Contract::get_opt`.
    GetOpt,
    /// A store's `get`.
    Store(Kind),
}

impl MissStore {
    /// The column title.
    pub fn label(self) -> &'static str {
        match self {
            MissStore::GetOpt => "hodor get_opt",
            MissStore::Store(Kind::Hodor) => "hodor get",
            MissStore::Store(kind) => kind.label(),
        }
    }
}

/// Throughput of reads of absent keys.
#[derive(Clone, Debug, Serialize)]
pub struct MissRow {
    /// Keys in the store (the absent keys are as many others).
    pub keys: usize,
    /// Threads.
    pub threads: usize,
    /// Who answered.
    pub store: MissStore,
    /// Million misses per second, over the repetitions.
    pub mops: Summary,
    /// Reads that found a value (0 expected).
    pub hits: u64,
}

/// What counting operations costs, from the same calls built with and without counting
/// (see [`crate::counting`]).
#[derive(Clone, Debug, Serialize)]
pub struct CountingCost {
    /// Keys in the probe's memory store.
    pub keys: usize,
    /// `Contract::get` hit on the memory driver, ns per call, counting compiled in.
    pub get_hit_ns: Summary,
    /// The same, counting compiled out.
    pub get_hit_uncounted_ns: Summary,
    /// Per round, (counted - uncounted) / counted for the `get` hit: the share of a get
    /// that counting costs.
    pub get_hit_share: Summary,
    /// `Contract::get_opt` miss on the memory driver, ns per call, counted and not.
    pub get_opt_miss_ns: Summary,
    /// The same, counting compiled out.
    pub get_opt_miss_uncounted_ns: Summary,
    /// `Contract::get` on a driver that does nothing, ns per call, counted.
    pub noop_get_ns: Summary,
    /// The same, counting compiled out.
    pub noop_get_uncounted_ns: Summary,
}

/// A Redis operation the benchmark compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisOp {
    /// hodor-redis `get` of a present key; plain `GET`.
    Get,
    /// hodor-redis `set` with a TTL; plain `SET ... PX`.
    Set,
    /// hodor-redis `list(prefix)`; plain `ZRANGE ... BYLEX` of the same keys.
    List,
}

impl RedisOp {
    /// The row title.
    pub fn label(self) -> &'static str {
        match self {
            RedisOp::Get => "get (hit)",
            RedisOp::Set => "set with a TTL",
            RedisOp::List => "list 100 keys",
        }
    }
}

/// One Redis measurement: an operation on a number of client threads, both clients.
#[derive(Clone, Debug, Serialize)]
pub struct RedisRow {
    /// What was done.
    pub op: RedisOp,
    /// Client threads.
    pub threads: usize,
    /// hodor-redis through `Contract`, thousand operations per second.
    pub hodor_kops: Summary,
    /// The plain redis crate, thousand operations per second.
    pub plain_kops: Summary,
    /// Microseconds the server spent per hodor-redis operation (`INFO commandstats`).
    pub hodor_server_us: Summary,
    /// Microseconds the server spent per plain operation.
    pub plain_server_us: Summary,
    /// Calls that failed or returned the wrong thing, both clients (0 expected).
    pub errors: u64,
}

/// The Redis phase.
#[derive(Clone, Debug, Serialize)]
pub struct RedisResults {
    /// `redis-server --version`.
    pub server: String,
    /// The rows.
    pub rows: Vec<RedisRow>,
}

/// Which way a target goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Goal {
    /// The value must be at least the target.
    AtLeast,
    /// The value must be at most the target.
    AtMost,
}

/// One target and how this run did against it.
#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    /// A stable name, for comparing runs.
    pub name: &'static str,
    /// The measured value, or `None` when it could not be measured.
    pub value: Option<f64>,
    /// The target.
    pub target: f64,
    /// Which way the target goes.
    pub goal: Goal,
    /// How the value was computed, or why it is missing.
    pub detail: String,
}

impl Ratio {
    /// `ok`, `MISS`, or `n/a`.
    pub fn status(&self) -> &'static str {
        match self.value {
            None => "n/a",
            Some(v) if v.is_nan() => "n/a",
            Some(v) => {
                let met = match self.goal {
                    Goal::AtLeast => v >= self.target,
                    Goal::AtMost => v <= self.target,
                };
                if met { "ok" } else { "MISS" }
            }
        }
    }

    /// The `ratio NAME VALUE target TARGET status` line.
    pub fn line(&self) -> String {
        let value = match self.value {
            Some(v) if !v.is_nan() => format!("{v:.3}"),
            _ => "N/A".to_owned(),
        };
        let goal = match self.goal {
            Goal::AtLeast => ">=",
            Goal::AtMost => "<=",
        };
        format!(
            "ratio {} {} target {}{} {}",
            self.name,
            value,
            goal,
            self.target,
            self.status()
        )
    }
}

/// The machine the run was on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Threads the OS offers.
    pub cpus: usize,
    /// `rustc --version` at build time, when known.
    pub rustc: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Whether the counting allocator measured memory.
    pub counting_allocator: bool,
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    /// Where it ran.
    pub machine: Machine,
    /// What it ran.
    pub plan: Plan,
    /// Throughput rows.
    pub throughput: Vec<ThroughputRow>,
    /// `list` rows.
    pub list: Vec<ListRow>,
    /// TTL rows.
    pub ttl: Vec<TtlRow>,
    /// Churn rows.
    pub churn: Vec<ChurnRow>,
    /// Memory rows.
    pub memory: Vec<MemoryRow>,
    /// Reads of absent keys.
    pub misses: Vec<MissRow>,
    /// The counting cost measurement.
    pub counting: Option<CountingCost>,
    /// hodor-redis against the plain redis crate.
    pub redis: Option<RedisResults>,
    /// hodor-log against tracing-appender.
    pub log: Option<LogResults>,
    /// The watch phase.
    pub watch: Option<crate::watch::WatchResults>,
    /// Persistence and compression.
    pub persist: Option<PersistResults>,
    /// Targets, computed from the rows above.
    pub ratios: Vec<Ratio>,
    /// Anything the reader should know: stores that could not run, sanity failures.
    pub notes: Vec<String>,
    /// The fixed bytes hodor charges each entry against `max_bytes` beyond its key and
    /// value; every evicting store and the LRU reference charge the same.
    pub entry_overhead: u64,
    /// Seconds the run took.
    pub seconds: f64,
}

impl Results {
    /// The throughput summary of one configuration.
    pub fn throughput(
        &self,
        workload: Workload,
        keys: usize,
        value: usize,
        threads: usize,
        store: Kind,
    ) -> Option<&Summary> {
        self.throughput
            .iter()
            .find(|r| {
                r.workload == workload
                    && r.keys == keys
                    && r.value_bytes == value
                    && r.threads == threads
                    && r.store == store
            })
            .map(|r| &r.mops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_middle() {
        let s = Summary::of(vec![5.0, 1.0, 3.0]);
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        assert_eq!(Summary::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Summary::of(vec![]).median, 0.0);
    }

    #[test]
    fn ratio_lines_say_ok_miss_or_na() {
        let mut r = Ratio {
            name: "x",
            value: Some(3.5),
            target: 3.0,
            goal: Goal::AtLeast,
            detail: String::new(),
        };
        assert_eq!(r.line(), "ratio x 3.500 target >=3 ok");
        r.goal = Goal::AtMost;
        assert_eq!(r.status(), "MISS");
        r.value = None;
        assert_eq!(r.line(), "ratio x N/A target <=3 n/a");
    }
}
