//! Config sync: a typed config that follows its key, calling back with the old and the new
//! value, and keeping the last good value when someone writes a broken one.
//!
//! Run with `cargo run --example config_sync`. The same code works across processes on
//! Redis: open the contract with `Contract::new("redis", ...)` instead.

use std::sync::mpsc;
use std::time::Duration;

use hodor_core::sync::{Status, Synced};
use hodor_core::{Contract, Error};
use hodor_memory as _;
use serde::Deserialize;

#[derive(Deserialize, Debug, Clone, PartialEq)]
struct AppConfig {
    /// Requests per second each client may make.
    rate_limit: u32,
    /// Where the checkout service lives.
    checkout_url: String,
}

/// How long the example waits for a callback it expects (it comes in milliseconds).
const WAIT: Duration = Duration::from_secs(10);

fn main() -> Result<(), Error> {
    let store = Contract::new("memory", "config", None)?;

    // Seed the config, as a deploy script would.
    store.set(
        "app.json",
        r#"{"rate_limit": 100, "checkout_url": "https://checkout.internal/v1"}"#,
        None,
    )?;

    // Follow it. Each change arrives on the Synced's own thread, in order.
    let (changes, changed) = mpsc::channel();
    let (errors, failed) = mpsc::channel();
    let config = Synced::<AppConfig>::builder(&store, "app.json")
        .validate(|c| match c.rate_limit {
            0 => Err("rate_limit must be positive".to_owned()),
            _ => Ok(()),
        })
        .on_change(move |old, new| {
            match old {
                None => println!("config loaded: {new:?}"),
                Some(old) => println!("config changed:\n  old {old:?}\n  new {new:?}"),
            }
            let _ = changes.send(new.clone());
        })
        .on_error(move |e| {
            println!("config rejected, keeping the last good one: {e}");
            let _ = errors.send(());
        })
        .debounce(Duration::from_millis(20))
        .start()?;
    let expect_change = || changed.recv_timeout(WAIT).expect("a change is reported");
    expect_change();

    // Request handlers read it lock-free, as often as they like.
    println!("serving with rate_limit = {}", config.get().rate_limit);

    // An operator raises the limit: the callback sees old and new.
    store.set(
        "app.json",
        r#"{"rate_limit": 250, "checkout_url": "https://checkout.internal/v1"}"#,
        None,
    )?;
    assert_eq!(expect_change().rate_limit, 250);
    assert_eq!(config.get().rate_limit, 250);

    // Someone writes broken JSON: the last good value stays, the error is reported once.
    store.set("app.json", r#"{"rate_limit": 9000, "checkout_url": "#, None)?;
    failed
        .recv_timeout(WAIT)
        .expect("the bad value is reported");
    assert_eq!(config.get().rate_limit, 250);
    match config.status() {
        Status::Stale { error, .. } => println!("status: stale ({error})"),
        other => panic!("expected a stale status, got {other:?}"),
    }

    // A value that parses but fails validation is kept out the same way.
    store.set(
        "app.json",
        r#"{"rate_limit": 0, "checkout_url": "https://checkout.internal/v1"}"#,
        None,
    )?;
    failed
        .recv_timeout(WAIT)
        .expect("the invalid value is reported");
    assert_eq!(config.get().rate_limit, 250);

    // The fix goes out: back to current, with (last good, new).
    store.set(
        "app.json",
        r#"{"rate_limit": 300, "checkout_url": "https://checkout.internal/v2"}"#,
        None,
    )?;
    let fixed = expect_change();
    assert_eq!(fixed.checkout_url, "https://checkout.internal/v2");
    assert!(config.status().is_current());
    println!("serving with rate_limit = {}", config.get().rate_limit);

    drop(config);
    store.close()
}
