//! The driver's messages stay short and secret-free whatever the config holds. No server
//! is needed: every case fails before or at connecting.

use hodor_core::{Contract, Error};
use hodor_redis as _;
use hodor_redis::RedisConfig;
use serde_json::json;

const SHORT: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Display, Debug and every source of `e` are short.
fn assert_short(what: &str, e: &Error) {
    let mut texts = vec![e.to_string(), format!("{e:?}")];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for text in texts {
        assert!(
            text.len() < SHORT,
            "{what}: {} bytes: {}...",
            text.len(),
            text.chars().take(200).collect::<String>()
        );
    }
}

#[test]
fn huge_config_values_are_not_echoed_whole() {
    let long = "h".repeat(MIB);
    let configs = [
        json!({ "url": format!("redis://{long}:6379/0") }),
        json!({ "url": format!("redis://127.0.0.1:6379/{long}") }),
        json!({ "url": long.clone() }),
        json!({ "url": format!("nope://{long}") }),
        json!({ "url": "rediss://127.0.0.1:1/0", "tls_ca_file": long.clone() }),
        json!({ "url": "redis://127.0.0.1:1/0", "tls_ca_file": long.clone() }),
        json!({ "url": "rediss://127.0.0.1:1/0", "tls_cert_file": long.clone(), "tls_key_file": long.clone() }),
        json!({ "pool_size": long.clone() }),
        json!({ long.clone(): 1 }),
    ];
    for config in configs {
        let e = Contract::new("redis", "messages", Some(config.clone())).unwrap_err();
        assert_short("config", &e);
    }
}

#[test]
fn a_huge_url_is_not_echoed_by_debug() {
    let config = RedisConfig::new(format!("redis://{}:6379/0", "h".repeat(MIB)));
    assert!(format!("{config:?}").len() < SHORT);
}

#[test]
fn a_huge_host_that_cannot_be_reached_gives_a_short_error() {
    let host = "h".repeat(200); // a valid-looking but unresolvable name of 200 bytes
    let url = format!("redis://{host}.invalid:6379/0");
    let e = Contract::new(
        "redis",
        "messages",
        Some(json!({ "url": url, "connect_timeout_ms": 200 })),
    )
    .unwrap_err();
    assert_short("unresolvable host", &e);
}
