//! `list_page`: the keys `list` returns, a page at a time, each page starting strictly after
//! the cursor, none repeated or skipped at a page boundary, expired keys left out, and
//! every stable key seen once while other keys come and go.

use std::collections::HashSet;

use hodor_core::{Contract, Page};

use crate::ctx::{Ctx, Must, ensure};
use crate::race::{MIN_READS, MIN_WRITES, writers_and_readers};

/// Every page of `prefix` at `size`, checking each page's own promises on the way.
#[track_caller]
fn all_pages(c: &Contract, prefix: &str, size: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    for n in 0.. {
        assert!(n <= 100_000, "list_page({prefix:?}, {size}) never ends");
        let page = c
            .list_page(prefix, cursor.as_deref(), size)
            .must(format_args!("list_page({prefix:?}, {cursor:?}, {size})"));
        check_page(&page, prefix, cursor.as_deref(), size);
        keys.extend(page.keys.iter().cloned());
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    keys
}

#[track_caller]
fn check_page(page: &Page, prefix: &str, after: Option<&str>, size: usize) {
    assert!(
        page.keys.len() <= size,
        "a page of limit {size} has {} keys",
        page.keys.len()
    );
    assert!(
        page.keys.is_sorted_by(|a, b| a < b),
        "a page is not strictly sorted by bytes: {:?}",
        page.keys
    );
    for key in &page.keys {
        assert!(
            key.starts_with(prefix),
            "{key:?} does not start with {prefix:?}"
        );
        if let Some(after) = after {
            assert!(
                key.as_str() > after,
                "{key:?} is on the page after the cursor {after:?}: a page starts strictly \
                 after its cursor"
            );
        }
    }
    if let Some(next) = &page.next {
        assert_eq!(
            Some(next),
            page.keys.last(),
            "the cursor of the next page is the last key of this one"
        );
    }
}

fn keys_for_paging() -> Vec<String> {
    let mut keys: Vec<String> = (0..53).map(|i| format!("p/{i:03}")).collect();
    keys.extend(
        [
            "p/", "p/ä", "p/😀", "p/a b", "p/*", "p/[x]", "p/%", "p-", "p", "q/1", "o/9",
        ]
        .map(String::from),
    );
    keys
}

pub(crate) fn list_page_pages_add_up_to_list(t: &Ctx) {
    let c = t.open();
    for key in keys_for_paging() {
        c.set(&key, "v", None).must("set");
    }
    for prefix in ["", "p/", "p", "p/0", "nothing"] {
        let listed = c.list(prefix).must("list");
        for size in [1, 2, 3, 7, 10, 52, 53, 54, 1000] {
            assert_eq!(
                all_pages(&c, prefix, size),
                listed,
                "pages of {size} under {prefix:?}, read one after another, are the listing: no \
                 key repeated or skipped at a page boundary"
            );
        }
    }
    let one = c.list_page("p/", None, 1).must("list_page");
    assert_eq!(one.keys, ["p/"]);
    assert_eq!(one.next.as_deref(), Some("p/"));
    let last = c.list_page("q/", None, 1).must("list_page");
    assert_eq!(
        last,
        Page::new(vec!["q/1".into()], None),
        "the only key is the last page"
    );
}

pub(crate) fn list_page_starts_strictly_after_any_cursor(t: &Ctx) {
    let c = t.open();
    for key in ["a", "b/1", "b/2", "b/3", "c"] {
        c.set(key, "v", None).must("set");
    }
    let page = |prefix: &str, after: Option<&str>| {
        let page = c.list_page(prefix, after, 10).must("list_page");
        check_page(&page, prefix, after, 10);
        page.keys
    };
    assert_eq!(
        page("b/", Some("b/1")),
        ["b/2", "b/3"],
        "after a key: the next one"
    );
    assert_eq!(
        page("b/", Some("b/1x")),
        ["b/2", "b/3"],
        "after a cursor that is no key: the keys past it"
    );
    assert_eq!(
        page("b/", Some("a")),
        ["b/1", "b/2", "b/3"],
        "a cursor before the prefix: the prefix's first page"
    );
    assert_eq!(
        page("b/", Some("b/3")),
        Vec::<String>::new(),
        "after the last key"
    );
    assert_eq!(
        page("b/", Some("c")),
        Vec::<String>::new(),
        "a cursor past the prefix"
    );
    assert_eq!(page("", Some("b/2")), ["b/3", "c"]);
    assert_eq!(
        page("", Some("")),
        ["a", "b/1", "b/2", "b/3", "c"],
        "an empty cursor"
    );
    c.delete("b/2").must("delete");
    assert_eq!(
        page("b/", Some("b/2")),
        ["b/3"],
        "a cursor whose key was deleted still marks the place"
    );
}

pub(crate) fn list_page_skips_expired_keys(t: &Ctx) {
    // More expired keys than a backend reads in one step, before and between live ones.
    let expiring: Vec<String> = (0..600).map(|i| format!("e/{i:04}")).collect();
    t.across_expiry(
        |c, ttl| {
            let batch: Vec<(&str, &str)> = expiring.iter().map(|k| (k.as_str(), "v")).collect();
            c.set_many(batch, Some(ttl)).must("set_many with TTL");
            for live in ["e/0000x", "e/0300x", "e/9"] {
                c.set(live, "v", None).must("set");
            }
        },
        |c| {
            let page = c.list_page("e/", None, 5)?;
            ensure!(
                page.keys.len() == 5,
                "a page of live keys is full: {:?}",
                page.keys
            );
            Ok(())
        },
        |c| {
            for size in [1, 2, 3, 100] {
                let keys = all_pages(c, "e/", size);
                ensure!(
                    keys == ["e/0000x", "e/0300x", "e/9"],
                    "pages of {size} after the deadline hold {keys:?}: expired keys are never \
                     listed, and a run of them does not end the listing early"
                );
            }
            Ok(())
        },
    );
}

pub(crate) fn pages_see_every_stable_key_once_while_others_change(t: &Ctx) {
    let c = t.open();
    let stable: Vec<String> = (0..120).map(|i| format!("k/{i:03}")).collect();
    for key in &stable {
        c.set(key, "stable", None).must("set");
    }
    // Churn keys sort between stable ones, so pages meet them at every boundary.
    let churn = |n: usize| format!("k/{:03}~{n}", (n * 7) % 120);
    let handles = vec![c.clone(), t.open_as(c.name()), c.clone()];
    writers_and_readers(
        handles,
        1,
        MIN_WRITES,
        MIN_READS,
        |_, h, n| {
            h.set(&churn(n), "churn", None).must("set churn");
            if n >= 5 {
                h.delete(&churn(n - 5)).must("delete churn");
            }
        },
        |_, h| {
            for size in [4, 13] {
                let keys = all_pages(h, "k/", size);
                let unique: HashSet<&String> = keys.iter().collect();
                assert_eq!(
                    unique.len(),
                    keys.len(),
                    "a key came twice in one pass of pages"
                );
                let seen: Vec<&String> = keys.iter().filter(|k| !k.contains('~')).collect();
                assert_eq!(
                    seen.len(),
                    stable.len(),
                    "pages of {size} missed or repeated stable keys while others were written"
                );
                assert!(
                    keys.is_sorted_by(|a, b| a < b),
                    "the pages together are not in order"
                );
            }
        },
    );
}
