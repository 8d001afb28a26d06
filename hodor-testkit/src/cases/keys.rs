//! Every valid key round-trips as its exact bytes; invalid keys are rejected up front.

use hodor_core::Error;

use crate::ctx::{Ctx, Must, assert_err};
use crate::keys::{AWKWARD_KEYS, INVALID_KEYS};

fn value_for(i: usize) -> String {
    format!("value #{i}")
}

fn store_awkward_keys(c: &hodor_core::Contract) {
    for (i, key) in AWKWARD_KEYS.iter().enumerate() {
        c.set(key, value_for(i), None)
            .must(format_args!("set {key:?}"));
    }
}

pub(crate) fn awkward_keys_round_trip(t: &Ctx) {
    let c = t.open();
    store_awkward_keys(&c);
    for (i, key) in AWKWARD_KEYS.iter().enumerate() {
        let got = c.get(key).must(format_args!("get {key:?}"));
        assert_eq!(got, value_for(i), "the value stored under {key:?}");
        assert!(c.exists(key).must("exists"), "exists {key:?}");
        assert_eq!(
            c.stat(key).must("stat").size,
            value_for(i).len() as u64,
            "stat size of {key:?}"
        );
    }
}

pub(crate) fn awkward_keys_are_listed(t: &Ctx) {
    let c = t.open();
    store_awkward_keys(&c);
    let mut all: Vec<&str> = AWKWARD_KEYS.to_vec();
    all.sort_unstable();
    assert_eq!(
        c.list("").must("list \"\""),
        all,
        "every awkward key, sorted"
    );
    for key in AWKWARD_KEYS {
        let expected: Vec<&str> = all.iter().copied().filter(|k| k.starts_with(key)).collect();
        assert_eq!(
            c.list(key).must(format_args!("list {key:?}")),
            expected,
            "list with the awkward key {key:?} as prefix"
        );
    }
}

pub(crate) fn awkward_keys_are_deleted(t: &Ctx) {
    let c = t.open();
    store_awkward_keys(&c);
    for (left, key) in AWKWARD_KEYS.iter().enumerate().rev() {
        assert!(
            c.delete(key).must(format_args!("delete {key:?}")),
            "delete {key:?} removes a live entry"
        );
        assert!(!c.exists(key).must("exists"), "exists {key:?} after delete");
        assert_err!(
            c.get(key),
            Error::NotFound { .. },
            "get {key:?} after delete"
        );
        assert!(
            !c.delete(key).must("delete"),
            "a second delete of {key:?} removes nothing"
        );
        assert_eq!(
            c.list("").must("list").len(),
            left,
            "deleting {key:?} removed exactly one key"
        );
    }
}

/// Groups of keys that a normalizing, case-folding, trimming or unescaping driver would
/// store under one name.
const LOOKALIKES: &[&[&str]] = &[
    &["a/b", "a//b", "a/./b", "/a/b", "a/b/", "a\\b"],
    &["é", "e\u{301}"],
    &["Å", "A\u{30a}", "\u{212b}"],
    &["a", "A", "\u{ff41}"],
    &["k", "k ", " k", "k\t", "k\n"],
    &["/", "%2F", "%2f"],
    &["ß", "SS", "ss"],
    &["ﬀ", "ff"],
    &["x", "x\u{200b}", "\u{feff}x"],
];

pub(crate) fn similar_keys_are_distinct(t: &Ctx) {
    let c = t.open();
    let keys: Vec<&str> = LOOKALIKES.iter().flat_map(|g| g.iter().copied()).collect();
    for (i, key) in keys.iter().enumerate() {
        c.set(key, value_for(i), None)
            .must(format_args!("set {key:?}"));
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            c.get(key).must(format_args!("get {key:?}")),
            value_for(i),
            "{key:?} must not share an entry with a look-alike key"
        );
    }
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        c.list("").must("list"),
        sorted,
        "every look-alike is its own key"
    );
}

pub(crate) fn invalid_keys_are_rejected(t: &Ctx) {
    let c = t.open();
    c.set("valid", "v", None).must("set valid");
    for &(key, why) in INVALID_KEYS {
        let what = |op: &str| format!("{op} with a key that is {why}");
        let invalid = |e: Error, op: &str| match e {
            Error::InvalidKey { key: k, .. } => assert_eq!(k, key, "{}: the error's key", what(op)),
            other => panic!("{}: expected InvalidKey, got {other:?}", what(op)),
        };
        let bad = |op: &str, r: hodor_core::Result<()>| match r {
            Ok(()) => panic!("{} succeeded", what(op)),
            Err(e) => invalid(e, op),
        };
        bad("set", c.set(key, "x", None));
        bad("get", c.get(key).map(drop));
        bad("exists", c.exists(key).map(drop));
        bad("delete", c.delete(key).map(drop));
        bad("stat", c.stat(key).map(drop));
        bad("set_json", c.set_json(key, &1, None));
        bad("get_json", c.get_json::<u32>(key).map(drop));
        bad("get_many", c.get_many(&["valid", key]).map(drop));
        bad(
            "set_many",
            c.set_many([("valid", "changed"), (key, "x")], None),
        );
        bad("delete_many", c.delete_many(&["valid", key]).map(drop));
    }
    assert_eq!(
        c.list("").must("list"),
        ["valid"],
        "rejected calls wrote nothing"
    );
    assert_eq!(
        c.get("valid").must("get valid"),
        "v",
        "rejected calls changed nothing"
    );
}
