//! The targets hodor's memory driver is held to, each computed from one run's rows.

use crate::persist::PersistResults;
use crate::results::{Goal, MissStore, Ratio, RedisOp, Results, Workload};
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

/// The key counts of the big and the small cell, and the most threads.
fn cells(r: &Results) -> (usize, usize, usize) {
    let threads = r.plan.threads.iter().copied().max().unwrap_or(1);
    (r.plan.target_keys, r.plan.small_keys, threads)
}

/// The median throughput of one 64-byte configuration.
fn median(r: &Results, w: Workload, keys: usize, threads: usize, kind: Kind) -> Option<f64> {
    r.throughput(w, keys, 64, threads, kind).map(|s| s.median)
}

/// `a / b` when both were measured.
fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// hodor-redis `list` is one round trip, like the plain `ZRANGE ... BYLEX`, plus leaving
/// out expired keys: a check that almost always finds nothing (writes and the pruner remove
/// members as they expire) and so need not cost per member. The same bar as `set`.
const REDIS_LIST_TARGET: f64 = 0.75;

/// Every target, in the order the report prints them: the earlier rounds' targets that
/// still hold, then issue 15's.
pub fn compute(r: &Results) -> Vec<Ratio> {
    let (big, small, threads) = cells(r);
    let tput = |w, keys, threads, kind| median(r, w, keys, threads, kind);
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
    out.extend(crate::watch::ratios(&r.plan, r.watch.as_ref()));
    persist_targets(r, &mut out);
    out.extend(issue_15(r));
    out
}

/// The targets of the second performance round (issue 15): at or ahead of the best peer on
/// every row, writes and Redis included. Printed last.
fn issue_15(r: &Results) -> Vec<Ratio> {
    let (big, small, threads) = cells(r);
    let tput = |w, keys, threads, kind| median(r, w, keys, threads, kind);
    let mut out = Vec::new();

    let pair = |w, keys, threads, a, b| div(tput(w, keys, threads, a), tput(w, keys, threads, b));
    out.push(ratio(
        "get_hit_contract_vs_quick_cache",
        pair(
            Workload::GetHit,
            big,
            threads,
            Kind::Hodor,
            Kind::QuickCache,
        ),
        Goal::AtLeast,
        1.0,
        format!("get 100% hit, {big} keys, 64 B, {threads} threads: hodor Contract / quick_cache"),
    ));
    out.push(ratio(
        "get_hit_contract_vs_quick_cache_small_1t",
        pair(Workload::GetHit, small, 1, Kind::Hodor, Kind::QuickCache),
        Goal::AtLeast,
        0.9,
        format!("get 100% hit, {small} keys, 64 B, 1 thread: hodor Contract / quick_cache"),
    ));
    out.push(ratio(
        "set_new_contract_vs_dashmap",
        pair(Workload::SetNew, big, threads, Kind::Hodor, Kind::DashMap),
        Goal::AtLeast,
        1.0,
        format!("set of new keys into an empty store, {big} keys, {threads} threads: hodor Contract / dashmap"),
    ));
    out.push(ratio(
        "set_new_contract_thread_scaling",
        div(
            tput(Workload::SetNew, big, threads, Kind::Hodor),
            tput(Workload::SetNew, big, 1, Kind::Hodor),
        ),
        Goal::AtLeast,
        1.6,
        format!("set of new keys into an empty store, {big} keys: hodor Contract on {threads} threads / on 1 thread"),
    ));
    out.push(ratio(
        "zipf_50_50_contract_vs_dashmap",
        pair(Workload::Mix50, big, threads, Kind::Hodor, Kind::DashMap),
        Goal::AtLeast,
        1.0,
        format!("50/50 get/set Zipf(0.99), {big} keys, 64 B, {threads} threads: hodor Contract / dashmap"),
    ));

    let miss = |keys, store| {
        r.misses
            .iter()
            .find(|m| m.keys == keys && m.threads == 1 && m.store == store)
            .map(|m| m.mops.median)
    };
    let get_miss = MissStore::Store(Kind::Hodor);
    out.push(ratio(
        "get_opt_miss_vs_get_miss",
        div(miss(small, MissStore::GetOpt), miss(small, get_miss)),
        Goal::AtLeast,
        5.0,
        format!(
            "reads of absent keys, {small} keys, 1 thread: Contract::get_opt / Contract::get (its NotFound error); at {big} keys: {}",
            div(miss(big, MissStore::GetOpt), miss(big, get_miss))
                .map_or_else(|| "not run".to_owned(), |x| format!("{x:.2}"))
        ),
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
        1.5,
        format!(
            "time of list() returning 100 of {} keys with a concurrent writer: hodor / `RwLock<BTreeMap>`",
            r.plan.list.keys
        ),
    ));

    for (name, ttl, target) in [
        ("bytes_per_entry_overhead", false, 90.0),
        ("bytes_per_entry_overhead_ttl", true, 96.0),
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
            target,
            match row {
                Some(m) => format!(
                    "heap bytes per entry beyond key and value, {} entries{}",
                    m.entries,
                    if ttl { ", every entry with a TTL" } else { "" }
                ),
                None if !r.plan.phases.memory => "memory phase not run".to_owned(),
                None => "not measured: the counting allocator is not installed".to_owned(),
            },
        ));
    }

    let counting = r.counting.as_ref();
    out.push(ratio(
        "counting_cost_of_get",
        counting.map(|c| c.get_hit_share.median),
        Goal::AtMost,
        0.05,
        match counting {
            Some(c) => format!(
                "(with - without counting) / with, Contract::get hit on the memory driver, {} keys, 1 thread, from one probe built both ways ({:.1} vs {:.1} ns; on a no-op driver {:.1} vs {:.1} ns)",
                c.keys,
                c.get_hit_ns.median,
                c.get_hit_uncounted_ns.median,
                c.noop_get_ns.median,
                c.noop_get_uncounted_ns.median
            ),
            None => "counting phase not run".to_owned(),
        },
    ));

    let redis = |op| {
        let rows = &r.redis.as_ref()?.rows;
        let max = rows.iter().map(|row| row.threads).max()?;
        let row = rows.iter().find(|row| row.op == op && row.threads == max)?;
        Some((row.hodor_kops.median / row.plain_kops.median, row))
    };
    for (name, op, target, what) in [
        (
            "redis_get_vs_plain",
            RedisOp::Get,
            1.0,
            "hodor-redis get / plain GET",
        ),
        (
            "redis_set_vs_plain_px",
            RedisOp::Set,
            0.75,
            "hodor-redis set with a TTL / plain SET ... PX",
        ),
        (
            "redis_list_vs_plain_zrange",
            RedisOp::List,
            REDIS_LIST_TARGET,
            "hodor-redis list of 100 keys / plain ZRANGE ... BYLEX of the same 100",
        ),
    ] {
        let found = redis(op);
        out.push(ratio(
            name,
            found.map(|(x, _)| x),
            Goal::AtLeast,
            target,
            match found {
                Some((_, row)) => format!(
                    "{what}, {} keys, {} client threads, one local redis-server (server time per call: {:.1} vs {:.1} µs)",
                    r.plan.redis.keys,
                    row.threads,
                    row.hodor_server_us.median,
                    row.plain_server_us.median
                ),
                None => "Redis phase not run (see the notes)".to_owned(),
            },
        ));
    }
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
