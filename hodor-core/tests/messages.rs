//! Every input an error echoes is bounded: a huge contract name, driver name, key, config
//! field or config value gives a short message (Display and Debug), not a copy of the input.

mod support;

use hodor_core::driver::{Driver, DriverError, DriverResult};
use hodor_core::{Capabilities, Contract, Error};

fn open_recording(
    _name: &str,
    _config: Option<serde_json::Value>,
) -> DriverResult<Box<dyn Driver>> {
    Ok(Box::new(support::Recording::new(Capabilities::NONE).0))
}

hodor_core::register_driver!("recording", open_recording);

/// Comfortably above any message hodor writes for ordinary inputs, far below the inputs.
const SHORT: usize = 1024;

const MIB: usize = 1024 * 1024;

fn assert_short(what: &str, e: &Error) {
    let shown = e.to_string();
    let debug = format!("{e:?}");
    assert!(
        shown.len() < SHORT,
        "{what}: Display is {} bytes: {}...",
        shown.len(),
        shown.chars().take(300).collect::<String>()
    );
    assert!(
        debug.len() < SHORT,
        "{what}: Debug is {} bytes: {}...",
        debug.len(),
        debug.chars().take(300).collect::<String>()
    );
    // The source of a Backend error is the driver's own error, passed through unchanged:
    // bounding it is the driver's business (hodor-redis tests its own).
}

#[test]
fn a_huge_contract_name_is_not_echoed_whole() {
    for name in ["n".repeat(5 * MIB), format!("{}\0", "é".repeat(MIB))] {
        let e = Contract::new("recording", &name, None).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        assert_short("invalid contract name", &e);
        // The full name is still there for code that wants it.
        match e {
            Error::InvalidInput { contract, .. } => assert_eq!(contract.len(), name.len()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_huge_driver_name_is_not_echoed_whole() {
    for driver in ["d".repeat(MIB), "\u{7}".repeat(MIB)] {
        let e = Contract::new(&driver, "sessions", None).unwrap_err();
        assert!(matches!(e, Error::UnknownDriver { .. }), "{e:?}");
        assert_short("unknown driver", &e);
    }
    // A name that could be a crate still gets the link hint.
    let e = Contract::new("redis-cluster", "sessions", None).unwrap_err();
    assert!(
        e.to_string().contains("use hodor_redis_cluster as _;"),
        "{e}"
    );
}

#[test]
fn every_error_of_a_contract_with_the_longest_name_is_short() {
    // 1024 bytes of four-byte characters: the longest valid name, escaped at its widest.
    let name = "\u{10FFFF}".repeat(256);
    let key = "\u{10FFFF}".repeat(256);
    let (mut driver, _) = support::Recording::new(Capabilities::NONE);
    driver.fail_with = Some(|| DriverError::backend("e".repeat(MIB)));
    let c = Contract::from_driver("flaky", &name, driver).unwrap();
    assert!(format!("{c:?}").len() < SHORT, "{c:?}");
    assert_short("backend", &c.get(&key).unwrap_err());
    assert_short(
        "backend, bulk",
        &c.set_many([(&key, "v")], None).unwrap_err(),
    );
    assert_short("invalid key", &c.get(&format!("{key}x")).unwrap_err());
    assert_short(
        "ttl",
        &c.set(&key, "v", Some(std::time::Duration::ZERO))
            .unwrap_err(),
    );
    assert_short(
        "unsupported",
        &c.set(&key, "v", Some(std::time::Duration::from_secs(1)))
            .unwrap_err(),
    );
    c.close().unwrap();
    assert_short("closed", &c.get(&key).unwrap_err());

    let (driver, _) = support::Recording::new(Capabilities::NONE);
    let m = Contract::from_driver("rec", &name, driver).unwrap();
    assert_short("not found", &m.get(&key).unwrap_err());
    m.set(&key, "y".repeat(MIB), None).unwrap();
    assert_short(
        "json of a huge stored value",
        &m.get_json::<u8>(&key).unwrap_err(),
    );
}

#[test]
fn driver_reasons_are_bounded_too() {
    for e in [
        DriverError::InvalidInput("i".repeat(MIB)),
        DriverError::CapacityExceeded("c".repeat(MIB)),
        DriverError::invalid_config(Some(&"f".repeat(MIB)), "r".repeat(MIB)),
        DriverError::Unsupported {
            operation: "watch",
            reason: Some("u".repeat(MIB)),
        },
        DriverError::backend("b".repeat(MIB)),
    ] {
        assert!(e.to_string().len() < SHORT, "{}", e.to_string().len());
        assert!(format!("{e:?}").len() < SHORT, "{}", format!("{e:?}").len());
        assert_short(
            "into_error",
            &e.into_error("test", &"n".repeat(MIB), "open"),
        );
    }
}
