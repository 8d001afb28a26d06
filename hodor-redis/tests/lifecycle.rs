//! Opening and closing leave nothing behind: a failed open starts no thread and registers
//! nothing, and the pruning thread of a pool ends when its last contract goes.
//!
//! The checks count the process's threads in `/proc/self/task`, so they run as one test,
//! one after the other: a second test would start its harness thread while the first
//! counts.

mod support;

use std::time::{Duration, Instant};

use hodor_core::{Contract, Error};
use hodor_redis::RedisConfig;
use serde_json::json;

/// The threads of this process, or `None` where `/proc` cannot tell.
fn threads() -> Option<usize> {
    std::fs::read_dir("/proc/self/task")
        .ok()
        .map(Iterator::count)
}

/// The names of this process's threads, for a failure message.
fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Waits up to two seconds for the thread count to come back to `baseline`.
fn settles_to(baseline: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = threads().unwrap_or(0);
        if now <= baseline || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

const HOUR_MS: u64 = 3_600_000;

#[test]
fn opening_and_closing_leave_no_thread_behind() {
    failed_opens_start_no_thread();
    the_pruning_thread_ends_with_the_last_contract_of_its_pool();
}

fn failed_opens_start_no_thread() {
    let Some(before) = threads() else {
        return support::skip("failed_opens_start_no_thread", "no /proc/self/task");
    };
    let url = format!("redis://127.0.0.1:{}/0", support::free_port());
    for i in 0..50u64 {
        // A different config each time, so each open builds a new pool.
        let config = json!({
            "url": url,
            "prune_interval_ms": HOUR_MS - i,
            "connect_timeout_ms": 200,
        });
        let e = Contract::new("redis", "lifecycle", Some(config)).unwrap_err();
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
        let config = RedisConfig::new(url.clone()).prune_interval_ms(HOUR_MS - 100 - i);
        let e = hodor_redis::open("lifecycle", &config).unwrap_err();
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    }
    let after = settles_to(before);
    assert!(
        after <= before,
        "100 failed opens left {} threads behind: {:?}",
        after - before,
        thread_names()
    );
}

fn the_pruning_thread_ends_with_the_last_contract_of_its_pool() {
    let Some(url) = support::url("the_pruning_thread_ends_with_the_last_contract") else {
        return;
    };
    let Some(before) = threads() else {
        return support::skip("the_pruning_thread_ends", "no /proc/self/task");
    };
    for i in 0..20u64 {
        let config = json!({ "url": url, "prune_interval_ms": HOUR_MS - i });
        let a =
            Contract::new("redis", &support::unique("lifecycle"), Some(config.clone())).unwrap();
        let b = Contract::new("redis", &support::unique("lifecycle"), Some(config)).unwrap();
        a.set("k", "v", None).unwrap();
        a.close().unwrap();
        drop(b); // dropped without close
    }
    let after = settles_to(before);
    assert!(
        after <= before,
        "20 opened and closed pools left {} threads behind: {:?}",
        after - before,
        thread_names()
    );
}
