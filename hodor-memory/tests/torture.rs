//! The adversarial suite: what a hostile or unlucky user does to the memory driver, checked
//! against what it promises.
//!
//! - Random operation sequences with awkward keys (invalid ones included), values whose
//!   owners count their drops, TTLs at and beyond every boundary, clock advances and
//!   wall-clock steps, checked call by call against a reference model (proptest).
//! - The same with limits, where the model cannot know what is evicted: limits hold after
//!   every call, a hit is never stale, nothing listed has expired, and after a sweep the
//!   gauges equal a recount of what is there.
//! - Many threads writing, deleting and listing through limits, with the clock moving:
//!   after every sweep `entries` equals the live keys and `bytes` their recount.
//! - Many threads opening, closing, dropping and reopening one name: no handle leaks, no data
//!   outlives its store, a closed handle refuses calls.
//!
//! The counting-allocator checks are in `tests/heap.rs` (they need a binary of their own).
//! The default run takes a few seconds with fixed seeds. `HODOR_TORTURE=1` runs many more
//! cases, threads and rounds, with random seeds (a failing seed is printed and saved by
//! proptest).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use hodor_core::clock::{Clock, ManualClock};
use hodor_core::driver::{Driver, DriverError};
use hodor_core::{Bytes, Contract, Error, MAX_KEY_LEN, MAX_TTL};
use hodor_memory::{MemoryConfig, MemoryDriver};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

mod common;
use common::{Rng, heavy};

fn config(cases: u32, heavy_cases: u32) -> Config {
    Config {
        cases: if heavy() { heavy_cases } else { cases },
        rng_seed: if heavy() {
            RngSeed::Random
        } else {
            RngSeed::Fixed(0x0D0C_5EED)
        },
        ..Config::default()
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The documented charge of an entry against `max_bytes`.
fn charge(key: &str, size: usize, with_ttl: bool) -> u64 {
    (key.len() + size) as u64 + 120 + if with_ttl { 16 } else { 0 }
}

// ---------------------------------------------------------------------------------------
// Inputs

/// Keys that must round-trip, and some that must be refused.
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "a", "a/", "a/b", "ab", "b", "/", "//", "..", " ", "é", "e\u{301}", "😀", "*?[]\\", "%2F",
        "\t", "\u{7f}", "a\u{0}", "", "Z",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    keys.push("k".repeat(MAX_KEY_LEN));
    keys.push("k".repeat(MAX_KEY_LEN + 1));
    keys.push(format!("{}😀", "k".repeat(MAX_KEY_LEN - 4)));
    keys
}

fn valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && !key.contains('\0')
}

/// Counts values created and dropped, so a test can tell every value was released once.
#[derive(Default)]
struct Owners {
    created: AtomicU64,
    dropped: AtomicU64,
}

struct Owned {
    bytes: Vec<u8>,
    owners: Arc<Owners>,
}

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.owners.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Debug)]
enum Value {
    Empty,
    Small(Vec<u8>),
    Large(u8),
    /// `Bytes::from_owner` with a counted drop.
    Owned(Vec<u8>),
}

impl Value {
    fn bytes(&self, owners: &Arc<Owners>) -> Bytes {
        match self {
            Value::Empty => Bytes::new(),
            Value::Small(v) => Bytes::from(v.clone()),
            Value::Large(b) => Bytes::from(vec![*b; 64 * 1024]),
            Value::Owned(v) => {
                owners.created.fetch_add(1, Ordering::SeqCst);
                Bytes::from_owner(Owned {
                    bytes: v.clone(),
                    owners: owners.clone(),
                })
            }
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Empty),
        5 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::Small),
        1 => any::<u8>().prop_map(Value::Large),
        3 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::Owned),
    ]
}

/// TTLs at and past every boundary the contract names.
fn ttl() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(Duration::ZERO)),
        1 => Just(Some(Duration::from_nanos(1))),
        1 => Just(Some(Duration::from_micros(999))),
        2 => Just(Some(Duration::from_millis(1))),
        1 => Just(Some(Duration::from_micros(1500))),
        3 => (1u64..5_000).prop_map(|ms| Some(Duration::from_millis(ms))),
        1 => Just(Some(Duration::from_secs(3600))),
        1 => Just(Some(MAX_TTL)),
        1 => Just(Some(MAX_TTL + Duration::from_millis(1))),
    ]
}

fn advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::from_nanos(1)),
        Just(Duration::from_micros(999)),
        Just(Duration::from_millis(1)),
        (1u64..3_000).prop_map(Duration::from_millis),
        Just(Duration::from_secs(3600)),
        Just(Duration::from_secs(30 * 24 * 3600)),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Set(usize, Value, Option<Duration>),
    SetMany(Vec<(usize, Value)>, Option<Duration>),
    Get(usize),
    Exists(usize),
    Stat(usize),
    Delete(usize),
    DeleteMany(Vec<usize>),
    GetMany(Vec<usize>),
    List(usize),
    Advance(Duration),
    /// A wall-clock step (NTP, `date -s`) of this many seconds, forward or back.
    WallStep(i32),
    Sweep,
}

fn op(keys: usize) -> impl Strategy<Value = Op> {
    let key = 0..keys;
    prop_oneof![
        8 => (key.clone(), value(), ttl()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        2 => (proptest::collection::vec((key.clone(), value()), 0..6), ttl())
            .prop_map(|(e, t)| Op::SetMany(e, t)),
        4 => key.clone().prop_map(Op::Get),
        2 => key.clone().prop_map(Op::Exists),
        2 => key.clone().prop_map(Op::Stat),
        3 => key.clone().prop_map(Op::Delete),
        1 => proptest::collection::vec(key.clone(), 0..6).prop_map(Op::DeleteMany),
        1 => proptest::collection::vec(key.clone(), 0..6).prop_map(Op::GetMany),
        2 => key.prop_map(Op::List),
        4 => advance().prop_map(Op::Advance),
        1 => (-7200i32..7200).prop_map(Op::WallStep),
        2 => Just(Op::Sweep),
    ]
}

// ---------------------------------------------------------------------------------------
// The reference model

#[derive(Clone)]
struct Entry {
    value: Bytes,
    /// Set time and deadline, in nanoseconds since the store was opened.
    set_at: u64,
    deadline: Option<u64>,
}

/// What the contract says the store holds. Time is the monotonic time since the store was
/// opened: wall-clock steps move nothing.
struct Model {
    entries: BTreeMap<String, Entry>,
    now: u64,
    opened_wall: SystemTime,
}

fn rounded(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000) * 1_000_000).unwrap()
}

impl Model {
    fn live(&self, key: &str) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|e| e.deadline.is_none_or(|d| self.now < d))
    }

    fn live_keys(&self) -> Vec<String> {
        self.entries
            .keys()
            .filter(|k| self.live(k).is_some())
            .cloned()
            .collect()
    }

    fn ttl_error(ttl: Option<Duration>) -> bool {
        ttl.is_some_and(|t| t.is_zero() || t > MAX_TTL)
    }

    fn set(&mut self, key: &str, value: Bytes, ttl: Option<Duration>) {
        let entry = Entry {
            value,
            set_at: self.now,
            deadline: ttl.map(|t| self.now + rounded(t)),
        };
        self.entries.insert(key.to_owned(), entry);
    }

    fn wall(&self, at: u64) -> SystemTime {
        self.opened_wall + Duration::from_nanos(at)
    }

    fn charges(&self) -> u64 {
        self.live_keys()
            .iter()
            .map(|k| {
                let e = &self.entries[k];
                charge(k, e.value.len(), e.deadline.is_some())
            })
            .sum()
    }
}

fn invalid_key<T: std::fmt::Debug>(r: Result<T, Error>) -> Result<(), TestCaseError> {
    match r {
        Err(Error::InvalidKey { .. }) => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "expected InvalidKey, got {other:?}"
        ))),
    }
}

fn invalid_input<T: std::fmt::Debug>(r: Result<T, Error>) -> Result<(), TestCaseError> {
    match r {
        Err(Error::InvalidInput { .. }) => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "expected InvalidInput, got {other:?}"
        ))),
    }
}

/// A fresh store on a manual clock, as a contract and a second handle (to sweep on demand
/// and read the gauges), and an empty model of it.
struct Fixture {
    clock: ManualClock,
    owners: Arc<Owners>,
    contract: Contract,
    handle: MemoryDriver,
    model: Model,
}

impl Fixture {
    fn new(config: MemoryConfig) -> Fixture {
        let clock = ManualClock::new();
        let name = unique("torture-model");
        let open = || MemoryDriver::open(&name, config.clone(), clock.clone().into()).unwrap();
        let handle = open();
        let contract = Contract::from_driver("memory", &name, open()).unwrap();
        let model = Model {
            entries: BTreeMap::new(),
            now: 0,
            opened_wall: clock.now(),
        };
        Fixture {
            owners: Arc::new(Owners::default()),
            clock,
            contract,
            handle,
            model,
        }
    }

    /// Releases the model's copies, then the store: every value created must have been
    /// dropped, exactly once.
    fn finish(self) -> Result<(), TestCaseError> {
        let owners = self.owners.clone();
        drop(self);
        let (created, dropped) = (
            owners.created.load(Ordering::SeqCst),
            owners.dropped.load(Ordering::SeqCst),
        );
        prop_assert_eq!(
            created,
            dropped,
            "values still held after the store was released"
        );
        Ok(())
    }
}

/// Lets time pass (the model follows), or steps the wall clock (the model ignores it).
fn move_time(op: &Op, clock: &ManualClock, model: &mut Model) {
    match op {
        Op::Advance(by) => {
            clock.advance(*by);
            model.now += u64::try_from(by.as_nanos()).unwrap();
        }
        Op::WallStep(secs) => {
            let step = Duration::from_secs(u64::from(secs.unsigned_abs()));
            let now = clock.now();
            clock.set(if *secs < 0 { now - step } else { now + step });
        }
        _ => {}
    }
}

/// Runs `ops` against a fresh store and the model, checking every result.
fn run_model(ops: &[Op]) -> Result<(), TestCaseError> {
    let keys = keys();
    let mut fixture = Fixture::new(MemoryConfig::default());
    let Fixture {
        clock,
        owners,
        contract: c,
        handle,
        model,
    } = &mut fixture;
    for op in ops {
        match op {
            Op::Set(k, v, ttl) => {
                let key = &keys[*k];
                let value = v.bytes(owners);
                let r = c.set(key, value.clone(), *ttl);
                if !valid(key) {
                    invalid_key(r)?;
                } else if Model::ttl_error(*ttl) {
                    invalid_input(r)?;
                } else {
                    prop_assert!(r.is_ok(), "{op:?}: {r:?}");
                    model.set(key, value, *ttl);
                }
            }
            Op::SetMany(entries, ttl) => {
                let batch: Vec<(&str, Bytes)> = entries
                    .iter()
                    .map(|(k, v)| (keys[*k].as_str(), v.bytes(owners)))
                    .collect();
                let r = c.set_many(batch.clone(), *ttl);
                if batch.iter().any(|(k, _)| !valid(k)) {
                    invalid_key(r)?;
                } else if Model::ttl_error(*ttl) && !batch.is_empty() {
                    invalid_input(r)?;
                } else if !batch.is_empty() {
                    prop_assert!(r.is_ok(), "{op:?}: {r:?}");
                    for (k, v) in batch {
                        model.set(k, v, *ttl);
                    }
                }
            }
            Op::Get(k) => {
                let key = &keys[*k];
                let r = c.get(key);
                if !valid(key) {
                    invalid_key(r)?;
                } else {
                    match (r, model.live(key)) {
                        (Ok(v), Some(e)) => prop_assert_eq!(v, e.value.clone(), "{}", key),
                        (Err(Error::NotFound { .. }), None) => {}
                        (r, e) => prop_assert!(
                            false,
                            "get {key:?}: {r:?}, model {:?}",
                            e.map(|e| &e.value)
                        ),
                    }
                }
            }
            Op::Exists(k) => {
                let key = &keys[*k];
                let r = c.exists(key);
                if valid(key) {
                    prop_assert_eq!(r.unwrap(), model.live(key).is_some(), "{}", key);
                } else {
                    invalid_key(r)?;
                }
            }
            Op::Stat(k) => {
                let key = &keys[*k];
                let r = c.stat(key);
                if !valid(key) {
                    invalid_key(r)?;
                } else {
                    match (r, model.live(key)) {
                        (Ok(meta), Some(e)) => {
                            prop_assert_eq!(meta.size, e.value.len() as u64);
                            prop_assert_eq!(meta.modified, model.wall(e.set_at));
                            prop_assert_eq!(meta.expires_at, e.deadline.map(|d| model.wall(d)));
                        }
                        (Err(Error::NotFound { .. }), None) => {}
                        (r, _) => prop_assert!(false, "stat {key:?}: {r:?}"),
                    }
                }
            }
            Op::Delete(k) => {
                let key = &keys[*k];
                let r = c.delete(key);
                if valid(key) {
                    let was_live = model.live(key).is_some();
                    prop_assert_eq!(r.unwrap(), was_live, "{}", key);
                    model.entries.remove(key);
                } else {
                    invalid_key(r)?;
                }
            }
            Op::DeleteMany(ks) => {
                let batch: Vec<&str> = ks.iter().map(|k| keys[*k].as_str()).collect();
                let r = c.delete_many(&batch);
                if batch.iter().any(|k| !valid(k)) {
                    invalid_key(r)?;
                } else {
                    let distinct: BTreeSet<&str> = batch.iter().copied().collect();
                    let live = distinct.iter().filter(|k| model.live(k).is_some()).count();
                    prop_assert_eq!(r.unwrap(), live);
                    for k in distinct {
                        model.entries.remove(k);
                    }
                }
            }
            Op::GetMany(ks) => {
                let batch: Vec<&str> = ks.iter().map(|k| keys[*k].as_str()).collect();
                let r = c.get_many(&batch);
                if batch.iter().any(|k| !valid(k)) {
                    invalid_key(r)?;
                } else {
                    let want: Vec<Option<Bytes>> = batch
                        .iter()
                        .map(|k| model.live(k).map(|e| e.value.clone()))
                        .collect();
                    prop_assert_eq!(r.unwrap(), want);
                }
            }
            Op::List(k) => {
                let prefix = &keys[*k];
                let listed = c.list(prefix).unwrap();
                let want: Vec<String> = model
                    .live_keys()
                    .into_iter()
                    .filter(|key| key.starts_with(prefix.as_str()))
                    .collect();
                prop_assert_eq!(listed, want, "list {:?}", prefix);
            }
            Op::Advance(_) | Op::WallStep(_) => move_time(op, clock, model),
            Op::Sweep => {
                handle.sweep();
                let g = handle.gauges();
                let live = model.live_keys();
                prop_assert_eq!(g.entries, Some(live.len() as u64), "entries after a sweep");
                prop_assert_eq!(g.bytes, Some(model.charges()), "bytes after a sweep");
            }
        }
    }
    c.close().unwrap();
    fixture.finish()
}

proptest! {
    #![proptest_config(config(64, 2_000))]

    #[test]
    fn random_operations_match_the_reference_model(
        ops in proptest::collection::vec(op(keys().len()), 1..120)
    ) {
        run_model(&ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// With limits: what can be checked without knowing the victims

fn run_limited(ops: &[Op], config: MemoryConfig) -> Result<(), TestCaseError> {
    let keys = keys();
    let (max_bytes, max_entries) = (
        config.max_bytes.unwrap_or(u64::MAX),
        config.max_entries.unwrap_or(u64::MAX),
    );
    let mut fixture = Fixture::new(config);
    let Fixture {
        clock,
        owners,
        contract: c,
        handle,
        model,
    } = &mut fixture;
    for op in ops {
        match op {
            Op::Set(k, v, ttl) => {
                let key = &keys[*k];
                let value = v.bytes(owners);
                let fits = charge(key, value.len(), ttl.is_some()) <= max_bytes;
                match c.set(key, value.clone(), *ttl) {
                    Ok(()) => model.set(key, value, *ttl),
                    Err(Error::CapacityExceeded { .. }) => prop_assert!(!fits, "{op:?}"),
                    Err(_) => prop_assert!(!valid(key) || Model::ttl_error(*ttl), "{op:?}"),
                }
            }
            Op::SetMany(entries, ttl) => {
                let batch: Vec<(&str, Bytes)> = entries
                    .iter()
                    .map(|(k, v)| (keys[*k].as_str(), v.bytes(owners)))
                    .collect();
                if c.set_many(batch.clone(), *ttl).is_ok() {
                    for (k, v) in batch {
                        model.set(k, v, *ttl);
                    }
                }
            }
            Op::Delete(k) => {
                let key = &keys[*k];
                if c.delete(key).is_ok() {
                    model.entries.remove(key);
                }
            }
            Op::DeleteMany(ks) => {
                let batch: Vec<&str> = ks.iter().map(|k| keys[*k].as_str()).collect();
                if c.delete_many(&batch).is_ok() {
                    for k in batch {
                        model.entries.remove(k);
                    }
                }
            }
            Op::Get(k) | Op::Exists(k) | Op::Stat(k) => {
                let key = &keys[*k];
                // A hit is the latest value written and still live; a miss may be an
                // eviction.
                if let Ok(v) = c.get(key) {
                    let e = model.live(key);
                    prop_assert!(e.is_some(), "{key:?} read after it expired or was deleted");
                    prop_assert_eq!(v, e.unwrap().value.clone(), "a stale value of {}", key);
                }
            }
            Op::GetMany(_) | Op::List(_) => {
                for key in c.list("").unwrap() {
                    prop_assert!(model.live(&key).is_some(), "listed {key:?} is not live");
                }
            }
            Op::Advance(_) | Op::WallStep(_) => move_time(op, clock, model),
            Op::Sweep => {
                handle.sweep();
                let listed = c.list("").unwrap();
                let recount: u64 = listed
                    .iter()
                    .map(|k| {
                        let meta = c.stat(k).unwrap();
                        charge(k, meta.size as usize, meta.expires_at.is_some())
                    })
                    .sum();
                let g = handle.gauges();
                prop_assert_eq!(g.entries, Some(listed.len() as u64));
                prop_assert_eq!(g.bytes, Some(recount));
            }
        }
        let g = handle.gauges();
        prop_assert!(
            g.bytes.unwrap() <= max_bytes,
            "{:?} over {}",
            g.bytes,
            max_bytes
        );
        prop_assert!(
            g.entries.unwrap() <= max_entries,
            "{:?} over {}",
            g.entries,
            max_entries
        );
    }
    fixture.finish()
}

fn limits() -> impl Strategy<Value = MemoryConfig> {
    prop_oneof![
        (1u64..12).prop_map(|n| MemoryConfig::default().max_entries(n)),
        (200u64..4_000).prop_map(|n| MemoryConfig::default().max_bytes(n)),
        (1u64..12, 200u64..100_000, 0u32..3).prop_map(|(n, b, s)| MemoryConfig::default()
            .max_entries(n)
            .max_bytes(b)
            .shards(1 << (s * 3))),
    ]
}

proptest! {
    #![proptest_config(config(48, 1_000))]

    #[test]
    fn limits_hold_and_hits_are_never_stale(
        config in limits(),
        ops in proptest::collection::vec(op(keys().len()), 1..150)
    ) {
        run_limited(&ops, config)?;
    }
}

// ---------------------------------------------------------------------------------------
// Many threads through limits

/// Rounds of concurrent writers, deleters and listers (some with TTLs) on a shared manual
/// clock; between rounds the clock moves, a sweep runs, and the gauges must equal a recount.
#[test]
fn accounting_stays_exact_under_many_threads() {
    let (threads, rounds, ops) = if heavy() {
        (16, 40, 4_000)
    } else {
        (6, 6, 1_500)
    };
    for config in [
        MemoryConfig::default().max_bytes(64 * 1024),
        MemoryConfig::default().max_entries(300).shards(4),
        MemoryConfig::default(),
    ] {
        let max_bytes = config.max_bytes.unwrap_or(u64::MAX);
        let max_entries = config.max_entries.unwrap_or(u64::MAX);
        let clock = ManualClock::new();
        let name = unique("torture-threads");
        let d = Arc::new(MemoryDriver::open(&name, config, clock.clone().into()).unwrap());
        for round in 0..rounds {
            let barrier = Arc::new(Barrier::new(threads));
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (d, barrier) = (d.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((round * 131 + t) as u64 + 1));
                        barrier.wait();
                        for _ in 0..ops {
                            let key = format!("k/{}", rng.below(500));
                            let ttl = (rng.below(3) == 0)
                                .then(|| Duration::from_millis(1 + rng.below(2_000)));
                            let value = Bytes::from(vec![b'v'; rng.below(300) as usize]);
                            match rng.below(10) {
                                0..=4 => d.set(&key, value, ttl).unwrap(),
                                5 => {
                                    let other = format!("k/{}", rng.below(500));
                                    let batch =
                                        [(key.as_str(), value.clone()), (other.as_str(), value)];
                                    d.set_many(&batch, ttl).unwrap();
                                }
                                6 => {
                                    d.delete(&key).unwrap();
                                }
                                7 => {
                                    let keys = d.list("k/").unwrap();
                                    assert!(keys.windows(2).all(|w| w[0] < w[1]));
                                }
                                _ => {
                                    let _ = d.get(&key).unwrap();
                                }
                            }
                            let g = d.gauges();
                            assert!(
                                g.bytes.unwrap() <= max_bytes && g.entries.unwrap() <= max_entries
                            );
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            clock.advance(Duration::from_millis(700));
            d.sweep();
            let listed = d.list("").unwrap();
            let recount: u64 = listed
                .iter()
                .map(|k| {
                    let meta = d.stat(k).unwrap().expect("listed but absent");
                    charge(k, meta.size as usize, meta.expires_at.is_some())
                })
                .sum();
            let g = d.gauges();
            assert_eq!(
                g.entries,
                Some(listed.len() as u64),
                "round {round}: entries"
            );
            assert_eq!(g.bytes, Some(recount), "round {round}: bytes");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lifecycle races

/// Threads open, use, close, drop and reopen one name at once. Every handle keeps the store
/// it opened alive and sees its own writes; a closed handle refuses calls; when every
/// handle is gone, the next open starts empty (no leaked handle kept the data).
#[test]
fn opening_closing_and_dropping_one_name_on_many_threads_leaks_nothing() {
    let (threads, iterations) = if heavy() { (16, 3_000) } else { (8, 300) };
    let name = unique("torture-lifecycle");
    let clock = Clock::from(ManualClock::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (name, clock, stop) = (&name, &clock, &stop);
            s.spawn(move || {
                let mut rng = Rng(t as u64 + 7);
                for i in 0..iterations {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let key = format!("t{t}/{i}");
                    let d =
                        MemoryDriver::open(name, MemoryConfig::default(), clock.clone()).unwrap();
                    d.set(&key, Bytes::from(key.clone()), None).unwrap();
                    assert_eq!(d.get(&key).unwrap().as_deref(), Some(key.as_bytes()));
                    assert!(d.list(&format!("t{t}/")).unwrap().contains(&key));
                    match rng.below(4) {
                        0 => drop(d),
                        1 => {
                            d.close().unwrap();
                            assert!(matches!(d.get(&key), Err(DriverError::Closed)));
                            d.close().unwrap();
                        }
                        2 => {
                            let c = Contract::from_driver("memory", name, d).unwrap();
                            assert_eq!(c.get(&key).unwrap(), key.as_bytes());
                            if rng.below(2) == 0 {
                                c.close().unwrap();
                            }
                        }
                        _ => {
                            // A second handle, opened and released while this one lives.
                            let other =
                                MemoryDriver::open(name, MemoryConfig::default(), clock.clone())
                                    .unwrap();
                            assert!(other.exists(&key).unwrap());
                            other.close().unwrap();
                            assert!(
                                d.exists(&key).unwrap(),
                                "another handle's close released it"
                            );
                        }
                    }
                }
            });
        }
    });
    let again = MemoryDriver::open(&name, MemoryConfig::default(), clock).unwrap();
    assert_eq!(
        again.gauges().entries,
        Some(0),
        "data outlived every handle"
    );
    assert!(again.list("").unwrap().is_empty());
}
