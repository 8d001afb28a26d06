//! Model-based testing: random operation sequences run against the driver and against a
//! reference model (a `BTreeMap` with expiry), comparing every result. proptest shrinks a
//! failing sequence to a minimal one and saves it to the harness's regression file.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hodor_core::clock::ManualClock;
use hodor_core::{Bytes, Contract, Error};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{
    Config, FailurePersistence, FileFailurePersistence, TestCaseError, TestRunner,
};

use crate::TestClock;
use crate::ctx::Ctx;

/// Few keys, so sequences collide; chosen so that several are prefixes of others and
/// byte order differs from naive orders.
const KEYS: &[&str] = &[
    "a", "a/", "a/b", "a/b/c", "ab", "b", "B", "é", "e\u{301}", " ", "*", "%2F", "/",
];
const PREFIXES: &[&str] = &["", "a", "a/", "a/b", "b", "é", "e", "*", "%", "/", "zz"];

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
            1,
            prop::collection::vec(key(), 0..4)
                .prop_map(Op::GetMany)
                .boxed(),
        ),
        (
            1,
            (prop::collection::vec((key(), value()), 0..4), ttl(mode))
                .prop_map(|(e, t)| Op::SetMany(e, t))
                .boxed(),
        ),
        (
            1,
            prop::collection::vec(key(), 0..4)
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
}

impl Model {
    fn live(&self, key: &str) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|e| e.expires.is_none_or(|at| self.now < at))
    }

    fn set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) {
        // TTLs are kept to the millisecond, rounded up.
        let ttl = ttl.map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64));
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
        self.entries.remove(key);
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
    let mut model = Model {
        now: t.now(),
        entries: BTreeMap::new(),
    };
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

pub(crate) fn model_matches_reference(t: &Ctx) {
    let probe = t.open();
    let ttl = probe.capabilities().ttl;
    let _ = probe.close();
    let clock = match t.clock() {
        TestClock::Manual(clock) => Some(clock.clone()),
        TestClock::Real { .. } => None,
    };
    let mode = Mode { ttl, clock };
    // Config::default() reads PROPTEST_CASES and the other PROPTEST_* variables; only
    // where failures are saved is set here.
    let config = Config {
        failure_persistence: t.harness().regressions_file().map(|file| {
            Box::new(FileFailurePersistence::Direct(file)) as Box<dyn FailurePersistence>
        }),
        source_file: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = prop::collection::vec(op(&mode), 1..40);
    if let Err(failure) = runner.run(&strategy, |ops| run_sequence(t, &mode, &ops)) {
        panic!("the driver disagrees with the reference model: {failure}");
    }
}
