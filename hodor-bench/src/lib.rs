//! # hodor-bench: hodor's memory driver against the stores Rust users reach for
//!
//! `cargo run --release -p hodor-bench -- [--quick]` measures, side by side in one run on one
//! machine: hodor through `Contract`, hodor's `MemoryDriver` called directly, moka's sync
//! cache (per-entry TTL and a weigher, like hodor), quick_cache, dashmap, a
//! `parking_lot::RwLock<BTreeMap>` (what object_store's and OpenDAL's memory backends are) and
//! a plain `hashbrown` map without a lock (one thread only: the physical limit).
//!
//! It prints a Markdown report ending in one `ratio NAME VALUE target TARGET ok|MISS|n/a` line
//! per target, and writes the same numbers as JSON plus a PNG chart (see `main.rs`).
//!
//! ## Method
//! - Key and operation streams are generated from fixed seeds before any timing starts, with
//!   key bytes inline so replaying a stream reads memory sequentially ([`stream`]).
//! - Every store gets the same streams, the same `Bytes` values (shared, so storing one is a
//!   reference-count increment everywhere) and does the same work per operation: every
//!   `get` clones the value out ([`stores`]).
//! - Threads start together at a barrier; each measurement is repeated
//!   [`Plan::reps`](plan::Plan::reps) times with the stores interleaved (A, B, C, then
//!   B, C, A, ...); the report gives the median and the min–max.
//! - Memory is counted by a global allocator in the benchmark binary ([`memory`]).
//!
//! The workloads: [`throughput`] (get hits, 95/5 and 50/50 Zipf mixes, inserts of new
//! keys), [`list`] (prefix listing with a concurrent writer), [`ttl`] (a random short TTL on
//! every set), [`churn`] (hit ratio under a size limit against an exact [`lru`]), [`miss`]
//! (reads of absent keys, `get` against `get_opt`), [`counting`] (what counting operations
//! costs, from two builds of one probe), [`logging`] (hodor-log against tracing-appender),
//! [`redis_phase`] (hodor-redis against the plain redis crate), [`watch`] (what watching
//! costs a write, and event latency) and [`persist`] (what persistence and compression cost
//! hodor's own memory driver).
//!
//! This crate is a tool, not a library for users: it panics on broken internal invariants.

#![deny(missing_docs)]

pub mod chart;
pub mod churn;
pub mod counting;
pub mod keys;
pub mod list;
pub mod logging;
pub mod lru;
pub mod memory;
pub mod miss;
pub mod persist;
pub mod plan;
pub mod profile;
pub mod redis_phase;
pub mod report;
pub mod results;
pub mod rng;
pub mod runner;
pub mod stores;
pub mod stream;
pub mod system;
pub mod targets;
pub mod throughput;
pub mod ttl;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Instant;

use hodor_memory as _; // registers the "memory" driver for Contract::new
use hodor_redis as _; // and "redis", for the Redis and watch phases

use crate::keys::Values;
use crate::plan::Plan;
use crate::results::Results;
use crate::stores::Kind;

/// The workspace this benchmark was built from: where `target/` and the READMEs are, and
/// what the counting phase builds its probe from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Progress lines on stderr, with the time since the run started.
#[derive(Debug)]
pub struct Progress {
    start: Instant,
    quiet: bool,
}

impl Progress {
    /// Prints progress unless `quiet`.
    pub fn new(quiet: bool) -> Progress {
        Progress {
            start: Instant::now(),
            quiet,
        }
    }

    /// One progress line.
    pub fn say(&self, what: &str) {
        if !self.quiet {
            eprintln!("[{:6.1}s] {what}", self.start.elapsed().as_secs_f64());
        }
    }

    /// A detail under the last progress line.
    pub fn detail(&self, what: &str) {
        if !self.quiet {
            eprintln!("           {what}");
        }
    }
}

/// Runs everything `plan` asks for and computes the targets.
///
/// The phases run smallest first; the largest cell runs last and its stores are not torn
/// down (freeing millions of entries one by one takes seconds, and the process is about to
/// exit).
pub fn run(plan: &Plan, progress: &Progress) -> Results {
    let started = Instant::now();
    let counting = memory::installed();
    // Read hodor's per-entry charge now, before anything is measured.
    let overhead = stores::entry_overhead();
    let max_keys = plan
        .cells
        .iter()
        .map(|c| c.keys)
        .chain([plan.list.keys, plan.ttl.keys, 2 * plan.churn.keys])
        .chain(
            plan.phases
                .persist
                .then_some([plan.persist.keys, plan.persist.json_keys])
                .into_iter()
                .flatten(),
        )
        .chain(plan.memory_entries.iter().copied())
        .max()
        .unwrap_or(0);
    progress.say(&format!("generating {max_keys} keys"));
    let keys = keys::keys(max_keys);
    let mut r = Results {
        machine: system::machine(counting),
        plan: plan.clone(),
        throughput: Vec::new(),
        list: Vec::new(),
        ttl: Vec::new(),
        churn: Vec::new(),
        memory: Vec::new(),
        misses: Vec::new(),
        counting: None,
        redis: None,
        log: None,
        watch: None,
        persist: None,
        ratios: Vec::new(),
        notes: Vec::new(),
        entry_overhead: overhead,
        seconds: 0.0,
    };
    progress.say(&format!(
        "CPU: {} ({} threads)",
        r.machine.cpu, r.machine.cpus
    ));

    let mut cells = plan.cells.clone();
    cells.sort_by_key(|c| (c.keys, c.value));
    let (small_cells, big_cells): (Vec<_>, Vec<_>) =
        cells.iter().partition(|c| c.keys < plan.target_keys);

    let phases = plan.phases;
    let cells_needed = phases.throughput || phases.list || phases.memory;
    for &cell in small_cells.iter().filter(|_| cells_needed) {
        let stores = run_cell(plan, cell, &keys, counting, &mut r, progress);
        drop(stores);
        run_set_new(plan, cell, &keys, &mut r, progress);
    }
    if phases.ttl {
        ttl::run(plan, &keys, &mut r.ttl, &mut r.notes, progress);
    }
    if phases.churn {
        churn::run(plan, &keys, &mut r.churn, progress);
    }
    if phases.log {
        r.log = logging::run(plan, progress);
        if r.log.is_none() {
            r.notes
                .push("log: hodor-log could not be measured".to_owned());
        }
    }
    if phases.redis {
        match redis_phase::run(plan, progress) {
            Ok(redis) => {
                for row in redis.rows.iter().filter(|row| row.errors > 0) {
                    r.notes.push(format!(
                        "redis: {} on {} thread(s): {} calls failed or answered wrongly",
                        row.op.label(),
                        row.threads,
                        row.errors
                    ));
                }
                r.redis = Some(redis);
            }
            Err(e) => r.notes.push(format!("redis rows skipped: {e}")),
        }
    }
    if phases.counting {
        match counting::run(plan, &workspace_root(), progress) {
            Ok(cost) => r.counting = Some(cost),
            Err(e) => r.notes.push(format!("counting cost not measured: {e}")),
        }
    }
    if phases.watch {
        r.watch = Some(watch::run(plan, progress));
    }
    if phases.persist {
        r.persist = Some(persist::run(&plan.persist, &keys, progress));
    }
    let mut kept = if phases.memory {
        memory_with_ttl(plan, &keys, counting, &mut r, progress)
    } else {
        Vec::new()
    };
    let last = big_cells.len();
    for (i, &cell) in big_cells.iter().enumerate().filter(|_| cells_needed) {
        let stores = run_cell(plan, cell, &keys, counting, &mut r, progress);
        if i + 1 == last {
            kept.extend(stores);
        } else {
            drop(stores);
        }
        run_set_new(plan, cell, &keys, &mut r, progress);
    }

    for row in r.misses.iter().filter(|m| m.hits > 0) {
        r.notes.push(format!(
            "get of absent keys | {} keys | {} thread(s) | {}: {} hits (expected none)",
            row.keys,
            row.threads,
            row.store.label(),
            row.hits
        ));
    }
    for row in &r.throughput {
        if row.misses > 0 || row.failed > 0 {
            r.notes.push(format!(
                "{} | {} keys | {} B | {} thread(s) | {}: {} misses, {} failed sets (expected none)",
                row.workload.label(),
                row.keys,
                row.value_bytes,
                row.threads,
                row.store.label(),
                row.misses,
                row.failed
            ));
        }
    }
    if !counting && plan.phases.memory {
        r.notes.push(
            "memory per entry not measured: the counting allocator is not the global allocator"
                .to_owned(),
        );
    }
    r.ratios = targets::compute(&r);
    r.seconds = started.elapsed().as_secs_f64();
    // Deliberately not torn down; see above.
    std::mem::forget(kept);
    r
}

/// Loads a cell (measuring memory when it is one of the plan's memory sizes) and runs its
/// workloads; returns the loaded stores.
fn run_cell(
    plan: &Plan,
    cell: plan::Cell,
    keys: &[String],
    counting: bool,
    r: &mut Results,
    progress: &Progress,
) -> Vec<stores::Built> {
    let values = Values::new(cell.value, cell.keys, cell.value as u64);
    progress.say(&format!(
        "loading {} keys with {} B values into every store",
        cell.keys, cell.value
    ));
    let count = plan.phases.memory
        && counting
        && cell.value == 64
        && plan.memory_entries.contains(&cell.keys);
    // Listing alone needs only the stores that can list.
    let only_list = !plan.phases.throughput && !count;
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| !only_list || k.ordered())
        .collect();
    let stores = throughput::build_cell(
        cell,
        &kinds,
        keys,
        &values,
        count,
        &mut r.memory,
        &mut r.notes,
        progress,
    );
    throughput::run_loaded(
        plan,
        cell,
        &stores,
        keys,
        &values,
        &mut r.throughput,
        progress,
    );
    if cell.keys == plan.list.keys && cell.value == 64 {
        list::run(
            plan,
            &stores,
            keys,
            &values,
            &mut r.list,
            &mut r.notes,
            progress,
        );
    }
    if plan.phases.throughput && cell.value == 64 {
        miss::run(plan, cell, &stores, &values, &mut r.misses, progress);
    }
    stores
}

fn run_set_new(
    plan: &Plan,
    cell: plan::Cell,
    keys: &[String],
    r: &mut Results,
    progress: &Progress,
) {
    if plan.phases.throughput && cell.keys <= plan.set_new_max_keys && cell.value == 64 {
        let values = Values::new(cell.value, cell.keys, cell.value as u64);
        throughput::run_set_new(
            plan,
            cell,
            keys,
            &values,
            &mut r.throughput,
            &mut r.notes,
            progress,
        );
    }
}

/// Memory per entry with a TTL on every entry (the TTL stores), plus the no-TTL rows for
/// sizes no 64-byte cell measures. Returns the stores of the largest size, not torn down.
fn memory_with_ttl(
    plan: &Plan,
    keys: &[String],
    counting: bool,
    r: &mut Results,
    progress: &Progress,
) -> Vec<stores::Built> {
    let mut kept = Vec::new();
    if !counting {
        return kept;
    }
    let largest = plan.memory_entries.iter().copied().max().unwrap_or(0);
    for &n in &plan.memory_entries {
        progress.say(&format!("memory per entry, {n} entries"));
        let values = Values::new(64, n, 64);
        let measured_by_a_cell = plan.cells.iter().any(|c| c.keys == n && c.value == 64);
        for ttl in [memory::MEMORY_TTL_MS, 0] {
            if ttl == 0 && measured_by_a_cell {
                continue;
            }
            let load = throughput::load_stream(keys, n, ttl);
            for kind in Kind::ALL.into_iter().filter(|k| ttl == 0 || k.ttl()) {
                let spec = stores::Spec {
                    entries: n,
                    limit: stores::Limit::None,
                };
                match memory::build_and_load(kind, spec, &load, &values, true) {
                    Ok((built, Some(row))) => {
                        r.memory.push(row);
                        if n == largest {
                            kept.push(built);
                        }
                    }
                    Ok((_, None)) => r.notes.push(format!(
                        "memory: {} did not hold all {n} entries",
                        kind.label()
                    )),
                    Err(e) => r.notes.push(format!("memory: {}: {e}", kind.label())),
                }
            }
        }
    }
    kept
}
