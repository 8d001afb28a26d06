//! `list(prefix)`: every live key starting with the prefix as plain bytes, sorted by bytes,
//! each once.

use hodor_core::Contract;

use crate::ctx::{Ctx, Must};

fn with_keys(t: &Ctx, keys: &[&str]) -> Contract {
    let c = t.open();
    for key in keys {
        c.set(key, "v", None).must(format_args!("set {key:?}"));
    }
    c
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    v.sort_unstable();
    v
}

pub(crate) fn list_is_a_byte_prefix_not_a_path(t: &Ctx) {
    let c = with_keys(
        t,
        &[
            "foo", "foo/x", "foo/x/y", "foo.bar", "foobar", "fo", "fop", "f/oo",
        ],
    );
    assert_eq!(
        c.list("foo").must("list foo"),
        ["foo", "foo.bar", "foo/x", "foo/x/y", "foobar"],
        "`foo` is a byte prefix: it matches foo.bar and foobar, not only foo/..."
    );
    assert_eq!(c.list("foo/").must("list foo/"), ["foo/x", "foo/x/y"]);
    assert_eq!(
        c.list("foo/x/").must("list foo/x/"),
        ["foo/x/y"],
        "keys below a nested 'directory'"
    );
    assert_eq!(c.list("f").must("list f").len(), 8);
    assert_eq!(
        c.list("fo").must("list fo"),
        ["fo", "foo", "foo.bar", "foo/x", "foo/x/y", "foobar", "fop"]
    );
}

pub(crate) fn list_is_sorted_by_bytes(t: &Ctx) {
    // Written out of order. Byte order puts `t-/` before `t/` ('-' < '/'), uppercase before
    // lowercase, "é" (0xC3) after "z", and U+FB00 (0xEF...) before an emoji (0xF0...)
    // although UTF-16 order would put the emoji (a surrogate pair) first.
    let keys = [
        "t/",
        "ﬀ",
        "t",
        "😀",
        "T",
        "t-/",
        "z",
        "é",
        "e",
        "t/a",
        "~",
        "\u{7f}",
        "Z",
        "a b",
        "a",
        "t0",
        "t.",
        "\u{10ffff}",
        "A",
        "ab",
        "a\t",
    ];
    let c = with_keys(t, &keys);
    let expected = sorted(&keys);
    assert_eq!(c.list("").must("list"), expected, "sorted by bytes");
    let listed_t = c.list("t").must("list t");
    assert_eq!(listed_t, ["t", "t-/", "t.", "t/", "t/a", "t0"], "list t");
    for prefix in ["", "t", "a", "\u{ef}"] {
        let listed = c.list(prefix).must("list");
        assert!(
            listed
                .windows(2)
                .all(|w| matches!(w, [a, b] if a.as_bytes() < b.as_bytes())),
            "list {prefix:?} is strictly ascending by bytes: {listed:?}"
        );
    }
}

pub(crate) fn list_has_no_duplicates(t: &Ctx) {
    let c = t.open();
    for round in 0..5 {
        for key in ["a", "a/b", "b"] {
            c.set(key, format!("v{round}"), None).must("set");
        }
    }
    c.delete("a/b").must("delete");
    c.set("a/b", "again", None).must("set again");
    // A second contract on the same store writes the same keys.
    let other = t.open_as(c.name());
    other
        .set("a", "from the other", None)
        .must("set from the other");
    c.set_many([("b", "1"), ("b", "2")], None).must("set_many");
    assert_eq!(c.list("").must("list"), ["a", "a/b", "b"]);
    assert_eq!(other.list("a").must("list"), ["a", "a/b"]);
}

pub(crate) fn list_empty_prefix_lists_everything(t: &Ctx) {
    let c = t.open();
    let mut all = Vec::new();
    for round in 0..2 {
        for key in ["/", "a", "b/c", "😀", " "] {
            let key = format!("{key}{round}");
            c.set(&key, "v", None).must("set");
            all.push(key);
        }
    }
    all.sort_unstable();
    assert_eq!(c.list("").must("list \"\""), all);
}

pub(crate) fn list_without_match_is_empty(t: &Ctx) {
    let c = with_keys(t, &["a", "ab", "b/c"]);
    for prefix in ["c", "abc", "b/c/", "A", "b/d", "aa", "\u{10ffff}"] {
        assert!(
            c.list(prefix).must("list").is_empty(),
            "list {prefix:?} matches nothing"
        );
    }
    let empty = t.open();
    assert!(empty.list("").must("list").is_empty(), "an empty store");
    assert!(empty.list("a").must("list").is_empty(), "an empty store");
}

pub(crate) fn list_full_key_as_prefix_returns_it(t: &Ctx) {
    let c = with_keys(t, &["user/42", "user/420", "user/4", "user/43"]);
    assert_eq!(
        c.list("user/42").must("list"),
        ["user/42", "user/420"],
        "a key's own name lists it (and keys extending it)"
    );
    assert_eq!(c.list("user/43").must("list"), ["user/43"]);
}

pub(crate) fn list_omits_deleted_keys(t: &Ctx) {
    let c = with_keys(t, &["a", "b", "c", "d"]);
    c.delete("b").must("delete b");
    c.delete_many(&["d"]).must("delete_many d");
    assert_eq!(c.list("").must("list"), ["a", "c"]);
    c.delete("a").must("delete a");
    c.delete("c").must("delete c");
    assert!(c.list("").must("list").is_empty(), "all deleted");
}

pub(crate) fn list_of_ten_thousand_keys_is_complete(t: &Ctx) {
    const N: usize = 10_000;
    let c = t.open();
    let mut keys = Vec::with_capacity(N);
    // Written in an order unrelated to the sorted one.
    for i in 0..N {
        let n = (i * 7919) % N;
        let key = format!("many/{n:05}");
        c.set(&key, n.to_string(), None).must("set");
        keys.push(key);
    }
    c.set("man", "outside", None).must("set");
    c.set("many0", "outside", None).must("set");
    keys.sort_unstable();
    let listed = c.list("many/").must("list many/");
    assert_eq!(listed.len(), N, "every key is listed");
    assert!(listed == keys, "the 10,000 keys are listed in order, once");
    assert_eq!(c.list("").must("list").len(), N + 2);
    assert_eq!(c.list("many/01").must("list many/01").len(), 1000);
    assert_eq!(c.list("many/09999").must("list"), ["many/09999"]);
}

pub(crate) fn list_glob_characters_are_data(t: &Ctx) {
    let keys = [
        "a*", "a*b", "ab", "a?", "a[1]", "a1", "a.", "ax", "a\\", "a%", "a_", "a{b}", "a^",
    ];
    let c = with_keys(t, &keys);
    let cases: &[(&str, &[&str])] = &[
        ("a*", &["a*", "a*b"]),
        ("a?", &["a?"]),
        ("a[", &["a[1]"]),
        ("a[1", &["a[1]"]),
        ("a.", &["a."]),
        ("a\\", &["a\\"]),
        ("a%", &["a%"]),
        ("a_", &["a_"]),
        ("a{", &["a{b}"]),
        ("a^", &["a^"]),
        ("*", &[]),
        ("?", &[]),
        (".*", &[]),
        ("%", &[]),
    ];
    for (prefix, expected) in cases {
        assert_eq!(
            c.list(prefix).must("list"),
            *expected,
            "{prefix:?} is matched as plain bytes, not as a pattern"
        );
    }
}

pub(crate) fn list_prefix_no_key_can_have_is_empty(t: &Ctx) {
    let c = with_keys(t, &["a", "b"]);
    let too_long = "a".repeat(hodor_core::MAX_KEY_LEN + 1);
    assert!(
        c.list(&too_long)
            .must("list with an over-long prefix")
            .is_empty(),
        "a prefix longer than any key matches nothing (and is not an error)"
    );
    assert!(
        c.list("a\0").must("list with NUL").is_empty(),
        "a prefix with NUL matches nothing (and is not an error)"
    );
}

/// Groups of keys sized around the page sizes backends list in (1000 for S3 and many SQL
/// drivers, 5000 for others): a page boundary at an exact multiple, one before and one
/// after, where paging code repeats, skips or stops.
const PAGE_GROUPS: [usize; 5] = [999, 1000, 1001, 5000, 5001];

pub(crate) fn list_is_complete_across_page_sizes(t: &Ctx) {
    let c = t.open();
    let mut all: Vec<String> = Vec::new();
    for size in PAGE_GROUPS {
        let group: Vec<String> = (0..size).map(|i| format!("p/{size:04}/{i:04}")).collect();
        // Small batches, well under any backend's batch limit: this case is about lists.
        for chunk in group.chunks(20) {
            c.set_many(chunk.iter().map(|k| (k.as_str(), "v")), None)
                .must("set_many");
        }
        all.extend(group);
    }
    // Keys just outside the groups' prefixes, on both sides.
    for key in ["p/", "p/0999", "p/0999.", "p/1000-", "p0"] {
        c.set(key, "outside", None).must("set");
    }
    for size in PAGE_GROUPS {
        let prefix = format!("p/{size:04}/");
        let listed = c.list(&prefix).must(format_args!("list {prefix:?}"));
        let expected: Vec<&String> = all.iter().filter(|k| k.starts_with(&prefix)).collect();
        assert_eq!(
            listed.len(),
            size,
            "list {prefix:?} returned {} keys, expected {size}",
            listed.len()
        );
        let first_wrong = listed.iter().zip(&expected).position(|(a, b)| a != *b);
        assert!(
            first_wrong.is_none(),
            "list {prefix:?} differs from the {size} keys at position {first_wrong:?}: {:?}",
            first_wrong.and_then(|i| listed.get(i))
        );
    }
    let mut everything = all.clone();
    everything.extend(["p/", "p/0999", "p/0999.", "p/1000-", "p0"].map(str::to_owned));
    everything.sort_unstable();
    let listed = c.list("").must("list everything");
    assert_eq!(
        listed.len(),
        everything.len(),
        "list(\"\") of {} keys returned {}",
        everything.len(),
        listed.len()
    );
    assert!(
        listed == everything,
        "list(\"\") of 13,006 keys is sorted, complete and has no duplicates"
    );
    let of_p = c.list("p/").must("list p/");
    assert_eq!(of_p.len(), everything.len() - 1, "list \"p/\"");
}
