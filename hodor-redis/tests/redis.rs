//! Behaviour of the Redis driver through the public `Contract` API, on a real server.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use hodor_core::{Contract, Error};
use hodor_redis as _;
use serde_json::json;

/// Opens a fresh contract on the shared test server, or skips the test.
macro_rules! contract {
    ($test:expr) => {
        contract!($test, json!({}))
    };
    ($test:expr, $extra:expr) => {{
        let Some(url) = support::url($test) else {
            return;
        };
        let mut config = $extra;
        config["url"] = json!(url);
        let name = support::unique($test);
        let c = Contract::new("redis", &name, Some(config)).unwrap();
        (c, url, name)
    }};
}

/// Keys that break naive encodings; every one must round-trip.
const AWKWARD: &[&str] = &[
    "plain",
    "/",
    "//",
    "/leading",
    "trailing/",
    "a//b",
    "..",
    "../../etc/passwd",
    ".",
    " ",
    " spaced out ",
    "*",
    "?",
    "[abc]",
    "[",
    "]",
    "\\",
    "a*b?c[d]e\\f",
    "%",
    "%2F",
    "%25",
    "'single'",
    "\"double\"",
    "`back`",
    "{",
    "}",
    "{tag}",
    "}{",
    ":",
    "hodor:{x}:v:y",
    "\u{1F600}",
    "e\u{301}",
    "\u{E9}",
    "\t\n\r",
    "\u{7F}",
    "\u{FFFF}",
    "\u{10FFFF}",
    "~!@#$^&()_+-=|;,<>",
];

#[test]
fn the_five_calls() {
    let (c, _, _) = contract!("the_five_calls");
    assert_eq!(c.driver(), "redis");
    assert!(matches!(c.get("k"), Err(Error::NotFound { .. })));
    assert!(!c.exists("k").unwrap());
    c.set("k", "v1", None).unwrap();
    assert_eq!(c.get("k").unwrap(), "v1");
    assert!(c.exists("k").unwrap());
    c.set("k", "v2", None).unwrap();
    assert_eq!(c.get("k").unwrap(), "v2");
    let before = SystemTime::now();
    c.set("k", "", None).unwrap();
    let after = SystemTime::now();
    assert_eq!(c.get("k").unwrap(), "");
    let meta = c.stat("k").unwrap();
    assert_eq!(meta.size, 0);
    assert!(
        meta.modified >= before && meta.modified <= after,
        "{meta:?}"
    );
    assert_eq!(meta.expires_at, None);
    assert!(c.delete("k").unwrap());
    assert!(!c.delete("k").unwrap());
    assert!(matches!(c.stat("k"), Err(Error::NotFound { .. })));
    c.close().unwrap();
    assert!(matches!(c.get("k"), Err(Error::Closed { .. })));
}

#[test]
fn values_are_byte_exact() {
    let (c, _, _) = contract!("values_are_byte_exact");
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    c.set("bin", all_bytes.clone(), None).unwrap();
    assert_eq!(c.get("bin").unwrap(), all_bytes);
    let big = vec![0xA5u8; 4 << 20];
    c.set("big", big.clone(), None).unwrap();
    assert_eq!(c.get("big").unwrap().len(), big.len());
    assert_eq!(c.stat("big").unwrap().size, big.len() as u64);
}

#[test]
fn awkward_keys_round_trip_and_list_exactly() {
    let (c, _, _) = contract!("awkward_keys_round_trip_and_list_exactly");
    let long = "k".repeat(1024);
    let mut keys: Vec<&str> = AWKWARD.to_vec();
    keys.push(&long);
    for (i, key) in keys.iter().enumerate() {
        c.set(key, i.to_string(), None).unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(c.get(key).unwrap(), i.to_string(), "key {key:?}");
        assert!(c.exists(key).unwrap(), "key {key:?}");
        // The key as a prefix lists exactly the keys starting with it: glob characters
        // and escapes are data.
        let expected: Vec<String> = sorted(keys.iter().filter(|k| k.starts_with(*key)));
        assert_eq!(c.list(key).unwrap(), expected, "prefix {key:?}");
    }
    assert_eq!(c.list("").unwrap(), sorted(keys.iter()));
    assert_eq!(c.list("\u{1F600}x").unwrap(), Vec::<String>::new());
    for key in &keys {
        assert!(c.delete(key).unwrap(), "key {key:?}");
    }
    assert_eq!(c.list("").unwrap(), Vec::<String>::new());
}

fn sorted<'a>(keys: impl Iterator<Item = &'a &'a str>) -> Vec<String> {
    let set: BTreeSet<Vec<u8>> = keys.map(|k| k.as_bytes().to_vec()).collect();
    set.into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn list_is_a_sorted_byte_prefix_match() {
    let (c, _, _) = contract!("list_is_a_sorted_byte_prefix_match");
    for key in [
        "foo/b",
        "foo/a",
        "foo",
        "foo.bar",
        "fop",
        "fo",
        "foo/a/deep",
        "é",
        "z",
    ] {
        c.set(key, "x", None).unwrap();
        c.set(key, "again", None).unwrap(); // no duplicates in the index
    }
    assert_eq!(
        c.list("foo").unwrap(),
        ["foo", "foo.bar", "foo/a", "foo/a/deep", "foo/b"]
    );
    assert_eq!(c.list("foo/").unwrap(), ["foo/a", "foo/a/deep", "foo/b"]);
    assert_eq!(c.list("fo").unwrap().len(), 7);
    assert_eq!(
        c.list("").unwrap(),
        [
            "fo",
            "foo",
            "foo.bar",
            "foo/a",
            "foo/a/deep",
            "foo/b",
            "fop",
            "z",
            "é"
        ]
    );
    assert!(c.list("nothing").unwrap().is_empty());
    assert!(c.list("foo/a/deep/er").unwrap().is_empty());
}

#[test]
fn names_are_separate_namespaces_and_same_name_is_same_data() {
    let Some(url) = support::url("names_are_separate_namespaces") else {
        return;
    };
    let base = support::unique("ns");
    let names = [
        base.clone(),
        format!("{base}}}"),
        format!("{base}%7D"),
        format!("{base}:v:"),
        format!("{base}{{x}}"),
    ];
    let contracts: Vec<Contract> = names
        .iter()
        .map(|n| Contract::new("redis", n, Some(support::config(&url))).unwrap())
        .collect();
    for (i, c) in contracts.iter().enumerate() {
        c.set("k", i.to_string(), None).unwrap();
        c.set(&format!("only-{i}"), "x", None).unwrap();
    }
    for (i, c) in contracts.iter().enumerate() {
        assert_eq!(c.get("k").unwrap(), i.to_string());
        assert_eq!(c.list("").unwrap(), ["k".to_owned(), format!("only-{i}")]);
    }
    // Another contract with the same name, even with another pool, sees the same data.
    let twin = Contract::new(
        "redis",
        &names[1],
        Some(json!({"url": url, "pool_size": 1, "timeout_ms": 999})),
    )
    .unwrap();
    assert_eq!(twin.get("k").unwrap(), "1");
    twin.set("from-twin", "t", None).unwrap();
    assert_eq!(contracts[1].get("from-twin").unwrap(), "t");
    assert!(matches!(
        contracts[0].get("from-twin"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn entries_live_in_the_documented_layout() {
    let (c, url, name) = contract!("entries_live_in_the_documented_layout");
    c.set("a/b", "v", Some(Duration::from_secs(60))).unwrap();
    let mut raw = support::raw(&url);
    let value_key = format!("hodor:{{{name}}}:v:a/b");
    let value: Vec<u8> = redis::cmd("HGET")
        .arg(&value_key)
        .arg("v")
        .query(&mut raw)
        .unwrap();
    assert_eq!(value, b"v");
    let pttl: i64 = redis::cmd("PTTL").arg(&value_key).query(&mut raw).unwrap();
    assert!((58_000..=60_000).contains(&pttl), "{pttl}");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("hodor:{{{name}}}:i"))
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(members, ["a/b"]);
    // Same cluster slot for every key of the contract.
    let slot = |key: &str| -> i64 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut support::raw(&url))
            .unwrap_or(-1)
    };
    let index_slot = slot(&format!("hodor:{{{name}}}:i"));
    if index_slot >= 0 {
        assert_eq!(slot(&value_key), index_slot);
        assert_eq!(slot(&format!("hodor:{{{name}}}:x")), index_slot);
    }
}

#[test]
fn ttl_expires_entries_for_every_operation() {
    let (c, _, _) = contract!("ttl_expires_entries_for_every_operation");
    let ttl = Duration::from_millis(300);
    let start = SystemTime::now();
    c.set("short", "v", Some(ttl)).unwrap();
    c.set("long", "v", Some(Duration::from_secs(60))).unwrap();
    c.set("forever", "v", None).unwrap();
    let meta = c.stat("short").unwrap();
    let expires = meta.expires_at.unwrap();
    let slack = Duration::from_millis(50);
    assert!(expires >= start + ttl - slack && expires <= SystemTime::now() + ttl + slack);
    assert_eq!(c.list("").unwrap(), ["forever", "long", "short"]);

    thread::sleep(ttl + Duration::from_millis(100));
    assert!(matches!(c.get("short"), Err(Error::NotFound { .. })));
    assert!(!c.exists("short").unwrap());
    assert!(matches!(c.stat("short"), Err(Error::NotFound { .. })));
    assert_eq!(c.list("").unwrap(), ["forever", "long"]);
    assert!(
        !c.delete("short").unwrap(),
        "an expired entry is not a live one"
    );
    assert_eq!(c.get_many(&["short", "long"]).unwrap()[0], None);
}

#[test]
fn set_without_ttl_clears_the_ttl_and_with_ttl_replaces_it() {
    let (c, _, _) = contract!("set_without_ttl_clears_the_ttl");
    c.set("k", "1", Some(Duration::from_millis(200))).unwrap();
    c.set("k", "2", None).unwrap();
    assert_eq!(c.stat("k").unwrap().expires_at, None);
    c.set("j", "1", None).unwrap();
    c.set("j", "2", Some(Duration::from_millis(200))).unwrap();
    assert!(c.stat("j").unwrap().expires_at.is_some());
    thread::sleep(Duration::from_millis(300));
    assert_eq!(c.get("k").unwrap(), "2");
    assert_eq!(c.list("").unwrap(), ["k"]);
    assert!(!c.exists("j").unwrap());
}

/// A set skips the index and expiry-set commands a case does not need; these are the cases
/// where skipping the wrong one would leave a live key out of `list` (now, or after the next
/// prune), checked on the raw sets too.
#[test]
fn writes_keep_the_index_and_expiry_set_exact_in_every_case() {
    // A pruner that never runs in the test: only the writes' own pruning moves members.
    let (c, url, name) = contract!(
        "writes_keep_the_index_and_expiry_set_exact",
        json!({"prune_interval_ms": 3_600_000})
    );
    let mut raw = support::raw(&url);
    // Sorted by bytes (the expiry set is ordered by deadline).
    let mut members = |set: &str| -> Vec<String> {
        let mut m: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("hodor:{{{name}}}:{set}"))
            .arg(0)
            .arg(-1)
            .query(&mut raw)
            .unwrap();
        m.sort();
        m
    };
    let short = Duration::from_millis(40);

    // Set again without a TTL after the first one expired, its deadline still in the
    // expiry set: the new entry must not inherit it.
    c.set("revived", "1", Some(short)).unwrap();
    thread::sleep(short + Duration::from_millis(30));
    c.set("revived", "2", None).unwrap();
    // With a TTL, then without: the old deadline goes and so does the TTL.
    c.set("cleared", "1", Some(short)).unwrap();
    c.set("cleared", "2", None).unwrap();
    // Without, then with, then overwritten with: one deadline, the latest.
    c.set("renewed", "1", None).unwrap();
    c.set("renewed", "2", Some(short)).unwrap();
    c.set("renewed", "3", Some(Duration::from_secs(60)))
        .unwrap();
    // Overwritten without a TTL: stays listed.
    c.set("plain", "1", None).unwrap();
    c.set("plain", "2", None).unwrap();
    // Set with a TTL again after it expired: listed again.
    c.set("again", "1", Some(short)).unwrap();
    thread::sleep(short + Duration::from_millis(30));
    c.set("again", "2", Some(Duration::from_secs(60))).unwrap();

    let live = ["again", "cleared", "plain", "renewed", "revived"];
    assert_eq!(c.list("").unwrap(), live);
    assert_eq!(members("x"), ["again", "renewed"]);
    // Past every short deadline; writes prune what has expired (one in 16 does, by its
    // change's seq, so 16 writes in a row include it).
    thread::sleep(short + Duration::from_millis(30));
    for _ in 0..16 {
        c.set("other", "v", None).unwrap();
    }
    assert_eq!(
        c.list("").unwrap(),
        ["again", "cleared", "other", "plain", "renewed", "revived"]
    );
    assert_eq!(members("i"), c.list("").unwrap());
    assert_eq!(members("x"), ["again", "renewed"]);
    assert_eq!(c.stat("cleared").unwrap().expires_at, None);
    assert_eq!(c.stat("revived").unwrap().expires_at, None);
    assert!(c.stat("renewed").unwrap().expires_at.is_some());
    assert_eq!(c.get("revived").unwrap(), "2");
}

#[test]
fn expiry_is_exact_to_the_millisecond() {
    // A 1 ms TTL is gone soon after and never visible long after; never early for long ones.
    let (c, _, _) = contract!("expiry_is_exact_to_the_millisecond");
    for _ in 0..20 {
        let set_at = Instant::now();
        c.set("k", "v", Some(Duration::from_millis(40))).unwrap();
        let live = c.exists("k").unwrap();
        if set_at.elapsed() < Duration::from_millis(35) {
            assert!(live, "expired early");
        }
        thread::sleep(Duration::from_millis(45));
        assert!(!c.exists("k").unwrap());
        assert!(c.list("k").unwrap().is_empty());
    }
    c.set("one", "v", Some(Duration::from_millis(1))).unwrap();
    thread::sleep(Duration::from_millis(5));
    assert!(!c.exists("one").unwrap());
}

#[test]
fn bulk_operations() {
    let (c, _, _) = contract!("bulk_operations");
    c.set_many([("a", "1"), ("b", "2"), ("a", "3")], None)
        .unwrap();
    assert_eq!(
        c.get_many(&["a", "b", "missing", "a"]).unwrap(),
        [Some("3".into()), Some("2".into()), None, Some("3".into())]
    );
    c.set_many([("t1", "x"), ("t2", "y")], Some(Duration::from_secs(60)))
        .unwrap();
    assert!(c.stat("t1").unwrap().expires_at.is_some());
    assert_eq!(c.list("").unwrap(), ["a", "b", "t1", "t2"]);
    assert_eq!(c.delete_many(&["a", "a", "missing", "t1"]).unwrap(), 2);
    assert_eq!(c.list("").unwrap(), ["b", "t2"]);
    assert_eq!(c.delete_many(&[]).unwrap(), 0);
    c.set_many(Vec::<(&str, &str)>::new(), None).unwrap();
    assert_eq!(
        c.get_many(&[]).unwrap(),
        Vec::<Option<hodor_core::Bytes>>::new()
    );
    assert!(c.capabilities().atomic_bulk);

    let many: Vec<(String, String)> = (0..5000)
        .map(|i| (format!("m/{i:05}"), i.to_string()))
        .collect();
    c.set_many(many.iter().map(|(k, v)| (k.as_str(), v.clone())), None)
        .unwrap();
    assert_eq!(c.list("m/").unwrap().len(), 5000);
    let keys: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(c.delete_many(&keys).unwrap(), 5000);
}

#[test]
fn set_many_is_atomic_for_readers() {
    let (c, _, _) = contract!("set_many_is_atomic_for_readers");
    c.set_many([("x", "0"), ("y", "0")], None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (c, done) = (c.clone(), done.clone());
        thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Acquire) {
                let v = c.get_many(&["x", "y"]).unwrap();
                assert_eq!(v[0], v[1], "saw half of a set_many");
                reads += 1;
            }
            reads
        })
    };
    for i in 1..=300 {
        let v = i.to_string();
        c.set_many([("x", v.clone()), ("y", v)], None).unwrap();
    }
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
}

#[test]
fn many_threads_share_a_small_pool() {
    let (c, _, _) = contract!("many_threads_share_a_small_pool", json!({"pool_size": 2}));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    let key = format!("t{t}/{i}");
                    c.set(&key, key.clone(), None).unwrap();
                    assert_eq!(c.get(&key).unwrap(), key);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.list("").unwrap().len(), 800);
    assert_eq!(c.list("t3/").unwrap().len(), 100);
}

#[test]
fn expired_index_entries_are_reclaimed_without_reads() {
    let (c, url, name) = contract!(
        "expired_index_entries_are_reclaimed_without_reads",
        json!({"prune_interval_ms": 50})
    );
    let entries: Vec<(String, &str)> = (0..50).map(|i| (format!("k{i}"), "v")).collect();
    c.set_many(
        entries.iter().map(|(k, v)| (k.as_str(), *v)),
        Some(Duration::from_millis(100)),
    )
    .unwrap();
    c.set("stays", "v", None).unwrap();
    assert_eq!(c.metrics().entries, Some(51));
    let mut raw = support::raw(&url);
    let index = format!("hodor:{{{name}}}:i");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: u64 = redis::cmd("ZCARD").arg(&index).query(&mut raw).unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "index still holds {n} members");
        thread::sleep(Duration::from_millis(20));
    }
    let expiry: u64 = redis::cmd("ZCARD")
        .arg(format!("hodor:{{{name}}}:x"))
        .query(&mut raw)
        .unwrap();
    assert_eq!(expiry, 0);
    assert_eq!(c.metrics().entries, Some(1));
}

#[test]
fn config_errors_name_the_field() {
    let field = |config: serde_json::Value| match Contract::new("redis", "cfg", Some(config)) {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(field(json!({"ur": "x"})).as_deref(), Some("ur"));
    assert_eq!(field(json!({"url": 5})).as_deref(), Some("url"));
    assert_eq!(field(json!({"url": "nope://x"})).as_deref(), Some("url"));
    assert_eq!(field(json!({"pool_size": 0})).as_deref(), Some("pool_size"));
    assert_eq!(
        field(json!({"timeout_ms": -5})).as_deref(),
        Some("timeout_ms")
    );
}

#[test]
fn an_unreachable_server_fails_open_with_backend_in_time() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let result = Contract::new(
        "redis",
        "unreachable",
        Some(json!({"url": format!("redis://:pw@127.0.0.1:{port}/0"), "connect_timeout_ms": 500})),
    );
    match result {
        Err(e @ Error::Backend { .. }) => {
            let text = e.to_string();
            assert!(text.contains("refused"), "{text}");
            assert!(!text.contains("pw@"), "password leaked: {text}");
        }
        other => panic!("expected Backend, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_bad_password_is_a_backend_error_at_open() {
    let Some(url) = support::url("a_bad_password_is_a_backend_error_at_open") else {
        return;
    };
    let Some(rest) = url.strip_prefix("redis://") else {
        return;
    };
    let bad = format!("redis://nobody:wrong@{rest}");
    match Contract::new("redis", "auth", Some(json!({ "url": bad }))) {
        Err(e @ Error::Backend { .. }) => assert!(!e.to_string().contains("wrong"), "{e}"),
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[test]
fn open_without_the_registry() {
    let Some(url) = support::url("open_without_the_registry") else {
        return;
    };
    let name = support::unique("direct");
    let c = hodor_redis::open(&name, &hodor_redis::RedisConfig::new(url)).unwrap();
    c.set("k", "v", None).unwrap();
    assert_eq!(c.get("k").unwrap(), "v");
    assert!(hodor_core::drivers().contains(&"redis"));
    let caps = c.capabilities();
    assert!(caps.ttl && caps.persistent && caps.atomic_bulk && !caps.limits);
}

#[test]
fn database_from_config_overrides_the_url() {
    let Some(url) = support::url("database_from_config_overrides_the_url") else {
        return;
    };
    let name = support::unique("db");
    let db3 = Contract::new("redis", &name, Some(json!({"url": url, "database": 3}))).unwrap();
    let db0 = Contract::new("redis", &name, Some(json!({"url": url}))).unwrap();
    db3.set("k", "in 3", None).unwrap();
    assert!(!db0.exists("k").unwrap());
    assert_eq!(db3.get("k").unwrap(), "in 3");
    db3.delete("k").unwrap();
}
