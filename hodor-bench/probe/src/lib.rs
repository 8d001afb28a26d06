//! # hodor-bench-probe: what counting costs a `Contract` call
//!
//! `Contract` counts hits, misses, sets, deletes and lists on every call. To know what that
//! costs, time the same calls in two builds of the same program: one as users get it, one
//! built with `RUSTFLAGS="--cfg hodor_no_counters"`, which compiles the counting out of
//! `hodor-core` and changes nothing else. The difference is the cost of counting, and only
//! that: both builds run the same code paths on the same data.
//!
//! `hodor-bench` builds this package both ways, each in a target directory of its own (a
//! `--cfg` in `RUSTFLAGS` applies to every crate of a build, and one target directory would
//! rebuild everything at each switch), runs the two binaries in turn and pairs their rounds
//! (see its `counting` module). Each binary checks which way it was built
//! ([`counting_compiled_in`]) and says so, so a flag that did not reach `hodor-core` cannot
//! pass unnoticed.
//!
//! The library holds the measuring code so that the benchmark's tests can run it in-process.

#![deny(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hodor_core::driver::{DriverResult, Gauges};
use hodor_core::{Capabilities, Contract, Driver, Metadata};

/// A driver that stores nothing and answers every read with an empty value: what is left of
/// a `Contract` call on it is the contract's own work (checks, counting).
#[derive(Debug)]
pub struct NoopDriver;

impl Driver for NoopDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    fn set(&self, _: &str, _: Bytes, _: Option<Duration>) -> DriverResult<()> {
        Ok(())
    }
    #[inline]
    fn get(&self, _: &str) -> DriverResult<Option<Bytes>> {
        Ok(Some(Bytes::new()))
    }
    fn delete(&self, _: &str) -> DriverResult<bool> {
        Ok(false)
    }
    fn list(&self, _: &str) -> DriverResult<Vec<String>> {
        Ok(Vec::new())
    }
    fn stat(&self, _: &str) -> DriverResult<Option<Metadata>> {
        Ok(None)
    }
    #[inline]
    fn exists(&self, _: &str) -> DriverResult<bool> {
        Ok(true)
    }
    fn gauges(&self) -> Gauges {
        Gauges::default()
    }
}

/// Whether this build counts operations: a `get` shows up in `metrics()` only if it does.
pub fn counting_compiled_in() -> bool {
    let Ok(c) = Contract::from_driver("noop", "counting-check", NoopDriver) else {
        return false;
    };
    let _ = c.get("k");
    c.metrics().gets > 0
}

/// One round's nanoseconds per call, on one thread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Round {
    /// Whether this build counts (see [`counting_compiled_in`]).
    pub counting: bool,
    /// `Contract::get` of a present key, memory driver.
    pub get_hit_ns: f64,
    /// `Contract::get_opt` of an absent key, memory driver.
    pub get_opt_miss_ns: f64,
    /// `Contract::get` on [`NoopDriver`]: the contract's work alone.
    pub noop_get_ns: f64,
}

impl Round {
    /// The round as one JSON line, what the binary prints.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "counting": self.counting,
            "get_hit_ns": self.get_hit_ns,
            "get_opt_miss_ns": self.get_opt_miss_ns,
            "noop_get_ns": self.noop_get_ns,
        })
        .to_string()
    }

    /// Reads what [`Round::to_json`] wrote.
    pub fn from_json(line: &str) -> Option<Round> {
        let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
        let ns = |field: &str| v.get(field)?.as_f64();
        Some(Round {
            counting: v.get("counting")?.as_bool()?,
            get_hit_ns: ns("get_hit_ns")?,
            get_opt_miss_ns: ns("get_opt_miss_ns")?,
            noop_get_ns: ns("noop_get_ns")?,
        })
    }
}

/// Key `i`: 18 bytes, the numbers first, like the benchmark's keys.
fn key(i: usize) -> String {
    format!("k/{i:07}/probe-kk")
}

/// A fixed pseudo-random order of `0..n`, `len` long (splitmix64).
fn order(n: usize, len: usize) -> Vec<usize> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n.max(1) as u64) as usize
        })
        .collect()
}

/// Nanoseconds this thread has waited, runnable, for a CPU: the kernel's run-queue wait
/// (`/proc/thread-self/schedstat`, Linux), or `None` where it is not reported.
///
/// The kernel adds a wait to this total when the thread gets the CPU back, so a thread that
/// reads it while running sees every wait it had, exactly.
fn runqueue_wait_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().nth(1)?.parse().ok()
}

/// Calls `call` on the keys in turn, looping, for at least `duration`; nanoseconds per call.
///
/// On a machine shared with other work, the time the OS gave this thread's CPU to another
/// program is not the calls' time: it is left out where the kernel reports it. Without
/// that, one probe build could be charged for a neighbour's burst the other was spared, and
/// the few percent counting costs would drown in it.
fn time(keys: &[&str], duration: Duration, mut call: impl FnMut(&str)) -> f64 {
    let waited_before = runqueue_wait_ns();
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        for chunk in keys.chunks(512) {
            for &k in chunk {
                call(k);
            }
            calls += chunk.len() as u64;
            if start.elapsed() >= duration {
                let elapsed = start.elapsed().as_nanos() as f64;
                let waited = match (waited_before, runqueue_wait_ns()) {
                    (Some(before), Some(after)) => after.saturating_sub(before) as f64,
                    _ => 0.0,
                };
                return (elapsed - waited).max(1.0) / calls.max(1) as f64;
            }
        }
    }
}

/// Loads `keys` keys into a fresh memory store and times each call for `duration` after an
/// untimed `warmup`.
pub fn measure(keys: usize, warmup: Duration, duration: Duration) -> Result<Round, String> {
    let keys = keys.max(1);
    let present: Vec<String> = (0..keys).map(key).collect();
    let absent: Vec<String> = (keys..2 * keys).map(key).collect();
    let value = Bytes::from(vec![7u8; 64]);
    let store = hodor_memory::open(&format!("probe-{}", std::process::id()), Default::default())
        .map_err(|e| e.to_string())?;
    for k in &present {
        store
            .set(k, value.clone(), None)
            .map_err(|e| e.to_string())?;
    }
    let noop = Contract::from_driver("noop", "probe", NoopDriver).map_err(|e| e.to_string())?;
    let stream = order(keys, 1 << 16);
    let hits: Vec<&str> = stream.iter().map(|&i| present[i].as_str()).collect();
    let misses: Vec<&str> = stream.iter().map(|&i| absent[i].as_str()).collect();

    let get_hit = |k: &str| {
        black_box(store.get(k).ok());
    };
    let get_opt_miss = |k: &str| {
        black_box(store.get_opt(k).ok());
    };
    let noop_get = |k: &str| {
        black_box(noop.get(k).ok());
    };
    time(&hits, warmup, get_hit);
    time(&misses, warmup, get_opt_miss);
    time(&hits, warmup, noop_get);
    let round = Round {
        counting: counting_compiled_in(),
        get_hit_ns: time(&hits, duration, get_hit),
        get_opt_miss_ns: time(&misses, duration, get_opt_miss),
        noop_get_ns: time(&hits, duration, noop_get),
    };
    let _ = store.close();
    Ok(round)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_survives_its_json_line() {
        let r = Round {
            counting: true,
            get_hit_ns: 40.5,
            get_opt_miss_ns: 20.0,
            noop_get_ns: 9.25,
        };
        assert_eq!(Round::from_json(&r.to_json()), Some(r));
        assert_eq!(Round::from_json("not json"), None);
    }

    #[test]
    fn a_default_build_counts_and_measures_every_call() {
        assert!(counting_compiled_in());
        let r = measure(100, Duration::from_millis(1), Duration::from_millis(2)).unwrap();
        assert!(r.counting);
        for ns in [r.get_hit_ns, r.get_opt_miss_ns, r.noop_get_ns] {
            assert!(ns > 0.0 && ns.is_finite(), "{r:?}");
        }
    }

    #[test]
    fn the_order_covers_the_keys_it_is_given() {
        let o = order(10, 1000);
        assert!(o.iter().all(|&i| i < 10));
        assert!((0..10).all(|i| o.contains(&i)));
    }
}
