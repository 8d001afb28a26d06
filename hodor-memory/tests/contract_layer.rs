//! The `Contract` layer in front of this driver: what hodor-core's own tests cannot show
//! without a real driver (it has none as a dependency): typed config errors, gauges beside
//! the counters, refused writes counting nothing, bounded messages about configs, `get_opt`
//! across a deadline.

use std::time::Duration;

use hodor_core::{Contract, Error};
use hodor_memory as _;
use serde_json::json;

#[test]
fn unknown_config_fields_and_wrong_types_name_the_field() {
    for (config, field) in [
        (json!({"sweep_intervall_ms": 5}), "sweep_intervall_ms"),
        (json!({"sweep_interval_ms": "fast"}), "sweep_interval_ms"),
        (json!({"sweep_interval_ms": 0}), "sweep_interval_ms"),
    ] {
        let err = Contract::new("memory", "config-errors", Some(config.clone())).unwrap_err();
        match &err {
            Error::InvalidConfig {
                field: Some(f),
                driver: "memory",
                contract,
                ..
            } => {
                assert_eq!(f, field, "{config}");
                assert_eq!(&**contract, "config-errors");
            }
            other => panic!("{config}: expected InvalidConfig, got {other:?}"),
        }
        assert!(err.to_string().contains(field), "{err}");
    }
    let err = Contract::new("memory", "config-errors", Some(json!([1]))).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { field: None, .. }),
        "{err:?}"
    );
}

#[test]
fn huge_config_fields_and_values_are_not_echoed_whole() {
    let long = "x".repeat(1 << 20);
    let configs = [
        json!({ long.clone(): 1 }),
        json!({ "max_bytes": long.clone() }),
        json!({ "max_entries": [long.clone()] }),
        json!(long.clone()),
        json!({ "sweep_interval_ms": { long.clone(): long.clone() } }),
    ];
    for config in configs {
        let e = Contract::new("memory", "config", Some(config)).unwrap_err();
        assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
        let (shown, debug) = (e.to_string(), format!("{e:?}"));
        assert!(shown.len() < 1024, "{} bytes", shown.len());
        assert!(debug.len() < 1024, "{} bytes", debug.len());
    }
}

#[test]
fn metrics_add_the_stores_gauges_to_this_handles_counters() {
    let c = Contract::new("memory", "metrics-basic", None).unwrap();
    c.set("a", "1", None).unwrap();
    c.set_many([("b", "2"), ("c", "3")], None).unwrap();
    c.get("a").unwrap();
    c.delete("a").unwrap();
    let m = c.metrics();
    assert_eq!((m.sets, m.hits, m.deletes), (3, 1, 1));
    assert_eq!(m.entries, Some(2));
    // Another handle on the same store counts its own operations but sees the same gauges.
    let other = Contract::new("memory", "metrics-basic", None).unwrap();
    assert_eq!(other.metrics().sets, 0);
    assert_eq!(other.metrics().entries, Some(2));
}

#[test]
fn a_write_refused_for_capacity_counts_nothing() {
    let small = Contract::new(
        "memory",
        "metrics-capacity",
        Some(json!({"max_bytes": 4096})),
    )
    .unwrap();
    let sets = |c: &Contract| c.metrics().sets;
    let err = small.set("big", vec![0u8; 8192], None).unwrap_err();
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err:?}");
    let err = small
        .set_many([("a", vec![0u8; 8192]), ("b", vec![0u8; 8192])], None)
        .unwrap_err();
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err:?}");
    let err = small.create("big", vec![0u8; 8192], None).unwrap_err();
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err:?}");
    assert_eq!(sets(&small), 0, "a refused write wrote nothing");
    small.set("fits", "v", None).unwrap();
    assert_eq!(sets(&small), 1);
}

#[test]
fn get_opt_is_get_with_a_miss_as_none() {
    let clock = hodor_core::clock::ManualClock::new();
    let c =
        hodor_memory::open_with_clock("get-opt", Default::default(), clock.clone().into()).unwrap();
    c.set("kept", "v", None).unwrap();
    c.set("brief", "b", Some(Duration::from_millis(10)))
        .unwrap();
    assert_eq!(c.get_opt("kept").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.get_opt("brief").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(c.get_opt("never-set").unwrap(), None);
    clock.advance(Duration::from_millis(10));
    assert_eq!(c.get_opt("brief").unwrap(), None, "expired at its deadline");
    assert!(matches!(c.get("brief"), Err(Error::NotFound { .. })));
    c.delete("kept").unwrap();
    assert_eq!(c.get_opt("kept").unwrap(), None);
}
