//! A missing key is a typed miss naming the key, never a panic or a backend error.

use hodor_core::{Contract, Error};

use crate::ctx::{Ctx, Must};

const MISSING: &str = "missing/key";

fn assert_not_found(c: &Contract, what: &str, e: Error) {
    let text = e.to_string();
    match e {
        Error::NotFound {
            key,
            contract,
            driver,
        } => {
            assert_eq!(key, MISSING, "{what}: NotFound names the key");
            assert_eq!(&*contract, c.name(), "{what}: NotFound names the contract");
            assert_eq!(driver, c.driver(), "{what}: NotFound names the driver");
            assert!(
                text.contains(MISSING),
                "{what}: the message names the key: {text}"
            );
        }
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn store_with_neighbours(t: &Ctx) -> Contract {
    let c = t.open();
    // Keys around the missing one, so a driver that matches by prefix is caught.
    for key in [
        "missing",
        "missing/",
        "missing/key/",
        "missing/keys",
        "missing/ke",
    ] {
        c.set(key, "v", None).must(format_args!("set {key:?}"));
    }
    c
}

pub(crate) fn get_missing_is_not_found_naming_the_key(t: &Ctx) {
    let c = store_with_neighbours(t);
    match c.get(MISSING) {
        Ok(v) => panic!("get of a missing key returned {v:?}"),
        Err(e) => assert_not_found(&c, "get", e),
    }
}

pub(crate) fn stat_missing_is_not_found_naming_the_key(t: &Ctx) {
    let c = store_with_neighbours(t);
    match c.stat(MISSING) {
        Ok(m) => panic!("stat of a missing key returned {m:?}"),
        Err(e) => assert_not_found(&c, "stat", e),
    }
}

pub(crate) fn exists_missing_is_false(t: &Ctx) {
    let c = store_with_neighbours(t);
    assert!(!c.exists(MISSING).must("exists"), "exists of a missing key");
    let empty = t.open();
    assert!(
        !empty.exists(MISSING).must("exists"),
        "exists in an empty store"
    );
}

pub(crate) fn delete_missing_is_false(t: &Ctx) {
    let c = store_with_neighbours(t);
    assert!(!c.delete(MISSING).must("delete"), "delete of a missing key");
    assert_eq!(
        c.list("").must("list").len(),
        5,
        "the neighbours are intact"
    );
    let empty = t.open();
    assert!(
        !empty.delete(MISSING).must("delete"),
        "delete in an empty store"
    );
}

pub(crate) fn delete_is_true_once(t: &Ctx) {
    let c = store_with_neighbours(t);
    c.set(MISSING, "v", None).must("set");
    assert!(
        c.delete(MISSING).must("delete"),
        "the first delete removes it"
    );
    assert!(
        !c.delete(MISSING).must("delete"),
        "the second removes nothing"
    );
    assert!(!c.exists(MISSING).must("exists"), "gone after delete");
    assert_eq!(
        c.list("").must("list").len(),
        5,
        "the neighbours are intact"
    );
}
