//! Model-based testing: random operation sequences run against the driver and against a
//! reference model (a `BTreeMap` with expiry), comparing every result. proptest shrinks a
//! failing sequence to a minimal one and saves it to the harness's regression file.
//!
//! The sequences come from a fixed seed, so every run checks the same ones and a driver
//! that fails once fails every time (`PROPTEST_RNG_SEED` picks another seed,
//! `PROPTEST_CASES` runs more sequences). Few keys and weighted operations make TTLs,
//! overwrites, bulk calls and deletes meet: the unit test at the end counts how often each
//! interplay happens over the seeded run, so a change to the generator cannot quietly stop
//! reaching one.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hodor_core::clock::ManualClock;
use hodor_core::{Bytes, Contract, Error};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{
    Config, FailurePersistence, FileFailurePersistence, RngSeed, TestCaseError, TestRunner,
};

use crate::TestClock;
use crate::ctx::Ctx;

/// Few keys, so sequences collide; chosen so that several are prefixes of others and
/// byte order differs from naive orders.
const KEYS: &[&str] = &["a", "a/", "a/b", "ab", "b", "B", "é", "e\u{301}", "*"];
const PREFIXES: &[&str] = &["", "a", "a/", "b", "é", "e", "*", "zz"];

/// The seed of the sequences when `PROPTEST_RNG_SEED` is not set.
const SEED: u64 = 0x0068_6f64_6f72; // "hodor"

#[derive(Clone, Debug)]
enum Op {
    Set(&'static str, Vec<u8>, Option<Duration>),
    Get(&'static str),
    Exists(&'static str),
    Delete(&'static str),
    Stat(&'static str),
    List(&'static str),
    GetMany(Vec<&'static str>),
    SetMany(Vec<(&'static str, Vec<u8>)>, Option<Duration>),
    DeleteMany(Vec<&'static str>),
    Advance(Duration),
}

/// What the driver and harness allow.
#[derive(Clone)]
struct Mode {
    ttl: bool,
    clock: Option<ManualClock>,
}

fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(KEYS)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..5)
}

fn ttl(mode: &Mode) -> BoxedStrategy<Option<Duration>> {
    if !mode.ttl {
        return Just(None).boxed();
    }
    if mode.clock.is_some() {
        prop_oneof![
            3 => Just(None),
            3 => (1u64..=3_000).prop_map(|ms| Some(Duration::from_millis(ms))),
            1 => (1u64..=3_000_000).prop_map(|ns| Some(Duration::from_nanos(ns))),
        ]
        .boxed()
    } else {
        // With real time nothing may expire during a sequence: the sequence checks the
        // bookkeeping of TTLs (stat, overwrite), the TTL cases check expiry itself.
        prop_oneof![
            Just(None),
            (3600u64..=7200).prop_map(|s| Some(Duration::from_secs(s))),
        ]
        .boxed()
    }
}

fn op(mode: &Mode) -> BoxedStrategy<Op> {
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            6,
            (key(), value(), ttl(mode))
                .prop_map(|(k, v, t)| Op::Set(k, v, t))
                .boxed(),
        ),
        (4, key().prop_map(Op::Get).boxed()),
        (2, key().prop_map(Op::Exists).boxed()),
        (3, key().prop_map(Op::Delete).boxed()),
        (2, key().prop_map(Op::Stat).boxed()),
        (3, prop::sample::select(PREFIXES).prop_map(Op::List).boxed()),
        (
            2,
            prop::collection::vec(key(), 0..5)
                .prop_map(Op::GetMany)
                .boxed(),
        ),
        (
            2,
            (prop::collection::vec((key(), value()), 0..6), ttl(mode))
                .prop_map(|(e, t)| Op::SetMany(e, t))
                .boxed(),
        ),
        (
            2,
            prop::collection::vec(key(), 0..5)
                .prop_map(Op::DeleteMany)
                .boxed(),
        ),
    ];
    if mode.clock.is_some() {
        ops.push((
            4,
            prop_oneof![
                3 => (0u64..=2_000).prop_map(Duration::from_millis),
                1 => (1u64..=1_000_000).prop_map(Duration::from_nanos),
            ]
            .prop_map(Op::Advance)
            .boxed(),
        ));
    }
    Union::new_weighted(ops).boxed()
}

struct Entry {
    value: Vec<u8>,
    modified: SystemTime,
    expires: Option<SystemTime>,
}

/// The contract's rules, written as plainly as possible.
struct Model {
    now: SystemTime,
    entries: BTreeMap<String, Entry>,
    /// Deadlines a later write replaced or cleared, by key: passing one while the key is
    /// live is where a driver's stale expiry records bite.
    replaced_deadlines: BTreeMap<String, SystemTime>,
    /// Counted only by the generator's own test.
    #[cfg_attr(not(test), allow(dead_code))]
    coverage: Coverage,
}

/// How often a run reached each interplay of TTLs, overwrites, bulk calls and deletes.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(not(test), allow(dead_code))]
struct Coverage {
    /// A read (get, exists, stat, get_many, list) met an expired entry.
    expired_reads: usize,
    /// A set or set_many replaced a live entry's TTL (or cleared it).
    ttl_replaced: usize,
    /// Time passed a replaced deadline while the key was live.
    stale_deadlines_passed: usize,
    /// A set or set_many wrote over an expired entry.
    writes_over_expired: usize,
    /// A delete or delete_many met an expired entry.
    deletes_of_expired: usize,
    /// A set_many overwrote an existing live entry.
    bulk_overwrites: usize,
    /// A set_many or delete_many named one key twice.
    bulk_duplicates: usize,
}

impl Model {
    fn new(now: SystemTime) -> Model {
        Model {
            now,
            entries: BTreeMap::new(),
            replaced_deadlines: BTreeMap::new(),
            coverage: Coverage::default(),
        }
    }

    #[cfg_attr(not(test), allow(dead_code))]
    fn expired(&self, key: &str) -> bool {
        self.entries.contains_key(key) && self.live(key).is_none()
    }

    /// Counts what `op` is about to exercise.
    #[cfg_attr(not(test), allow(dead_code))]
    fn observe(&mut self, op: &Op) {
        let mut cov = self.coverage;
        let expired =
            |keys: &mut dyn Iterator<Item = &str>| keys.filter(|k| self.expired(k)).count();
        let twice = |keys: &[&str]| {
            let mut sorted = keys.to_vec();
            sorted.sort_unstable();
            sorted.windows(2).any(|w| matches!(w, [a, b] if a == b))
        };
        match op {
            Op::Get(k) | Op::Exists(k) | Op::Stat(k) => {
                cov.expired_reads += expired(&mut std::iter::once(*k));
            }
            Op::GetMany(keys) => cov.expired_reads += expired(&mut keys.iter().copied()),
            Op::List(prefix) => {
                cov.expired_reads += expired(
                    &mut self
                        .entries
                        .keys()
                        .map(String::as_str)
                        .filter(|k| k.starts_with(prefix)),
                );
            }
            Op::Set(k, _, ttl) => {
                cov.writes_over_expired += expired(&mut std::iter::once(*k));
                if self
                    .live(k)
                    .is_some_and(|e| e.expires.is_some() || ttl.is_some())
                {
                    cov.ttl_replaced += 1;
                }
            }
            Op::SetMany(entries, ttl) => {
                let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
                cov.writes_over_expired += expired(&mut keys.iter().copied());
                let live: Vec<&str> = keys
                    .iter()
                    .copied()
                    .filter(|k| self.live(k).is_some())
                    .collect();
                cov.bulk_overwrites += live.len();
                cov.ttl_replaced += live
                    .iter()
                    .filter(|k| {
                        self.live(k)
                            .is_some_and(|e| e.expires.is_some() || ttl.is_some())
                    })
                    .count();
                cov.bulk_duplicates += usize::from(twice(&keys));
            }
            Op::Delete(k) => cov.deletes_of_expired += expired(&mut std::iter::once(*k)),
            Op::DeleteMany(keys) => {
                cov.deletes_of_expired += expired(&mut keys.iter().copied());
                cov.bulk_duplicates += usize::from(twice(keys));
            }
            Op::Advance(by) => {
                let to = self.now + *by;
                cov.stale_deadlines_passed += self
                    .replaced_deadlines
                    .iter()
                    .filter(|(k, at)| self.now < **at && **at <= to && self.live(k).is_some())
                    .count();
            }
        }
        self.coverage = cov;
    }

    fn live(&self, key: &str) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|e| e.expires.is_none_or(|at| self.now < at))
    }

    fn set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) {
        // TTLs are kept to the millisecond, rounded up.
        let ttl = ttl.map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64));
        if let Some(at) = self.live(key).and_then(|e| e.expires) {
            self.replaced_deadlines.insert(key.to_owned(), at);
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                modified: self.now,
                expires: ttl.map(|d| self.now + d),
            },
        );
    }

    fn delete(&mut self, key: &str) -> bool {
        let live = self.live(key).is_some();
        if let Some(at) = self.entries.remove(key).and_then(|e| e.expires) {
            self.replaced_deadlines.insert(key.to_owned(), at);
        }
        live
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.live(key).map(|e| Bytes::copy_from_slice(&e.value))
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        self.entries
            .keys()
            .filter(|k| k.starts_with(prefix) && self.live(k).is_some())
            .cloned()
            .collect()
    }
}

fn missing<T: std::fmt::Debug>(r: hodor_core::Result<T>) -> Result<Option<T>, String> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(format!("unexpected error: {e}")),
    }
}

fn same<T: PartialEq + std::fmt::Debug>(driver: T, model: T) -> Result<(), String> {
    if driver == model {
        Ok(())
    } else {
        Err(format!(
            "the driver returned {driver:?}, the model {model:?}"
        ))
    }
}

fn step(c: &Contract, model: &mut Model, mode: &Mode, op: &Op) -> Result<(), String> {
    let e = |e: Error| format!("unexpected error: {e}");
    match op {
        Op::Set(key, value, ttl) => {
            c.set(key, value.clone(), *ttl).map_err(e)?;
            model.set(key, value, *ttl);
            Ok(())
        }
        Op::Get(key) => same(missing(c.get(key))?, model.get(key)),
        Op::Exists(key) => same(c.exists(key).map_err(e)?, model.live(key).is_some()),
        Op::Delete(key) => same(c.delete(key).map_err(e)?, model.delete(key)),
        Op::Stat(key) => {
            let got = missing(c.stat(key))?;
            let want = model.live(key);
            match (got, want) {
                (None, None) => Ok(()),
                (Some(meta), Some(entry)) => {
                    same(meta.size, entry.value.len() as u64)?;
                    if mode.clock.is_some() {
                        same(meta.modified, entry.modified)?;
                        same(meta.expires_at, entry.expires)
                    } else {
                        same(meta.expires_at.is_some(), entry.expires.is_some())
                    }
                }
                (got, want) => Err(format!(
                    "stat: the driver returned {got:?}, the model has {}",
                    if want.is_some() {
                        "a live entry"
                    } else {
                        "none"
                    }
                )),
            }
        }
        Op::List(prefix) => same(c.list(prefix).map_err(e)?, model.list(prefix)),
        Op::GetMany(keys) => same(
            c.get_many(keys).map_err(e)?,
            keys.iter().map(|k| model.get(k)).collect(),
        ),
        Op::SetMany(entries, ttl) => {
            c.set_many(entries.iter().map(|(k, v)| (*k, v.clone())), *ttl)
                .map_err(e)?;
            for (key, value) in entries {
                model.set(key, value, *ttl);
            }
            Ok(())
        }
        Op::DeleteMany(keys) => {
            let removed = c.delete_many(keys).map_err(e)?;
            let mut expected = 0;
            for key in keys {
                if model.delete(key) {
                    expected += 1;
                }
            }
            same(removed, expected)
        }
        Op::Advance(by) => {
            if let Some(clock) = &mode.clock {
                clock.advance(*by);
                model.now += *by;
            }
            Ok(())
        }
    }
}

fn run_sequence(t: &Ctx, mode: &Mode, ops: &[Op]) -> Result<(), TestCaseError> {
    let c = t.open();
    let mut model = Model::new(t.now());
    for (i, op) in ops.iter().enumerate() {
        step(&c, &mut model, mode, op)
            .map_err(|e| TestCaseError::fail(format!("operation #{i}, {op:?}: {e}")))?;
    }
    let listed = c.list("").map_err(|e| TestCaseError::fail(e.to_string()))?;
    if listed != model.list("") {
        return Err(TestCaseError::fail(format!(
            "at the end, list(\"\") is {listed:?}, the model has {:?}",
            model.list("")
        )));
    }
    let _ = c.close();
    Ok(())
}

/// The runner's settings: `PROPTEST_*` variables as proptest reads them, the seed fixed
/// unless `PROPTEST_RNG_SEED` is set.
fn config(failures: Option<&'static str>) -> Config {
    let mut config = Config {
        failure_persistence: failures.map(|file| {
            Box::new(FileFailurePersistence::Direct(file)) as Box<dyn FailurePersistence>
        }),
        source_file: None,
        ..Config::default()
    };
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config
}

/// The sequences: up to 60 operations each.
fn sequences(mode: &Mode) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(mode), 1..60)
}

pub(crate) fn model_matches_reference(t: &Ctx) {
    let ttl = t.capabilities().ttl;
    let clock = match t.clock() {
        TestClock::Manual(clock) => Some(clock.clone()),
        TestClock::Real { .. } => None,
    };
    let mode = Mode { ttl, clock };
    let mut runner = TestRunner::new(config(t.harness().regressions_file()));
    if let Err(failure) = runner.run(&sequences(&mode), |ops| run_sequence(t, &mode, &ops)) {
        panic!("the driver disagrees with the reference model: {failure}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the seeded sequences through the model alone and counts the interplay they
    /// reach: every run of the case (which draws the same sequences) reaches at least this.
    #[test]
    fn the_seeded_sequences_reach_every_interplay() {
        let mode = Mode {
            ttl: true,
            clock: Some(ManualClock::new()),
        };
        let total = std::cell::Cell::new(Coverage::default());
        let sequences_run = std::cell::Cell::new(0u32);
        let cases = config(None).cases;
        let mut runner = TestRunner::new(config(None));
        runner
            .run(&sequences(&mode), |ops| {
                let mut model = Model::new(SystemTime::UNIX_EPOCH);
                for op in &ops {
                    model.observe(op);
                    match op {
                        Op::Set(k, v, ttl) => model.set(k, v, *ttl),
                        Op::SetMany(entries, ttl) => {
                            for (k, v) in entries {
                                model.set(k, v, *ttl);
                            }
                        }
                        Op::Delete(k) => {
                            model.delete(k);
                        }
                        Op::DeleteMany(keys) => {
                            for k in keys {
                                model.delete(k);
                            }
                        }
                        Op::Advance(by) => model.now += *by,
                        _ => {}
                    }
                }
                let c = model.coverage;
                let mut sum = total.get();
                sum.expired_reads += c.expired_reads;
                sum.ttl_replaced += c.ttl_replaced;
                sum.stale_deadlines_passed += c.stale_deadlines_passed;
                sum.writes_over_expired += c.writes_over_expired;
                sum.deletes_of_expired += c.deletes_of_expired;
                sum.bulk_overwrites += c.bulk_overwrites;
                sum.bulk_duplicates += c.bulk_duplicates;
                total.set(sum);
                sequences_run.set(sequences_run.get() + 1);
                Ok(())
            })
            .unwrap();
        let (total, sequences_run) = (total.get(), sequences_run.get());
        assert_eq!(sequences_run, cases);
        println!("{sequences_run} sequences: {total:?}");
        // Proportional to the number of sequences, so PROPTEST_CASES does not break it.
        let floor = (cases as usize / 4).max(1);
        let reached = [
            ("expired_reads", total.expired_reads),
            ("ttl_replaced", total.ttl_replaced),
            ("stale_deadlines_passed", total.stale_deadlines_passed),
            ("writes_over_expired", total.writes_over_expired),
            ("deletes_of_expired", total.deletes_of_expired),
            ("bulk_overwrites", total.bulk_overwrites),
            ("bulk_duplicates", total.bulk_duplicates),
        ];
        for (what, n) in reached {
            assert!(
                n >= floor,
                "{what}: reached {n} times in {cases} sequences, want {floor}"
            );
        }
    }
}
