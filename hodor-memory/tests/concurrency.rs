//! Many threads on overlapping keys: the final state is one a serial order allows, and no
//! write to a distinct key is lost.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use hodor_core::{Contract, Error};
use hodor_memory as _;

const THREADS: usize = 8;
const OPS: usize = 2_000;
const SHARED_KEYS: usize = 64;

/// A thread's last write to a key: a value, or a delete.
type LastWrites = HashMap<String, Option<String>>;

/// A small deterministic generator, so a failure replays.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn worker(c: Contract, t: usize, barrier: Arc<Barrier>) -> LastWrites {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
    let mut last = LastWrites::new();
    barrier.wait();
    for i in 0..OPS {
        let shared = format!("shared/{:02}", next(&mut rng) % SHARED_KEYS as u64);
        match next(&mut rng) % 10 {
            0..=3 => {
                let value = format!("t{t}-op{i}");
                c.set(&shared, value.clone(), None).unwrap();
                last.insert(shared, Some(value));
            }
            4 => {
                c.delete(&shared).unwrap();
                last.insert(shared, None);
            }
            5..=7 => match c.get(&shared) {
                // Whatever is read must be a value some thread wrote.
                Ok(v) => assert!(v.starts_with(b"t"), "torn value {v:?}"),
                Err(Error::NotFound { .. }) => {}
                Err(e) => panic!("{e}"),
            },
            8 => {
                let keys = c.list("shared/").unwrap();
                assert!(keys.windows(2).all(|w| w[0] < w[1]), "unsorted {keys:?}");
            }
            _ => {
                // Distinct keys: this thread is the only writer.
                let own = format!("own/{t}/{i}");
                c.set(&own, format!("t{t}-op{i}"), None).unwrap();
                last.insert(own, Some(format!("t{t}-op{i}")));
            }
        }
    }
    last
}

#[test]
fn eight_threads_of_mixed_operations_leave_a_state_a_serial_order_allows() {
    let c = Contract::new("memory", "concurrency", None).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (c, barrier) = (c.clone(), barrier.clone());
            std::thread::spawn(move || worker(c, t, barrier))
        })
        .collect();
    let lasts: Vec<LastWrites> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let mut own_keys = 0;
    for last in &lasts {
        for (key, value) in last {
            if key.starts_with("own/") {
                own_keys += 1;
                let got = c
                    .get(key)
                    .unwrap_or_else(|e| panic!("lost write {key}: {e}"));
                assert_eq!(
                    Some(got),
                    value.as_deref().map(|v| v.as_bytes().to_vec().into())
                );
            }
        }
    }
    assert!(own_keys > 0);

    for k in 0..SHARED_KEYS {
        let key = format!("shared/{k:02}");
        let allowed: Vec<&Option<String>> = lasts.iter().filter_map(|l| l.get(&key)).collect();
        let actual = match c.get(&key) {
            Ok(v) => Some(String::from_utf8(v.to_vec()).unwrap()),
            Err(Error::NotFound { .. }) => None,
            Err(e) => panic!("{e}"),
        };
        if allowed.is_empty() {
            assert_eq!(actual, None, "{key} was never written");
        } else {
            assert!(
                allowed.contains(&&actual),
                "{key} ends as {actual:?}, but the threads' last writes were {allowed:?}"
            );
        }
    }

    // The index agrees with the shards.
    let listed = c.list("").unwrap();
    for key in &listed {
        assert!(c.exists(key).unwrap(), "{key} listed but absent");
    }
    let live = lasts
        .iter()
        .flat_map(|l| l.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| c.exists(k).unwrap())
        .count();
    assert_eq!(listed.len(), live);
}
