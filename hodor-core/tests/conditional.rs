//! What the `Contract` layer does around conditional writes and paged listing, for every
//! driver: the checks before any driver runs, the capability gate, and the single flight
//! of `get_or_insert_with` (one loader per key, errors and panics handed on, no deadlock).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use hodor_core::{Capabilities, Contract, Error, Page, Version};

fn conditional() -> (Contract, Arc<support::Log>) {
    let (driver, log) = support::Recording::new(Capabilities::NONE.ttl(true).conditional(true));
    (Contract::from_driver("rec", "cond", driver).unwrap(), log)
}

fn plain() -> (Contract, Arc<support::Log>) {
    let (driver, log) = support::Recording::new(Capabilities::NONE.ttl(true));
    (Contract::from_driver("rec", "plain", driver).unwrap(), log)
}

const V: Version = Version::from_raw(7);

#[test]
fn without_the_capability_every_conditional_call_is_unsupported_before_the_driver() {
    let (c, log) = plain();
    let results: Vec<(&str, Result<(), Error>)> = vec![
        ("create", c.create("k", "v", None).map(drop)),
        (
            "set_if_version",
            c.set_if_version("k", "v", None, V).map(drop),
        ),
        ("increment", c.increment("k", 1).map(drop)),
        (
            "get_or_insert_with",
            c.get_or_insert_with("k", None, || Ok::<_, Error>("v"))
                .map(drop),
        ),
    ];
    for (op, r) in results {
        match r {
            Err(Error::Unsupported {
                operation, reason, ..
            }) => {
                assert_eq!(operation, op);
                assert!(reason.unwrap().contains("conditional"));
            }
            other => panic!("{op}: expected Unsupported, got {other:?}"),
        }
    }
    assert!(log.calls().is_empty(), "the driver saw {:?}", log.calls());
}

#[test]
fn bad_keys_ttls_and_a_closed_contract_stop_before_the_driver() {
    let (c, log) = conditional();
    for key in ["", "a\0b", &"k".repeat(1025)] {
        let results = [
            c.create(key, "v", None).map(drop),
            c.set_if_version(key, "v", None, V).map(drop),
            c.increment(key, 1).map(drop),
            c.get_or_insert_with(key, None, || Ok::<_, Error>("v"))
                .map(drop),
        ];
        for r in results {
            assert!(matches!(r, Err(Error::InvalidKey { .. })), "{r:?}");
        }
    }
    let zero = Some(Duration::ZERO);
    let results = [
        c.create("k", "v", zero).map(drop),
        c.set_if_version("k", "v", zero, V).map(drop),
        c.get_or_insert_with("k", zero, || Ok::<_, Error>("v"))
            .map(drop),
    ];
    for r in results {
        assert!(matches!(r, Err(Error::InvalidInput { .. })), "{r:?}");
    }
    let err = c.list_page("", None, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(log.calls().is_empty(), "the driver saw {:?}", log.calls());
    c.close().unwrap();
    let results = [
        c.create("k", "v", None).map(drop),
        c.set_if_version("k", "v", None, V).map(drop),
        c.increment("k", 1).map(drop),
        c.get_or_insert_with("k", None, || Ok::<_, Error>("v"))
            .map(drop),
        c.list_page("", None, 1).map(drop),
    ];
    for r in results {
        assert!(matches!(r, Err(Error::Closed { .. })), "{r:?}");
    }
    assert!(log.calls().is_empty(), "the driver saw {:?}", log.calls());
}

#[test]
fn conditional_writes_count_as_sets_only_when_they_write() {
    let (c, _) = conditional();
    assert!(c.create("k", "v", None).unwrap());
    assert!(!c.create("k", "w", None).unwrap());
    assert!(c.set_if_version("k", "x", None, V).unwrap());
    assert!(!c.set_if_version("missing", "x", None, V).unwrap());
    assert_eq!(c.increment("n", 2).unwrap(), 2);
    assert_eq!(c.metrics().sets, 3);
}

#[test]
fn a_failed_conditional_write_says_whether_it_may_have_been_applied() {
    let (mut driver, _) = support::Recording::new(Capabilities::NONE.conditional(true));
    driver.fail_with = Some(|| hodor_core::driver::DriverError::backend("lost"));
    let c = Contract::from_driver("flaky", "cond-fail", driver).unwrap();
    for (op, err) in [
        ("create", c.create("k", "v", None).unwrap_err()),
        ("increment", c.increment("k", 1).unwrap_err()),
    ] {
        let text = err.to_string();
        assert!(
            text.ends_with("it may or may not have been applied"),
            "{op}: {text}"
        );
    }
}

#[test]
fn get_or_insert_with_runs_one_loader_per_key_however_many_callers_miss() {
    let (c, _) = conditional();
    let loads = AtomicUsize::new(0);
    let start = Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                start.wait();
                let v = c
                    .get_or_insert_with("profile/1", None, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok::<_, Error>("loaded")
                    })
                    .unwrap();
                assert_eq!(v, "loaded");
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let m = c.metrics();
    assert_eq!((m.misses, m.hits, m.sets), (1, 7, 1));
}

#[test]
fn a_loader_error_goes_to_its_caller_and_the_next_waiter_loads() {
    let (c, _) = conditional();
    let loads = AtomicUsize::new(0);
    let start = Barrier::new(4);
    let errors = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                start.wait();
                let got = c.get_or_insert_with("k", None, || {
                    let n = loads.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    if n == 0 {
                        Err(std::io::Error::other("the database is down").into())
                    } else {
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>("second")
                    }
                });
                match got {
                    Ok(v) => assert_eq!(v, "second"),
                    Err(e) => {
                        assert_eq!(e.to_string(), "the database is down");
                        errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(
        errors.load(Ordering::SeqCst),
        1,
        "only the failing caller fails"
    );
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "then one more loader, not three"
    );
}

#[test]
fn a_panicking_loader_panics_its_caller_and_leaves_no_one_waiting() {
    let (c, _) = conditional();
    let loads = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (c, loads, start) = (c.clone(), loads.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                c.get_or_insert_with("k", None, || {
                    if loads.fetch_add(1, Ordering::SeqCst) == 0 {
                        std::thread::sleep(Duration::from_millis(50));
                        panic!("the loader panicked");
                    }
                    Ok::<_, Error>("after the panic")
                })
            })
        })
        .collect();
    let outcomes: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 1);
    for o in outcomes.into_iter().flatten() {
        assert_eq!(o.unwrap(), "after the panic");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[test]
fn a_loader_runs_with_no_lock_held_and_may_use_the_contract() {
    let (c, _) = conditional();
    let v = c
        .get_or_insert_with("k", None, || {
            // Other keys, and reads of its own key, work from inside the loader.
            c.set("other", "1", None)?;
            assert!(!c.exists("k")?);
            let nested = c.get_or_insert_with("inner", None, || Ok::<_, Error>("i"))?;
            assert_eq!(nested, "i");
            Ok::<_, Error>("outer")
        })
        .unwrap();
    assert_eq!(v, "outer");
    // Asking for its own key would wait for itself: it is refused instead.
    let err = c
        .get_or_insert_with("self", None, || {
            c.get_or_insert_with("self", None, || Ok::<_, Error>("never"))
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("inside its own f"), "{err}");
}

#[test]
fn a_value_stored_first_by_someone_else_is_the_one_returned() {
    let (c, _) = conditional();
    let racer = c.clone();
    let v = c
        .get_or_insert_with("k", None, || {
            // Another process creates the key while this loader runs.
            assert!(racer.create("k", "theirs", None)?);
            Ok::<_, Error>("mine")
        })
        .unwrap();
    assert_eq!(v, "theirs");
    assert_eq!(c.get("k").unwrap(), "theirs");
}

#[test]
fn pages_of_the_default_list_page_add_up_to_the_listing() {
    let (c, _) = conditional();
    for i in 0..25 {
        c.set(&format!("k/{i:02}"), "v", None).unwrap();
    }
    c.set("other", "v", None).unwrap();
    let mut seen = Vec::new();
    let mut pages = 0;
    for page in c.pages("k/", 10) {
        let page = page.unwrap();
        assert!(page.keys.len() <= 10);
        seen.extend(page.keys);
        pages += 1;
    }
    assert_eq!(seen, c.list("k/").unwrap());
    assert_eq!(pages, 3);
    let page = c.list_page("k/", Some("k/24"), 10).unwrap();
    assert_eq!(page, Page::default());
    assert_eq!(c.pages("none/", 5).count(), 1, "one empty page");
}

#[test]
fn a_page_that_would_not_advance_is_a_backend_error_not_a_loop() {
    let stuck = Page::new(vec!["a".into()], Some("a".into()));
    let c = Contract::from_driver("stuck", "pages", support::FixedPage(stuck)).unwrap();
    let err = c.list_page("", Some("a"), 10).unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let mut pages = c.pages("", 10);
    assert!(pages.next().unwrap().is_ok(), "the first page is fine");
    assert!(
        pages.next().unwrap().is_err(),
        "the second does not move on"
    );
    assert!(pages.next().is_none(), "and the iterator ends");

    let too_long = Page::new(vec!["a".into(), "b".into()], None);
    let c = Contract::from_driver("long", "pages", support::FixedPage(too_long)).unwrap();
    assert!(matches!(
        c.list_page("", None, 1),
        Err(Error::Backend { .. })
    ));
}
