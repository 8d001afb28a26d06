//! `close`: idempotent; afterwards every call on the contract and its clones is `Closed`;
//! a store's data lives as long as its capabilities promise.

use hodor_core::{Contract, Error};

use crate::ctx::{Ctx, Must};

fn assert_closed(c: &Contract, what: &str, r: hodor_core::Result<()>) {
    match r {
        Err(Error::Closed {
            contract,
            operation,
            ..
        }) => {
            assert_eq!(&*contract, c.name(), "{what}: Closed names the contract");
            assert!(!operation.is_empty(), "{what}: Closed names the operation");
        }
        other => panic!("{what} after close: expected Closed, got {other:?}"),
    }
}

fn assert_every_call_closed(c: &Contract, who: &str) {
    let what = |op: &str| format!("{op} on {who}");
    assert_closed(c, &what("set"), c.set("k", "v", None));
    assert_closed(c, &what("get"), c.get("k").map(drop));
    assert_closed(c, &what("exists"), c.exists("k").map(drop));
    assert_closed(c, &what("delete"), c.delete("k").map(drop));
    assert_closed(c, &what("list"), c.list("").map(drop));
    assert_closed(c, &what("stat"), c.stat("k").map(drop));
    assert_closed(c, &what("set_json"), c.set_json("k", &1, None));
    assert_closed(c, &what("get_json"), c.get_json::<u32>("k").map(drop));
    assert_closed(c, &what("get_many"), c.get_many(&["k"]).map(drop));
    assert_closed(c, &what("set_many"), c.set_many([("k", "v")], None));
    assert_closed(c, &what("delete_many"), c.delete_many(&["k"]).map(drop));
    // Even an invalid key reports the closed state first: nothing runs after close.
    assert_closed(c, &what("get of an invalid key"), c.get("").map(drop));
}

pub(crate) fn close_is_idempotent(t: &Ctx) {
    let c = t.open();
    c.set("k", "v", None).must("set");
    c.close().must("close");
    c.close().must("a second close");
    c.clone().close().must("close of a clone after close");
    assert!(c.is_closed());
}

pub(crate) fn every_operation_after_close_is_closed(t: &Ctx) {
    let c = t.open();
    c.set("k", "v", None).must("set");
    c.close().must("close");
    assert_every_call_closed(&c, "the closed contract");
}

pub(crate) fn close_closes_every_clone(t: &Ctx) {
    let c = t.open();
    let clone = c.clone();
    let clone_of_clone = clone.clone();
    c.set("k", "v", None).must("set");
    clone.close().must("close a clone");
    assert!(c.is_closed(), "closing a clone closes the original");
    assert_every_call_closed(&c, "the original");
    assert_every_call_closed(&clone_of_clone, "another clone");
    c.close().must("close the original after its clone");
}

pub(crate) fn close_leaves_other_contracts_open(t: &Ctx) {
    let a = t.open();
    let b = t.open_as(a.name());
    a.set("k", "v", None).must("set through a");
    a.close().must("close a");
    assert!(!b.is_closed(), "a contract opened separately stays open");
    assert_eq!(b.get("k").must("get through b"), "v");
    b.set("k2", "w", None).must("set through b");
    let c = t.open_as(a.name());
    assert_eq!(c.list("").must("list through c"), ["k", "k2"]);
}

pub(crate) fn data_lifetime_follows_persistence(t: &Ctx) {
    let name = t.fresh_name();
    let a = t.open_as(&name);
    let b = t.open_as(&name);
    a.set("k", "v", None).must("set");
    a.close().must("close a");
    assert_eq!(
        b.get("k").must("get through b"),
        "v",
        "the data lives while another contract is open"
    );
    let persistent = b.capabilities().persistent;
    b.close().must("close b");
    drop((a, b));
    let c = t.open_as(&name);
    if persistent {
        assert_eq!(
            c.get("k").must("get after reopening"),
            "v",
            "a persistent driver keeps data after every contract closed"
        );
    } else {
        assert!(
            c.list("").must("list").is_empty(),
            "without Capabilities::persistent, the data is released when the last contract \
             closes"
        );
    }
    // The same through drop instead of close.
    c.set("d", "v", None).must("set");
    drop(c);
    let again = t.open_as(&name);
    assert_eq!(
        again.exists("d").must("exists"),
        persistent,
        "data after the last contract was dropped (persistent: {persistent})"
    );
}
