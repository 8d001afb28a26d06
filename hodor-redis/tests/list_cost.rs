//! `list` costs what the contract's matching keys cost, not what the database holds.
//!
//! Evidence without timing: the server's own counters. `INFO commandstats` counts every
//! command, including those a script runs, and `INFO stats` counts key lookups
//! (`keyspace_hits` + `keyspace_misses`). Listing 10 keys must run the same commands and
//! look up the same number of keys with 100,000 keys in other contracts as with none, and
//! never a keyspace-wide command such as `SCAN` or `KEYS`.

mod support;

use std::collections::BTreeMap;

use hodor_core::Contract;
use hodor_redis as _;
use serde_json::json;

/// Calls per command, from `INFO commandstats`, leaving out the commands this test sends
/// itself to read and reset the counters.
fn command_calls(conn: &mut redis::Connection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "config" | "config|resetstat"))
        .collect()
}

fn key_lookups(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            matches!(name, "keyspace_hits" | "keyspace_misses")
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .sum()
}

/// What one `list` call costs the server: (calls per command, key lookups).
fn cost_of_list(
    c: &Contract,
    raw: &mut redis::Connection,
) -> (BTreeMap<String, u64>, u64, Vec<String>) {
    // Warm the pool so no connection handshake lands in the counters.
    c.list("item/").unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(raw).unwrap();
    let listed = c.list("item/").unwrap();
    let calls = command_calls(raw);
    let lookups = key_lookups(raw);
    (calls, lookups, listed)
}

#[test]
fn listing_ten_keys_ignores_a_hundred_thousand_keys_elsewhere() {
    let Some(server) = support::Server::start() else {
        support::skip(
            "listing_ten_keys_ignores_a_hundred_thousand_keys_elsewhere",
            "redis-server could not be started from PATH (this test resets the server's \
             statistics, so it runs on a server of its own)",
        );
        return;
    };
    // No background pruning during the measurement.
    let config = json!({"url": server.url(), "prune_interval_ms": 3_600_000});
    let c = Contract::new("redis", "target", Some(config.clone())).unwrap();
    for i in 0..10 {
        c.set(&format!("item/{i}"), "v", None).unwrap();
    }
    // Keys of the same contract outside the prefix, and one with a TTL, for realism.
    c.set("other", "v", None).unwrap();
    c.set("item/ttl", "v", Some(std::time::Duration::from_secs(600)))
        .unwrap();
    let mut raw = support::raw(&server.url());

    let (baseline_calls, baseline_lookups, listed) = cost_of_list(&c, &mut raw);
    assert_eq!(listed.len(), 11);

    for n in 0..10 {
        let other = Contract::new("redis", &format!("other-{n}"), Some(config.clone())).unwrap();
        let keys: Vec<String> = (0..10_000).map(|i| format!("item/{i}")).collect();
        for chunk in keys.chunks(1000) {
            other
                .set_many(chunk.iter().map(|k| (k.as_str(), "v")), None)
                .unwrap();
        }
    }
    let size: u64 = redis::cmd("DBSIZE").query(&mut raw).unwrap();
    assert!(size >= 100_000, "{size}");

    let (calls, lookups, listed_after) = cost_of_list(&c, &mut raw);
    eprintln!(
        "one list(\"item/\") with 0 keys elsewhere:       {baseline_calls:?}, {baseline_lookups} key lookups"
    );
    eprintln!("one list(\"item/\") with {size} keys in the db: {calls:?}, {lookups} key lookups");
    assert_eq!(listed_after, listed);
    assert_eq!(calls, baseline_calls);
    assert_eq!(lookups, baseline_lookups);
    for scan in ["scan", "keys", "zscan", "sscan", "hscan"] {
        assert!(!calls.contains_key(scan), "list ran {scan}: {calls:?}");
    }
    // One script call that reads the contract's own index and deadline set.
    assert_eq!(calls.get("evalsha"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("zrange"), Some(&1), "{calls:?}");
    assert!(lookups <= 2, "{lookups} key lookups");
}
