//! `get_many`, `set_many`, `delete_many`: order, duplicates, all-or-nothing validation,
//! one TTL for all, and atomicity where the driver claims it.

use hodor_core::{Bytes, Contract, Error};

use crate::ctx::{Ctx, Must, assert_err, ensure};
use crate::race::{MIN_READS, MIN_WRITES, writers_and_readers};

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

/// Runs `write(n)` for n = 1, 2, ... on one thread while two others read all keys with
/// get_many and list, for as long as the writer writes, passing each snapshot to `check`.
fn against_readers(
    c: &Contract,
    write: impl Fn(&Contract, usize) + Sync,
    check: impl Fn(&[Option<Bytes>], &[String]) + Sync,
) {
    writers_and_readers(
        vec![c.clone(), c.clone(), c.clone()],
        1,
        MIN_WRITES,
        MIN_READS,
        |_, h, n| write(h, n + 1),
        |i, h| {
            // One reader reads the keys in the order the writer writes them, the other
            // against it: a reader that trails a key-by-key writer sees every key already
            // written, one that meets it head-on sees the seam.
            let values = if i % 2 == 0 {
                h.get_many(&ATOMIC_KEYS).must("get_many")
            } else {
                let mut reversed = ATOMIC_KEYS;
                reversed.reverse();
                let mut values = h.get_many(&reversed).must("get_many");
                values.reverse();
                values
            };
            let listed = h.list("b/").must("list");
            check(&values, &listed);
        },
    );
}

pub(crate) fn set_many_is_atomic_for_readers(t: &Ctx) {
    let c = t.open();
    c.set_many(ATOMIC_KEYS.map(|k| (k, "0")), None)
        .must("set_many");
    against_readers(
        &c,
        |c, generation| {
            let value = generation.to_string();
            c.set_many(ATOMIC_KEYS.map(|k| (k, value.clone())), None)
                .must("set_many");
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
    let c = t.open();
    against_readers(
        &c,
        |c, generation| {
            let value = generation.to_string();
            c.set_many(ATOMIC_KEYS.map(|k| (k, value.clone())), None)
                .must("set_many");
            assert_eq!(
                c.delete_many(&ATOMIC_KEYS).must("delete_many"),
                ATOMIC_KEYS.len()
            );
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

/// Keys in one bulk call of the scale case: past the batch limits backends commonly have
/// (25, 100, 1000 items), and no multiple of any of them.
const BULK: usize = 3_001;

fn bulk_key(i: usize) -> String {
    format!("bulk/{i:05}")
}

pub(crate) fn bulk_calls_of_thousands_of_keys_are_complete(t: &Ctx) {
    let c = t.open();
    let keys: Vec<String> = (0..BULK).map(bulk_key).collect();
    // The first key is given again at the end: the later value must win, so pages of a
    // split call must be applied in order.
    let mut entries: Vec<(String, String)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), format!("v{i}")))
        .collect();
    entries.push((bulk_key(0), "last".to_owned()));
    c.set_many(entries, None).must("set_many of 3,002 entries");
    let listed = c.list("bulk/").must("list");
    assert_eq!(
        listed.len(),
        BULK,
        "a set_many of {BULK} keys stored {} of them",
        listed.len()
    );
    assert!(
        listed == keys,
        "the keys of a big set_many are listed in order, once"
    );
    assert_eq!(
        c.get(&bulk_key(0)).must("get the repeated key"),
        "last",
        "in a big set_many, a key given again at the end keeps its last value"
    );

    // Missing keys mixed in after every page boundary, values checked in order.
    let mut asked: Vec<String> = Vec::new();
    let mut expected: Vec<Option<String>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        asked.push(key.clone());
        expected.push(Some(if i == 0 {
            "last".to_owned()
        } else {
            format!("v{i}")
        }));
        if i % 97 == 0 || i % 1000 == 999 {
            asked.push(format!("{key}/missing"));
            expected.push(None);
        }
    }
    let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
    let got = c.get_many(&refs).must("get_many of thousands of keys");
    assert_eq!(got.len(), refs.len(), "get_many answers every key");
    for ((key, got), want) in refs.iter().zip(&got).zip(&expected) {
        let got = got
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        assert_eq!(
            &got,
            want,
            "get_many of {} keys, at {key}: values must come in the order of the keys",
            refs.len()
        );
    }
    let reversed: Vec<&str> = keys.iter().rev().map(String::as_str).collect();
    let got = c.get_many(&reversed).must("get_many in reverse");
    assert!(
        got.len() == BULK && got.iter().all(Option::is_some),
        "get_many of {BULK} keys in reverse order found every key"
    );
    assert_eq!(
        got.last().cloned().flatten(),
        some("last"),
        "get_many in reverse order ends with the first key's value"
    );

    // Delete the odd keys, each given twice, with missing keys mixed in.
    let mut doomed: Vec<&str> = Vec::new();
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        doomed.push(key);
        if i % 101 == 1 {
            doomed.push(key);
            doomed.push("bulk/missing");
        }
    }
    let odd = BULK / 2;
    assert_eq!(
        c.delete_many(&doomed)
            .must("delete_many of thousands of keys"),
        odd,
        "delete_many of {} keys ({odd} of them live, some given twice) counts each live key \
         once",
        doomed.len()
    );
    let even: Vec<&String> = keys.iter().step_by(2).collect();
    let left = c.list("bulk/").must("list");
    assert!(
        left.len() == even.len() && left.iter().zip(&even).all(|(a, b)| a == *b),
        "after deleting the odd keys, {} keys are left, expected the {} even ones",
        left.len(),
        even.len()
    );
    let rest: Vec<&str> = left.iter().map(String::as_str).collect();
    assert_eq!(
        c.delete_many(&rest).must("delete_many of the rest"),
        rest.len()
    );
    assert!(c.list("").must("list").is_empty(), "everything was deleted");
}

pub(crate) fn set_many_ttl_replaces_earlier_ttls(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            // Existing keys with no TTL, a longer one and a shorter one all take the
            // batch's TTL.
            c.set("none", "old", None).must("set none");
            c.set("longer", "old", Some(ttl * 5)).must("set longer");
            c.set("shorter", "old", Some(ttl / 2)).must("set shorter");
            c.set_many(
                [
                    ("none", "new"),
                    ("longer", "new"),
                    ("shorter", "new"),
                    ("fresh", "new"),
                ],
                Some(ttl),
            )
            .must("set_many with a TTL over existing keys");
        },
        |c| {
            let got = c.get_many(&["none", "longer", "shorter", "fresh"])?;
            ensure!(
                got.iter().all(|v| *v == some("new")),
                "before the batch's deadline: {got:?}"
            );
            Ok(())
        },
        |c| {
            let listed = c.list("")?;
            ensure!(
                listed.is_empty(),
                "at the batch's deadline, {listed:?} still live: set_many's TTL must replace \
                 the TTL (or no TTL) every key had"
            );
            Ok(())
        },
    );
}
