//! The limit cases against a small reference driver that enforces `max_bytes` and
//! `max_entries`: it passes the whole suite (so the limit cases ask for something a driver
//! can do), and each way of getting limits wrong fails them.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use hodor_core::clock::{Clock, ManualClock};
use hodor_core::driver::{Driver, DriverError, DriverResult, Gauges};
use hodor_core::{Bytes, Capabilities, Contract, Metadata, Result};
use hodor_testkit::{Harness, Limits, TestClock, run_suite};

/// How the driver handles its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// Expired entries first, then the oldest write.
    Correct,
    /// Claims limits, enforces none.
    Ignored,
    /// Evicts the oldest write even when expired entries could make room.
    LiveBeforeExpired,
    /// Makes room for a value before finding that it can never fit.
    EvictsBeforeRefusing,
}

struct Entry {
    value: Bytes,
    modified: SystemTime,
    expires: Option<SystemTime>,
    /// Write order, for evicting the oldest.
    seq: u64,
}

impl Entry {
    fn live(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

#[derive(Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    bytes: u64,
    seq: u64,
    evictions: u64,
    expirations: u64,
}

struct Store {
    limits: Limits,
    policy: Policy,
    clock: Clock,
    state: Mutex<State>,
}

fn cost(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

impl State {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.bytes -= cost(key, &entry.value);
        Some(entry)
    }

    fn over(&self, limits: Limits) -> bool {
        limits.max_bytes.is_some_and(|max| self.bytes > max)
            || limits
                .max_entries
                .is_some_and(|max| self.entries.len() as u64 > max)
    }

    fn oldest_except(&self, key: &str) -> Option<String> {
        self.entries
            .iter()
            .filter(|(k, _)| *k != key)
            .min_by_key(|(_, e)| e.seq)
            .map(|(k, _)| k.clone())
    }
}

impl Store {
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        let now = self.clock.now();
        let mut s = self.state.lock().unwrap();
        let too_big = self
            .limits
            .max_bytes
            .is_some_and(|max| cost(key, &value) > max);
        if too_big && self.policy != Policy::EvictsBeforeRefusing {
            return Err(DriverError::CapacityExceeded(
                "the value is larger than max_bytes".to_owned(),
            ));
        }
        s.remove(key);
        s.seq += 1;
        s.bytes += cost(key, &value);
        let entry = Entry {
            value,
            modified: now,
            expires: ttl.map(|d| now + d),
            seq: s.seq,
        };
        s.entries.insert(key.to_owned(), entry);
        if self.policy == Policy::Ignored {
            return Ok(());
        }
        if s.over(self.limits) && self.policy != Policy::LiveBeforeExpired {
            let expired: Vec<String> = s
                .entries
                .iter()
                .filter(|(_, e)| !e.live(now))
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                s.remove(&k);
                s.expirations += 1;
            }
        }
        while s.over(self.limits) {
            let Some(oldest) = s.oldest_except(key) else {
                break;
            };
            s.remove(&oldest);
            s.evictions += 1;
        }
        if too_big {
            s.remove(key);
            return Err(DriverError::CapacityExceeded(
                "the value is larger than max_bytes".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Open stores by name, with their handle counts.
type Open = Mutex<HashMap<String, (Arc<Store>, usize)>>;

fn open_stores() -> &'static Open {
    static STORES: OnceLock<Open> = OnceLock::new();
    STORES.get_or_init(Open::default)
}

struct LimitedDriver {
    name: String,
    store: Arc<Store>,
}

impl std::fmt::Debug for LimitedDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl LimitedDriver {
    fn open(name: &str, limits: Limits, policy: Policy, clock: Clock) -> LimitedDriver {
        let mut stores = open_stores().lock().unwrap();
        let (store, handles) = stores.entry(name.to_owned()).or_insert_with(|| {
            let store = Store {
                limits,
                policy,
                clock,
                state: Mutex::default(),
            };
            (Arc::new(store), 0)
        });
        *handles += 1;
        LimitedDriver {
            name: name.to_owned(),
            store: store.clone(),
        }
    }

    fn live<T>(&self, key: &str, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        let now = self.store.clock.now();
        let s = self.store.state.lock().unwrap();
        s.entries.get(key).filter(|e| e.live(now)).map(f)
    }
}

impl Driver for LimitedDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.ttl(true).limits(true)
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.store.set(key, value, ttl)
    }

    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        Ok(self.live(key, |e| e.value.clone()))
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        let now = self.store.clock.now();
        let mut s = self.store.state.lock().unwrap();
        Ok(s.remove(key).is_some_and(|e| e.live(now)))
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        let now = self.store.clock.now();
        let s = self.store.state.lock().unwrap();
        Ok(s.entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.live(now))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        Ok(self.live(key, |e| Metadata {
            size: e.value.len() as u64,
            modified: e.modified,
            expires_at: e.expires,
        }))
    }

    fn close(&self) -> DriverResult<()> {
        let mut stores = open_stores().lock().unwrap();
        if let Some((_, handles)) = stores.get_mut(&self.name) {
            *handles -= 1;
            if *handles == 0 {
                stores.remove(&self.name);
            }
        }
        Ok(())
    }

    fn gauges(&self) -> Gauges {
        let s = self.store.state.lock().unwrap();
        let mut g = Gauges::default();
        g.entries = Some(s.entries.len() as u64);
        g.bytes = Some(s.bytes);
        g.evictions = Some(s.evictions);
        g.expirations = Some(s.expirations);
        g.max_bytes = self.store.limits.max_bytes;
        g.max_entries = self.store.limits.max_entries;
        g
    }
}

struct LimitedHarness {
    policy: Policy,
    clock: ManualClock,
}

impl Harness for LimitedHarness {
    fn open(&self, name: &str) -> Result<Contract> {
        let driver =
            LimitedDriver::open(name, Limits::NONE, self.policy, self.clock.clone().into());
        Contract::from_driver("limited", name, driver)
    }

    fn clock(&self) -> TestClock {
        TestClock::Manual(self.clock.clone())
    }

    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        let driver = LimitedDriver::open(name, limits, self.policy, self.clock.clone().into());
        Some(Contract::from_driver("limited", name, driver))
    }
}

fn run(policy: Policy) -> hodor_testkit::Report {
    let report = run_suite(&LimitedHarness {
        policy,
        clock: ManualClock::new(),
    });
    println!("{policy:?}: failed {:?}", report.failed());
    report
}

#[test]
fn a_driver_keeping_its_limits_passes_everything() {
    let report = run(Policy::Correct);
    assert!(report.is_success(), "{report}");
    for case in [
        "limits_hold_after_every_set",
        "limits_evict_expired_entries_first",
        "limits_reject_a_value_larger_than_max_bytes",
    ] {
        assert_eq!(
            report.outcome(case),
            Some(&hodor_testkit::Outcome::Passed),
            "{case} ran"
        );
    }
}

#[test]
fn ignored_limits_are_caught() {
    let report = run(Policy::Ignored);
    assert!(report.failed().contains(&"limits_hold_after_every_set"));
}

#[test]
fn evicting_live_entries_before_expired_ones_is_caught() {
    let report = run(Policy::LiveBeforeExpired);
    assert_eq!(report.failed(), ["limits_evict_expired_entries_first"]);
}

#[test]
fn evicting_for_a_value_that_can_never_fit_is_caught() {
    let report = run(Policy::EvictsBeforeRefusing);
    assert_eq!(
        report.failed(),
        ["limits_reject_a_value_larger_than_max_bytes"]
    );
}
