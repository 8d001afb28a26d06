//! A third-party driver, opened by name like any other: the `custom` driver in
//! `examples/custom-driver` is a complete backend in one file that passes the conformance
//! suite. Copy that crate to write your own.
//!
//! Run with `cargo run --example custom_driver`; its suite with
//! `cargo test -p hodor-custom-driver`.

use std::time::Duration;

use hodor_core::{Contract, Error};
use hodor_custom_driver as _; // links the driver, which registers "custom"
use hodor_memory as _; // and the memory driver, to show both side by side

fn main() -> Result<(), Error> {
    println!("drivers linked: {:?}", hodor_core::drivers());

    for driver in ["custom", "memory"] {
        let store = Contract::new(driver, "example", None)?;
        store.set("users/alice", "admin", None)?;
        store.set("users/bob", "viewer", Some(Duration::from_secs(60)))?;
        store.set_many([("teams/a", "alice"), ("teams/b", "bob")], None)?;
        println!(
            "{driver:>6}: list users/ -> {:?}, bob expires {:?}, capabilities {:?}",
            store.list("users/")?,
            store.stat("users/bob")?.expires_at.is_some(),
            store.capabilities()
        );
        store.close()?;
    }

    // Typed config, checked the same way for every driver: unknown fields are errors.
    match Contract::new("custom", "example", Some(serde_json::json!({"size": 1}))) {
        Err(e @ Error::InvalidConfig { .. }) => println!("bad config -> {e}"),
        other => println!("bad config -> unexpected {other:?}"),
    }
    Ok(())
}
