//! Versions: `stat` reports one that changes on every write of a key, is the same through
//! every contract of the store, and is left alone by reads (see `stat.rs`).

use hodor_core::{Contract, Version};

use crate::ctx::{Ctx, Must};

/// Records versions and fails on one seen before.
struct Versions<'c> {
    c: &'c Contract,
    seen: Vec<(Version, String)>,
}

impl Versions<'_> {
    #[track_caller]
    fn after(&mut self, what: &str) -> Version {
        let version = self
            .c
            .stat("k")
            .must(format_args!("stat k after {what}"))
            .version;
        if let Some((_, first)) = self.seen.iter().find(|(v, _)| *v == version) {
            panic!(
                "after {what}, k has the version it had after {first} ({version}): a version \
                 changes on every write of the key, even with the clock standing still and \
                 for a key deleted and written again"
            );
        }
        self.seen.push((version, what.to_owned()));
        version
    }
}

pub(crate) fn version_changes_on_every_write(t: &Ctx) {
    let c = t.open();
    // The clock does not move between these writes: a version that is only the write's
    // time repeats.
    let mut v = Versions {
        c: &c,
        seen: Vec::new(),
    };
    c.set("k", "1", None).must("set");
    v.after("the first set");
    c.set("k", "1", None).must("set the same value");
    v.after("a set of the same value");
    c.set_many([("k", "2"), ("other", "x")], None)
        .must("set_many");
    v.after("set_many");
    assert!(c.delete("k").must("delete"));
    c.set("k", "1", None).must("set again");
    v.after("a delete and a set");
    assert!(c.delete_many(&["k"]).must("delete_many") == 1);
    c.set_many([("k", "1")], None).must("set_many again");
    v.after("a delete_many and a set_many");
    if c.capabilities().conditional {
        let current = c.stat("k").must("stat").version;
        assert!(
            c.set_if_version("k", "1", None, current)
                .must("set_if_version")
        );
        v.after("set_if_version");
        c.increment("k", 1).must("increment");
        v.after("increment");
        c.increment("k", 0).must("increment by 0");
        v.after("an increment by 0 (a write all the same)");
        assert!(c.delete("k").must("delete"));
        assert!(c.create("k", "1", None).must("create"));
        v.after("a delete and a create");
    }
    let other = t.open_as(c.name());
    assert_eq!(
        other
            .stat("k")
            .must("stat through another contract")
            .version,
        c.stat("k").must("stat").version,
        "two contracts of one store report one version for one entry"
    );
    other
        .set("k", "from the other", None)
        .must("set through the other");
    v.after("a set through another contract of the store");
}

pub(crate) fn version_of_other_keys_is_unchanged_by_a_write(t: &Ctx) {
    let c = t.open();
    c.set("a", "1", None).must("set a");
    c.set("b", "1", None).must("set b");
    let a = c.stat("a").must("stat a").version;
    for i in 0..20 {
        c.set("b", i.to_string(), None).must("set b");
        c.set(&format!("n/{i}"), "v", None).must("set a new key");
    }
    c.delete("b").must("delete b");
    assert_eq!(
        c.stat("a").must("stat a").version,
        a,
        "writes of other keys changed a's version: a version changes with its own key's \
         writes only, or set_if_version would fail for no reason"
    );
}
