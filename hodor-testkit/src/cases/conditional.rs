//! Conditional writes, for drivers that claim `Capabilities::conditional`: `create` writes
//! only over no live entry, `set_if_version` only at the version it was given, `increment`
//! adds to a canonical decimal counter without wrapping; each atomic, which the races
//! check across clones and across contracts opened on one name.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hodor_core::{Contract, Error, Version};

use crate::ctx::{Ctx, Must, assert_err, ensure, handles};
use crate::race::{MIN_ROUNDS, rounds};

const THREADS: usize = 4;

fn value(c: &Contract, key: &str) -> Option<String> {
    match c.get(key) {
        Ok(v) => Some(String::from_utf8_lossy(&v).into_owned()),
        Err(Error::NotFound { .. }) => None,
        Err(e) => panic!("get {key}: {e}"),
    }
}

/// The threads whose call returned `true`.
fn winners(won: &[bool]) -> Vec<usize> {
    won.iter()
        .enumerate()
        .filter(|(_, w)| **w)
        .map(|(i, _)| i)
        .collect()
}

pub(crate) fn create_writes_only_over_no_live_entry(t: &Ctx) {
    let c = t.open();
    assert!(
        c.create("k", "first", None).must("create"),
        "create of a missing key writes"
    );
    assert_eq!(value(&c, "k").as_deref(), Some("first"));
    let version = c.stat("k").must("stat").version;
    assert!(
        !c.create("k", "second", None).must("create again"),
        "create of a live key must return false"
    );
    assert_eq!(
        value(&c, "k").as_deref(),
        Some("first"),
        "a create that returned false changed the value"
    );
    assert_eq!(
        c.stat("k").must("stat").version,
        version,
        "a create that returned false wrote the key"
    );
    let other = t.open_as(c.name());
    assert!(
        !other
            .create("k", "third", None)
            .must("create through another contract"),
        "create through another contract of the store must see the live key"
    );
    assert!(c.delete("k").must("delete"));
    assert!(
        other
            .create("k", "after delete", None)
            .must("create after delete"),
        "create of a deleted key writes"
    );
    assert_eq!(value(&c, "k").as_deref(), Some("after delete"));
    assert_eq!(
        c.list("").must("list"),
        ["k"],
        "a created key is listed once"
    );
}

pub(crate) fn create_writes_over_an_expired_entry(t: &Ctx) {
    t.across_expiry(
        |c, ttl| c.set("k", "old", Some(ttl)).must("set with TTL"),
        |c| {
            ensure!(
                !c.create("k", "new", None)?,
                "create wrote over a live entry"
            );
            Ok(())
        },
        |c| {
            ensure!(
                c.create("k", "new", None)?,
                "create over an expired entry returned false: an expired entry counts as none"
            );
            ensure!(
                value(c, "k").as_deref() == Some("new"),
                "create's value was not kept"
            );
            Ok(())
        },
    );
}

pub(crate) fn create_sets_its_ttl(t: &Ctx) {
    t.across_expiry(
        |c, ttl| assert!(c.create("k", "v", Some(ttl)).must("create with TTL")),
        |c| {
            ensure!(
                c.exists("k")?,
                "the created key is gone before its deadline"
            );
            Ok(())
        },
        |c| {
            ensure!(
                !c.exists("k")?,
                "the key created with a TTL outlived its deadline"
            );
            ensure!(c.list("")?.is_empty(), "an expired created key is listed");
            Ok(())
        },
    );
}

pub(crate) fn set_if_version_writes_only_at_that_version(t: &Ctx) {
    let c = t.open();
    c.set("k", "1", None).must("set");
    let v1 = c.stat("k").must("stat").version;
    assert!(
        c.set_if_version("k", "2", None, v1)
            .must("set_if_version at the current version"),
        "set_if_version at the key's version must write"
    );
    assert_eq!(value(&c, "k").as_deref(), Some("2"));
    let v2 = c.stat("k").must("stat").version;
    assert!(
        !c.set_if_version("k", "3", None, v1)
            .must("set_if_version at an old version"),
        "set_if_version at a version the key had before must not write"
    );
    assert_eq!(
        value(&c, "k").as_deref(),
        Some("2"),
        "a refused set_if_version wrote"
    );
    c.set("k", "written in between", None).must("set");
    assert!(
        !c.set_if_version("k", "4", None, v2)
            .must("set_if_version after a set"),
        "set_if_version after another write must not write"
    );
    // A version from another contract of the store is the same version.
    let other = t.open_as(c.name());
    let v3 = other.stat("k").must("stat").version;
    assert!(c.set_if_version("k", "5", None, v3).must("set_if_version"));
    assert!(
        !c.set_if_version("missing", "x", None, v3)
            .must("set_if_version of a missing key"),
        "set_if_version of a missing key must not write"
    );
    assert!(!c.exists("missing").must("exists"));
    // A key deleted and written again has a new version, however it was written.
    let v5 = c.stat("k").must("stat").version;
    assert!(c.delete("k").must("delete"));
    c.set("k", "again", None).must("set again");
    assert!(
        !c.set_if_version("k", "6", None, v5)
            .must("set_if_version of a recreated key"),
        "set_if_version with the version of a deleted entry wrote over the new one"
    );
    assert_eq!(value(&c, "k").as_deref(), Some("again"));
}

pub(crate) fn set_if_version_replaces_the_ttl(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            c.set("k", "1", None).must("set");
            let v = c.stat("k").must("stat").version;
            assert!(
                c.set_if_version("k", "2", Some(ttl), v)
                    .must("set_if_version")
            );
            c.set("forever", "1", Some(ttl)).must("set with TTL");
            let v = c.stat("forever").must("stat").version;
            assert!(
                c.set_if_version("forever", "2", None, v)
                    .must("set_if_version without TTL")
            );
        },
        |c| {
            ensure!(c.exists("k")?, "k is gone before its new deadline");
            Ok(())
        },
        |c| {
            ensure!(!c.exists("k")?, "set_if_version's TTL was not applied");
            ensure!(
                c.exists("forever")?,
                "set_if_version without a TTL kept the old TTL: None clears it, as in set"
            );
            Ok(())
        },
    );
}

pub(crate) fn set_if_version_refuses_an_expired_entry(t: &Ctx) {
    let version = Mutex::new(None::<Version>);
    t.across_expiry(
        |c, ttl| {
            c.set("k", "old", Some(ttl)).must("set with TTL");
            *version.lock().unwrap() = Some(c.stat("k").must("stat").version);
        },
        |_| Ok(()),
        |c| {
            // With a real clock this is polled from the local deadline on, possibly just
            // before the server's: only once the entry is gone is the write tried, or an
            // early try would rightly succeed and leave an entry without a TTL.
            ensure!(!c.exists("k")?, "the entry outlived its deadline");
            let v = version.lock().unwrap().expect("set in setup");
            ensure!(
                !c.set_if_version("k", "new", None, v)?,
                "set_if_version wrote over an expired entry: it has no version any more"
            );
            ensure!(!c.exists("k")?, "the refused write left an entry");
            Ok(())
        },
    );
}

pub(crate) fn increment_counts_from_zero(t: &Ctx) {
    let c = t.open();
    assert_eq!(c.increment("n", 5).must("increment a missing key"), 5);
    assert_eq!(
        value(&c, "n").as_deref(),
        Some("5"),
        "the counter is stored as text"
    );
    assert_eq!(c.increment("n", -7).must("increment by -7"), -2);
    assert_eq!(c.increment("n", 0).must("increment by 0"), -2);
    assert_eq!(value(&c, "n").as_deref(), Some("-2"));
    assert_eq!(c.list("").must("list"), ["n"], "a new counter is listed");
    assert_eq!(
        c.stat("n").must("stat").expires_at,
        None,
        "a new counter has no TTL"
    );
    c.set("m", "41", None).must("set a counter");
    assert_eq!(c.increment("m", 1).must("increment a set value"), 42);
    let other = t.open_as(c.name());
    assert_eq!(
        other
            .increment("m", 1)
            .must("increment through another contract"),
        43
    );
    c.set("max", i64::MAX.to_string(), None).must("set");
    assert_eq!(c.increment("max", -1).must("increment"), i64::MAX - 1);
    c.set("min", i64::MIN.to_string(), None).must("set");
    assert_eq!(c.increment("min", 1).must("increment"), i64::MIN + 1);
}

pub(crate) fn increment_refuses_non_integers_and_overflow(t: &Ctx) {
    let c = t.open();
    let refused: [&[u8]; 12] = [
        b"",
        b"abc",
        b"01",
        b"+1",
        b" 1",
        b"1 ",
        b"1\n",
        b"1.5",
        b"1e3",
        b"-0",
        b"0x10",
        b"9223372036854775808",
    ];
    for stored in refused {
        c.set("k", stored, None).must("set");
        let version = c.stat("k").must("stat").version;
        let err = assert_err!(
            c.increment("k", 1),
            Error::InvalidInput { .. },
            "increment of {:?}",
            String::from_utf8_lossy(stored)
        );
        assert_eq!(err.key(), Some("k"), "the error names the key");
        assert_eq!(
            c.get("k").must("get"),
            stored,
            "a refused increment changed the value"
        );
        assert_eq!(
            c.stat("k").must("stat").version,
            version,
            "a refused increment wrote the key"
        );
    }
    for (start, delta) in [(i64::MAX, 1), (i64::MIN, -1), (1, i64::MAX), (-2, i64::MIN)] {
        c.set("k", start.to_string(), None).must("set");
        assert_err!(
            c.increment("k", delta),
            Error::InvalidInput { .. },
            "{start} + {delta}: a counter never wraps"
        );
        assert_eq!(
            value(&c, "k"),
            Some(start.to_string()),
            "an overflowing increment changed the value"
        );
    }
}

pub(crate) fn increment_keeps_the_ttl(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            assert!(
                c.create("n", "0", Some(ttl))
                    .must("create a counter with a TTL")
            );
            c.increment("n", 1).must("increment");
        },
        |c| {
            c.increment("n", 1)?;
            ensure!(
                c.stat("n")?.expires_at.is_some(),
                "increment cleared the counter's TTL"
            );
            Ok(())
        },
        |c| {
            ensure!(
                !c.exists("n")?,
                "the counter outlived the deadline it was created with: increment moved it"
            );
            ensure!(c.increment("n", 3)? == 3, "an expired counter counts as 0");
            ensure!(
                c.stat("n")?.expires_at.is_none(),
                "a counter created by increment has no TTL"
            );
            Ok(())
        },
    );
}

pub(crate) fn concurrent_creates_of_one_key_have_one_winner(t: &Ctx) {
    let c = t.open();
    rounds(
        handles(t, &c, THREADS),
        MIN_ROUNDS,
        |h, _| {
            h.delete("lock").must("delete lock");
        },
        |i, h, _| h.create("lock", format!("t{i}"), None).must("create lock"),
        |round, won| {
            let winners = winners(&won);
            assert_eq!(
                winners.len(),
                1,
                "round {round}: {} of {THREADS} creates of one missing key, through clones and \
                 other contracts of the store, returned true; exactly one may (a \
                 check-then-act create?)",
                winners.len()
            );
            assert_eq!(
                value(&c, "lock"),
                winners.first().map(|w| format!("t{w}")),
                "round {round}: the key holds another value than the winner's"
            );
        },
    );
}

pub(crate) fn concurrent_set_if_version_has_one_winner(t: &Ctx) {
    let c = t.open();
    let version = Mutex::new(None::<Version>);
    rounds(
        handles(t, &c, THREADS),
        MIN_ROUNDS,
        |h, round| {
            h.set("cas", format!("start {round}"), None).must("set");
            *version.lock().unwrap() = Some(h.stat("cas").must("stat").version);
        },
        |i, h, _| {
            let v = version.lock().unwrap().expect("set in setup");
            h.set_if_version("cas", format!("t{i}"), None, v)
                .must("set_if_version")
        },
        |round, won| {
            let winners = winners(&won);
            assert_eq!(
                winners.len(),
                1,
                "round {round}: {} of {THREADS} compare-and-sets with one version returned \
                 true; exactly one may (a compare that does not compare, or a compare and a \
                 set in two steps?)",
                winners.len()
            );
            assert_eq!(value(&c, "cas"), winners.first().map(|w| format!("t{w}")));
        },
    );
}

pub(crate) fn concurrent_increments_lose_no_update(t: &Ctx) {
    let c = t.open();
    let total = AtomicUsize::new(0);
    let ran = rounds(
        handles(t, &c, THREADS),
        MIN_ROUNDS,
        |_, _| {},
        |_, h, _| h.increment("hits", 1).must("increment"),
        |round, sums| {
            let base = (round * THREADS) as i64;
            let mut sums = sums;
            sums.sort_unstable();
            let expected: Vec<i64> = (1..=THREADS as i64).map(|n| base + n).collect();
            assert_eq!(
                sums, expected,
                "round {round}: {THREADS} increments started together returned these sums; \
                 each must see every increment before it (a read and a write in two steps \
                 loses updates)"
            );
            total.fetch_add(THREADS, Ordering::Relaxed);
        },
    );
    assert_eq!(
        value(&c, "hits"),
        Some((ran * THREADS).to_string()),
        "the counter after {ran} rounds of {THREADS} increments"
    );
    assert_eq!(total.load(Ordering::Relaxed), ran * THREADS);
}

pub(crate) fn get_or_insert_with_loads_once_for_every_contract_of_the_store(t: &Ctx) {
    let c = t.open();
    let loads: Vec<AtomicUsize> = (0..MIN_ROUNDS * 20).map(|_| AtomicUsize::new(0)).collect();
    let ran = rounds(
        handles(t, &c, THREADS),
        MIN_ROUNDS,
        |_, _| {},
        |i, h, round| {
            h.get_or_insert_with(&format!("k/{round:05}"), None, || {
                if let Some(n) = loads.get(round) {
                    n.fetch_add(1, Ordering::SeqCst);
                }
                // Long enough for the other threads to miss and wait meanwhile.
                std::thread::sleep(Duration::from_millis(1));
                Ok::<_, Error>(format!("t{i}"))
            })
            .must("get_or_insert_with")
        },
        |round, got| {
            let loaded = loads.get(round).map_or(0, |n| n.load(Ordering::SeqCst));
            assert_eq!(
                loaded, 1,
                "round {round}: {loaded} loaders ran for one key among {THREADS} callers \
                 (clones and other contracts of the store); the ones that waited read the \
                 store and must find the value the first stored"
            );
            assert!(
                got.iter().all(|v| Some(v) == got.first()),
                "round {round}: callers got different values: {got:?}"
            );
        },
    );
    assert_eq!(c.list("k/").must("list").len(), ran);
}

pub(crate) fn get_or_insert_with_keeps_what_is_stored(t: &Ctx) {
    let c = t.open();
    c.set("k", "stored", None).must("set");
    let got = c
        .get_or_insert_with("k", None, || -> Result<&str, Error> {
            panic!("the loader ran for a key that was stored")
        })
        .must("get_or_insert_with");
    assert_eq!(got, "stored");
    let made = c
        .get_or_insert_with("new", None, || Ok::<_, Error>("made"))
        .must("get_or_insert_with a missing key");
    assert_eq!(made, "made");
    assert_eq!(
        value(&c, "new").as_deref(),
        Some("made"),
        "the value was stored"
    );
    let err = c
        .get_or_insert_with("failing", None, || {
            Err::<&str, Error>(Error::InvalidInput {
                driver: "loader",
                contract: std::sync::Arc::from("the loader's"),
                key: None,
                reason: "the loader's own error".to_owned(),
            })
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("the loader's own error"),
        "the loader's error reaches its caller: {err}"
    );
    assert!(
        !c.exists("failing").must("exists"),
        "a failed loader stored something"
    );
}
