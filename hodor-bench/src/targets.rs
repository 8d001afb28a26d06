//! The targets hodor's memory driver is held to, each computed from one run's rows.

use crate::persist::PersistResults;
use crate::results::{Goal, Ratio, Results, Workload};
use crate::stores::{Kind, Limit};

fn ratio(name: &'static str, value: Option<f64>, goal: Goal, target: f64, detail: String) -> Ratio {
    Ratio {
        name,
        value,
        target,
        goal,
        detail,
    }
}

/// Every target, in the order the report prints them.
pub fn compute(r: &Results) -> Vec<Ratio> {
    let big = r.plan.target_keys;
    let small = r.plan.small_keys;
    let threads = r.plan.threads.iter().copied().max().unwrap_or(1);
    let tput = |w, keys, threads, kind| r.throughput(w, keys, 64, threads, kind).map(|s| s.median);
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut out = Vec::new();

    let hodor_get = tput(Workload::GetHit, big, threads, Kind::Hodor);
    out.push(ratio(
        "get_hit_contract_vs_moka",
        div(hodor_get, tput(Workload::GetHit, big, threads, Kind::Moka)),
        Goal::AtLeast,
        3.0,
        format!("get 100% hit, {big} keys, 64 B, {threads} threads: hodor Contract / moka"),
    ));
    out.push(ratio(
        "get_hit_contract_vs_dashmap",
        div(
            hodor_get,
            tput(Workload::GetHit, big, threads, Kind::DashMap),
        ),
        Goal::AtLeast,
        0.8,
        format!("get 100% hit, {big} keys, 64 B, {threads} threads: hodor Contract / dashmap"),
    ));
    out.push(ratio(
        "zipf_95_5_contract_vs_moka",
        div(
            tput(Workload::Mix95, big, threads, Kind::Hodor),
            tput(Workload::Mix95, big, threads, Kind::Moka),
        ),
        Goal::AtLeast,
        2.0,
        format!("95/5 get/set Zipf(0.99), {big} keys, 64 B, {threads} threads: hodor / moka"),
    ));

    let list_time = |kind| {
        r.list
            .iter()
            .find(|l| l.store == kind && l.matches == 100)
            .map(|l| l.micros.median)
    };
    out.push(ratio(
        "list_100_contract_vs_btreemap_time",
        div(list_time(Kind::Hodor), list_time(Kind::BTreeMap)),
        Goal::AtMost,
        2.0,
        format!(
            "time of list() returning 100 of {} keys with a concurrent writer: hodor / `RwLock<BTreeMap>`",
            r.plan.list.keys
        ),
    ));

    let contract = tput(Workload::GetHit, small, 1, Kind::Hodor);
    let driver = tput(Workload::GetHit, small, 1, Kind::HodorDriver);
    out.push(ratio(
        "contract_overhead_on_get",
        div(driver, contract).map(|x| x - 1.0),
        Goal::AtMost,
        0.10,
        format!(
            "get 100% hit, {small} keys, 64 B, 1 thread: driver throughput / Contract throughput - 1"
        ),
    ));

    for (name, ttl) in [
        ("bytes_per_entry_overhead", false),
        ("bytes_per_entry_overhead_ttl", true),
    ] {
        let row = r
            .memory
            .iter()
            .filter(|m| m.store == Kind::Hodor && m.ttl == ttl)
            .max_by_key(|m| m.entries);
        out.push(ratio(
            name,
            row.map(|m| m.overhead_per_entry),
            Goal::AtMost,
            96.0,
            match row {
                Some(m) => format!(
                    "heap bytes per entry beyond key and value, {} entries{}",
                    m.entries,
                    if ttl { ", every entry with a TTL" } else { "" }
                ),
                None => "not measured: the counting allocator is not installed".to_owned(),
            },
        ));
    }

    let ttl_row = r.ttl.iter().find(|t| t.store == Kind::Hodor);
    out.push(ratio(
        "ttl_expired_resident_share",
        ttl_row.map(|t| t.expired_p90.median),
        Goal::AtMost,
        0.05,
        format!(
            "share of resident entries that had expired, 90th percentile of the snapshots (the max is in the table), random 1-{} ms TTL on every set, median over repetitions",
            r.plan.ttl.max_ttl_ms
        ),
    ));

    for (name, trace) in [
        ("churn_zipf_hit_ratio_vs_lru_pp", "zipf"),
        ("churn_scan_hit_ratio_vs_lru_pp", "scan"),
    ] {
        let row = r.churn.iter().find(|c| {
            c.trace == trace && c.store == Kind::Hodor && matches!(c.limit, Limit::Bytes(_))
        });
        let (value, detail) = match row {
            Some(c) => match &c.hit_ratio {
                Ok(h) => (
                    Some((h - c.lru_hit_ratio).abs() * 100.0),
                    format!(
                        "|hodor - exact LRU| hit ratio in percentage points, {trace} trace, max_bytes = 1/3 of the working set (hodor {:.2}%, LRU {:.2}%)",
                        h * 100.0,
                        c.lru_hit_ratio * 100.0
                    ),
                ),
                Err(e) => (None, format!("hodor cannot run with max_bytes: {e}")),
            },
            None => (None, "churn not run".to_owned()),
        };
        out.push(ratio(name, value, Goal::AtMost, 2.0, detail));
    }

    let cost = r.metrics_cost.as_ref().and_then(|m| {
        let get_ns = contract.map(|mops| 1e3 / mops)?;
        Some((m.get_ns.median - m.exists_ns.median).max(0.0) / get_ns)
    });
    out.push(ratio(
        "metrics_counting_cost_of_get",
        cost,
        Goal::AtMost,
        0.05,
        format!(
            "(Contract::get - Contract::exists) on a no-op driver / Contract::get on the memory driver ({small} keys, 1 thread)"
        ),
    ));

    let log = r.log.as_ref();
    out.push(ratio(
        "log_layer_vs_appender_calling_thread",
        log.map(|l| l.layer_ns.median / l.appender_ns.median.min(l.appender_text_ns.median)),
        Goal::AtMost,
        2.0,
        match log {
            Some(l) => format!(
                "ns per event on the calling thread: hodor-log's layer ({:.0} ns) / tracing-appender's non-blocking writer under the cheaper of fmt().json() ({:.0} ns) and fmt() text ({:.0} ns), all into a sink that discards",
                l.layer_ns.median, l.appender_ns.median, l.appender_text_ns.median
            ),
            None => "log phase not run".to_owned(),
        },
    ));
    out.push(ratio(
        "log_memory_mevents_per_sec",
        log.map(|l| l.memory_mevents.median),
        Goal::AtLeast,
        0.5,
        format!(
            "million events per second stored by one logging thread into the memory driver through hodor-log (blocking mode, {} events until the last batch is written)",
            r.plan.log.throughput_events
        ),
    ));
    persist_targets(r, &mut out);
    out
}

/// `compression_get_vs_raw`'s target: a compressed `get` at least this fraction as fast as
/// one that hands out the stored buffer.
pub const COMPRESSED_GET_TARGET: f64 = 0.3;

/// The persistence and compression targets.
fn persist_targets(r: &Results, out: &mut Vec<Ratio>) {
    let plan = &r.plan.persist;
    let p = r.persist.as_ref();
    let of = |f: fn(&PersistResults) -> (f64, f64)| {
        p.map(f).and_then(|(a, b)| (b > 0.0).then_some(a / b))
    };
    let not_run = |detail: String| {
        if p.is_some() {
            detail
        } else {
            format!("{detail} (the persist phase did not run)")
        }
    };
    out.push(ratio(
        "persist_sets_interval_vs_memory",
        of(|p| (p.sets_interval.median, p.sets_memory.median)),
        Goal::AtLeast,
        0.5,
        not_run(format!(
            "set of {} new keys (64 B values) from {} threads into a fresh store: fsync = interval / without persistence",
            plan.keys, plan.threads
        )),
    ));
    out.push(ratio(
        "persist_always_group_commit_vs_one_fsync_per_write",
        of(|p| (p.always_many.median, p.always_one.median)),
        Goal::AtLeast,
        4.0,
        not_run(format!(
            "acknowledged sets per second with fsync = always: {} writer threads (group commit, {:.1} writes per fsync) / one writer (one fsync per write)",
            plan.always_threads,
            p.map_or(0.0, |p| p.writes_per_fsync)
        )),
    ));
    out.push(ratio(
        "persist_recovery_from_log_vs_set_time",
        of(|p| (p.recover_log_seconds.median, p.set_seconds.median)),
        Goal::AtMost,
        2.0,
        not_run(format!(
            "time to open a store of {} entries of 64 B from its log alone / time to set them into a fresh store from one thread",
            plan.keys
        )),
    ));
    out.push(ratio(
        "persist_recovery_from_snapshot_vs_set_time",
        of(|p| (p.recover_snapshot_seconds.median, p.set_seconds.median)),
        Goal::AtMost,
        2.0,
        not_run(
            "time to open the same store from a snapshot / time to set the entries into a fresh store from one thread"
                .to_owned(),
        ),
    ));
    out.push(ratio(
        "compression_stored_bytes_vs_raw",
        of(|p| (p.json_bytes_compressed as f64, p.json_bytes_raw as f64)),
        Goal::AtMost,
        0.4,
        not_run(format!(
            "metrics().bytes with LZ4 / without, {} JSON documents of {} B",
            plan.json_keys, plan.json_bytes
        )),
    ));
    out.push(ratio(
        "compression_get_vs_raw",
        of(|p| (p.get_compressed.median, p.get_raw.median)),
        Goal::AtLeast,
        COMPRESSED_GET_TARGET,
        not_run(format!(
            "get throughput, one thread, random order over {} JSON documents of {} B: compressed / as given{}",
            plan.json_keys,
            plan.json_bytes,
            p.and_then(|p| p.get_costs(COMPRESSED_GET_TARGET))
                .map_or(String::new(), |g| format!(
                    " ({:.0} ns / {:.0} ns; a get that builds a new buffer costs at least an allocation and a copy, {:.0} ns, which alone caps the ratio at {:.2}; decoding (LZ4, into a new buffer) ran at {:.1} GB/s of output, and the target needs {:.0} GB/s)",
                    g.compressed, g.raw, g.copy, g.ceiling, g.decode_gbps, g.needed_gbps
                ))
        )),
    ));
    out.push(ratio(
        "compression_get_and_read_vs_raw",
        of(|p| (p.get_read_compressed.median, p.get_read_raw.median)),
        Goal::AtLeast,
        0.3,
        not_run(
            "the same, each value then read through once (what a caller that parses or sends it pays at least): compressed / as given"
                .to_owned(),
        ),
    ));
}
