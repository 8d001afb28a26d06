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
