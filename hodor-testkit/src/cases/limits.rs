//! Stores with limits ([`Harness::open_limited`](crate::Harness::open_limited)): the limit
//! holds after every write, overwrites included; expired entries go before live ones and
//! are counted as expirations; overwriting evicts nothing; a value or batch that can never
//! fit is refused without writing or evicting anything; after a sweep the gauges count
//! what is live.

use std::time::Duration;

use hodor_core::{Contract, Error, Metrics};

use crate::Limits;
use crate::ctx::{Ctx, Must, assert_err};

pub(crate) fn limits_hold_after_every_set(t: &Ctx) {
    const MAX_BYTES: u64 = 16 * 1024;
    const MAX_ENTRIES: u64 = 32;
    let limits = Limits::NONE.max_bytes(MAX_BYTES).max_entries(MAX_ENTRIES);
    let Some(c) = t.open_limited(limits) else {
        return;
    };
    let m = c.metrics();
    assert_eq!(m.max_bytes, Some(MAX_BYTES), "the max_bytes gauge");
    assert_eq!(m.max_entries, Some(MAX_ENTRIES), "the max_entries gauge");
    for i in 0..300usize {
        let key = format!("k{i:03}");
        let value = vec![(i % 251) as u8; (i * 37) % 700];
        c.set(&key, value.clone(), None)
            .must(format_args!("set {key} ({} bytes)", value.len()));
        let m = c.metrics();
        let bytes = m
            .bytes
            .unwrap_or_else(|| panic!("a driver with limits reports the bytes gauge"));
        let entries = m
            .entries
            .unwrap_or_else(|| panic!("a driver with limits reports the entries gauge"));
        assert!(
            bytes <= MAX_BYTES,
            "after set {key}: {bytes} bytes > {MAX_BYTES}"
        );
        assert!(
            entries <= MAX_ENTRIES,
            "after set {key}: {entries} entries > {MAX_ENTRIES}"
        );
        let listed = c.list("").must("list");
        assert!(
            listed.len() as u64 <= MAX_ENTRIES,
            "after set {key}: {} keys listed",
            listed.len()
        );
        assert_eq!(
            c.get(&key)
                .must(format_args!("get {key} right after its set")),
            value,
            "a set that succeeded is readable at once"
        );
    }
    let m = c.metrics();
    assert!(
        m.evictions.is_some_and(|e| e > 0),
        "300 sets into room for 32 entries evicted something: {:?}",
        m.evictions
    );
}

pub(crate) fn limits_evict_expired_entries_first(t: &Ctx) {
    let clock = t.manual_clock();
    let Some(c) = t.open_limited(Limits::NONE.max_entries(10)) else {
        return;
    };
    // The live entries are the oldest writes: a driver that evicts by age before looking
    // for expired entries picks one of them.
    for i in 0..5 {
        c.set(&format!("live/{i}"), "v", None).must("set");
    }
    for i in 0..5 {
        c.set(&format!("expiring/{i}"), "v", Some(Duration::from_secs(1)))
            .must("set with a TTL");
    }
    clock.advance(Duration::from_secs(1));
    for i in 0..5 {
        c.set(&format!("new/{i}"), "v", None).must("set");
    }
    let live = c.list("live/").must("list live/");
    assert_eq!(
        live.len(),
        5,
        "a live entry was evicted while expired ones could make room: {live:?}"
    );
    assert_eq!(c.list("new/").must("list new/").len(), 5);
    if let Some(evictions) = c.metrics().evictions {
        assert_eq!(evictions, 0, "reclaiming expired entries is not eviction");
    }
}

pub(crate) fn limits_reject_a_value_larger_than_max_bytes(t: &Ctx) {
    const MAX_BYTES: u64 = 4096;
    let Some(c) = t.open_limited(Limits::NONE.max_bytes(MAX_BYTES)) else {
        return;
    };
    c.set_many([("a", "1"), ("b", "2")], None).must("set_many");
    let huge = vec![0u8; 2 * MAX_BYTES as usize];
    let err = assert_err!(
        c.set("huge", huge.clone(), None),
        Error::CapacityExceeded { .. },
        "set of a value larger than max_bytes"
    );
    if let Error::CapacityExceeded { key, .. } = &err {
        assert_eq!(key.as_deref(), Some("huge"), "the error names the key");
    }
    assert_err!(
        c.set("a", huge, None),
        Error::CapacityExceeded { .. },
        "overwrite with a value larger than max_bytes"
    );
    assert_eq!(
        c.list("").must("list"),
        ["a", "b"],
        "a refused value evicts nothing"
    );
    assert_eq!(
        c.get("a").must("get a"),
        "1",
        "a refused overwrite keeps the old value"
    );
    if let Some(evictions) = c.metrics().evictions {
        assert_eq!(evictions, 0, "nothing was evicted");
    }
}

/// The gauges a driver with limits must report.
fn gauges(c: &Contract, when: &str) -> (u64, u64, Metrics) {
    let m = c.metrics();
    let bytes = m
        .bytes
        .unwrap_or_else(|| panic!("a driver with limits reports the bytes gauge ({when})"));
    let entries = m
        .entries
        .unwrap_or_else(|| panic!("a driver with limits reports the entries gauge ({when})"));
    (bytes, entries, m)
}

/// The gauges are within the limits after a call.
#[track_caller]
fn assert_within(c: &Contract, limits: Limits, when: &str) {
    let (bytes, entries, _) = gauges(c, when);
    if let Some(max) = limits.max_bytes {
        assert!(bytes <= max, "{when}: {bytes} bytes > max_bytes {max}");
    }
    if let Some(max) = limits.max_entries {
        assert!(
            entries <= max,
            "{when}: {entries} entries > max_entries {max}"
        );
    }
}

fn evictions(c: &Contract) -> u64 {
    c.metrics().evictions.unwrap_or(0)
}

pub(crate) fn limits_hold_when_overwrites_grow_values(t: &Ctx) {
    const KEYS: usize = 40;
    let limits = Limits::NONE.max_bytes(16 * 1024);
    let Some(c) = t.open_limited(limits) else {
        return;
    };
    for i in 0..KEYS {
        c.set(&format!("k{i:02}"), vec![b'a'; 16], None)
            .must("set a small value");
    }
    for round in 1..=6usize {
        for i in 0..KEYS {
            let key = format!("k{i:02}");
            let value = vec![round as u8; 100 * round + i];
            let when = format!("after overwriting {key} with {} bytes", value.len());
            c.set(&key, value.clone(), None).must(&when);
            assert_within(&c, limits, &when);
            assert_eq!(
                c.get(&key)
                    .must(format_args!("get {key} right after its overwrite")),
                value,
                "an overwrite that succeeded is readable at once"
            );
        }
        // Grow ten keys in one batch.
        let batch: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| {
                (
                    format!("k{:02}", (i * 3 + round) % KEYS),
                    vec![0xb0; 120 * round],
                )
            })
            .collect();
        let when = format!(
            "after a set_many growing 10 values to {} bytes",
            120 * round
        );
        match c.set_many(batch.iter().map(|(k, v)| (k.as_str(), v.clone())), None) {
            Ok(()) => {
                for (key, value) in &batch {
                    assert_eq!(
                        c.get(key).must(format_args!("get {key} {when}")),
                        *value,
                        "{when}: every entry of a set_many that succeeded is readable"
                    );
                }
            }
            Err(Error::CapacityExceeded { .. }) => {}
            Err(e) => panic!("{when}: {e}"),
        }
        assert_within(&c, limits, &when);
    }
}

/// Distinct keys per store in the set_many capacity case.
const BATCH_ROOM: usize = 20;

/// `Ok`: every entry of the batch is readable; `CapacityExceeded`: none of them was
/// written, and nothing else changed.
#[track_caller]
fn refused_or_complete(
    c: &Contract,
    batch: &[(String, String)],
    before: &[String],
    result: hodor_core::Result<()>,
    what: &str,
) -> bool {
    match result {
        Ok(()) => {
            // A key given twice ends with its last value.
            let last: std::collections::BTreeMap<&str, &str> = batch
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            for (key, value) in last {
                let got = c.get(key);
                assert!(
                    matches!(&got, Ok(v) if v == value),
                    "{what} succeeded, but its entry {key} reads {got:?}: a batch must not \
                     evict its own entries; refuse it with CapacityExceeded instead"
                );
            }
            true
        }
        Err(Error::CapacityExceeded { .. }) => {
            let listed = c.list("").must("list");
            assert_eq!(
                listed, before,
                "{what} was refused with CapacityExceeded, but the store changed: a refused \
                 batch writes and evicts nothing"
            );
            false
        }
        Err(e) => panic!("{what}: expected Ok or CapacityExceeded, got {e}"),
    }
}

pub(crate) fn limits_set_many_beyond_capacity_is_refused_or_complete(t: &Ctx) {
    let limits = Limits::NONE.max_entries(BATCH_ROOM as u64);
    let Some(c) = t.open_limited(limits) else {
        return;
    };
    let fill = |prefix: &str| {
        for i in 0..BATCH_ROOM {
            c.set(&format!("{prefix}/{i:02}"), "old", None).must("set");
        }
    };
    fill("old");
    let batch = |prefix: &str, n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("{prefix}/{i:02}"), format!("v{i}")))
            .collect()
    };
    let run = |entries: &[(String, String)]| {
        c.set_many(entries.iter().map(|(k, v)| (k.as_str(), v.clone())), None)
    };

    // More distinct keys than the store can ever hold: it cannot all be readable.
    let over = batch("over", BATCH_ROOM + 1);
    let before = c.list("").must("list");
    let result = run(&over);
    let what = format!(
        "a set_many of {} new keys into a store of {BATCH_ROOM}",
        over.len()
    );
    assert!(
        result.is_err(),
        "{what} succeeded; it can never fit, and must be CapacityExceeded with nothing written"
    );
    refused_or_complete(&c, &over, &before, result, &what);
    assert_within(&c, limits, &what);

    // Exactly as many as fit, into a full store: all of it, or none of it.
    let exact = batch("exact", BATCH_ROOM);
    let before = c.list("").must("list");
    let what = format!("a set_many of {BATCH_ROOM} new keys into a full store of {BATCH_ROOM}");
    refused_or_complete(&c, &exact, &before, run(&exact), &what);
    assert_within(&c, limits, &what);

    // Half overwrites, half new, with a key given twice.
    let mut mixed = batch("exact", BATCH_ROOM / 2);
    mixed.extend(batch("mixed", BATCH_ROOM / 2));
    mixed.push(("mixed/00".to_owned(), "again".to_owned()));
    let before = c.list("").must("list");
    let what = "a set_many of half overwrites, half new keys, into a full store";
    refused_or_complete(&c, &mixed, &before, run(&mixed), what);
    assert_within(&c, limits, what);
}

pub(crate) fn limits_set_many_over_max_bytes_writes_nothing(t: &Ctx) {
    let limits = Limits::NONE.max_bytes(8 * 1024);
    let Some(c) = t.open_limited(limits) else {
        return;
    };
    c.set("small", "v", None).must("set");
    // Each entry fits alone; together they are twice the limit.
    let batch: Vec<(String, String)> = (0..16)
        .map(|i| (format!("big/{i:02}"), "x".repeat(1024)))
        .collect();
    let before = c.list("").must("list");
    let what = "a set_many of 16 KiB of values into a store of 8 KiB";
    let result = c.set_many(batch.iter().map(|(k, v)| (k.as_str(), v.clone())), None);
    assert!(
        result.is_err(),
        "{what} succeeded; it can never fit, and must be CapacityExceeded with nothing written"
    );
    refused_or_complete(&c, &batch, &before, result, what);
    assert_eq!(
        c.get("small").must("get small"),
        "v",
        "{what} evicted nothing"
    );
    assert_within(&c, limits, what);
}

pub(crate) fn limits_overwrites_in_a_full_store_evict_nothing(t: &Ctx) {
    const ENTRIES: usize = 16;
    let limits = Limits::NONE.max_entries(ENTRIES as u64);
    let Some(c) = t.open_limited(limits) else {
        return;
    };
    let keys: Vec<String> = (0..ENTRIES).map(|i| format!("k{i:02}")).collect();
    for key in &keys {
        c.set(key, "0123456789", None).must("set");
    }
    let full = c.list("").must("list");
    assert_eq!(full.len(), ENTRIES, "the store holds its {ENTRIES} entries");
    let evicted = evictions(&c);
    let unchanged = |what: &str| {
        assert_eq!(
            c.list("").must("list"),
            full,
            "{what} in a full store evicted other keys"
        );
        assert_eq!(
            evictions(&c),
            evicted,
            "{what} in a full store counted evictions"
        );
    };
    for (n, key) in keys.iter().enumerate() {
        c.set(key, format!("{n:010}"), None).must("overwrite");
    }
    unchanged("overwriting every key with set");
    c.set_many(keys.iter().map(|k| (k.as_str(), "abcdefghij")), None)
        .must("set_many");
    unchanged("overwriting every key with one set_many");
    c.set_many(keys.iter().take(5).map(|k| (k.as_str(), "short")), None)
        .must("set_many");
    unchanged("overwriting five keys with shorter values in one set_many");
    c.set_many(
        keys.iter()
            .skip(3)
            .take(6)
            .map(|k| (k.as_str(), "0123456789")),
        None,
    )
    .must("set_many");
    unchanged("overwriting six keys with one set_many");

    // The same with a byte limit: fill until the store must evict, then overwrite what is
    // there with values of the same size.
    let limits = Limits::NONE.max_bytes(4 * 1024);
    let Some(c) = t.open_limited(limits) else {
        return;
    };
    let mut i = 0;
    while evictions(&c) == 0 && i < 10_000 {
        c.set(&format!("b{i:04}"), "0123456789abcdef", None)
            .must("set");
        i += 1;
    }
    let full = c.list("").must("list");
    let evicted = evictions(&c);
    assert!(
        evicted > 0,
        "filling a 4 KiB store with {i} entries evicted nothing"
    );
    for key in &full {
        c.set(key, "fedcba9876543210", None).must("overwrite");
    }
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    c.set_many(refs.iter().map(|k| (*k, "0000000000000000")), None)
        .must("set_many");
    assert_eq!(
        c.list("").must("list"),
        full,
        "overwriting the keys of a store full to max_bytes with same-size values evicted \
         other keys"
    );
    assert_eq!(
        evictions(&c),
        evicted,
        "overwriting the keys of a store full to max_bytes counted evictions"
    );
}

pub(crate) fn limits_reclaiming_expired_entries_counts_expirations(t: &Ctx) {
    let clock = t.manual_clock();
    let Some(c) = t.open_limited(Limits::NONE.max_entries(10)) else {
        return;
    };
    let expirations = |c: &Contract| {
        c.metrics()
            .expirations
            .unwrap_or_else(|| panic!("a driver with limits reports the expirations gauge"))
    };
    let (expired_before, evicted_before) = (expirations(&c), evictions(&c));
    for i in 0..6 {
        c.set(&format!("expiring/{i}"), "v", Some(Duration::from_secs(1)))
            .must("set with a TTL");
    }
    for i in 0..4 {
        c.set(&format!("live/{i}"), "v", None).must("set");
    }
    clock.advance(Duration::from_secs(1));
    // Six new entries need the room of the six expired ones.
    for i in 0..6 {
        c.set(&format!("new/{i}"), "v", None).must("set");
    }
    assert_eq!(
        c.list("live/").must("list").len(),
        4,
        "no live entry was evicted"
    );
    assert_eq!(c.list("new/").must("list").len(), 6);
    assert_eq!(
        expirations(&c) - expired_before,
        6,
        "six expired entries were reclaimed to make room: the expirations gauge counts each \
         once"
    );
    assert_eq!(
        evictions(&c) - evicted_before,
        0,
        "reclaiming expired entries is not eviction"
    );
}

pub(crate) fn limits_entries_gauge_counts_live_keys_after_a_sweep(t: &Ctx) {
    let clock = t.manual_clock();
    let limits = Limits::NONE.max_entries(1_000_000);
    let Some(c) = t.open_limited(limits) else {
        return;
    };
    let (fresh_bytes, _, _) = gauges(&c, "of a fresh store");
    let ttl = Duration::from_secs(1);
    // Churn that leaves stale expiry records behind: TTL entries deleted, recreated,
    // overwritten with and without TTLs.
    let first: Vec<String> = (0..2_000).map(|i| format!("a/{i:04}")).collect();
    for chunk in first.chunks(100) {
        c.set_many(chunk.iter().map(|k| (k.as_str(), "v")), Some(ttl))
            .must("set_many with a TTL");
    }
    let refs: Vec<&str> = first.iter().map(String::as_str).collect();
    assert_eq!(c.delete_many(&refs).must("delete_many"), first.len());
    for key in first.iter().take(300) {
        c.set(key, "again", Some(ttl * 2))
            .must("set again with a TTL");
    }
    for i in 0..300 {
        c.set(&format!("b/{i:04}"), "v", Some(ttl * 2))
            .must("set with a TTL");
    }
    for i in 0..50 {
        let key = format!("c/{i:02}");
        c.set(&key, "v", Some(ttl)).must("set with a TTL");
        if i < 10 {
            c.set(&key, "v", None).must("overwrite without a TTL");
        }
        if i >= 40 {
            c.set(&key, "v", Some(ttl * 5))
                .must("overwrite with a longer TTL");
        }
    }
    clock.advance(ttl * 2);
    if !t.sweep(&c) {
        return;
    }
    let live = c.list("").must("list");
    assert_eq!(
        live.len(),
        20,
        "c/00..09 and c/40..49 live, listed: {}",
        live.len()
    );
    let (_, entries, m) = gauges(&c, "after the sweep");
    assert_eq!(
        entries, 20,
        "after a sweep, the entries gauge is {entries} but 20 keys are live (expired entries \
         left resident: an expiry lost or never recorded?)"
    );
    if let Some(expired) = m.expirations {
        assert!(
            expired >= 580,
            "after a sweep reclaimed at least 580 expired entries, the expirations gauge is              {expired}"
        );
    }
    let refs: Vec<&str> = live.iter().map(String::as_str).collect();
    assert_eq!(c.delete_many(&refs).must("delete the rest"), 20);
    let (bytes, entries, _) = gauges(&c, "after deleting everything");
    assert_eq!(entries, 0, "the entries gauge of an empty store");
    assert_eq!(
        bytes, fresh_bytes,
        "the bytes gauge of an emptied store returns to its start"
    );
}
