//! `list` racing bulk writes: with atomic bulk calls, a list shows all of a batch or none.

use std::sync::atomic::{AtomicBool, Ordering};

use hodor_memory::MemoryConfig;

const KEYS: [&str; 8] = ["b/0", "b/1", "b/2", "b/3", "b/4", "b/5", "b/6", "b/7"];

#[test]
fn a_list_never_sees_part_of_a_set_many_or_delete_many() {
    let c = hodor_memory::open("atomic-list", MemoryConfig::default()).unwrap();
    assert!(c.capabilities().atomic_bulk);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..2_000 {
                c.set_many(KEYS.map(|k| (k, "v")), None).unwrap();
                assert_eq!(c.delete_many(&KEYS).unwrap(), KEYS.len());
            }
            done.store(true, Ordering::Release);
        });
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    let listed = c.list("b/").unwrap();
                    assert!(
                        listed.is_empty() || listed.len() == KEYS.len(),
                        "a list saw part of a batch: {listed:?}"
                    );
                }
            });
        }
    });
}
