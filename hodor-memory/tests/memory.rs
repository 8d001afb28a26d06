//! The memory driver's behaviour through the public API: sharing by name, release on last
//! close, expiry with an injected clock, and reclaim without reads.

use std::time::Duration;

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Error};
use hodor_memory::{MemoryConfig, open_with_clock};
use serde_json::json;

fn clocked(name: &str) -> (Contract, ManualClock) {
    let clock = ManualClock::new();
    let c = open_with_clock(name, MemoryConfig::default(), clock.clone().into()).unwrap();
    (c, clock)
}

#[test]
fn the_same_name_is_the_same_store_and_other_names_are_isolated() {
    let a = Contract::new("memory", "shared-by-name", None).unwrap();
    let b = Contract::new("memory", "shared-by-name", Some(json!({}))).unwrap();
    let other = Contract::new("memory", "shared-by-name-2", None).unwrap();
    a.set("k", "from a", None).unwrap();
    assert_eq!(b.get("k").unwrap(), "from a");
    assert!(!other.exists("k").unwrap());
    b.delete("k").unwrap();
    assert!(!a.exists("k").unwrap());
}

#[test]
fn reopening_with_another_config_is_invalid_config() {
    let _a = Contract::new("memory", "config-mismatch", None).unwrap();
    let err = Contract::new(
        "memory",
        "config-mismatch",
        Some(json!({"sweep_interval_ms": 7})),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("same config"), "{err}");
    // A different clock is a different store too.
    let err = open_with_clock(
        "config-mismatch",
        MemoryConfig::default(),
        ManualClock::new().into(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}

#[test]
fn data_is_released_when_the_last_contract_closes_or_drops() {
    let a = Contract::new("memory", "released", None).unwrap();
    let b = Contract::new("memory", "released", None).unwrap();
    a.set("k", "v", None).unwrap();
    a.close().unwrap();
    assert_eq!(b.get("k").unwrap(), "v", "b still holds the store open");
    drop(b);
    let c = Contract::new("memory", "released", None).unwrap();
    assert!(
        !c.exists("k").unwrap(),
        "the store was released with its last contract"
    );
    // After release, a new config is allowed: it is a new store.
    drop(c);
    Contract::new("memory", "released", Some(json!({"sweep_interval_ms": 5}))).unwrap();
}

#[test]
fn clones_do_not_count_as_extra_opens() {
    let a = Contract::new("memory", "clones", None).unwrap();
    let clone = a.clone();
    a.set("k", "v", None).unwrap();
    clone.close().unwrap();
    let again = Contract::new("memory", "clones", None).unwrap();
    assert!(!again.exists("k").unwrap());
}

#[test]
fn an_entry_is_live_strictly_before_its_deadline() {
    let (c, clock) = clocked("ttl-boundary");
    c.set("k", "v", Some(Duration::from_millis(1500))).unwrap();
    c.set("other", "v", None).unwrap();
    clock.advance(Duration::from_millis(1499));
    assert_eq!(c.get("k").unwrap(), "v");
    assert!(c.exists("k").unwrap());
    assert_eq!(c.list("").unwrap(), ["k", "other"]);
    assert!(c.stat("k").is_ok());
    clock.advance(Duration::from_millis(1));
    assert!(matches!(c.get("k"), Err(Error::NotFound { .. })));
    assert!(!c.exists("k").unwrap());
    assert_eq!(c.list("").unwrap(), ["other"]);
    assert!(matches!(c.stat("k"), Err(Error::NotFound { .. })));
    assert!(
        !c.delete("k").unwrap(),
        "an expired entry is not a live one"
    );
}

#[test]
fn a_key_set_again_after_it_expired_is_listed() {
    let (c, clock) = clocked("set-after-expiry");
    c.set("k", "old", Some(Duration::from_millis(1))).unwrap();
    clock.advance(Duration::from_millis(1));
    // This write reclaims the expired entry of the same key on its way in.
    c.set("k", "new", None).unwrap();
    assert_eq!(c.get("k").unwrap(), "new");
    assert_eq!(c.list("").unwrap(), ["k"]);
}

#[test]
fn set_without_ttl_clears_the_old_one_and_a_new_ttl_replaces_it() {
    let (c, clock) = clocked("ttl-replace");
    c.set("k", "1", Some(Duration::from_secs(1))).unwrap();
    c.set("k", "2", None).unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(c.get("k").unwrap(), "2");
    assert_eq!(c.stat("k").unwrap().expires_at, None);

    c.set("j", "1", Some(Duration::from_secs(1))).unwrap();
    c.set("j", "2", Some(Duration::from_secs(5))).unwrap();
    clock.advance(Duration::from_secs(4));
    assert_eq!(c.get("j").unwrap(), "2");
    clock.advance(Duration::from_secs(1));
    assert!(!c.exists("j").unwrap());
}

#[test]
fn stat_reports_size_modified_and_expiry_from_the_clock() {
    let (c, clock) = clocked("stat");
    let t0 = clock.now();
    c.set("k", vec![0u8; 42], Some(Duration::from_micros(2500)))
        .unwrap();
    let meta = c.stat("k").unwrap();
    assert_eq!(meta.size, 42);
    assert_eq!(meta.modified, t0);
    // Sub-millisecond TTLs round up: 2.5 ms is kept as 3 ms.
    assert_eq!(meta.expires_at, Some(t0 + Duration::from_millis(3)));
    clock.advance(Duration::from_secs(1));
    c.set("k", "", None).unwrap();
    let meta = c.stat("k").unwrap();
    assert_eq!((meta.size, meta.modified), (0, t0 + Duration::from_secs(1)));
}

#[test]
fn expired_entries_nobody_reads_are_reclaimed_by_the_sweeper() {
    let clock = ManualClock::new();
    let config = MemoryConfig::default().sweep_interval_ms(5);
    let c = open_with_clock("sweeper", config, clock.clone().into()).unwrap();
    let entries: Vec<(String, &str)> = (0..10_000).map(|i| (format!("k{i}"), "v")).collect();
    c.set_many(entries, Some(Duration::from_millis(100)))
        .unwrap();
    c.set("kept", "v", None).unwrap();
    assert_eq!(c.metrics().entries, Some(10_001));
    clock.advance(Duration::from_millis(100));
    // No reads: only the background sweeper can reclaim them. Poll with a generous deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.metrics().entries != Some(1) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let m = c.metrics();
    assert_eq!(m.entries, Some(1));
    assert_eq!(m.expirations, Some(10_000));
}

#[test]
fn a_stream_of_short_ttl_writes_does_not_grow_the_store() {
    let (c, clock) = clocked("short-ttl-stream");
    for i in 0..50_000u32 {
        c.set(&format!("s{i}"), "v", Some(Duration::from_millis(1)))
            .unwrap();
        clock.advance(Duration::from_micros(100));
    }
    // About ten entries are live at any time; writes reclaim the rest as they go.
    let resident = c.metrics().entries.unwrap();
    assert!(resident < 1_000, "{resident} entries resident");
}

#[test]
fn values_come_back_without_a_copy() {
    let c = Contract::new("memory", "zero-copy", None).unwrap();
    let value = hodor_core::Bytes::from(vec![7u8; 4096]);
    c.set("k", value.clone(), None).unwrap();
    let a = c.get("k").unwrap();
    let b = c.get("k").unwrap();
    assert_eq!(a.as_ptr(), value.as_ptr());
    assert_eq!(b.as_ptr(), value.as_ptr());
}
