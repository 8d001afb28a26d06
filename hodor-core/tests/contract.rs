//! What the `Contract` layer does for every driver: bad input is a typed error, never a
//! panic, and never reaches the driver.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hodor_core::driver::DriverError;
use hodor_core::{Capabilities, Contract, Error, MAX_TTL};

fn recording(caps: Capabilities) -> (Contract, std::sync::Arc<support::Log>) {
    let (driver, log) = support::Recording::new(caps);
    (Contract::from_driver("rec", "tests", driver).unwrap(), log)
}

fn bad_keys() -> Vec<(String, &'static str)> {
    vec![
        (String::new(), "empty"),
        ("k".repeat(1025), "1025 bytes"),
        ("a\0b".to_owned(), "NUL"),
    ]
}

#[test]
fn invalid_keys_are_rejected_by_every_operation_before_the_driver() {
    let (c, log) = recording(Capabilities::NONE.ttl(true));
    for (key, what) in bad_keys() {
        let k = key.as_str();
        let results: Vec<(&str, Result<(), Error>)> = vec![
            ("set", c.set(k, "v", None)),
            ("get", c.get(k).map(drop)),
            ("get_opt", c.get_opt(k).map(drop)),
            ("exists", c.exists(k).map(drop)),
            ("delete", c.delete(k).map(drop)),
            ("stat", c.stat(k).map(drop)),
            ("set_json", c.set_json(k, &1, None)),
            ("get_json", c.get_json::<u8>(k).map(drop)),
            ("get_many", c.get_many(&["ok", k]).map(drop)),
            ("set_many", c.set_many([("ok", "v"), (k, "v")], None)),
            ("delete_many", c.delete_many(&["ok", k]).map(drop)),
        ];
        for (op, result) in results {
            match result {
                Err(Error::InvalidKey {
                    ref key,
                    ref reason,
                    driver,
                    ..
                }) => {
                    assert_eq!(key, k, "{op} {what}");
                    assert_eq!(driver, "rec");
                    assert!(!reason.is_empty());
                }
                other => panic!("{op} with a {what} key: expected InvalidKey, got {other:?}"),
            }
        }
    }
    assert!(log.calls().is_empty(), "the driver saw {:?}", log.calls());
}

#[test]
fn invalid_key_messages_say_what_a_key_must_be() {
    let (c, _) = recording(Capabilities::NONE);
    let text = c.get("").unwrap_err().to_string();
    assert!(
        text.contains("empty") && text.contains("1 to 1024 bytes"),
        "{text}"
    );
    let text = c.get(&"x".repeat(2000)).unwrap_err().to_string();
    assert!(text.contains("2000 bytes"), "{text}");
}

#[test]
fn bulk_validation_is_all_or_nothing() {
    let (c, log) = recording(Capabilities::NONE);
    let err = c
        .set_many([("a", "1"), ("b", "2"), ("", "3")], None)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    assert!(log.calls().is_empty());
    assert!(c.get("a").is_err());
}

#[test]
fn zero_and_absurd_ttls_are_invalid_input() {
    let (c, log) = recording(Capabilities::NONE.ttl(true));
    let err = c.set("k", "v", Some(Duration::ZERO)).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { key: Some(k), .. } if k == "k"),
        "{err:?}"
    );
    assert!(err.to_string().contains("pass None"), "{err}");
    let err = c
        .set("k", "v", Some(MAX_TTL + Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = c.set_many([("k", "v")], Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(log.calls().is_empty());
    c.set("k", "v", Some(MAX_TTL)).unwrap();
}

#[test]
fn ttls_reach_the_driver_rounded_up_to_milliseconds() {
    let (c, log) = recording(Capabilities::NONE.ttl(true));
    for (given, seen) in [(1, 1), (999_999, 1), (1_000_001, 2), (5_000_000, 5)] {
        c.set("k", "v", Some(Duration::from_nanos(given))).unwrap();
        assert_eq!(
            *log.last_ttl.lock().unwrap(),
            Some(Duration::from_millis(seen))
        );
    }
}

#[test]
fn a_ttl_on_a_driver_without_expiry_is_unsupported_not_ignored() {
    let (c, log) = recording(Capabilities::NONE);
    let err = c.set("k", "v", Some(Duration::from_secs(1))).unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { driver: "rec", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("capabilities"), "{err}");
    assert!(log.calls().is_empty());
}

#[test]
fn every_operation_after_close_is_closed_on_every_clone() {
    let (c, log) = recording(Capabilities::NONE);
    let clone = c.clone();
    c.set("k", "v", None).unwrap();
    clone.close().unwrap();
    clone.close().unwrap();
    c.close().unwrap();
    assert!(c.is_closed());
    let before = log.calls().len();
    for contract in [&c, &clone] {
        let results: Vec<Result<(), Error>> = vec![
            contract.set("k", "v", None),
            contract.get("k").map(drop),
            contract.get_opt("k").map(drop),
            contract.exists("k").map(drop),
            contract.delete("k").map(drop),
            contract.list("").map(drop),
            contract.stat("k").map(drop),
            contract.set_json("k", &1, None),
            contract.get_json::<u8>("k").map(drop),
            contract.get_many(&["k"]).map(drop),
            contract.set_many([("k", "v")], None),
            contract.delete_many(&["k"]).map(drop),
        ];
        for r in results {
            let err = r.unwrap_err();
            assert!(matches!(err, Error::Closed { .. }), "{err:?}");
            assert!(err.to_string().contains("open a new one"), "{err}");
        }
    }
    assert_eq!(
        log.calls().len(),
        before,
        "a call after close reached the driver"
    );
    assert_eq!(
        log.closes.load(Ordering::SeqCst),
        1,
        "driver closed exactly once"
    );
}

#[test]
fn dropping_the_last_clone_closes_the_driver_once() {
    let (c, log) = recording(Capabilities::NONE);
    let clone = c.clone();
    drop(c);
    assert_eq!(log.closes.load(Ordering::SeqCst), 0);
    drop(clone);
    assert_eq!(log.closes.load(Ordering::SeqCst), 1);
}

#[test]
fn invalid_json_in_get_json_names_the_type() {
    let (c, _) = recording(Capabilities::NONE);
    c.set("plain", "not json", None).unwrap();
    let err = c.get_json::<Vec<u32>>("plain").unwrap_err();
    match &err {
        Error::InvalidInput {
            key: Some(k),
            reason,
            ..
        } => {
            assert_eq!(k, "plain");
            assert!(reason.contains("Vec<u32>"), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    c.set_json("n", &[1, 2], None).unwrap();
    let err = c.get_json::<String>("n").unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(matches!(
        c.get_json::<u8>("missing"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn a_value_json_cannot_represent_is_invalid_input() {
    let (c, _) = recording(Capabilities::NONE);
    let map: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    let err = c.set_json("m", &map, None).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(!c.exists("m").unwrap());
}

#[test]
fn backend_errors_carry_driver_contract_key_and_source() {
    let (mut driver, _) = support::Recording::new(Capabilities::NONE);
    driver.fail_with = Some(|| {
        DriverError::backend(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ))
    });
    let c = Contract::from_driver("flaky", "orders", driver).unwrap();
    let err = c.get("order/1").unwrap_err();
    match &err {
        Error::Backend {
            driver,
            contract,
            operation,
            key,
            source,
            ..
        } => {
            assert_eq!(
                (*driver, &**contract, *operation),
                ("flaky", "orders", "get")
            );
            assert_eq!(key.as_deref(), Some("order/1"));
            assert_eq!(source.to_string(), "timed out");
        }
        other => panic!("expected Backend, got {other:?}"),
    }
    match c.get_opt("order/1").unwrap_err() {
        Error::Backend { operation, key, .. } => {
            assert_eq!((operation, key.as_deref()), ("get_opt", Some("order/1")));
        }
        other => panic!("expected Backend from get_opt, got {other:?}"),
    }
    let list_err = c.list("order/").unwrap_err();
    assert!(matches!(
        list_err,
        Error::Backend {
            key: None,
            operation: "list",
            ..
        }
    ));
}

#[test]
fn an_invalid_contract_name_is_invalid_input() {
    for name in ["", "a\0b"] {
        let (driver, _) = support::Recording::new(Capabilities::NONE);
        let err = Contract::from_driver("rec", name, driver).unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{name:?}: {err:?}"
        );
    }
}

#[test]
fn a_prefix_no_key_can_have_lists_nothing() {
    let (c, log) = recording(Capabilities::NONE);
    c.set("a", "1", None).unwrap();
    assert!(c.list("a\0").unwrap().is_empty());
    assert!(c.list(&"a".repeat(2000)).unwrap().is_empty());
    for prefix in ["a\0", &"a".repeat(2000)] {
        let page = c.list_page(prefix, None, 10).unwrap();
        assert!(page.keys.is_empty() && page.is_last(), "{page:?}");
    }
    assert_eq!(log.calls(), ["set a"], "the driver was asked nothing");
}

#[test]
fn metrics_count_operations_through_this_handle() {
    let (c, _) = recording(Capabilities::NONE);
    c.set("a", "1", None).unwrap();
    c.set_many([("b", "2"), ("c", "3")], None).unwrap();
    c.get("a").unwrap();
    c.get("zzz").unwrap_err();
    c.get_many(&["a", "b", "nope"]).unwrap();
    c.delete("a").unwrap();
    c.list("").unwrap();
    c.list_page("", None, 1).unwrap();
    let m = c.metrics();
    assert_eq!((m.sets, m.hits, m.misses, m.gets), (3, 3, 2, 5));
    assert_eq!((m.deletes, m.lists), (1, 2));
    assert_eq!(m.entries, None, "the driver reports no gauges");
}

/// (sets, deletes, lists) of a contract.
fn writes(c: &Contract) -> (u64, u64, u64) {
    let m = c.metrics();
    (m.sets, m.deletes, m.lists)
}

#[test]
fn refused_and_failed_calls_count_nothing() {
    let (mut driver, _) = support::Recording::new(Capabilities::NONE);
    driver.fail_with = Some(|| DriverError::backend("the disk is on fire"));
    let c = Contract::from_driver("flaky", "metrics-failed", driver).unwrap();
    c.set("k", "v", None).unwrap_err();
    c.set_json("j", &1, None).unwrap_err();
    c.set_many([("a", "1"), ("b", "2")], None).unwrap_err();
    c.delete("k").unwrap_err();
    c.delete_many(&["a", "b"]).unwrap_err();
    c.list("").unwrap_err();
    assert_eq!(writes(&c), (0, 0, 0), "a backend error wrote nothing");

    let (mut driver, _) = support::Recording::new(Capabilities::NONE);
    driver.fail_with = Some(|| DriverError::unsupported("set"));
    let c = Contract::from_driver("partial", "metrics-unsupported", driver).unwrap();
    c.set("k", "v", None).unwrap_err();
    c.set_many([("a", "1")], None).unwrap_err();
    assert_eq!(writes(&c), (0, 0, 0), "an unsupported write wrote nothing");

    let (mut driver, _) = support::Recording::new(Capabilities::NONE);
    driver.fail_with = Some(|| DriverError::CapacityExceeded("full".to_owned()));
    let c = Contract::from_driver("full", "metrics-capacity", driver).unwrap();
    c.set("k", "v", None).unwrap_err();
    c.set_many([("a", "1")], None).unwrap_err();
    assert_eq!(writes(&c), (0, 0, 0), "a refused write wrote nothing");
}

#[test]
fn a_batch_counts_each_key_it_wrote_once() {
    let (c, _) = recording(Capabilities::NONE);
    c.set_many([("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")], None)
        .unwrap();
    assert_eq!(c.list("").unwrap(), ["a", "b"]);
    assert_eq!(writes(&c).0, 2, "two keys were written");
    c.delete_many(&["a", "a", "missing", "missing"]).unwrap();
    assert_eq!(
        writes(&c).1,
        2,
        "two distinct keys were deleted (one was absent)"
    );
    c.set_many(Vec::<(&str, &str)>::new(), None).unwrap();
    c.delete_many(&[]).unwrap();
    assert_eq!(writes(&c), (2, 2, 1), "empty batches count nothing");
}

#[test]
fn get_opt_counts_hits_and_misses_like_get() {
    let (c, _) = recording(Capabilities::NONE);
    c.set("a", "1", None).unwrap();
    c.get_opt("a").unwrap();
    c.get_opt("a").unwrap();
    c.get_opt("missing").unwrap();
    c.get("missing").unwrap_err();
    let m = c.metrics();
    assert_eq!((m.hits, m.misses, m.gets), (2, 2, 4));
    // A call that fails before reading counts nothing.
    c.get_opt("").unwrap_err();
    assert_eq!(c.metrics().gets, 4);
}
