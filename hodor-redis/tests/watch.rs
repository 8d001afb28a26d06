//! The Redis change log behind watches: its layout, other pools' writes, expiries from the
//! pruner, reconnects that lose nothing, gaps and restarts reported as `Lagged`, and
//! `watch_history: 0`.
//!
//! The tests that kill connections, flush or stall the server start servers of their own
//! (they need `redis-server` on `PATH`); the others use the shared one.

mod support;

use std::time::Duration;

use hodor_core::Contract;
use hodor_core::watch::{EventKind, Item, Watch};
use hodor_redis as _;
use serde_json::json;
use support::{Mode, Proxy, Server};

const WAIT: Duration = Duration::from_secs(10);

fn next(w: &mut Watch) -> Item {
    w.recv_timeout(WAIT)
        .expect("the watch is open")
        .expect("an item within 10 s")
}

fn event(w: &mut Watch) -> (String, EventKind, u64) {
    match next(w) {
        Item::Event(e) => (e.key.to_string(), e.kind, e.seq),
        other => panic!("{other:?}"),
    }
}

fn open(url: &str, name: &str, extra: serde_json::Value) -> Contract {
    let mut config = json!({ "url": url, "timeout_ms": 500, "connect_timeout_ms": 500 });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    Contract::new("redis", name, Some(config)).unwrap()
}

fn private_server(test: &str) -> Option<Server> {
    let server = Server::start();
    if server.is_none() {
        support::skip(test, "redis-server could not be started from PATH");
    }
    server
}

#[test]
fn the_change_log_is_a_counter_and_a_stream_in_the_contracts_slot() {
    let Some(url) = support::url("the_change_log_layout") else {
        return;
    };
    let name = support::unique("layout");
    let c = open(&url, &name, json!({}));
    c.set("a", "1", None).unwrap();
    c.delete("a").unwrap();
    let mut raw = support::raw(&url);
    let seq: u64 = redis::cmd("GET")
        .arg(format!("hodor:{{{name}}}:s"))
        .query(&mut raw)
        .unwrap();
    assert_eq!(seq, 2);
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("hodor:{{{name}}}:w"))
        .arg("-")
        .arg("+")
        .query(&mut raw)
        .unwrap();
    let fields = |kind: &str| {
        vec![
            ("k".to_owned(), "a".to_owned()),
            ("t".to_owned(), kind.to_owned()),
        ]
    };
    assert_eq!(
        entries,
        [
            ("1-0".to_owned(), fields("p")),
            ("2-0".to_owned(), fields("d"))
        ]
    );
}

#[test]
fn a_watch_sees_the_writes_of_another_pool() {
    let Some(url) = support::url("a_watch_sees_the_writes_of_another_pool") else {
        return;
    };
    let name = support::unique("pools");
    let watcher = open(&url, &name, json!({}));
    // Another config is another pool: another connection, as another process would have.
    let writer = open(&url, &name, json!({ "pool_size": 3 }));
    let mut w = watcher.watch("").unwrap();
    writer.set("k", "v", None).unwrap();
    writer.set_many([("a", "1"), ("b", "2")], None).unwrap();
    writer.delete_many(&["a", "b", "missing"]).unwrap();
    let seen: Vec<(String, EventKind)> = (0..5)
        .map(|_| event(&mut w))
        .map(|(k, t, _)| (k, t))
        .collect();
    assert_eq!(
        seen,
        [
            ("k".to_owned(), EventKind::Put),
            ("a".to_owned(), EventKind::Put),
            ("b".to_owned(), EventKind::Put),
            ("a".to_owned(), EventKind::Delete),
            ("b".to_owned(), EventKind::Delete),
        ],
        "every change, in the order the scripts ran"
    );
}

#[test]
fn expiries_come_from_the_pruner_without_reads_or_writes() {
    let Some(url) = support::url("expiries_come_from_the_pruner") else {
        return;
    };
    let name = support::unique("expiry");
    let c = open(&url, &name, json!({ "prune_interval_ms": 50 }));
    let mut w = c.watch("").unwrap();
    c.set("short", "v", Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(event(&mut w).1, EventKind::Put);
    let (key, kind, _) = event(&mut w);
    assert_eq!((key.as_str(), kind), ("short", EventKind::Expired));
}

#[test]
fn a_reconnect_loses_nothing_the_log_still_holds() {
    let Some(server) = private_server("a_reconnect_loses_nothing") else {
        return;
    };
    let url = server.url();
    let name = support::unique("reconnect");
    let watcher = open(&url, &name, json!({}));
    let writer = open(&url, &name, json!({ "pool_size": 3 }));
    let mut w = watcher.watch("").unwrap();
    for i in 0..5 {
        writer.set(&format!("before/{i}"), "v", None).unwrap();
    }
    for _ in 0..5 {
        event(&mut w);
    }
    // Every client connection goes, the reader's included.
    let mut admin = support::raw(&url);
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut admin)
        .unwrap();
    for i in 0..5 {
        writer.set(&format!("after/{i}"), "v", None).unwrap();
    }
    for i in 0..5 {
        let (key, _, _) = event(&mut w);
        assert_eq!(
            key,
            format!("after/{i}"),
            "the changes made while the reader reconnected"
        );
    }
}

#[test]
fn a_gap_in_the_log_is_reported_as_lagged() {
    let Some(server) = private_server("a_gap_in_the_log_is_reported_as_lagged") else {
        return;
    };
    let proxy = Proxy::start(format!("127.0.0.1:{}", server.port), Mode::Forward);
    let name = support::unique("gap");
    let history = json!({ "watch_history": 10 });
    let watcher = open(&proxy.url(), &name, history.clone());
    let writer = open(&server.url(), &name, history);
    let mut w = watcher.watch("").unwrap();
    writer.set("first", "v", None).unwrap();
    assert_eq!(event(&mut w).0, "first");
    // The reader hears nothing while 300 changes go by; the log keeps about 10.
    proxy.set(Mode::Silent);
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..300 {
        writer.set(&format!("k{i:03}"), "v", None).unwrap();
    }
    proxy.set(Mode::Forward);
    match next(&mut w) {
        Item::Lagged { missed } => assert!(missed > 0, "{missed}"),
        other => panic!("a gap in the log must be Lagged, got {other:?}"),
    }
    // What follows is the log after the gap, in order, up to the last change.
    let mut last = String::new();
    while last != "k299" {
        last = event(&mut w).0;
    }
    writer.set("next", "v", None).unwrap();
    assert_eq!(event(&mut w).0, "next");
}

#[test]
fn a_log_that_went_backwards_is_lagged_and_followed_again() {
    let Some(server) = private_server("a_log_that_went_backwards") else {
        return;
    };
    let url = server.url();
    let name = support::unique("backwards");
    let c = open(&url, &name, json!({}));
    for i in 0..3 {
        c.set(&format!("early{i}"), "v", None).unwrap();
    }
    // Started after seq 3: once the log restarts, its new seqs 1, 2, ... are news all the
    // same.
    let mut w = c.watch("").unwrap();
    assert_eq!(w.started_after(), 3);
    for i in 0..3 {
        c.set(&format!("k{i}"), "v", None).unwrap();
    }
    for _ in 0..3 {
        event(&mut w);
    }
    // The server loses its data, as a restart without persistence would.
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut support::raw(&url))
        .unwrap();
    match next(&mut w) {
        Item::Lagged { missed } => assert_eq!(missed, 0, "how much was lost is unknown"),
        other => panic!("a log that went backwards must be Lagged, got {other:?}"),
    }
    c.set("again", "v", None).unwrap();
    let (key, _, seq) = event(&mut w);
    assert_eq!(
        (key.as_str(), seq),
        ("again", 1),
        "followed again from the new start"
    );
}

#[test]
fn watch_history_zero_counts_changes_without_logging_them() {
    let Some(url) = support::url("watch_history_zero") else {
        return;
    };
    let name = support::unique("nolog");
    let quiet = open(&url, &name, json!({ "watch_history": 0 }));
    assert!(!quiet.capabilities().watch);
    assert!(matches!(
        quiet.watch(""),
        Err(hodor_core::Error::Unsupported { .. })
    ));
    let watcher = open(&url, &name, json!({}));
    let mut w = watcher.watch("").unwrap();
    quiet.set("unlogged", "v", None).unwrap();
    watcher.set("logged", "v", None).unwrap();
    // The unlogged change is a gap before the logged one: resync, never a silent loss.
    match next(&mut w) {
        Item::Lagged { missed } => assert_eq!(missed, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(event(&mut w).0, "logged");
    let len: u64 = redis::cmd("XLEN")
        .arg(format!("hodor:{{{name}}}:w"))
        .query(&mut support::raw(&url))
        .unwrap();
    assert_eq!(len, 1);
}

#[test]
fn a_counter_behind_the_log_is_moved_past_it() {
    let Some(url) = support::url("a_counter_behind_the_log") else {
        return;
    };
    let name = support::unique("counter");
    let c = open(&url, &name, json!({}));
    let mut w = c.watch("").unwrap();
    for i in 0..3 {
        c.set(&format!("k{i}"), "v", None).unwrap();
    }
    for _ in 0..3 {
        event(&mut w);
    }
    let _: () = redis::cmd("DEL")
        .arg(format!("hodor:{{{name}}}:s"))
        .query(&mut support::raw(&url))
        .unwrap();
    // Not a restart: the log still ends at 3.
    let mut resumed = c.watch_from("", 3).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    c.set("after", "v", None).expect("a write still succeeds");
    for w in [&mut w, &mut resumed] {
        let (key, _, seq) = event(w);
        assert_eq!(
            (key.as_str(), seq),
            ("after", 4),
            "no Lagged, no seq reused"
        );
    }
}

#[test]
fn resuming_before_the_hubs_history_reads_the_servers_log() {
    let Some(url) = support::url("resuming_reads_the_servers_log") else {
        return;
    };
    let name = support::unique("backfill");
    // The process keeps 50 changes; the server's log, trimmed by whole nodes, keeps more.
    let c = open(&url, &name, json!({ "watch_history": 50 }));
    let mut keep = c.watch("").unwrap();
    for i in 0..70 {
        c.set(&format!("k{i:02}"), "v", None).unwrap();
    }
    let seen: Vec<u64> = (0..70).map(|_| event(&mut keep).2).collect();
    let mut resumed = c.watch_from("", seen[9]).unwrap();
    for (i, &expected) in seen.iter().enumerate().skip(10) {
        let (key, _, seq) = event(&mut resumed);
        assert_eq!((key, seq), (format!("k{i:02}"), expected));
    }
    assert_eq!(resumed.try_recv().unwrap(), None, "no duplicate, no extra");
    c.set("next", "v", None).unwrap();
    assert_eq!(event(&mut resumed).0, "next");
}

#[test]
fn a_synced_value_follows_writes_from_another_pool() {
    let Some(url) = support::url("a_synced_value_follows_writes_from_another_pool") else {
        return;
    };
    #[derive(serde::Deserialize, Debug, Clone, PartialEq)]
    struct Limits {
        rps: u32,
    }
    let name = support::unique("synced");
    let reader = open(&url, &name, json!({}));
    let writer = open(&url, &name, json!({ "pool_size": 3 }));
    writer.set("limits.json", r#"{"rps": 1}"#, None).unwrap();
    let (changes, changed) = std::sync::mpsc::channel();
    let synced = hodor_core::sync::Synced::<Limits>::builder(&reader, "limits.json")
        .debounce(Duration::ZERO)
        .on_change(move |old, new| {
            let _ = changes.send((old.map(|o| o.rps), new.rps));
        })
        .start()
        .unwrap();
    assert_eq!(changed.recv_timeout(WAIT).unwrap(), (None, 1));
    writer.set("limits.json", r#"{"rps": 2}"#, None).unwrap();
    assert_eq!(changed.recv_timeout(WAIT).unwrap(), (Some(1), 2));
    writer.set("limits.json", "{broken", None).unwrap();
    writer.set("limits.json", r#"{"rps": 3}"#, None).unwrap();
    assert_eq!(changed.recv_timeout(WAIT).unwrap(), (Some(2), 3));
    assert_eq!(synced.get().rps, 3);
}
