//! `metrics()`: exact operation counters per contract handle, and consistent gauges.

use hodor_core::{Contract, Metrics};

use crate::ctx::{Ctx, Must, ensure};

/// The operation counters as one comparable tuple: (gets, hits, misses, sets, deletes,
/// lists).
fn ops(m: &Metrics) -> (u64, u64, u64, u64, u64, u64) {
    (m.gets, m.hits, m.misses, m.sets, m.deletes, m.lists)
}

pub(crate) fn metrics_count_single_operations_exactly(t: &Ctx) {
    let c = t.open();
    assert_eq!(ops(&c.metrics()), (0, 0, 0, 0, 0, 0), "a fresh contract");
    c.set("a", "1", None).must("set");
    c.set("b", "2", None).must("set");
    c.set("a", "3", None).must("overwrite");
    c.get("a").must("get");
    c.get("b").must("get");
    let _ = c.get("missing");
    c.exists("a").must("exists");
    c.stat("a").must("stat");
    c.delete("b").must("delete");
    c.delete("missing").must("delete");
    c.list("").must("list");
    c.list("a").must("list");
    c.list("zzz").must("list");
    c.set_json("j", &1, None).must("set_json");
    let _: u32 = c.get_json("j").must("get_json");
    let m = c.metrics();
    assert_eq!(
        ops(&m),
        (4, 3, 1, 4, 2, 3),
        "(gets, hits, misses, sets, deletes, lists): exists and stat count nothing; \
         get_json counts as a get, set_json as a set"
    );
    assert_eq!(m.gets, m.hits + m.misses, "gets = hits + misses");
    // Rejected calls did no work and count nothing.
    let _ = c.set("", "x", None);
    let _ = c.get("");
    let _ = c.set("k", "x", Some(std::time::Duration::ZERO));
    assert_eq!(ops(&c.metrics()), ops(&m), "rejected calls count nothing");
}

pub(crate) fn metrics_count_bulk_operations_per_key(t: &Ctx) {
    let c = t.open();
    c.set_many([("a", "1"), ("b", "2"), ("a", "3")], None)
        .must("set_many");
    c.get_many(&["a", "missing", "a", "b"]).must("get_many");
    c.delete_many(&["a", "missing", "a"]).must("delete_many");
    let m = c.metrics();
    assert_eq!(
        ops(&m),
        (4, 3, 1, 2, 2, 0),
        "(gets, hits, misses, sets, deletes, lists): reads count once per key given, bulk \
         writes and deletes once per distinct key"
    );
}

pub(crate) fn metrics_count_expired_reads_as_misses(t: &Ctx) {
    let delta = |c: &Contract, read: &dyn Fn()| {
        let before = c.metrics();
        read();
        let after = c.metrics();
        (after.hits - before.hits, after.misses - before.misses)
    };
    t.across_expiry(
        |c, ttl| c.set("k", "v", Some(ttl)).must("set k with a TTL"),
        |c| {
            let (hits, misses) = delta(c, &|| {
                let _ = c.get("k");
            });
            ensure!((hits, misses) == (1, 0), "a live read is a hit");
            Ok(())
        },
        |c| {
            ensure!(!c.exists("k")?, "k has not expired");
            let (hits, misses) = delta(c, &|| {
                let _ = c.get("k");
                let _ = c.get_many(&["k"]);
            });
            assert_eq!(
                (hits, misses),
                (0, 2),
                "(hits, misses) of reads of an expired key"
            );
            Ok(())
        },
    );
}

pub(crate) fn metrics_are_per_contract_handle(t: &Ctx) {
    let a = t.open();
    let b = t.open_as(a.name());
    a.set("k", "v", None).must("set through a");
    a.clone().get("k").must("get through a clone of a");
    b.get("k").must("get through b");
    b.get("k").must("get through b");
    assert_eq!(
        ops(&a.metrics()),
        (1, 1, 0, 1, 0, 0),
        "a and its clones count together"
    );
    assert_eq!(
        ops(&b.metrics()),
        (2, 2, 0, 0, 0, 0),
        "a second open of the same store counts separately"
    );
}

pub(crate) fn gauges_match_the_stored_entries(t: &Ctx) {
    let c = t.open();
    let fresh = c.metrics();
    let check = |what: &str, entries: u64| {
        let m = c.metrics();
        if let Some(n) = m.entries {
            assert_eq!(n, entries, "the entries gauge {what}");
        }
        if let Some(e) = m.evictions {
            assert_eq!(e, 0, "evictions {what} (no limits, nothing evicted)");
        }
        m
    };
    check("of a fresh store", 0);
    for (i, key) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        c.set(key, vec![b'v'; 100 * (i + 1)], None).must("set");
    }
    let full = check("after 5 sets", 5);
    if let (Some(bytes), Some(before)) = (full.bytes, fresh.bytes) {
        assert!(
            bytes >= before + 1500,
            "the bytes gauge grew from {before} by {} for 1500 bytes of values",
            bytes - before
        );
    }
    c.set("a", "shorter", None).must("overwrite");
    check("after an overwrite", 5);
    c.delete("b").must("delete");
    check("after a delete", 4);
    c.delete("b").must("delete again");
    check("after deleting a missing key", 4);
    c.set_many([("x", "1"), ("y", "2"), ("z", "3")], None)
        .must("set_many");
    check("after set_many of 3 new keys", 7);
    c.delete_many(&["x", "y", "missing"]).must("delete_many");
    check("after delete_many of 2 keys", 5);
    let keys = c.list("").must("list");
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    c.delete_many(&refs).must("delete everything");
    let empty = check("after deleting everything", 0);
    assert_eq!(
        empty.bytes, fresh.bytes,
        "the bytes gauge returns to its fresh value once everything is deleted"
    );
}
