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

pub(crate) fn reads_leave_metadata_unchanged(t: &Ctx) {
    let c = t.open();
    let ttl = c.capabilities().ttl.then_some(Duration::from_secs(3600));
    c.set("k", "not json", ttl).must("set k");
    c.set("k/child", "v", None).must("set k/child");
    let before = c.stat("k").must("stat k");
    let step = match t.clock() {
        TestClock::Manual(_) => Duration::from_secs(1),
        // Enough for a backend keeping times to the millisecond to show a change.
        TestClock::Real { .. } => Duration::from_millis(10),
    };
    let reads: [(&str, &dyn Fn()); 10] = [
        ("get", &|| drop(c.get("k"))),
        ("get_many", &|| drop(c.get_many(&["k", "k/child"]))),
        ("exists", &|| drop(c.exists("k"))),
        ("stat", &|| drop(c.stat("k"))),
        ("list(\"\")", &|| drop(c.list(""))),
        ("list with the key as prefix", &|| drop(c.list("k"))),
        ("list_page", &|| drop(c.list_page("k", None, 1))),
        ("get_or_insert_with of a present key", &|| {
            if c.capabilities().conditional {
                drop(c.get_or_insert_with("k", None, || Ok::<_, hodor_core::Error>("other")));
            }
        }),
        ("get_json", &|| drop(c.get_json::<u32>("k"))),
        ("a read through another contract", &|| {
            let other = t.open_as(c.name());
            drop(other.get("k"));
            drop(other.get_many(&["k"]));
        }),
    ];
    for (what, read) in reads {
        t.pass(step);
        read();
        let after = c.stat("k").must("stat k");
        assert_eq!(
            (after.modified, after.expires_at, after.version),
            (before.modified, before.expires_at, before.version),
            "{what} changed k's metadata (modified, expires_at, version): reads change \
             nothing, and a TTL is never extended by reading"
        );
        assert_eq!(after.size, before.size, "{what} changed k's size");
    }
    if let (TestClock::Manual(clock), Some(expires_at)) = (t.clock(), before.expires_at) {
        // After all those reads, the entry still expires at its deadline.
        let left = expires_at.duration_since(clock.now()).unwrap_or_default();
        clock.advance(left);
        assert!(
            !c.exists("k").must("exists"),
            "k outlived the deadline it was set with, after being read"
        );
    }
}
