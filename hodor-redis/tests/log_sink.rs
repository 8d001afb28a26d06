//! hodor-log end to end on a real Redis server: two sinks (as two processes would) write
//! through the Redis driver with retention, one of them compressing with lz4, and `read`
//! merges them back in order. (It lives here, not in hodor-log, so hodor-log's own tests
//! need no Redis client, whose Rust version is higher than hodor-log's.)
//!
//! The server is this crate's test fixture: `HODOR_REDIS_URL`, or a `redis-server` from
//! `PATH` on a free port; without either the test prints a loud skip line, unless
//! `HODOR_REQUIRE_REDIS=1`, where it fails.

mod support;

use support as server;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hodor_core::Contract;
use hodor_log::Sink;
use hodor_redis as _;
use tracing_subscriber::prelude::*;

#[test]
fn two_sinks_write_through_redis_and_read_back_in_order() {
    let Some(url) = server::url("two_sinks_write_through_redis_and_read_back_in_order") else {
        return;
    };
    let logs = Contract::new("redis", &server::unique("logs"), Some(server::config(&url))).unwrap();
    let retention = Duration::from_secs(3600);
    let build = |compression| {
        Sink::builder(logs.clone())
            .prefix("logs/web/")
            .retention(retention)
            .batch_records(7)
            .compression(compression)
            .build()
            .unwrap()
    };
    let (a, guard_a) = build(hodor_log::Compression::None);
    let (b, guard_b) = build(hodor_log::Compression::Lz4);
    let before = SystemTime::now();
    let logger = b.logger();
    let mut sent = Vec::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(a.layer()), || {
        for i in 0..50 {
            let m = format!("tracing {i}");
            tracing::info!(i, "{m}");
            sent.push(m);
            let m = format!("log {i}");
            log::Log::log(
                &logger,
                &log::Record::builder()
                    .level(log::Level::Warn)
                    .args(format_args!("{m}"))
                    .build(),
            );
            sent.push(m);
            // Distinct microseconds, so the expected order is the order of the calls.
            std::thread::sleep(Duration::from_micros(50));
        }
    });
    drop(guard_a);
    drop(guard_b);
    assert_eq!(a.stats().records_written + b.stats().records_written, 100);

    let keys = logs.list("logs/web/").unwrap();
    assert!(keys.len() >= 16, "{keys:?}");
    for key in &keys {
        let meta = logs.stat(key).unwrap();
        let expires = meta.expires_at.expect("every batch has the retention TTL");
        assert!(
            expires > before + retention - Duration::from_secs(1),
            "{key}"
        );
        assert!(expires <= SystemTime::now() + retention, "{key}");
    }
    // Batches that compression would not shrink (a record or two) stay raw.
    assert!(keys.iter().any(|k| k.ends_with(".jsonl.lz4")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".jsonl")), "{keys:?}");
    let records: Vec<_> = hodor_log::read(&logs, "logs/web/", UNIX_EPOCH)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let got: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got, sent);
    assert_eq!(records[0].fields["i"], 0);
    assert_eq!(records[1].level, "WARN");

    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(logs.delete_many(&keys).unwrap(), keys.len());
}
