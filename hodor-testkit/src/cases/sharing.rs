//! Same driver and name = same data; different names are isolated.

use crate::ctx::{Ctx, Must, ensure};

pub(crate) fn same_name_shares_data(t: &Ctx) {
    let a = t.open();
    let b = t.open_as(a.name());
    a.set("k", "from a", None).must("set through a");
    assert_eq!(b.get("k").must("get through b"), "from a");
    b.set("k", "from b", None).must("overwrite through b");
    assert_eq!(a.get("k").must("get through a"), "from b");
    b.set_many([("m/1", "1"), ("m/2", "2")], None)
        .must("set_many through b");
    assert_eq!(a.list("").must("list through a"), ["k", "m/1", "m/2"]);
    assert!(b.delete("k").must("delete through b"));
    assert!(!a.exists("k").must("exists through a"), "a sees b's delete");
    assert!(
        !a.delete("k").must("delete through a"),
        "already deleted by b"
    );
    assert_eq!(a.delete_many(&["m/1", "m/2"]).must("delete_many"), 2);
    assert!(b.list("").must("list through b").is_empty());
}

pub(crate) fn different_names_are_isolated(t: &Ctx) {
    let base = t.fresh_name();
    // Names that extend the first one, as a driver that namespaces keys by concatenation
    // (`name` + key, or `name:` + key) would confuse.
    let names = [
        base.clone(),
        format!("{base}x"),
        format!("{base}:"),
        format!("{base}/"),
        format!("{base}:k"),
    ];
    let stores: Vec<_> = names.iter().map(|n| t.open_as(n)).collect();
    for (i, c) in stores.iter().enumerate() {
        c.set("k", format!("store {i}"), None).must("set k");
        c.set(&format!("own/{i}"), "v", None).must("set own");
    }
    for (i, c) in stores.iter().enumerate() {
        assert_eq!(
            c.get("k").must("get k"),
            format!("store {i}"),
            "store {:?} sees only its own k",
            names.get(i)
        );
        assert_eq!(
            c.list("").must("list"),
            ["k".to_owned(), format!("own/{i}")],
            "store {:?} lists only its own keys",
            names.get(i)
        );
    }
    let first = stores.first().map(|c| c.delete("k").must("delete"));
    assert_eq!(first, Some(true));
    for c in stores.iter().skip(1) {
        assert!(c.exists("k").must("exists"), "a delete in one store only");
    }
}

pub(crate) fn same_name_shares_expiry(t: &Ctx) {
    t.across_expiry(
        |c, ttl| c.set("k", "v", Some(ttl)).must("set k with a TTL"),
        |c| {
            let b = t.open_as(c.name());
            ensure!(b.get("k")? == "v", "the other contract reads k");
            let (mine, theirs) = (c.stat("k")?.expires_at, b.stat("k")?.expires_at);
            ensure!(
                mine.is_some() && mine == theirs,
                "both contracts see one expiry: {mine:?} and {theirs:?}"
            );
            Ok(())
        },
        |c| {
            let b = t.open_as(c.name());
            ensure!(!b.exists("k")?, "the other contract still sees k");
            ensure!(!c.exists("k")?, "k has not expired");
            Ok(())
        },
    );
}

/// Opens every name, writes a different value under one key in each, and checks each
/// store sees only its own.
fn assert_isolated(t: &Ctx, names: &[String], why: &str) {
    let stores: Vec<_> = names.iter().map(|n| t.open_as(n)).collect();
    for (i, c) in stores.iter().enumerate() {
        c.set("k", format!("store {i}"), None).must("set k");
        c.set(&format!("own/{i}"), "v", None).must("set own");
    }
    for (i, c) in stores.iter().enumerate() {
        let name = names.get(i).map_or("", String::as_str);
        let shown = crate::ctx::show(name.as_bytes());
        assert_eq!(
            c.get("k").must("get k"),
            format!("store {i}"),
            "the store named {shown} sees another store's k: names that {why} must be \
             different stores"
        );
        assert_eq!(
            c.list("").must("list"),
            ["k".to_owned(), format!("own/{i}")],
            "the store named {shown} lists another store's keys: names that {why} must be \
             different stores"
        );
    }
}

pub(crate) fn names_differing_in_case_are_isolated(t: &Ctx) {
    let base = t.fresh_name();
    let names: Vec<String> = [
        "store", "Store", "STORE", "\u{e9}", "\u{c9}", "\u{df}", "SS",
    ]
    .iter()
    .map(|s| format!("{base}-{s}"))
    .collect();
    assert_isolated(t, &names, "differ only in case");
}

pub(crate) fn names_differing_only_after_byte_64_are_isolated(t: &Ctx) {
    // A backend that keeps names in a fixed-width column or hashes a prefix of them
    // confuses these; the unique part of each name comes first, so they collide only
    // with each other.
    for at in [64, 128, 255, 256, hodor_core::MAX_KEY_LEN - 1] {
        let mut common = t.fresh_name_tagged("n");
        while common.len() < at {
            common.push('.');
        }
        let names: Vec<String> = ["a", "b"]
            .iter()
            .map(|last| {
                let mut name = format!("{common}{last}");
                // Past the difference, the names agree again (up to the longest name).
                while name.len() < (at + 8).min(hodor_core::MAX_KEY_LEN) {
                    name.push('.');
                }
                name
            })
            .collect();
        assert_isolated(t, &names, &format!("are equal for their first {at} bytes"));
    }
}

pub(crate) fn same_name_sees_writes_at_once_both_ways(t: &Ctx) {
    let a = t.open();
    let b = t.open_as(a.name());
    for round in 0..40 {
        // Alternate who writes; the reader reads first, so a handle that caches what it
        // read (values, misses, listings, metadata) is caught serving the old answer.
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let key = if round % 4 < 2 { "k" } else { "k/x" };
        let _ = reader.get(key);
        let _ = reader.exists(key);
        let _ = reader.stat(key);
        let _ = reader.get_many(&[key]);
        let _ = reader.list("k");
        let value = format!("round {round}: {}", "v".repeat(round));
        let who = if round % 2 == 0 {
            "a, read through b"
        } else {
            "b, read through a"
        };
        match round % 5 {
            4 => {
                // Delete what the reader just saw.
                let _ = writer.delete(key);
                assert!(
                    !reader.exists(key).must("exists"),
                    "round {round}: a delete through {who} still exists"
                );
                assert!(
                    matches!(reader.get(key), Err(hodor_core::Error::NotFound { .. })),
                    "round {round}: a delete through {who} is still readable"
                );
                assert!(
                    reader.stat(key).is_err(),
                    "round {round}: a delete through {who} still has metadata"
                );
                assert_eq!(
                    reader.get_many(&[key]).must("get_many"),
                    [None],
                    "round {round}: a delete through {who}, read by get_many"
                );
                assert!(
                    !reader.list("k").must("list").iter().any(|k| k == key),
                    "round {round}: a delete through {who} is still listed"
                );
                continue;
            }
            3 => writer
                .set_many([(key, value.clone())], None)
                .must("set_many"),
            _ => writer.set(key, value.clone(), None).must("set"),
        }
        assert_eq!(
            reader.get(key).must(format_args!("round {round}: get")),
            value,
            "round {round}: a write through {who}"
        );
        assert!(reader.exists(key).must("exists"), "round {round}: exists");
        assert_eq!(
            reader.stat(key).must("stat").size,
            value.len() as u64,
            "round {round}: the size of a write through {who}"
        );
        assert_eq!(
            reader.get_many(&[key]).must("get_many"),
            [Some(hodor_core::Bytes::from(value.clone()))],
            "round {round}: a write through {who}, read by get_many"
        );
        assert!(
            reader.list("k").must("list").iter().any(|k| k == key),
            "round {round}: a write through {who} is not listed"
        );
    }
    // A bulk delete in one direction, a bulk write in the other.
    a.set_many([("m/1", "1"), ("m/2", "2")], None)
        .must("set_many");
    assert_eq!(b.get_many(&["m/1", "m/2"]).must("get_many").len(), 2);
    assert_eq!(b.delete_many(&["m/1", "m/2"]).must("delete_many"), 2);
    assert_eq!(a.get_many(&["m/1", "m/2"]).must("get_many"), [None, None]);
    assert!(
        a.list("m/").must("list").is_empty(),
        "a bulk delete through b"
    );
}
