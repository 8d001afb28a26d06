//! Bulk operations are atomic on the memory driver: no reader sees half of one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hodor_core::{Bytes, Contract};
use hodor_memory as _;

#[test]
fn the_memory_driver_claims_atomic_bulk_operations() {
    let c = Contract::new("memory", "bulk-caps", None).unwrap();
    assert!(c.capabilities().atomic_bulk);
}

#[test]
fn a_reader_never_sees_half_of_a_set_many() {
    let c = Contract::new("memory", "bulk-atomic-set", None).unwrap();
    let keys: Vec<String> = (0..64).map(|i| format!("k{i:02}")).collect();
    c.set_many(
        keys.iter().map(|k| (k.as_str(), Bytes::from_static(b"0"))),
        None,
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, keys, stop) = (c.clone(), keys.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let v = Bytes::from(round.to_string());
                c.set_many(keys.iter().map(|k| (k.as_str(), v.clone())), None)
                    .unwrap();
            }
            round
        })
    };
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    for _ in 0..2_000 {
        let values = c.get_many(&refs).unwrap();
        let first = values[0].clone().unwrap();
        assert!(
            values.iter().all(|v| v.as_ref() == Some(&first)),
            "saw a half-applied set_many: {values:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
}

#[test]
fn a_reader_never_sees_half_of_a_delete_many() {
    let c = Contract::new("memory", "bulk-atomic-delete", None).unwrap();
    let keys: Vec<String> = (0..32).map(|i| format!("d{i:02}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, keys, stop) = (c.clone(), keys.clone(), stop.clone());
        std::thread::spawn(move || {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            while !stop.load(Ordering::Relaxed) {
                c.set_many(refs.iter().map(|k| (*k, "v")), None).unwrap();
                assert_eq!(c.delete_many(&refs).unwrap(), refs.len());
            }
        })
    };
    for _ in 0..2_000 {
        let present = c
            .get_many(&refs)
            .unwrap()
            .iter()
            .filter(|v| v.is_some())
            .count();
        assert!(
            present == 0 || present == refs.len(),
            "saw {present} of {}",
            refs.len()
        );
        let listed = c.list("d").unwrap().len();
        assert!(
            listed == 0 || listed == refs.len(),
            "listed {listed} of {}",
            refs.len()
        );
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn duplicates_within_a_call_behave_as_in_sequence() {
    let c = Contract::new("memory", "bulk-dups", None).unwrap();
    c.set_many([("a", "1"), ("b", "1"), ("a", "2")], None)
        .unwrap();
    assert_eq!(c.get("a").unwrap(), "2");
    assert_eq!(c.metrics().entries, Some(2));
    let got = c.get_many(&["a", "missing", "a"]).unwrap();
    assert_eq!(
        got,
        vec![Some(Bytes::from("2")), None, Some(Bytes::from("2"))]
    );
    assert_eq!(c.delete_many(&["a", "a", "missing", "b"]).unwrap(), 2);
    assert!(c.list("").unwrap().is_empty());
}
