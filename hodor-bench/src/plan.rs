//! How much to run: the full benchmark, `--quick`, and the smoke test's tiny version.

use std::time::Duration;

use serde::Serialize;

use crate::logging::LogPlan;
use crate::persist::PersistPlan;
use crate::results::Workload;
use crate::stores::Kind;
use crate::watch::WatchPlan;

/// One key-count × value-size combination of the throughput workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Keys loaded.
    pub keys: usize,
    /// Bytes per value.
    pub value: usize,
}

/// The `list` workload's settings.
#[derive(Clone, Debug, Serialize)]
pub struct ListPlan {
    /// Keys in the store (the cell with this many keys and 64-byte values hosts it).
    pub keys: usize,
    /// How many keys each listed prefix matches.
    pub sizes: Vec<u64>,
    /// How long the lister runs per repetition.
    pub duration: Duration,
    /// Writes the concurrent writer does per millisecond.
    pub writes_per_ms: u32,
}

/// The TTL workload's settings.
#[derive(Clone, Debug, Serialize)]
pub struct TtlPlan {
    /// Key space.
    pub keys: usize,
    /// TTLs are uniform in `1..=max_ttl_ms` milliseconds.
    pub max_ttl_ms: u16,
    /// Run time per repetition, sampling included.
    pub duration: Duration,
    /// Time before the first sample.
    pub warmup: Duration,
    /// Time between samples.
    pub sample_every: Duration,
    /// Repetitions per store.
    pub reps: usize,
    /// Worker threads.
    pub threads: usize,
}

/// The churn workload's settings.
#[derive(Clone, Debug, Serialize)]
pub struct ChurnPlan {
    /// Key space: three times the byte limit.
    pub keys: usize,
    /// Accesses per trace.
    pub trace_len: usize,
}

/// The Redis phase's settings.
#[derive(Clone, Debug, Serialize)]
pub struct RedisPlan {
    /// Keys loaded (hodor-redis entries, plain strings and a plain sorted set of the same
    /// keys).
    pub keys: usize,
    /// Client thread counts.
    pub threads: Vec<usize>,
    /// Length of one measurement.
    pub duration: Duration,
    /// The TTL every `set` passes (hodor-redis `ttl`, plain `PX`), and the one the keys are
    /// loaded with.
    pub ttl_ms: u64,
    /// How many keys each listed prefix matches.
    pub list_matches: u64,
}

/// The counting-cost phase's settings.
#[derive(Clone, Debug, Serialize)]
pub struct CountingPlan {
    /// Keys in the probe's memory store.
    pub keys: usize,
    /// Cargo profile the two probe binaries are built with.
    pub profile: &'static str,
    /// Rounds; each runs both binaries once, in alternating order.
    pub rounds: usize,
    /// Length of each timed call in a round.
    pub duration: Duration,
}

/// Which parts run (all by default; `--only` picks some).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Phases {
    /// Get hits and misses, the Zipf mixes, inserts of new keys.
    pub throughput: bool,
    /// `list` with a concurrent writer.
    pub list: bool,
    /// Random short TTLs.
    pub ttl: bool,
    /// Eviction hit ratio.
    pub churn: bool,
    /// Memory per entry.
    pub memory: bool,
    /// hodor-log against tracing-appender.
    pub log: bool,
    /// hodor-redis against the plain redis crate, on a redis-server of its own.
    pub redis: bool,
    /// What counting operations costs, from two builds of a probe.
    pub counting: bool,
    /// What watching costs a write, and event latency.
    pub watch: bool,
    /// Persistence and compression.
    pub persist: bool,
}

impl Phases {
    /// Everything.
    pub const ALL: Phases = Phases {
        throughput: true,
        list: true,
        ttl: true,
        churn: true,
        memory: true,
        log: true,
        redis: true,
        counting: true,
        watch: true,
        persist: true,
    };

    /// The names `--only` accepts, in run order.
    pub const NAMES: &'static str =
        "throughput,list,ttl,churn,memory,log,redis,counting,watch,persist";

    /// Parses a comma-separated list of phase names.
    pub fn parse(list: &str) -> Result<Phases, String> {
        let mut p = Phases {
            throughput: false,
            list: false,
            ttl: false,
            churn: false,
            memory: false,
            log: false,
            redis: false,
            counting: false,
            watch: false,
            persist: false,
        };
        for name in list.split(',') {
            match name.trim() {
                "throughput" => p.throughput = true,
                "list" => p.list = true,
                "ttl" => p.ttl = true,
                "churn" => p.churn = true,
                "memory" => p.memory = true,
                "log" => p.log = true,
                "persist" => p.persist = true,
                "redis" => p.redis = true,
                "counting" => p.counting = true,
                "watch" => p.watch = true,
                other => {
                    return Err(format!(
                        "unknown phase {other:?}: use some of {}",
                        Phases::NAMES
                    ));
                }
            }
        }
        Ok(p)
    }
}

/// Everything one run does.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// `full`, `quick` or `smoke`.
    pub name: &'static str,
    /// Interleaved repetitions of every throughput measurement.
    pub reps: usize,
    /// Length of one throughput measurement.
    pub duration: Duration,
    /// Untimed run of each store before the first repetition.
    pub warmup: Duration,
    /// Key-count × value-size cells.
    pub cells: Vec<Cell>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Operations in each thread's pre-generated stream (replayed in a loop).
    pub stream_ops: usize,
    /// `set` of new keys runs in the 64-byte cells with at most this many keys (values are
    /// shared `Bytes`, so their size does not change what an insert costs).
    pub set_new_max_keys: usize,
    /// The stores that insert new keys in cells with `target_keys` keys or more (every
    /// store in the full run; the ones the targets compare in a quick one).
    pub set_new_big_stores: Vec<Kind>,
    /// Repetitions of those inserts (each fills a store from empty, so they take long).
    pub set_new_big_reps: usize,
    /// The mixed workloads that run in cells with `target_keys` keys (get hits always run).
    pub big_mixes: Vec<Workload>,
    /// The cell the get-hit and Zipf targets are read from.
    pub target_keys: usize,
    /// The cell the Contract-overhead and metrics-cost targets are read from.
    pub small_keys: usize,
    /// `list`.
    pub list: ListPlan,
    /// TTL expiry.
    pub ttl: TtlPlan,
    /// Eviction hit ratio.
    pub churn: ChurnPlan,
    /// Entry counts at which memory per entry is measured.
    pub memory_entries: Vec<usize>,
    /// hodor-log.
    pub log: LogPlan,
    /// hodor-redis against the plain redis crate.
    pub redis: RedisPlan,
    /// The cost of counting.
    pub counting: CountingPlan,
    /// The watch phase.
    pub watch: WatchPlan,
    /// Persistence and compression.
    pub persist: PersistPlan,
    /// Which parts run.
    pub phases: Phases,
}

const K10: usize = 10_000;
const M1: usize = 1_000_000;

impl Plan {
    /// The full benchmark: every cell, longer measurements.
    pub fn full() -> Plan {
        Plan {
            name: "full",
            reps: 5,
            duration: Duration::from_millis(250),
            warmup: Duration::from_millis(100),
            cells: vec![
                Cell {
                    keys: K10,
                    value: 64,
                },
                Cell {
                    keys: K10,
                    value: 4096,
                },
                Cell {
                    keys: M1,
                    value: 64,
                },
                Cell {
                    keys: M1,
                    value: 4096,
                },
            ],
            threads: vec![1, 2],
            stream_ops: 1 << 20,
            set_new_max_keys: M1,
            set_new_big_stores: Kind::ALL.to_vec(),
            set_new_big_reps: 5,
            big_mixes: vec![Workload::Mix95, Workload::Mix50],
            target_keys: M1,
            small_keys: K10,
            list: ListPlan {
                keys: M1,
                sizes: vec![10, 100, 1000],
                duration: Duration::from_millis(300),
                writes_per_ms: 100,
            },
            ttl: TtlPlan {
                keys: M1,
                max_ttl_ms: 100,
                duration: Duration::from_secs(3),
                warmup: Duration::from_millis(500),
                sample_every: Duration::from_millis(25),
                reps: 5,
                threads: 2,
            },
            churn: ChurnPlan {
                keys: 200_000,
                trace_len: 2_000_000,
            },
            memory_entries: vec![K10, M1],
            log: LogPlan {
                events: 50_000,
                throughput_events: M1,
            },
            redis: RedisPlan {
                keys: K10,
                threads: vec![1, 8],
                duration: Duration::from_millis(1000),
                ttl_ms: 600_000,
                list_matches: 100,
            },
            counting: CountingPlan {
                keys: K10,
                profile: "release",
                rounds: 15,
                duration: Duration::from_millis(300),
            },
            watch: WatchPlan {
                keys: M1,
                threads: 2,
                duration: Duration::from_millis(500),
                reps: 5,
                probe_rounds: 6,
                probe_profile: "release",
                latency_events: 20_000,
                redis_threads: 8,
            },
            persist: PersistPlan {
                keys: M1,
                threads: 2,
                reps: 5,
                always_threads: 8,
                always_duration: Duration::from_millis(500),
                always_reps: 7,
                json_keys: 50_000,
                json_bytes: 4096,
                get_duration: Duration::from_millis(300),
            },
            phases: Phases::ALL,
        }
    }

    /// Under a minute: the cells the targets need, shorter measurements.
    pub fn quick() -> Plan {
        Plan {
            name: "quick",
            reps: 5,
            duration: Duration::from_millis(40),
            warmup: Duration::from_millis(20),
            cells: vec![
                Cell {
                    keys: K10,
                    value: 64,
                },
                Cell {
                    keys: M1,
                    value: 64,
                },
            ],
            stream_ops: 1 << 19,
            set_new_max_keys: M1,
            set_new_big_stores: vec![Kind::Hodor, Kind::DashMap],
            set_new_big_reps: 3,
            big_mixes: vec![Workload::Mix95, Workload::Mix50],
            list: ListPlan {
                duration: Duration::from_millis(60),
                ..Plan::full().list
            },
            ttl: TtlPlan {
                duration: Duration::from_millis(1000),
                reps: 3,
                ..Plan::full().ttl
            },
            churn: ChurnPlan {
                keys: 60_000,
                trace_len: 600_000,
            },
            memory_entries: vec![M1],
            log: LogPlan {
                events: 20_000,
                throughput_events: 300_000,
            },
            redis: RedisPlan {
                duration: Duration::from_millis(300),
                ..Plan::full().redis
            },
            counting: CountingPlan {
                rounds: 9,
                duration: Duration::from_millis(100),
                ..Plan::full().counting
            },
            watch: WatchPlan {
                duration: Duration::from_millis(250),
                reps: 3,
                probe_rounds: 4,
                latency_events: 5_000,
                ..Plan::full().watch
            },
            persist: PersistPlan {
                reps: 3,
                always_duration: Duration::from_millis(200),
                always_reps: 5,
                json_keys: 20_000,
                get_duration: Duration::from_millis(100),
                ..Plan::full().persist
            },
            ..Plan::full()
        }
    }

    /// A few milliseconds per workload, for the test suite: proves the harness runs, not
    /// how fast anything is.
    pub fn smoke() -> Plan {
        Plan {
            name: "smoke",
            reps: 2,
            duration: Duration::from_millis(3),
            warmup: Duration::from_millis(1),
            cells: vec![Cell {
                keys: 2000,
                value: 64,
            }],
            threads: vec![1, 2],
            stream_ops: 4096,
            set_new_max_keys: 2000,
            set_new_big_stores: Kind::ALL.to_vec(),
            set_new_big_reps: 2,
            big_mixes: vec![Workload::Mix95, Workload::Mix50],
            target_keys: 2000,
            small_keys: 2000,
            list: ListPlan {
                keys: 2000,
                sizes: vec![10, 100],
                duration: Duration::from_millis(5),
                writes_per_ms: 20,
            },
            ttl: TtlPlan {
                keys: 2000,
                max_ttl_ms: 5,
                duration: Duration::from_millis(120),
                warmup: Duration::from_millis(40),
                sample_every: Duration::from_millis(10),
                reps: 1,
                threads: 2,
            },
            churn: ChurnPlan {
                keys: 1500,
                trace_len: 6000,
            },
            memory_entries: vec![2000],
            log: LogPlan {
                events: 200,
                throughput_events: 2000,
            },
            redis: RedisPlan {
                keys: 2000,
                threads: vec![1, 2],
                duration: Duration::from_millis(20),
                ttl_ms: 600_000,
                list_matches: 100,
            },
            counting: CountingPlan {
                keys: 2000,
                profile: "dev",
                rounds: 2,
                duration: Duration::from_millis(3),
            },
            watch: WatchPlan {
                keys: 2000,
                threads: 2,
                duration: Duration::from_millis(5),
                reps: 2,
                probe_rounds: 1,
                probe_profile: "dev",
                latency_events: 200,
                redis_threads: 2,
            },
            persist: PersistPlan {
                keys: 2000,
                threads: 2,
                reps: 1,
                always_threads: 8,
                always_duration: Duration::from_millis(20),
                always_reps: 1,
                json_keys: 200,
                json_bytes: 4096,
                get_duration: Duration::from_millis(5),
            },
            phases: Phases::ALL,
        }
    }
}
