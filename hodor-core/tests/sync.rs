//! `Synced<T>` and `SyncedMap<T>`: their states and timing, step by step on a manual clock,
//! over a driver that watches and over one that must be polled.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hodor_core::clock::ManualClock;
use hodor_core::driver::{Driver, DriverError, DriverResult, Gauges};
use hodor_core::sync::{Status, Synced, SyncedMap};
use hodor_core::watch::{EventKind, Hub, HubConfig, Start, Watch, WatchRequest};
use hodor_core::{Bytes, Capabilities, Contract, Error, Metadata, Version};

/// What a test driver shares with its test.
#[derive(Default)]
struct Knobs {
    /// Reads fail (a backend that is down).
    fail_reads: AtomicBool,
    /// Writes publish no events (events lost on the way).
    mute: AtomicBool,
    gets: AtomicUsize,
    stats: AtomicUsize,
    /// Runs inside the next `get`, after the value was read.
    after_next_get: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// A map of entries, each with the number of the write that made it (its version, and its
/// `modified` time in nanoseconds, so every write changes its metadata).
#[derive(Default)]
struct Entries {
    map: BTreeMap<String, (Bytes, u64)>,
    writes: u64,
}

/// A store in a map, watched through a hub of its own (`watch: true`), or not watched at
/// all (`watch: false`, so `Synced` polls it).
struct TestDriver {
    inner: Mutex<Entries>,
    hub: Option<Arc<Hub>>,
    knobs: Arc<Knobs>,
}

impl std::fmt::Debug for TestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestDriver")
    }
}

impl TestDriver {
    fn publish(&self, key: &str, kind: EventKind) {
        if self.knobs.mute.load(Ordering::Acquire) {
            return;
        }
        if let Some(hub) = &self.hub {
            hub.publish(key, kind);
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_fails(&self) -> DriverResult<()> {
        if self.knobs.fail_reads.load(Ordering::Acquire) {
            return Err(DriverError::backend("the test backend is down"));
        }
        Ok(())
    }
}

impl Driver for TestDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.watch(self.hub.is_some())
    }
    fn set(&self, key: &str, value: Bytes, _ttl: Option<Duration>) -> DriverResult<()> {
        let mut entries = self.entries();
        entries.writes += 1;
        let version = entries.writes;
        entries.map.insert(key.to_owned(), (value, version));
        // Under the lock, so a key's events are in the order of its writes.
        self.publish(key, EventKind::Put);
        Ok(())
    }
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        self.knobs.gets.fetch_add(1, Ordering::Relaxed);
        self.read_fails()?;
        let value = self.entries().map.get(key).map(|(v, _)| v.clone());
        let hook = self.knobs.after_next_get.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(value)
    }
    fn delete(&self, key: &str) -> DriverResult<bool> {
        let mut entries = self.entries();
        let removed = entries.map.remove(key).is_some();
        if removed {
            self.publish(key, EventKind::Delete);
        }
        Ok(removed)
    }
    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        self.read_fails()?;
        Ok(self.list_now(prefix))
    }
    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        self.knobs.stats.fetch_add(1, Ordering::Relaxed);
        self.read_fails()?;
        Ok(self.entries().map.get(key).map(|(value, n)| {
            let modified = SystemTime::UNIX_EPOCH + Duration::from_nanos(*n);
            Metadata::new(
                value.len() as u64,
                modified,
                None,
                Version::from_raw(u128::from(*n)),
            )
        }))
    }
    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        self.knobs.gets.fetch_add(keys.len(), Ordering::Relaxed);
        self.read_fails()?;
        let entries = self.entries();
        Ok(keys
            .iter()
            .map(|k| entries.map.get(*k).map(|(v, _)| v.clone()))
            .collect())
    }
    fn close(&self) -> DriverResult<()> {
        if let Some(hub) = &self.hub {
            hub.close();
        }
        Ok(())
    }
    fn gauges(&self) -> Gauges {
        let mut g = Gauges::default();
        g.watches = self.hub.as_ref().map(|h| h.watch_count());
        g
    }
    fn watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        let Some(hub) = &self.hub else {
            return Err(DriverError::unsupported("watch"));
        };
        match request.start {
            Start::Snapshot => {
                // The list and the subscription under the store's lock: one moment.
                let entries = self.entries();
                let keys = list_in(&entries, request.prefix);
                let watch = hub.subscribe_now(request)?;
                drop(entries);
                Ok(watch.with_snapshot(keys))
            }
            Start::After(seq) => hub.subscribe(request, seq),
            _ => hub.subscribe_now(request),
        }
    }
}

impl TestDriver {
    fn list_now(&self, prefix: &str) -> Vec<String> {
        list_in(&self.entries(), prefix)
    }
}

fn list_in(entries: &Entries, prefix: &str) -> Vec<String> {
    entries
        .map
        .range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, _)| k.clone())
        .collect()
}

struct Fixture {
    store: Contract,
    clock: ManualClock,
    knobs: Arc<Knobs>,
    hub: Option<Arc<Hub>>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn fixture(watch: bool) -> Fixture {
    let name = format!(
        "sync-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let knobs = Arc::new(Knobs::default());
    let hub = watch.then(|| Arc::new(Hub::new("test", &name, HubConfig::new())));
    let driver = TestDriver {
        inner: Mutex::default(),
        hub: hub.clone(),
        knobs: knobs.clone(),
    };
    Fixture {
        store: Contract::from_driver("test", &name, driver).unwrap(),
        clock: ManualClock::new(),
        knobs,
        hub,
    }
}

#[derive(serde::Deserialize, Debug, Clone, PartialEq)]
struct Config {
    rps: u32,
}

type Calls = Arc<Mutex<Vec<(Option<u32>, u32)>>>;
type Errors = Arc<Mutex<Vec<String>>>;

fn json(rps: u32) -> String {
    format!(r#"{{"rps": {rps}}}"#)
}

impl Fixture {
    /// A `Synced<Config>` on "app.json" with the default debounce, recording its calls.
    fn synced(&self) -> (Synced<Config>, Calls, Errors) {
        self.synced_with(|b| b)
    }

    fn synced_with(
        &self,
        adjust: impl FnOnce(
            hodor_core::sync::SyncedBuilder<Config>,
        ) -> hodor_core::sync::SyncedBuilder<Config>,
    ) -> (Synced<Config>, Calls, Errors) {
        let calls: Calls = Arc::default();
        let errors: Errors = Arc::default();
        let (c, e) = (calls.clone(), errors.clone());
        let builder = Synced::<Config>::builder(&self.store, "app.json")
            .clock(self.clock.clone().into())
            .on_change(move |old, new| c.lock().unwrap().push((old.map(|o| o.rps), new.rps)))
            .on_error(move |err| e.lock().unwrap().push(err.to_string()));
        let synced = adjust(builder).start().unwrap();
        synced.settle();
        (synced, calls, errors)
    }

    fn set(&self, rps: u32) {
        self.store.set("app.json", json(rps), None).unwrap();
    }

    fn set_raw(&self, raw: &str) {
        self.store.set("app.json", raw.to_owned(), None).unwrap();
    }

    fn pass(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }
}

fn taken<T: Clone>(v: &Arc<Mutex<Vec<T>>>) -> Vec<T> {
    std::mem::take(&mut *v.lock().unwrap())
}

#[test]
fn start_reads_the_value_and_calls_back_once_with_no_old_value() {
    for watch in [true, false] {
        let f = fixture(watch);
        f.set(10);
        let (synced, calls, errors) = f.synced();
        assert_eq!(synced.get().rps, 10);
        assert!(synced.status().is_current());
        assert_eq!(taken(&calls), [(None, 10)]);
        assert!(taken(&errors).is_empty());
    }
}

#[test]
fn a_change_calls_back_with_old_and_new_once_the_debounce_has_passed() {
    let f = fixture(true);
    f.set(10);
    let (synced, calls, _) = f.synced();
    taken(&calls);
    f.set(20);
    synced.settle();
    assert!(taken(&calls).is_empty(), "not before the debounce");
    f.pass(99);
    synced.settle();
    assert!(taken(&calls).is_empty(), "99 ms of a 100 ms debounce");
    assert_eq!(synced.get().rps, 10);
    f.pass(1);
    synced.settle();
    assert_eq!(taken(&calls), [(Some(10), 20)]);
    assert_eq!(synced.get().rps, 20);
}

#[test]
fn a_burst_is_read_once_after_its_last_change() {
    let f = fixture(true);
    f.set(10);
    let (synced, calls, _) = f.synced();
    taken(&calls);
    f.set(20);
    synced.settle();
    f.pass(60);
    f.set(30);
    synced.settle();
    f.pass(60);
    synced.settle();
    assert!(
        taken(&calls).is_empty(),
        "60 ms after the last change of the burst"
    );
    f.pass(40);
    synced.settle();
    assert_eq!(taken(&calls), [(Some(10), 30)], "one call for the burst");
}

#[test]
fn a_key_written_without_pause_is_still_followed_every_second() {
    let f = fixture(true);
    f.set(0);
    let (synced, calls, _) = f.synced();
    taken(&calls);
    for i in 1..=20 {
        f.set(i);
        synced.settle();
        f.pass(50);
        synced.settle();
    }
    // Written every 50 ms for a second: the debounce never ran out, the cap did.
    assert_eq!(taken(&calls), [(Some(0), 20)]);
}

#[test]
fn a_debounce_over_a_second_is_cut_to_one() {
    let f = fixture(true);
    f.set(1);
    let (synced, calls, _) = f.synced_with(|b| b.debounce(Duration::from_secs(30)));
    taken(&calls);
    f.set(2);
    synced.settle();
    f.pass(999);
    synced.settle();
    assert!(taken(&calls).is_empty());
    f.pass(1);
    synced.settle();
    assert_eq!(taken(&calls), [(Some(1), 2)]);
}

#[test]
fn invalid_json_keeps_the_last_good_value_and_each_error_is_reported_once() {
    let f = fixture(true);
    f.set(10);
    let (synced, calls, errors) = f.synced_with(|b| b.debounce(Duration::ZERO));
    taken(&calls);
    let t0 = f.clock.now();
    f.set_raw("not json");
    synced.settle();
    assert_eq!(synced.get().rps, 10, "the last good value is kept");
    let Status::Stale { error, since } = synced.status() else {
        panic!("{:?}", synced.status())
    };
    assert_eq!(since, t0);
    assert!(matches!(*error, Error::InvalidInput { .. }), "{error}");
    assert!(error.to_string().contains("not JSON"), "{error}");
    f.pass(10);
    f.set_raw("not json either");
    synced.settle();
    let Status::Stale { since, .. } = synced.status() else {
        panic!()
    };
    assert_eq!(since, t0, "stale since the first bad value");
    let reported = taken(&errors);
    assert_eq!(
        reported.len(),
        1,
        "the same error is reported once: {reported:?}"
    );
    assert!(taken(&calls).is_empty());
    f.set(30);
    synced.settle();
    assert_eq!(taken(&calls), [(Some(10), 30)], "(last good, new)");
    assert!(synced.status().is_current());
    f.set_raw("not json");
    synced.settle();
    assert_eq!(
        taken(&errors).len(),
        1,
        "after a good value, the error is news again"
    );
}

#[test]
fn a_value_that_fails_validation_is_stale_with_its_reason() {
    let f = fixture(true);
    f.set(10);
    let (synced, calls, errors) = f.synced_with(|b| {
        b.debounce(Duration::ZERO).validate(|c: &Config| {
            if c.rps > 0 {
                Ok(())
            } else {
                Err("rps must be positive".to_owned())
            }
        })
    });
    taken(&calls);
    f.set(0);
    synced.settle();
    assert_eq!(synced.get().rps, 10);
    assert!(synced.status().is_stale());
    let reported = taken(&errors);
    assert_eq!(reported.len(), 1);
    assert!(reported[0].contains("rps must be positive"), "{reported:?}");
    assert!(taken(&calls).is_empty());
}

#[test]
fn unchanged_bytes_do_not_call_back() {
    for watch in [true, false] {
        let f = fixture(watch);
        f.set(10);
        let (synced, calls, _) = f.synced_with(|b| {
            b.debounce(Duration::ZERO)
                .poll_interval(Duration::from_secs(1))
        });
        taken(&calls);
        f.set(10);
        synced.settle();
        f.pass(1000);
        synced.settle();
        assert!(taken(&calls).is_empty(), "watch: {watch}");
    }
}

#[test]
fn a_delete_keeps_the_value_as_missing_and_recreation_calls_back() {
    for watch in [true, false] {
        let f = fixture(watch);
        f.set(10);
        let (synced, calls, errors) = f.synced_with(|b| {
            b.debounce(Duration::ZERO)
                .poll_interval(Duration::from_secs(1))
        });
        taken(&calls);
        f.store.delete("app.json").unwrap();
        synced.settle();
        f.pass(1000);
        synced.settle();
        assert_eq!(synced.get().rps, 10);
        assert!(
            synced.status().is_missing(),
            "watch {watch}: {:?}",
            synced.status()
        );
        assert!(
            taken(&errors).is_empty(),
            "a delete is a status, not an error"
        );
        f.set(10);
        synced.settle();
        f.pass(1000);
        synced.settle();
        assert_eq!(
            taken(&calls),
            [(Some(10), 10)],
            "watch {watch}: re-creation calls back"
        );
        assert!(synced.status().is_current());
    }
}

#[test]
fn missing_or_invalid_at_start_is_an_error_unless_a_default_is_given() {
    for watch in [true, false] {
        let f = fixture(watch);
        let start = || {
            Synced::<Config>::builder(&f.store, "app.json")
                .clock(f.clock.clone().into())
                .debounce(Duration::ZERO)
        };
        let e = start().start().unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        let synced = start().default_value(Config { rps: 7 }).start().unwrap();
        assert_eq!(synced.get().rps, 7);
        assert!(synced.status().is_missing());
        f.set_raw("{");
        let e = start().start().unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
        let synced = start().default_value(Config { rps: 7 }).start().unwrap();
        assert!(synced.status().is_stale());
        f.set(9);
        synced.settle();
        f.pass(1000);
        synced.settle();
        assert_eq!(
            synced.get().rps,
            9,
            "watch {watch}: the first good value replaces the default"
        );
    }
}

#[test]
fn a_panicking_callback_is_reported_and_the_next_change_is_followed() {
    let f = fixture(true);
    f.set(1);
    let errors: Errors = Arc::default();
    let e = errors.clone();
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let synced = Synced::<Config>::builder(&f.store, "app.json")
        .clock(f.clock.clone().into())
        .debounce(Duration::ZERO)
        .on_change(move |old, new| {
            if new.rps == 2 {
                panic!("the callback cannot handle 2");
            }
            c.lock().unwrap().push((old.map(|o| o.rps), new.rps));
        })
        .on_error(move |err| e.lock().unwrap().push(err.to_string()))
        .start()
        .unwrap();
    synced.settle();
    f.set(2);
    synced.settle();
    assert_eq!(
        synced.get().rps,
        2,
        "the value is applied even though its callback panicked"
    );
    let reported = taken(&errors);
    assert_eq!(reported.len(), 1);
    assert!(reported[0].contains("cannot handle 2"), "{reported:?}");
    f.set(3);
    synced.settle();
    assert_eq!(taken(&calls), [(None, 1), (Some(2), 3)]);
}

#[test]
fn lagged_reads_the_key_again() {
    let f = fixture(true);
    f.set(1);
    let (synced, calls, _) = f.synced_with(|b| b.debounce(Duration::ZERO));
    taken(&calls);
    // A change whose event is lost, then the hub says events were lost.
    let hub = f.hub.clone().unwrap();
    f.knobs.mute.store(true, Ordering::Release);
    f.set(5);
    hub.lag(1);
    synced.settle();
    assert_eq!(taken(&calls), [(Some(1), 5)]);
}

#[test]
fn a_failed_read_is_stale_once_and_retried_after_the_poll_interval() {
    let f = fixture(true);
    f.set(1);
    let (synced, calls, errors) = f.synced_with(|b| {
        b.debounce(Duration::ZERO)
            .poll_interval(Duration::from_millis(500))
    });
    taken(&calls);
    f.knobs.fail_reads.store(true, Ordering::Release);
    f.set(2);
    synced.settle();
    assert!(synced.status().is_stale());
    assert_eq!(synced.get().rps, 1);
    let gets = f.knobs.gets.load(Ordering::Relaxed);
    f.pass(499);
    synced.settle();
    assert_eq!(
        f.knobs.gets.load(Ordering::Relaxed),
        gets,
        "no retry before the interval"
    );
    f.pass(1);
    synced.settle();
    assert_eq!(f.knobs.gets.load(Ordering::Relaxed), gets + 1, "one retry");
    assert_eq!(taken(&errors).len(), 1, "the same failure is reported once");
    f.knobs.fail_reads.store(false, Ordering::Release);
    f.pass(500);
    synced.settle();
    assert_eq!(taken(&calls), [(Some(1), 2)]);
    assert!(synced.status().is_current());
}

#[test]
fn a_change_between_subscribing_and_reading_is_not_missed() {
    let f = fixture(true);
    f.set(1);
    // The first read returns 1; right after it, before start returns, the key becomes 2.
    let store = f.store.clone();
    *f.knobs.after_next_get.lock().unwrap() = Some(Box::new(move || {
        store.set("app.json", json(2), None).unwrap();
    }));
    let (synced, calls, _) = f.synced_with(|b| b.debounce(Duration::ZERO));
    synced.settle();
    assert_eq!(taken(&calls), [(None, 1), (Some(1), 2)]);
    assert_eq!(synced.get().rps, 2);
}

#[test]
fn callbacks_run_on_one_thread_in_order() {
    let f = fixture(true);
    f.set(0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let synced = Synced::<Config>::builder(&f.store, "app.json")
        .clock(f.clock.clone().into())
        .debounce(Duration::ZERO)
        .on_change(move |_, new| {
            s.lock()
                .unwrap()
                .push((std::thread::current().id(), new.rps))
        })
        .start()
        .unwrap();
    for i in 1..=20 {
        f.set(i);
        synced.settle();
    }
    let seen = taken(&seen);
    assert_eq!(
        seen.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        (0..=20).collect::<Vec<_>>()
    );
    assert!(seen.iter().all(|(t, _)| *t == seen[0].0), "one thread");
    assert_ne!(seen[0].0, std::thread::current().id());
}

#[test]
fn a_driver_without_watch_is_polled_by_stat_then_value() {
    let f = fixture(false);
    f.set(1);
    let (synced, calls, _) = f.synced_with(|b| {
        b.debounce(Duration::ZERO)
            .poll_interval(Duration::from_millis(250))
    });
    taken(&calls);
    f.set(2);
    synced.settle();
    assert!(taken(&calls).is_empty(), "not before the poll");
    f.pass(250);
    synced.settle();
    assert_eq!(taken(&calls), [(Some(1), 2)]);
    // Unchanged metadata: a stat, no read of the value.
    let (gets, stats) = (
        f.knobs.gets.load(Ordering::Relaxed),
        f.knobs.stats.load(Ordering::Relaxed),
    );
    f.pass(250);
    synced.settle();
    assert_eq!(f.knobs.stats.load(Ordering::Relaxed), stats + 1);
    assert_eq!(
        f.knobs.gets.load(Ordering::Relaxed),
        gets,
        "the value is read only when stat changed"
    );
}

#[test]
fn closing_the_contract_ends_following_and_keeps_the_value() {
    let f = fixture(true);
    f.set(1);
    let (synced, _, errors) = f.synced();
    f.store.close().unwrap();
    synced.settle();
    assert_eq!(synced.get().rps, 1);
    let reported = taken(&errors);
    assert_eq!(reported.len(), 1);
    assert!(reported[0].contains("closed"), "{reported:?}");
}

type MapCalls = Arc<Mutex<Vec<(String, Option<bool>, Option<bool>)>>>;

fn map(f: &Fixture) -> (SyncedMap<bool>, MapCalls, Errors) {
    let calls: MapCalls = Arc::default();
    let errors: Errors = Arc::default();
    let (c, e) = (calls.clone(), errors.clone());
    let flags = SyncedMap::<bool>::builder(&f.store, "flag/")
        .clock(f.clock.clone().into())
        .debounce(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(100))
        .on_change(move |k, old, new| {
            c.lock()
                .unwrap()
                .push((k.to_owned(), old.copied(), new.copied()));
        })
        .on_error(move |err| e.lock().unwrap().push(err.to_string()))
        .start()
        .unwrap();
    flags.settle();
    (flags, calls, errors)
}

#[test]
fn a_synced_map_follows_every_key_under_its_prefix() {
    for watch in [true, false] {
        let f = fixture(watch);
        f.store.set("flag/a", "true", None).unwrap();
        f.store.set("flag/b", "oops", None).unwrap();
        f.store.set("other", "true", None).unwrap();
        let (flags, calls, errors) = map(&f);
        let calls_now = taken(&calls);
        assert_eq!(calls_now, [("flag/a".to_owned(), None, Some(true))]);
        assert_eq!(taken(&errors).len(), 1, "flag/b is invalid");
        assert!(flags.status("flag/b").unwrap().is_stale());
        assert_eq!(flags.get("flag/b"), None);
        assert_eq!(flags.snapshot().len(), 1);
        f.store.set("flag/a", "false", None).unwrap();
        f.store.set("flag/b", "true", None).unwrap();
        f.store.set("flag/c", "true", None).unwrap();
        f.store.set("other", "false", None).unwrap();
        flags.settle();
        f.pass(100);
        flags.settle();
        let mut got = taken(&calls);
        got.sort();
        assert_eq!(
            got,
            [
                ("flag/a".to_owned(), Some(true), Some(false)),
                ("flag/b".to_owned(), None, Some(true)),
                ("flag/c".to_owned(), None, Some(true)),
            ],
            "watch {watch}"
        );
        f.store.delete("flag/c").unwrap();
        flags.settle();
        f.pass(100);
        flags.settle();
        assert_eq!(taken(&calls), [("flag/c".to_owned(), Some(true), None)]);
        assert_eq!(flags.get("flag/c"), None);
        assert!(flags.status("flag/b").unwrap().is_current());
        assert_eq!(flags.snapshot().len(), 2);
    }
}

#[test]
fn a_synced_map_reads_everything_again_after_lagged() {
    let f = fixture(true);
    f.store.set("flag/a", "true", None).unwrap();
    let (flags, calls, _) = map(&f);
    taken(&calls);
    let hub = f.hub.clone().unwrap();
    f.knobs.mute.store(true, Ordering::Release);
    f.store.set("flag/b", "true", None).unwrap();
    f.store.delete("flag/a").unwrap();
    hub.lag(2);
    flags.settle();
    f.pass(100);
    flags.settle();
    let mut got = taken(&calls);
    got.sort();
    assert_eq!(
        got,
        [
            ("flag/a".to_owned(), Some(true), None),
            ("flag/b".to_owned(), None, Some(true)),
        ]
    );
}

#[test]
fn on_error_sees_the_stale_status_it_reports() {
    let f = fixture(true);
    f.set(1);
    let slot: Arc<Mutex<Option<Arc<Synced<Config>>>>> = Arc::default();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let (s, seen) = (slot.clone(), statuses.clone());
    let synced = Arc::new(
        Synced::<Config>::builder(&f.store, "app.json")
            .clock(f.clock.clone().into())
            .debounce(Duration::ZERO)
            .on_error(move |_| {
                let synced = s.lock().unwrap().clone();
                if let Some(synced) = synced {
                    seen.lock().unwrap().push(synced.status().is_stale());
                }
            })
            .start()
            .unwrap(),
    );
    *slot.lock().unwrap() = Some(synced.clone());
    synced.settle();
    f.set_raw("not json");
    synced.settle();
    assert_eq!(
        *statuses.lock().unwrap(),
        [true],
        "an on_error that reads the status sees the error it reports"
    );
    // Break the cycle synced -> callback -> slot -> synced.
    slot.lock().unwrap().take();
}

#[test]
fn errors_at_start_are_reported_from_the_thread() {
    let f = fixture(true);
    f.set_raw("{");
    let threads = Arc::new(Mutex::new(Vec::new()));
    let t = threads.clone();
    let synced = Synced::<Config>::builder(&f.store, "app.json")
        .clock(f.clock.clone().into())
        .default_value(Config { rps: 1 })
        .on_error(move |_| t.lock().unwrap().push(std::thread::current().id()))
        .start()
        .unwrap();
    synced.settle();
    let threads = threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 1);
    assert_ne!(
        threads[0],
        std::thread::current().id(),
        "not on the caller's thread"
    );
}
