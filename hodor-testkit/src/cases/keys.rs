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

/// Keys that read as the same number, or as numbers at all: a driver that stores keys
/// in a numeric column, a JSON object or a sorted set scored by number merges or reorders
/// them.
const NUMERIC_KEYS: &[&str] = &[
    "0", "00", "-0", "+0", "0.0", "0e0", ".0", "7", "07", "007", "+7", "7.0", "7.", "7e0", "0x7",
    "0o7", " 7", "7 ", "\u{667}", "\u{ff17}", "10", "010", "1e1", "1", "01", "1.0", "-1", "1_000",
    "1000", "1,000", "9", "10.0", "inf", "Infinity", "NaN", "nan", "true", "null",
];

pub(crate) fn numeric_lookalike_keys_are_distinct(t: &Ctx) {
    let c = t.open();
    for (i, key) in NUMERIC_KEYS.iter().enumerate() {
        c.set(key, value_for(i), None)
            .must(format_args!("set {key:?}"));
    }
    for (i, key) in NUMERIC_KEYS.iter().enumerate() {
        assert_eq!(
            c.get(key).must(format_args!("get {key:?}")),
            value_for(i),
            "{key:?} must not share an entry with a key of the same numeric value"
        );
    }
    let mut sorted = NUMERIC_KEYS.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        c.list("").must("list"),
        sorted,
        "every number-like key is its own key, sorted by bytes (\"10\" before \"9\")"
    );
    assert_eq!(
        c.list("0").must("list \"0\""),
        [
            "0", "0.0", "00", "007", "01", "010", "07", "0e0", "0o7", "0x7"
        ],
        "list by a numeric prefix is a byte prefix"
    );
    assert!(c.delete("7").must("delete 7"), "delete \"7\"");
    for key in ["07", "007", "+7", "7.0"] {
        assert!(
            c.exists(key).must("exists"),
            "deleting \"7\" removed {key:?}"
        );
    }
}

/// Keys of exactly [`MAX_KEY_LEN`](hodor_core::MAX_KEY_LEN) bytes and keys that differ
/// only far into them: a driver that truncates keys, counts characters, or compares only a
/// prefix (an index limited to 250, 255, 512, 767 or 1000 bytes) merges them.
fn long_keys() -> Vec<String> {
    const MAX: usize = hodor_core::MAX_KEY_LEN;
    let mut keys = vec![
        "\u{e9}".repeat(MAX / 2),
        format!("{}x", "\u{65e5}".repeat(MAX / 3)),
        "\u{1f600}".repeat(MAX / 4),
        format!("{}\u{1f601}", "\u{1f600}".repeat(MAX / 4 - 1)),
        // A prefix of the two above: listing it as a prefix returns all three.
        "\u{1f600}".repeat(MAX / 4 - 1),
        format!("{}\u{1f600}", "a\u{e9}\u{65e5}\u{1f600}".repeat(102)),
        format!("{}\u{1f601}", "a\u{e9}\u{65e5}\u{1f600}".repeat(102)),
    ];
    // Pairs identical up to byte `at`, then different, each padded to the longest key.
    for at in [250, 255, 256, 512, 767, 1000, MAX - 1] {
        for last in ['a', 'b'] {
            let mut key = "k".repeat(at);
            key.push(last);
            while key.len() < MAX {
                key.push('z');
            }
            keys.push(key);
        }
    }
    keys
}

pub(crate) fn longest_keys_with_multibyte_characters_round_trip(t: &Ctx) {
    let c = t.open();
    let keys = long_keys();
    for key in &keys {
        assert!(key.len() <= hodor_core::MAX_KEY_LEN, "{}", key.len());
    }
    for (i, key) in keys.iter().enumerate() {
        c.set(key, value_for(i), None)
            .must(format_args!("set a {}-byte key", key.len()));
    }
    for (i, key) in keys.iter().enumerate() {
        let first_difference = keys
            .iter()
            .filter(|other| *other != key)
            .map(|other| {
                key.bytes()
                    .zip(other.bytes())
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert_eq!(
            c.get(key)
                .must(format_args!("get a {}-byte key", key.len())),
            value_for(i),
            "the {}-byte key #{i} shares an entry with a key equal to it for its first \
             {first_difference} bytes",
            key.len()
        );
    }
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    let listed = c.list("").must("list");
    assert!(
        listed == sorted,
        "the long keys are listed whole, each once, sorted by bytes ({} listed of {}; \
         lengths listed: {:?})",
        listed.len(),
        sorted.len(),
        listed.iter().map(String::len).collect::<Vec<_>>()
    );
    let prefix = "\u{1f600}".repeat(hodor_core::MAX_KEY_LEN / 4 - 1);
    assert_eq!(
        c.list(&prefix).must("list by a 1020-byte prefix").len(),
        3,
        "a 1020-byte prefix lists itself and the two keys extending it"
    );
    let twin = |at: usize, last: char| {
        let mut key = "k".repeat(at);
        key.push(last);
        while key.len() < hodor_core::MAX_KEY_LEN {
            key.push('z');
        }
        key
    };
    assert!(
        c.delete(&twin(1000, 'a')).must("delete"),
        "delete a long key"
    );
    assert!(
        c.exists(&twin(1000, 'b')).must("exists"),
        "deleting a 1024-byte key removed its twin differing at byte 1000"
    );
}
