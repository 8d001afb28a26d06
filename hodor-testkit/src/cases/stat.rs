//! `stat`: size in bytes, wall-clock time of the last set, expiry.

use std::time::Duration;

use crate::TestClock;
use crate::ctx::{Ctx, Must};

pub(crate) fn stat_size_matches_the_value(t: &Ctx) {
    let c = t.open();
    let values: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        ("one", vec![1]),
        ("utf8", "é😀".as_bytes().to_vec()),
        ("kib", vec![7; 1000]),
        ("big", vec![9; 70_000]),
    ];
    for (key, value) in &values {
        c.set(key, value.clone(), None).must("set");
    }
    for (key, value) in &values {
        assert_eq!(
            c.stat(key).must("stat").size,
            value.len() as u64,
            "stat {key:?}: the size is the value's length in bytes"
        );
    }
}

pub(crate) fn stat_modified_is_the_set_time(t: &Ctx) {
    let c = t.open();
    let before = t.now();
    c.set("k", "v", None).must("set");
    let after = t.now();
    let modified = c.stat("k").must("stat").modified;
    t.assert_time_between("modified", modified, before, after);
    t.pass(Duration::from_millis(20));
    c.get("k").must("get");
    c.exists("k").must("exists");
    c.list("").must("list");
    assert_eq!(
        c.stat("k").must("stat").modified,
        modified,
        "reads do not change modified"
    );
}

pub(crate) fn stat_modified_moves_forward_on_overwrite(t: &Ctx) {
    let c = t.open();
    c.set("k", "v1", None).must("set");
    let first = c.stat("k").must("stat").modified;
    let step = match t.clock() {
        TestClock::Manual(_) => Duration::from_secs(1),
        // Enough for any backend keeping modified to the millisecond.
        TestClock::Real { .. } => Duration::from_millis(20),
    };
    t.pass(step);
    c.set("k", "v2", None).must("overwrite");
    let second = c.stat("k").must("stat").modified;
    assert!(
        second > first,
        "modified moves forward on overwrite: {second:?} after {first:?}"
    );
    if let TestClock::Manual(_) = t.clock() {
        assert_eq!(
            second,
            first + step,
            "modified is the clock's time of the set"
        );
    }
    t.pass(step);
    c.set_many([("k", "v3")], None).must("set_many");
    let third = c.stat("k").must("stat").modified;
    assert!(third > second, "set_many moves modified forward too");
}

pub(crate) fn stat_without_ttl_has_no_expiry(t: &Ctx) {
    let c = t.open();
    c.set("k", "v", None).must("set");
    c.set_many([("m", "v")], None).must("set_many");
    assert_eq!(c.stat("k").must("stat k").expires_at, None);
    assert_eq!(c.stat("m").must("stat m").expires_at, None);
}
