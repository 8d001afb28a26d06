//! `get_many`, `set_many`, `delete_many`: order, duplicates, all-or-nothing validation,
//! one TTL for all, and atomicity where the driver claims it.

use std::sync::atomic::{AtomicBool, Ordering};

use hodor_core::{Bytes, Contract, Error};

use crate::ctx::{Ctx, Must, assert_err, ensure, parallel};

fn some(v: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(v.as_bytes()))
}

fn with_abc(t: &Ctx) -> Contract {
    let c = t.open();
    c.set_many([("a", "1"), ("b", "2"), ("c", "3")], None)
        .must("set_many a, b, c");
    c
}

pub(crate) fn get_many_returns_values_in_key_order(t: &Ctx) {
    let c = with_abc(t);
    assert_eq!(
        c.get_many(&["c", "a", "b"]).must("get_many"),
        [some("3"), some("1"), some("2")],
        "values come in the order the keys were given"
    );
    assert_eq!(c.get_many(&["b"]).must("get_many"), [some("2")]);
}

pub(crate) fn get_many_missing_keys_are_none(t: &Ctx) {
    let c = with_abc(t);
    assert_eq!(
        c.get_many(&["a", "missing", "c", "a/", "A"])
            .must("get_many"),
        [some("1"), None, some("3"), None, None]
    );
    let empty = t.open();
    assert_eq!(empty.get_many(&["a", "b"]).must("get_many"), [None, None]);
}

pub(crate) fn get_many_repeats_duplicate_keys(t: &Ctx) {
    let c = with_abc(t);
    assert_eq!(
        c.get_many(&["a", "a", "missing", "a", "missing"])
            .must("get_many"),
        [some("1"), some("1"), None, some("1"), None],
        "a key given twice is answered twice"
    );
}

pub(crate) fn set_many_last_duplicate_wins(t: &Ctx) {
    let c = with_abc(t);
    c.set_many(
        [("k", "first"), ("j", "x"), ("k", "last"), ("a", "new")],
        None,
    )
    .must("set_many with a duplicate key");
    assert_eq!(c.get("k").must("get k"), "last", "the later duplicate wins");
    assert_eq!(
        c.get("a").must("get a"),
        "new",
        "existing keys are overwritten"
    );
    assert_eq!(c.list("").must("list"), ["a", "b", "c", "j", "k"]);
}

pub(crate) fn delete_many_counts_each_live_key_once(t: &Ctx) {
    let c = with_abc(t);
    assert_eq!(
        c.delete_many(&["a", "a", "b", "missing", "b"])
            .must("delete_many"),
        2,
        "two live keys removed, each counted once"
    );
    assert_eq!(c.list("").must("list"), ["c"]);
    assert_eq!(c.delete_many(&["a", "b"]).must("delete_many"), 0, "gone");
    assert_eq!(c.delete_many(&["c"]).must("delete_many"), 1);
}

pub(crate) fn bulk_invalid_key_changes_nothing(t: &Ctx) {
    let c = with_abc(t);
    assert_err!(
        c.set_many([("a", "changed"), ("new", "x"), ("", "y")], None),
        Error::InvalidKey { .. },
        "set_many with one invalid key"
    );
    assert_err!(
        c.set_many([("new", "x"), ("a\0", "y"), ("b", "changed")], None),
        Error::InvalidKey { .. },
        "set_many with one invalid key in the middle"
    );
    assert_err!(
        c.delete_many(&["a", "b\0"]),
        Error::InvalidKey { .. },
        "delete_many with one invalid key"
    );
    assert_err!(
        c.get_many(&["a", ""]),
        Error::InvalidKey { .. },
        "get_many with one invalid key"
    );
    assert_eq!(
        c.list("").must("list"),
        ["a", "b", "c"],
        "nothing written or removed"
    );
    assert_eq!(
        c.get_many(&["a", "b"]).must("get_many"),
        [some("1"), some("2")],
        "nothing overwritten"
    );
}

pub(crate) fn set_many_ttl_applies_to_every_entry(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            c.set("stay", "v", None).must("set stay");
            c.set_many([("x", "1"), ("y", "2"), ("z", "3")], Some(ttl))
                .must("set_many with a TTL");
        },
        |c| {
            ensure!(c.list("")? == ["stay", "x", "y", "z"], "all live");
            for key in ["x", "y", "z"] {
                ensure!(
                    c.stat(key)?.expires_at.is_some(),
                    "{key} was set by set_many with a TTL but reports no expiry"
                );
            }
            Ok(())
        },
        |c| {
            let listed = c.list("")?;
            ensure!(listed == ["stay"], "after the deadline: {listed:?}");
            let got = c.get_many(&["x", "y", "z"])?;
            ensure!(
                got == [None, None, None],
                "get_many after the deadline: {got:?}"
            );
            Ok(())
        },
    );
}

pub(crate) fn set_many_without_ttl_clears_ttls(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            c.set("x", "old", Some(ttl)).must("set x with a TTL");
            c.set("y", "old", Some(ttl)).must("set y with a TTL");
            c.set_many([("x", "new"), ("y", "new")], None)
                .must("set_many without a TTL");
        },
        |c| {
            ensure!(c.stat("x")?.expires_at.is_none(), "x still has a TTL");
            Ok(())
        },
        |c| {
            let got = c.get_many(&["x", "y"])?;
            ensure!(
                got == [some("new"), some("new")],
                "entries overwritten by set_many without TTL expired: {got:?}"
            );
            Ok(())
        },
    );
}

pub(crate) fn bulk_calls_with_no_keys_are_no_ops(t: &Ctx) {
    let c = with_abc(t);
    assert!(c.get_many(&[]).must("get_many of nothing").is_empty());
    c.set_many(Vec::<(&str, &str)>::new(), None)
        .must("set_many of nothing");
    assert_eq!(c.delete_many(&[]).must("delete_many of nothing"), 0);
    assert_eq!(c.list("").must("list"), ["a", "b", "c"]);
}

const ATOMIC_KEYS: [&str; 10] = [
    "b/0", "b/1", "b/2", "b/3", "b/4", "b/5", "b/6", "b/7", "b/8", "b/9",
];

fn atomic_store(t: &Ctx) -> Option<Contract> {
    let c = t.open();
    if !c.capabilities().atomic_bulk {
        t.skip("needs Capabilities::atomic_bulk, which the driver does not claim");
        return None;
    }
    Some(c)
}

/// Runs `write` on one thread while two others read all keys with get_many and list,
/// passing each snapshot to `check`.
fn against_readers(
    c: &Contract,
    write: impl Fn(&Contract) + Sync,
    check: impl Fn(&[Option<Bytes>], &[String]) + Sync,
) {
    let done = AtomicBool::new(false);
    parallel(vec![c.clone(), c.clone(), c.clone()], |i, c| {
        if i == 0 {
            write(&c);
            done.store(true, Ordering::Release);
            return;
        }
        let mut reads = 0;
        while (!done.load(Ordering::Acquire) && reads < 1000) || reads < 10 {
            let values = c.get_many(&ATOMIC_KEYS).must("get_many");
            let listed = c.list("b/").must("list");
            check(&values, &listed);
            reads += 1;
        }
    });
}

pub(crate) fn set_many_is_atomic_for_readers(t: &Ctx) {
    let Some(c) = atomic_store(t) else { return };
    c.set_many(ATOMIC_KEYS.map(|k| (k, "0")), None)
        .must("set_many");
    against_readers(
        &c,
        |c| {
            for generation in 1..=300 {
                let value = generation.to_string();
                c.set_many(ATOMIC_KEYS.map(|k| (k, value.clone())), None)
                    .must("set_many");
            }
        },
        |values, listed| {
            let first = values.first().cloned().flatten();
            assert!(
                first.is_some() && values.iter().all(|v| *v == first),
                "get_many saw part of a set_many: {values:?}"
            );
            assert_eq!(listed.len(), ATOMIC_KEYS.len(), "list: {listed:?}");
        },
    );
}

pub(crate) fn delete_many_is_atomic_for_readers(t: &Ctx) {
    let Some(c) = atomic_store(t) else { return };
    against_readers(
        &c,
        |c| {
            for generation in 1..=200 {
                let value = generation.to_string();
                c.set_many(ATOMIC_KEYS.map(|k| (k, value.clone())), None)
                    .must("set_many");
                assert_eq!(
                    c.delete_many(&ATOMIC_KEYS).must("delete_many"),
                    ATOMIC_KEYS.len()
                );
            }
        },
        |values, listed| {
            let present = values.iter().filter(|v| v.is_some()).count();
            assert!(
                present == 0 || present == ATOMIC_KEYS.len(),
                "get_many saw part of a delete_many or set_many: {values:?}"
            );
            assert!(
                listed.is_empty() || listed.len() == ATOMIC_KEYS.len(),
                "list saw part of a delete_many or set_many: {listed:?}"
            );
        },
    );
}
