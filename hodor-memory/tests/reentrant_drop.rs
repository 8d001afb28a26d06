//! A stored value may run any code when it is dropped (`Bytes::from_owner` takes any owner),
//! including calls back into the same store. The store must never drop a value while it
//! holds one of its locks: such a `Drop` would deadlock, and on the sweeper thread it would
//! stop reclaim for every store in the process.
//!
//! Its own test binary: a regression would hang the sweeper thread, which every store of
//! the process shares.
//!
//! Every scenario runs on a plain store, a compressing one (which drops the value it was
//! given when it stores a compressed copy) and a persistent one (which logs each change
//! under the shard's lock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hodor_core::clock::ManualClock;
use hodor_core::{Bytes, Contract};
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, PersistConfig, open_with_clock};

/// What a `Reentrant` value holds: long and compressible, so a compressing store stores a
/// compressed copy of it.
static CONTENT: [u8; 2048] = [b'r'; 2048];

/// A value whose drop reads and writes the store it was stored in, then reports.
struct Reentrant {
    store: Arc<Mutex<Option<Contract>>>,
    key: String,
    dropped: mpsc::Sender<String>,
}

impl AsRef<[u8]> for Reentrant {
    fn as_ref(&self) -> &[u8] {
        &CONTENT
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        let store = self.store.lock().unwrap().clone();
        if let Some(c) = store {
            // The dropped key's own shard, the ordered index, the gauges, and a write.
            let _ = c.get(&self.key);
            let _ = c.exists(&self.key);
            let _ = c.list("");
            let _ = c.metrics();
            let _ = c.set("written-from-drop", "x", None);
            let _ = c.delete("written-from-drop");
            // A snapshot watch read-locks every shard; dropping a watch takes the hub.
            let _ = c.watch_snapshot("").map(drop);
        }
        let _ = self.dropped.send(self.key.clone());
    }
}

struct Scenario {
    contract: Contract,
    clock: ManualClock,
    handle: Arc<Mutex<Option<Contract>>>,
    dropped: mpsc::Sender<String>,
}

impl Scenario {
    fn value(&self, key: &str) -> Bytes {
        Bytes::from_owner(Reentrant {
            store: self.handle.clone(),
            key: key.to_owned(),
            dropped: self.dropped.clone(),
        })
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs `steps` on a plain, a compressing and a persistent store of `config`.
fn run(
    what: &str,
    config: MemoryConfig,
    expect: usize,
    steps: impl Fn(&Scenario) + Send + Sync + Copy + 'static,
) {
    run_on(what, config.clone(), expect, steps);
    let compressing = config.clone().compression(CompressionConfig::lz4(1));
    run_on(&format!("{what}, compressing"), compressing, expect, steps);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "reentrant-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let persistent = config.persist(PersistConfig::new(&dir).fsync(Fsync::Always));
    run_on(&format!("{what}, persistent"), persistent, expect, steps);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `steps` on a store of its own on another thread and waits for `expect` values to be
/// dropped. A deadlock shows as a timeout instead of a hung test.
fn run_on(
    what: &str,
    config: MemoryConfig,
    expect: usize,
    steps: impl FnOnce(&Scenario) + Send + 'static,
) {
    let clock = ManualClock::new();
    let name = format!("reentrant-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let contract = open_with_clock(&name, config, clock.clone().into()).unwrap();
    let handle = Arc::new(Mutex::new(Some(contract.clone())));
    let (dropped, seen) = mpsc::channel();
    let scenario = Scenario {
        contract,
        clock,
        handle: handle.clone(),
        dropped,
    };
    let (finished, done) = mpsc::channel();
    std::thread::spawn(move || {
        // Watched, so every change is also published under the store's locks.
        let _watch = scenario.contract.watch("").unwrap();
        steps(&scenario);
        let _ = finished.send(());
    });
    let limit = Duration::from_secs(10);
    for n in 0..expect {
        if let Err(e) = seen.recv_timeout(limit) {
            panic!(
                "{what}: value {n} of {expect} was not dropped within {limit:?} ({e}): a Drop that calls the store deadlocked"
            );
        }
    }
    if let Err(e) = done.recv_timeout(limit) {
        panic!("{what}: the operation did not finish within {limit:?} ({e}): deadlock");
    }
    // Break the cycle value -> contract -> store -> value.
    let contract = handle.lock().unwrap().take();
    drop(contract);
}

#[test]
fn overwriting_a_value_drops_it_outside_the_locks() {
    run("overwrite", MemoryConfig::default(), 1, |s| {
        s.contract.set("k", s.value("k"), None).unwrap();
        s.contract.set("k", "new", None).unwrap();
    });
    run(
        "overwrite of an expired entry",
        MemoryConfig::default(),
        1,
        |s| {
            s.contract
                .set("k", s.value("k"), Some(Duration::from_millis(1)))
                .unwrap();
            s.clock.advance(Duration::from_millis(1));
            s.contract.set("k", "new", None).unwrap();
        },
    );
}

#[test]
fn deleting_drops_outside_the_locks() {
    run("delete", MemoryConfig::default(), 1, |s| {
        s.contract.set("k", s.value("k"), None).unwrap();
        assert!(s.contract.delete("k").unwrap());
    });
}

#[test]
fn evicting_drops_outside_the_locks() {
    run("eviction", MemoryConfig::default().max_entries(1), 1, |s| {
        s.contract.set("k", s.value("k"), None).unwrap();
        s.contract.set("other", "v", None).unwrap();
    });
    run(
        "eviction of an expired entry",
        MemoryConfig::default().max_entries(1),
        1,
        |s| {
            s.contract
                .set("k", s.value("k"), Some(Duration::from_millis(1)))
                .unwrap();
            s.clock.advance(Duration::from_millis(1));
            s.contract.set("other", "v", None).unwrap();
        },
    );
}

#[test]
fn bulk_calls_drop_outside_the_locks() {
    run("set_many", MemoryConfig::default(), 2, |s| {
        s.contract
            .set_many([("a", s.value("a")), ("b", s.value("b"))], None)
            .unwrap();
        s.contract.set_many([("a", "1"), ("b", "2")], None).unwrap();
    });
    run("delete_many", MemoryConfig::default(), 2, |s| {
        s.contract
            .set_many([("a", s.value("a")), ("b", s.value("b"))], None)
            .unwrap();
        assert_eq!(s.contract.delete_many(&["a", "b"]).unwrap(), 2);
    });
    run(
        "set_many evicting",
        MemoryConfig::default().max_entries(2),
        2,
        |s| {
            s.contract
                .set_many([("a", s.value("a")), ("b", s.value("b"))], None)
                .unwrap();
            s.contract.set_many([("c", "1"), ("d", "2")], None).unwrap();
        },
    );
}

#[test]
fn the_sweeper_thread_drops_expired_values_outside_the_locks() {
    run(
        "background sweep",
        MemoryConfig::default().sweep_interval_ms(1),
        3,
        |s| {
            for k in ["a", "b", "c"] {
                s.contract
                    .set(k, s.value(k), Some(Duration::from_millis(5)))
                    .unwrap();
            }
            // Only the sweeper reclaims them: nothing here reads or writes again.
            s.clock.advance(Duration::from_millis(5));
        },
    );
    // The sweeper survived: it still reclaims for other stores.
    let clock = ManualClock::new();
    let c = open_with_clock(
        "reentrant-after",
        MemoryConfig::default().sweep_interval_ms(1),
        clock.clone().into(),
    )
    .unwrap();
    c.set("k", "v", Some(Duration::from_millis(1))).unwrap();
    clock.advance(Duration::from_millis(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.metrics().entries != Some(0) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.metrics().entries, Some(0), "the sweeper stopped");
}
