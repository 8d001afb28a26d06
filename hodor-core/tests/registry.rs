//! Link-time registration, tested from outside the crate: a dev-dependency registering into
//! core's unit-test build would register into a second copy of core.

mod support;

use hodor_core::driver::{Driver, DriverResult};
use hodor_core::{Capabilities, Contract, Error};

fn open_recording(
    _name: &str,
    _config: Option<serde_json::Value>,
) -> DriverResult<Box<dyn Driver>> {
    Ok(Box::new(support::Recording::new(Capabilities::NONE).0))
}

hodor_core::register_driver!("recording", open_recording);
hodor_core::register_driver!("twice", open_recording);
hodor_core::register_driver!("twice", open_recording);

#[test]
fn drivers_lists_every_linked_driver_sorted_and_once() {
    assert_eq!(hodor_core::drivers(), ["recording", "twice"]);
}

#[test]
fn a_registered_driver_opens_by_name() {
    let c = Contract::new("recording", "r", None).unwrap();
    assert_eq!(c.driver(), "recording");
    assert_eq!(c.name(), "r");
    c.set("k", "v", None).unwrap();
    assert_eq!(c.get("k").unwrap(), "v");
}

#[test]
fn an_unknown_driver_lists_the_registered_ones_and_says_how_to_link() {
    let err = Contract::new("redis", "sessions", None).unwrap_err();
    match &err {
        Error::UnknownDriver { driver, registered } => {
            assert_eq!(driver, "redis");
            assert_eq!(registered, &["recording", "twice"]);
        }
        other => panic!("expected UnknownDriver, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("use hodor_redis as _;"), "{text}");
    assert!(text.contains("recording, twice"), "{text}");
}

#[test]
fn a_duplicate_registration_is_an_error_naming_both() {
    let err = Contract::new("twice", "x", None).unwrap_err();
    let Error::DuplicateDriver {
        driver,
        first,
        second,
    } = &err
    else {
        panic!("expected DuplicateDriver, got {err:?}");
    };
    assert_eq!(driver, "twice");
    assert_ne!(first, second);
    for origin in [first, second] {
        assert!(origin.contains("registry.rs"), "{origin}");
    }
    assert!(err.to_string().contains(first.as_str()));
}

#[test]
fn a_driver_value_opens_without_the_registry() {
    let (driver, log) = support::Recording::new(Capabilities::NONE);
    let c = Contract::from_driver("unregistered", "direct", driver).unwrap();
    assert_eq!(c.driver(), "unregistered");
    c.set("a", "1", None).unwrap();
    assert_eq!(log.calls(), ["set a"]);
    assert!(!hodor_core::drivers().contains(&"unregistered"));
}
