//! Bounded stores: limits hold at every observable instant, expired entries go first, a
//! recently read entry outlives never-read ones, and what cannot fit is refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hodor_core::clock::ManualClock;
use hodor_core::{Bytes, Contract, Error};
use hodor_memory::{MemoryConfig, open_with_clock};
use serde_json::json;

fn bounded(name: &str, config: MemoryConfig) -> (Contract, ManualClock) {
    let clock = ManualClock::new();
    (
        open_with_clock(name, config, clock.clone().into()).unwrap(),
        clock,
    )
}

#[test]
fn a_hundred_writer_threads_never_push_bytes_over_the_limit() {
    const LIMIT: u64 = 256 * 1024;
    let c = Contract::new(
        "memory",
        "limit-100-threads",
        Some(json!({"max_bytes": LIMIT})),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // A watcher samples the gauge as fast as it can while the writers run.
    let watcher = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let m = c.metrics();
                assert!(
                    m.bytes.unwrap() <= LIMIT,
                    "bytes {} over {LIMIT}",
                    m.bytes.unwrap()
                );
                samples += 1;
            }
            samples
        })
    };
    let barrier = Arc::new(Barrier::new(100));
    let writers: Vec<_> = (0..100u64)
        .map(|t| {
            let (c, barrier) = (c.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                barrier.wait();
                for _ in 0..300 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("k{}", x % 5_000);
                    let len = (x >> 20) as usize % 4096;
                    c.set(&key, vec![b'v'; len], None).unwrap();
                    assert!(c.metrics().bytes.unwrap() <= LIMIT);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);

    // What is resident really fits: recount it from the entries themselves.
    let m = c.metrics();
    assert!(
        m.evictions.unwrap() > 0,
        "the test must force evictions: {m:?}"
    );
    let keys = c.list("").unwrap();
    let resident: u64 = keys
        .iter()
        .map(|k| k.len() as u64 + c.stat(k).unwrap().size + 120)
        .sum();
    assert!(resident <= LIMIT, "{resident} resident bytes over {LIMIT}");
    assert_eq!(m.entries, Some(keys.len() as u64));
}

#[test]
fn the_entry_limit_holds_and_evictions_are_counted() {
    let (c, _) = bounded("limit-entries", MemoryConfig::default().max_entries(50));
    for i in 0..200 {
        c.set(&format!("k{i:03}"), "v", None).unwrap();
        assert!(c.metrics().entries.unwrap() <= 50);
    }
    let m = c.metrics();
    assert_eq!(
        (m.entries, m.evictions, m.max_entries),
        (Some(50), Some(150), Some(50))
    );
    assert_eq!(c.list("").unwrap().len(), 50);
}

#[test]
fn expired_entries_are_evicted_before_any_live_one() {
    let (c, clock) = bounded(
        "limit-expired-first",
        MemoryConfig::default().max_entries(100),
    );
    for i in 0..50 {
        c.set(&format!("ttl/{i}"), "v", Some(Duration::from_secs(1)))
            .unwrap();
        c.set(&format!("live/{i}"), "v", None).unwrap();
    }
    clock.advance(Duration::from_secs(1));
    for i in 0..50 {
        c.set(&format!("new/{i}"), "v", None).unwrap();
    }
    let m = c.metrics();
    assert_eq!(
        m.evictions,
        Some(0),
        "a live entry was evicted while expired ones remained"
    );
    assert_eq!(m.expirations, Some(50));
    assert_eq!(c.list("live/").unwrap().len(), 50);
    assert_eq!(c.list("new/").unwrap().len(), 50);
}

#[test]
fn a_recently_read_entry_survives_evictions_of_never_read_ones() {
    // CLOCK: reading an entry marks it; the eviction hand skips a marked entry once,
    // clearing the mark, so within its shard it outlives every entry not read since the
    // hand last passed it.
    let (c, _) = bounded("limit-recency", MemoryConfig::default().max_entries(2_000));
    for i in 0..2_000 {
        c.set(&format!("old/{i:04}"), "v", None).unwrap();
    }
    let hot: Vec<String> = (0..2_000)
        .step_by(97)
        .map(|i| format!("old/{i:04}"))
        .collect();
    for k in &hot {
        c.get(k).unwrap();
    }
    // Evict half the store: far less than one revolution of any shard's hand.
    for i in 0..1_000 {
        c.set(&format!("new/{i:04}"), "v", None).unwrap();
    }
    assert_eq!(c.metrics().evictions, Some(1_000));
    for k in &hot {
        assert!(c.exists(k).unwrap(), "{k} was read but evicted");
    }
    // And the evicted ones were never read: every new entry is still there too.
    assert_eq!(c.list("new/").unwrap().len(), 1_000);
}

#[test]
fn a_value_larger_than_max_bytes_is_refused_and_evicts_nothing() {
    let (c, _) = bounded("limit-too-big", MemoryConfig::default().max_bytes(10_000));
    for i in 0..10 {
        c.set(&format!("k{i}"), vec![0u8; 100], None).unwrap();
    }
    let before = c.metrics();
    let err = c.set("huge", vec![0u8; 10_000], None).unwrap_err();
    match &err {
        Error::CapacityExceeded {
            key: Some(k),
            reason,
            ..
        } => {
            assert_eq!(k, "huge");
            assert!(reason.contains("max_bytes"), "{reason}");
        }
        other => panic!("expected CapacityExceeded, got {other:?}"),
    }
    let after = c.metrics();
    assert_eq!(
        (after.entries, after.evictions),
        (before.entries, before.evictions)
    );
    assert!(!c.exists("huge").unwrap());
    // A batch that cannot fit as a whole is refused whole.
    let batch: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| (format!("b{i}"), vec![0u8; 100]))
        .collect();
    let err = c.set_many(batch, None).unwrap_err();
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err:?}");
    assert_eq!(c.list("b").unwrap(), Vec::<String>::new());
    assert_eq!(c.metrics().evictions, before.evictions);
}

#[test]
fn limits_are_validated_and_reported() {
    for (config, field) in [
        (json!({"max_bytes": 10}), "max_bytes"),
        (json!({"max_entries": 0}), "max_entries"),
        (json!({"max_entries": -5}), "max_entries"),
    ] {
        let err = Contract::new("memory", "limit-config", Some(config)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: Some(f), .. } if f == field),
            "{err:?}"
        );
    }
    let c = Contract::new(
        "memory",
        "limit-config-ok",
        Some(json!({"max_bytes": 1_000_000, "max_entries": 10})),
    )
    .unwrap();
    let m = c.metrics();
    assert_eq!(
        (m.max_bytes, m.max_entries, m.bytes, m.entries),
        (Some(1_000_000), Some(10), Some(0), Some(0))
    );
}

#[test]
fn two_hundred_thousand_expired_keys_are_reclaimed_within_a_second_without_reads() {
    let clock = ManualClock::new();
    let c = open_with_clock(
        "reclaim-200k",
        MemoryConfig::default(),
        clock.clone().into(),
    )
    .unwrap();
    let batch: Vec<(String, Bytes)> = (0..200_000)
        .map(|i| (format!("session/{i:06}"), Bytes::from_static(b"v")))
        .collect();
    c.set_many(batch, Some(Duration::from_millis(100))).unwrap();
    assert_eq!(c.metrics().entries, Some(200_000));
    clock.advance(Duration::from_millis(100));
    let expired_at = Instant::now();
    // The default sweep interval is 100 ms; allow one second, as documented.
    while c.metrics().entries != Some(0) && expired_at.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let m = c.metrics();
    assert_eq!(m.entries, Some(0), "after {:?}", expired_at.elapsed());
    assert_eq!(m.expirations, Some(200_000));
}

/// What a store holds and says about itself: its keys with their value lengths, and the
/// gauges.
fn snapshot(c: &Contract) -> (Vec<(String, usize)>, [Option<u64>; 4]) {
    let entries = c
        .list("")
        .unwrap()
        .into_iter()
        .map(|k| {
            let len = c.get(&k).unwrap().len();
            (k, len)
        })
        .collect();
    let m = c.metrics();
    (entries, [m.entries, m.bytes, m.evictions, m.expirations])
}

#[test]
fn set_many_over_existing_keys_reserves_only_the_growth_like_a_loop_of_set() {
    let value = |len: usize| Bytes::from(vec![b'v'; len]);
    for (label, config) in [
        ("entries", MemoryConfig::default().max_entries(10)),
        (
            "bytes",
            MemoryConfig::default().max_bytes(10 * (2 + 100 + 120) + 150),
        ),
    ] {
        let (looped, _) = bounded(&format!("growth-loop-{label}"), config.clone());
        let (batched, _) = bounded(&format!("growth-batch-{label}"), config);
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        for c in [&looped, &batched] {
            for k in &keys {
                c.set(k, value(100), None).unwrap();
            }
        }
        // Overwrites of a full store: the same size, smaller, back, and a growth that fits
        // in the room left.
        for len in [100, 40, 100, 110] {
            let pairs: Vec<(&str, Bytes)> = keys.iter().map(|k| (k.as_str(), value(len))).collect();
            for (k, v) in &pairs {
                looped.set(k, v.clone(), None).unwrap();
            }
            batched.set_many(pairs, None).unwrap();
            assert_eq!(
                snapshot(&batched),
                snapshot(&looped),
                "{label}: set_many of {len}-byte values differs from a loop of set"
            );
        }
        assert_eq!(batched.metrics().evictions, Some(0), "{label}");
    }
}

#[test]
fn set_many_over_an_expired_key_counts_it_once() {
    // One shard, so writing the first key of the batch could reclaim the expired second
    // one before the batch overwrote it.
    let (c, clock) = bounded(
        "growth-expired",
        MemoryConfig::default().max_entries(9).shards(1),
    );
    c.set("k", "old", Some(Duration::from_millis(1))).unwrap();
    clock.advance(Duration::from_millis(1));
    c.set_many([("a", "1"), ("k", "2")], Some(Duration::from_secs(5)))
        .unwrap();
    let listed = c.list("").unwrap();
    assert_eq!(listed, ["a", "k"]);
    let m = c.metrics();
    assert_eq!(m.entries, Some(2), "{m:?}");
    let recount: u64 = listed.iter().map(|k| k.len() as u64 + 1 + 120 + 16).sum();
    assert_eq!(m.bytes, Some(recount), "{m:?}");
}
