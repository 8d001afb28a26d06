//! What the memory driver promises beyond the conformance suite's watch rules: events in
//! `seq` order over the whole store, expiry events from the background sweeper within its
//! bound, eviction events from CLOCK, and snapshots that never see part of a batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hodor_core::clock::ManualClock;
use hodor_core::watch::{EventKind, Item, Watch, WatchOptions};
use hodor_core::{Contract, Error};
use hodor_memory::{MemoryConfig, open, open_with_clock};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn name(what: &str) -> String {
    format!("watch-{what}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn event(w: &mut Watch) -> (String, EventKind, u64) {
    match w.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(Item::Event(e))) => (e.key.to_string(), e.kind, e.seq),
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_arrive_in_seq_order_over_the_whole_store() {
    const THREADS: usize = 4;
    const WRITES: usize = 2000;
    let c = open(&name("order"), MemoryConfig::default()).unwrap();
    let mut w = c
        .watch_with("", WatchOptions::new().buffer(1 << 20))
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let c = c.clone();
            scope.spawn(move || {
                for i in 0..WRITES {
                    c.set(&format!("t{t}/{i}"), "v", None).unwrap();
                }
            });
        }
    });
    let seqs: Vec<u64> = (0..THREADS * WRITES).map(|_| event(&mut w).2).collect();
    assert!(
        seqs.windows(2).all(|p| p[1] == p[0] + 1),
        "while watched, seqs are consecutive and delivered in order across every shard"
    );
}

#[test]
fn the_sweeper_reports_expiries_within_its_bound() {
    let c = open(
        &name("sweeper"),
        MemoryConfig::default().sweep_interval_ms(10),
    )
    .unwrap();
    let mut w = c.watch("").unwrap();
    let ttl = Duration::from_millis(30);
    let set_at = Instant::now();
    c.set("short", "v", Some(ttl)).unwrap();
    assert_eq!(event(&mut w).1, EventKind::Put);
    // Nobody reads or writes: the background sweep reclaims it and says so.
    let (key, kind, _) = event(&mut w);
    assert_eq!((key.as_str(), kind), ("short", EventKind::Expired));
    assert!(set_at.elapsed() >= ttl, "not before the deadline");
}

#[test]
fn clock_evictions_are_evicted_events_and_expired_entries_are_expired_ones() {
    let clock = ManualClock::new();
    let c = open_with_clock(
        &name("evict"),
        MemoryConfig::default().max_entries(4),
        clock.clone().into(),
    )
    .unwrap();
    let mut w = c.watch("").unwrap();
    c.set("ttl", "v", Some(Duration::from_secs(1))).unwrap();
    for i in 0..3 {
        c.set(&format!("k{i}"), "v", None).unwrap();
    }
    clock.advance(Duration::from_secs(1));
    // Room for two more: the expired entry goes first, then one CLOCK victim.
    c.set("k3", "v", None).unwrap();
    c.set("k4", "v", None).unwrap();
    let seen: Vec<(String, EventKind)> = (0..8)
        .map(|_| event(&mut w))
        .map(|(k, t, _)| (k, t))
        .collect();
    let removals: Vec<&(String, EventKind)> =
        seen.iter().filter(|(_, t)| *t != EventKind::Put).collect();
    assert_eq!(removals.len(), 2, "{seen:?}");
    assert_eq!(removals[0], &("ttl".to_owned(), EventKind::Expired));
    let (victim, kind) = removals[1];
    assert_eq!(*kind, EventKind::Evicted);
    assert!(!c.exists(victim).unwrap(), "{victim} was reported evicted");
    let m = c.metrics();
    assert_eq!((m.evictions, m.expirations), (Some(1), Some(1)));
}

#[test]
fn a_snapshot_never_sees_part_of_a_batch() {
    let c = open(&name("batch"), MemoryConfig::default()).unwrap();
    let keys: Vec<String> = (0..64).map(|i| format!("b/{i:02}")).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = c.clone();
        let (keys, stop) = (&keys, &stop);
        scope.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                writer
                    .set_many(keys.iter().map(|k| (k.as_str(), "v")), None)
                    .unwrap();
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                writer.delete_many(&refs).unwrap();
            }
        });
        for _ in 0..200 {
            let (snapshot, _) = c.watch_snapshot("b/").unwrap();
            assert!(
                snapshot.keys.is_empty() || snapshot.keys.len() == keys.len(),
                "a snapshot holds {} of a {}-key batch",
                snapshot.keys.len(),
                keys.len()
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
fn the_last_close_of_the_store_ends_a_drivers_own_watches() {
    // Watches started on a driver directly (not through a Contract) end with the store.
    let name = name("direct");
    let driver =
        hodor_memory::MemoryDriver::open(&name, MemoryConfig::default(), Default::default())
            .unwrap();
    let request = hodor_core::watch::WatchRequest::new("", WatchOptions::new());
    let mut w = hodor_core::Driver::watch(&driver, &request).unwrap();
    hodor_core::Driver::close(&driver).unwrap();
    assert!(matches!(w.recv(), Err(Error::Closed { .. })));
    let reopened: Contract = open(&name, MemoryConfig::default()).unwrap();
    assert_eq!(reopened.metrics().watches, Some(0));
}

/// A persistent store publishes what it logs, and its numbering survives a restart: the
/// recovered history is not replayed as new events, and a `seq` from before the restart is
/// `Compacted` (resync), never taken for an event of the new opening.
#[test]
fn a_persistent_store_numbers_its_events_past_every_earlier_opening() {
    use hodor_memory::{Fsync, PersistConfig};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name("persist"));
    let _ = std::fs::remove_dir_all(&dir);
    let config = MemoryConfig::default().persist(PersistConfig::new(&dir).fsync(Fsync::Always));
    let store = name("persist");
    let c = open(&store, config.clone()).unwrap();
    let mut w = c
        .watch_with("", WatchOptions::new().buffer(1 << 10))
        .unwrap();
    c.set("a", "1", None).unwrap();
    c.set_many([("b", "1"), ("c", "1")], None).unwrap();
    assert!(c.delete("a").unwrap());
    assert_eq!(c.delete_many(&["b", "missing"]).unwrap(), 1);
    assert!(c.create("d", "1", None).unwrap());
    assert_eq!(c.increment("n", 2).unwrap(), 2);
    let seen: Vec<_> = (0..7).map(|_| event(&mut w)).collect();
    let kinds: Vec<(&str, EventKind)> = seen.iter().map(|(k, e, _)| (k.as_str(), *e)).collect();
    assert_eq!(
        kinds,
        [
            ("a", EventKind::Put),
            ("b", EventKind::Put),
            ("c", EventKind::Put),
            ("a", EventKind::Delete),
            ("b", EventKind::Delete),
            ("d", EventKind::Put),
            ("n", EventKind::Put),
        ],
        "every change the log records is an event, in order"
    );
    let last_before = seen.last().map(|e| e.2).unwrap();
    drop(w);
    c.close().unwrap();

    let again = open(&store, config).unwrap();
    assert_eq!(again.get("c").unwrap(), "1", "the data was recovered");
    let mut fresh = again.watch("").unwrap();
    assert!(
        matches!(fresh.recv_timeout(Duration::from_millis(200)), Ok(None)),
        "recovery publishes nothing"
    );
    let e = again.watch_from("", last_before).unwrap_err();
    assert!(matches!(e, Error::Compacted { .. }), "{e:?}");
    again.set("e", "1", None).unwrap();
    let (key, _, seq) = event(&mut fresh);
    assert_eq!(key, "e");
    assert!(
        seq > last_before,
        "the new opening's seq {seq} is past the old one's {last_before}"
    );
    drop(fresh);
    again.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
