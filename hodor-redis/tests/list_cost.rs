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

/// What one `list("item/")` call costs the server: (calls per command, key lookups).
fn cost_of_list(
    c: &Contract,
    raw: &mut redis::Connection,
) -> (BTreeMap<String, u64>, u64, Vec<String>) {
    cost_of_list_of(c, raw, "item/")
}

/// What one `list(prefix)` call costs the server: (calls per command, key lookups).
fn cost_of_list_of(
    c: &Contract,
    raw: &mut redis::Connection,
    prefix: &str,
) -> (BTreeMap<String, u64>, u64, Vec<String>) {
    // Warm the pool so no connection handshake lands in the counters.
    c.list(prefix).unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(raw).unwrap();
    let listed = c.list(prefix).unwrap();
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
    // No deadline has passed, so no script: one transaction that reads the clock, the
    // earliest deadline and the range of the contract's own index.
    assert!(!calls.contains_key("evalsha"), "{calls:?}");
    assert!(!calls.contains_key("zmscore"), "{calls:?}");
    assert_eq!(calls.get("exec"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("zrange"), Some(&2), "{calls:?}");
    assert!(lookups <= 2, "{lookups} key lookups");
}

#[test]
fn list_filters_what_is_due_and_is_one_range_again_once_it_is_pruned() {
    let Some(server) = support::Server::start() else {
        support::skip(
            "list_filters_what_is_due_and_is_one_range_again_once_it_is_pruned",
            "redis-server could not be started from PATH (this test resets the server's \
             statistics, so it runs on a server of its own)",
        );
        return;
    };
    // No background pruning: the expired members stay in the index until a write.
    let config = json!({"url": server.url(), "prune_interval_ms": 3_600_000});
    let c = Contract::new("redis", "due", Some(config)).unwrap();
    let mut raw = support::raw(&server.url());
    let short = std::time::Duration::from_millis(30);
    let long = std::time::Duration::from_secs(600);
    c.set("a/kept", "v", None).unwrap();
    c.set("a/long", "v", Some(long)).unwrap();
    c.set("a/short", "v", Some(short)).unwrap();
    c.set("b/short", "v", Some(short)).unwrap();
    assert_eq!(c.list("a/").unwrap(), ["a/kept", "a/long", "a/short"]);
    std::thread::sleep(short + std::time::Duration::from_millis(20));

    // Due but not pruned: still in the index, never listed.
    let index: Vec<String> = redis::cmd("ZRANGE")
        .arg("hodor:{due}:i")
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(index, ["a/kept", "a/long", "a/short", "b/short"]);
    let (calls, _, listed) = cost_of_list_of(&c, &mut raw, "a/");
    assert_eq!(listed, ["a/kept", "a/long"]);
    assert_eq!(
        calls.get("evalsha"),
        Some(&1),
        "the script filters: {calls:?}"
    );
    assert_eq!(c.list("").unwrap(), ["a/kept", "a/long"]);
    let page = c.list_page("a/", None, 1).unwrap();
    assert_eq!(page.keys, ["a/kept"]);
    assert_eq!(page.next.as_deref(), Some("a/kept"));
    let page = c.list_page("a/", Some("a/kept"), 5).unwrap();
    assert_eq!((page.keys, page.next), (vec!["a/long".to_owned()], None));

    // Writes prune what is due (one in 16 does, so 16 in a row include it); listing is
    // one range again.
    for _ in 0..16 {
        c.set("c", "v", None).unwrap();
    }
    let (calls, _, listed) = cost_of_list_of(&c, &mut raw, "a/");
    assert_eq!(listed, ["a/kept", "a/long"]);
    assert!(!calls.contains_key("evalsha"), "{calls:?}");
    let page = c.list_page("", Some("a/kept"), 1).unwrap();
    assert_eq!(page.keys, ["a/long"]);
    assert_eq!(page.next.as_deref(), Some("a/long"));
    let page = c.list_page("", Some("a/long"), 1).unwrap();
    assert_eq!((page.keys, page.next), (vec!["c".to_owned()], None));
}
