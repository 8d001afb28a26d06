//! Model-based: random sequences of writes, clock moves, snapshots and restarts against a
//! persistent store, compared with a `BTreeMap` after every step. A restart closes the
//! store and opens it again from disk; in every fsync mode, with and without compression,
//! it must come back exactly as the model says (values, modification times, deadlines).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Driver};
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, MemoryDriver, PersistConfig};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Set(u8, Vec<u8>, Option<u16>),
    Delete(u8),
    SetMany(Vec<(u8, Vec<u8>)>, Option<u16>),
    DeleteMany(Vec<u8>),
    Advance(u16),
    Snapshot,
    Restart,
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        // Long and repetitive: compressed when the store compresses.
        (any::<u8>(), 40usize..400).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn ttl() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![3 => Just(None), 1 => (1u16..2000).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..12;
    prop_oneof![
        6 => (key.clone(), value(), ttl()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        2 => key.clone().prop_map(Op::Delete),
        2 => (proptest::collection::vec((key.clone(), value()), 0..5), ttl())
            .prop_map(|(e, t)| Op::SetMany(e, t)),
        1 => proptest::collection::vec(key, 0..5).prop_map(Op::DeleteMany),
        2 => (1u16..1500).prop_map(Op::Advance),
        1 => Just(Op::Snapshot),
        2 => Just(Op::Restart),
    ]
}

fn key(k: u8) -> String {
    format!("key/{k}")
}

/// What the model holds per key: value, modification time, deadline.
type Model = BTreeMap<String, (Vec<u8>, SystemTime, Option<SystemTime>)>;

fn live(model: &Model, now: SystemTime) -> Model {
    model
        .iter()
        .filter(|(_, (_, _, at))| at.is_none_or(|at| now < at))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn observed(c: &Contract) -> Model {
    c.list("")
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = c.get(&k).unwrap().to_vec();
            let meta = c.stat(&k).unwrap();
            assert_eq!(
                meta.size,
                v.len() as u64,
                "stat size of {k} is the value's length"
            );
            (k, (v, meta.modified, meta.expires_at))
        })
        .collect()
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(ops: Vec<Op>, fsync: Fsync, compress: bool, case: u64) {
    let dir = Dir(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("persist-model-{}-{case}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let clock = ManualClock::new();
    let mut config = MemoryConfig::default().persist(
        PersistConfig::new(&dir.0)
            .fsync(fsync)
            .interval_ms(5)
            .snapshot_log_bytes(4096),
    );
    if compress {
        config = config.compression(CompressionConfig::lz4(32));
    }
    let name = format!("model-{case}");
    let open =
        || hodor_memory::open_with_clock(&name, config.clone(), clock.clone().into()).unwrap();
    let mut c = open();
    let mut model = Model::new();
    let ttl = |t: Option<u16>| t.map(|ms| Duration::from_millis(ms.into()));
    let deadline = |t: Option<u16>| t.map(|ms| clock.now() + Duration::from_millis(ms.into()));
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Set(k, v, t) => {
                c.set(&key(*k), v.clone(), ttl(*t)).unwrap();
                model.insert(key(*k), (v.clone(), clock.now(), deadline(*t)));
            }
            Op::Delete(k) => {
                let was = live(&model, clock.now()).contains_key(&key(*k));
                assert_eq!(c.delete(&key(*k)).unwrap(), was, "step {step}: delete");
                model.remove(&key(*k));
            }
            Op::SetMany(entries, t) => {
                c.set_many(entries.iter().map(|(k, v)| (key(*k), v.clone())), ttl(*t))
                    .unwrap();
                for (k, v) in entries {
                    model.insert(key(*k), (v.clone(), clock.now(), deadline(*t)));
                }
            }
            Op::DeleteMany(keys) => {
                let names: Vec<String> = keys.iter().map(|k| key(*k)).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let live_now = live(&model, clock.now());
                let mut distinct = names.clone();
                distinct.sort();
                distinct.dedup();
                let expected = distinct
                    .iter()
                    .filter(|k| live_now.contains_key(*k))
                    .count();
                assert_eq!(c.delete_many(&refs).unwrap(), expected, "step {step}");
                for k in &names {
                    model.remove(k);
                }
            }
            Op::Advance(ms) => clock.advance(Duration::from_millis((*ms).into())),
            Op::Snapshot => {
                let d = MemoryDriver::open(&name, config.clone(), clock.clone().into()).unwrap();
                d.snapshot().unwrap();
                d.close().unwrap();
            }
            Op::Restart => {
                c.close().unwrap();
                c = open();
            }
        }
        let want = live(&model, clock.now());
        assert_eq!(
            observed(&c),
            want,
            "step {step} ({op:?}), {fsync:?}, compress {compress}"
        );
    }
    c.close().unwrap();
    let c = open();
    assert_eq!(
        observed(&c),
        live(&model, clock.now()),
        "after the last restart"
    );
    c.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    })]

    #[test]
    fn restarts_bring_back_exactly_the_model(
        ops in proptest::collection::vec(op(), 1..60),
        fsync in prop_oneof![Just(Fsync::Always), Just(Fsync::Interval), Just(Fsync::Never)],
        compress in any::<bool>(),
        case in any::<u64>(),
    ) {
        run(ops, fsync, compress, case);
    }
}
