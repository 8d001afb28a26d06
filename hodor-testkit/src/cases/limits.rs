//! Stores with limits ([`Harness::open_limited`](crate::Harness::open_limited)): the limit
//! holds after every write, expired entries go before live ones, and a value that can never
//! fit is refused without evicting anything.

use std::time::Duration;

use hodor_core::Error;

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
    let Some(clock) = t.manual_clock("expire entries at a chosen moment") else {
        return;
    };
    let Some(c) = t.open_limited(Limits::NONE.max_entries(10)) else {
        return;
    };
    for i in 0..5 {
        c.set(&format!("expiring/{i}"), "v", Some(Duration::from_secs(1)))
            .must("set with a TTL");
        c.set(&format!("live/{i}"), "v", None).must("set");
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
