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

pub(crate) fn data_lives_while_any_contract_is_open(t: &Ctx) {
    let name = t.fresh_name();
    let a = t.open_as(&name);
    let b = t.open_as(&name);
    let c = t.open_as(&name);
    a.set("k", "v", None).must("set");
    // Closed, not dropped: the handles stay in scope until the end.
    a.close().must("close a");
    assert_eq!(
        b.get("k").must("get through b after a closed"),
        "v",
        "the data lives while another contract of the name is open (a is closed, not dropped)"
    );
    let d = t.open_as(&name);
    assert_eq!(
        d.get("k")
            .must("get through a contract opened after a closed"),
        "v",
        "a contract opened while others are open joins their data"
    );
    b.close().must("close b");
    c.close().must("close c");
    assert_eq!(
        d.list("").must("list through d"),
        ["k"],
        "the data lives while one contract of the name is open (three closed, not dropped)"
    );
    d.set("k2", "w", None).must("set through d");
    let persistent = d.capabilities().persistent;
    d.close().must("close d");
    // Every contract is closed, none is dropped.
    let e = t.open_as(&name);
    if persistent {
        assert_eq!(
            e.list("").must("list after every contract closed"),
            ["k", "k2"],
            "a persistent driver keeps the data after every contract closed"
        );
    } else {
        let left = e.list("").must("list after every contract closed");
        assert!(
            left.is_empty(),
            "without Capabilities::persistent, the data is released when the last contract \
             closes, even if closed contracts are not dropped; a new open found {left:?}"
        );
    }
    // The closed handles stay closed and did not reopen anything.
    assert!(
        a.get("k").is_err() && d.get("k").is_err(),
        "closed contracts stay closed"
    );
    drop((a, b, c, d));
    assert_eq!(
        e.exists("k2").must("exists"),
        persistent,
        "dropping closed contracts changes nothing"
    );
}

pub(crate) fn reopening_with_another_config_is_invalid_config(t: &Ctx) {
    let name = t.fresh_name();
    let a = t.open_as(&name);
    a.set("k", "v", None).must("set");
    let Some(refused) = t.open_with_other_config(&name) else {
        return;
    };
    match refused {
        Ok(c) => {
            let _ = c.close();
            panic!(
                "a store opened with another config while it is open must be InvalidConfig, \
                 not a silent merge; the open succeeded"
            )
        }
        Err(Error::InvalidConfig { .. }) => {}
        Err(other) => {
            panic!("reopening with another config: expected InvalidConfig, got {other:?}")
        }
    }
    // The refused open changed nothing and left nothing behind.
    assert_eq!(a.get("k").must("get after the refused open"), "v");
    let b = t.open_as(&name);
    assert_eq!(
        b.get("k")
            .must("get through a second open with the same config"),
        "v",
        "the same config still joins after another config was refused"
    );
    let persistent = a.capabilities().persistent;
    a.close().must("close a");
    b.close().must("close b");
    if persistent {
        return;
    }
    // Every contract closed: the name is free, and the other config opens a new store.
    let other = match t.harness().open_with_other_config(&name) {
        Some(Ok(c)) => c,
        Some(Err(e)) => panic!(
            "after every contract of the store closed, opening it with another config failed: \
             {e}; the refused open must not have kept the store open"
        ),
        None => panic!("Harness::open_with_other_config returned None the second time"),
    };
    let left = other.list("").must("list");
    assert!(
        left.is_empty(),
        "after the last close, a store opened with another config starts empty, found {left:?}"
    );
    other.close().must("close");
}
