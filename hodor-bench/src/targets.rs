//! The targets hodor's memory driver is held to, each computed from one run's rows.

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
    out.extend(crate::watch::ratios(&r.plan, r.watch.as_ref()));
    out
}
