//! `MemoryDriver` used directly through the `Driver` trait, without a `Contract` in front:
//! it keeps the contract's promises on its own. Invalid keys and TTLs are typed errors
//! (never a panic, never a stored key), TTLs are rounded up to whole milliseconds.

use std::time::Duration;

use hodor_core::clock::ManualClock;
use hodor_core::driver::{Driver, DriverError};
use hodor_core::{Bytes, MAX_KEY_LEN, MAX_TTL};
use hodor_memory::{MemoryConfig, MemoryDriver};

fn driver(name: &str) -> (MemoryDriver, ManualClock) {
    let clock = ManualClock::new();
    let d = MemoryDriver::open(name, MemoryConfig::default(), clock.clone().into()).unwrap();
    (d, clock)
}

fn invalid<T: std::fmt::Debug>(what: &str, r: Result<T, DriverError>) {
    match r {
        Err(DriverError::InvalidInput(reason)) => {
            assert!(
                reason.len() < 200,
                "{what}: the message echoes the input: {reason}"
            );
        }
        other => panic!("{what}: expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn invalid_keys_are_refused_by_every_call_and_nothing_is_stored() {
    let (d, _) = driver("direct-keys");
    let too_long = "k".repeat(MAX_KEY_LEN + 1);
    let huge = "k".repeat(1 << 20);
    for key in ["", "a\0b", "\0", too_long.as_str(), huge.as_str()] {
        let v = Bytes::from_static(b"v");
        invalid("set", d.set(key, v.clone(), None));
        invalid("get", d.get(key));
        invalid("exists", d.exists(key));
        invalid("stat", d.stat(key));
        invalid("delete", d.delete(key));
        invalid("get_many", d.get_many(&["ok", key]));
        invalid("set_many", d.set_many(&[("ok", v.clone()), (key, v)], None));
        invalid("delete_many", d.delete_many(&["ok", key]));
        assert_eq!(d.list(key).unwrap(), Vec::<String>::new());
    }
    assert_eq!(
        d.list("").unwrap(),
        Vec::<String>::new(),
        "nothing was stored"
    );
    assert_eq!(d.gauges().entries, Some(0));
    // The longest valid key is fine.
    let longest = "k".repeat(MAX_KEY_LEN);
    d.set(&longest, Bytes::new(), None).unwrap();
    assert_eq!(d.list("").unwrap(), [longest]);
}

#[test]
fn ttls_are_checked_and_kept_to_the_millisecond_rounded_up() {
    let (d, clock) = driver("direct-ttls");
    let v = Bytes::new();
    invalid("zero", d.set("k", v.clone(), Some(Duration::ZERO)));
    invalid(
        "over MAX_TTL",
        d.set("k", v.clone(), Some(MAX_TTL + Duration::from_millis(1))),
    );
    invalid("Duration::MAX", d.set("k", v.clone(), Some(Duration::MAX)));
    invalid(
        "set_many zero",
        d.set_many(&[("k", v.clone())], Some(Duration::ZERO)),
    );
    assert_eq!(d.gauges().entries, Some(0));

    let t0 = clock.now();
    d.set("k", v.clone(), Some(Duration::from_nanos(1)))
        .unwrap();
    d.set_many(&[("m", v.clone())], Some(Duration::from_micros(1500)))
        .unwrap();
    d.set("max", v, Some(MAX_TTL)).unwrap();
    let expires = |k| d.stat(k).unwrap().unwrap().expires_at;
    assert_eq!(expires("k"), Some(t0 + Duration::from_millis(1)));
    assert_eq!(expires("m"), Some(t0 + Duration::from_millis(2)));
    assert_eq!(expires("max"), Some(t0 + MAX_TTL));
    clock.advance(Duration::from_micros(999));
    assert!(d.exists("k").unwrap(), "a 1 ns TTL is kept as 1 ms");
    clock.advance(Duration::from_micros(1));
    assert!(!d.exists("k").unwrap());
}
