//! Expiry: an entry set at `t` with TTL `d` is live strictly before `t + d` and gone from
//! that instant on, for every operation.

use std::time::Duration;

use hodor_core::{Contract, Error, MAX_TTL};

use crate::ctx::{Check, Ctx, Must, assert_err, ensure};

fn is_not_found<T: std::fmt::Debug>(r: hodor_core::Result<T>) -> Result<bool, Error> {
    match r {
        Ok(_) => Ok(false),
        Err(Error::NotFound { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// `expires_at - modified` is `ttl`, exactly or within the slack.
fn check_ttl_of(t: &Ctx, c: &Contract, key: &str, ttl: Duration) -> Check {
    let meta = c.stat(key)?;
    let Some(expires_at) = meta.expires_at else {
        return Err(crate::ctx::Failed(format!(
            "stat {key:?} reports no expiry; expected a TTL of {ttl:?}"
        )));
    };
    let kept = expires_at.duration_since(meta.modified).unwrap_or_default();
    let slack = t.slack();
    ensure!(
        kept + slack >= ttl && kept <= ttl + slack,
        "stat {key:?}: expires_at - modified is {kept:?}, expected the last TTL set, {ttl:?}"
    );
    Ok(())
}

pub(crate) fn ttl_get_is_not_found_from_the_deadline(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            c.set("k", "v", Some(ttl)).must("set k with a TTL");
            c.set("stay", "v", None).must("set stay");
        },
        |c| {
            ensure!(c.get("k")? == "v", "get k before its deadline");
            Ok(())
        },
        |c| {
            ensure!(
                is_not_found(c.get("k"))?,
                "get k from its deadline on returned {:?}",
                c.get("k")
            );
            ensure!(c.get("stay")? == "v", "get of a key without TTL");
            Ok(())
        },
    );
}

pub(crate) fn ttl_exists_is_false_from_the_deadline(t: &Ctx) {
    t.across_expiry(
        |c, ttl| c.set("k", "v", Some(ttl)).must("set k with a TTL"),
        |c| {
            ensure!(c.exists("k")?, "exists k before its deadline");
            Ok(())
        },
        |c| {
            ensure!(!c.exists("k")?, "exists k from its deadline on is true");
            Ok(())
        },
    );
}

pub(crate) fn ttl_stat_is_not_found_from_the_deadline(t: &Ctx) {
    t.across_expiry(
        |c, ttl| c.set("k", "v", Some(ttl)).must("set k with a TTL"),
        |c| {
            ensure!(c.stat("k")?.size == 1, "stat k before its deadline");
            Ok(())
        },
        |c| {
            ensure!(
                is_not_found(c.stat("k"))?,
                "stat k from its deadline on returned {:?}",
                c.stat("k")
            );
            Ok(())
        },
    );
}

pub(crate) fn ttl_list_omits_keys_from_the_deadline(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            c.set("e/1", "v", Some(ttl)).must("set");
            c.set("e/2", "v", Some(ttl)).must("set");
            c.set("e/3", "v", None).must("set");
            c.set("f", "v", Some(ttl)).must("set");
        },
        |c| {
            let all = c.list("")?;
            ensure!(
                all == ["e/1", "e/2", "e/3", "f"],
                "list before the deadline: {all:?}"
            );
            Ok(())
        },
        |c| {
            let all = c.list("")?;
            ensure!(all == ["e/3"], "list \"\" from the deadline on: {all:?}");
            let e = c.list("e/")?;
            ensure!(e == ["e/3"], "list \"e/\" from the deadline on: {e:?}");
            let f = c.list("f")?;
            ensure!(f.is_empty(), "list \"f\" from the deadline on: {f:?}");
            Ok(())
        },
    );
}

pub(crate) fn ttl_delete_of_an_expired_key_is_false(t: &Ctx) {
    t.across_expiry(
        |c, ttl| c.set("k", "v", Some(ttl)).must("set k with a TTL"),
        |c| {
            ensure!(c.exists("k")?, "exists k before its deadline");
            Ok(())
        },
        |c| {
            ensure!(!c.exists("k")?, "k still exists");
            // Once gone, a delete removes no live entry: a hard failure, not polled.
            assert!(
                !c.delete("k").must("delete k"),
                "delete of an expired key returned true; it removed no live entry"
            );
            Ok(())
        },
    );
}

pub(crate) fn ttl_get_many_is_none_from_the_deadline(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            c.set("k", "v", Some(ttl)).must("set k with a TTL");
            c.set("stay", "w", None).must("set stay");
        },
        |c| {
            let got = c.get_many(&["k", "stay"])?;
            ensure!(
                got == [Some("v".into()), Some("w".into())],
                "get_many before the deadline: {got:?}"
            );
            Ok(())
        },
        |c| {
            let got = c.get_many(&["k", "stay"])?;
            ensure!(
                got == [None, Some("w".into())],
                "get_many from the deadline on: {got:?}"
            );
            Ok(())
        },
    );
}

pub(crate) fn ttl_set_without_ttl_clears_it(t: &Ctx) {
    t.across_expiry(
        |c, ttl| {
            c.set("k", "old", Some(ttl)).must("set k with a TTL");
            c.set("k", "new", None).must("overwrite k without a TTL");
        },
        |c| {
            ensure!(c.get("k")? == "new", "get k after the overwrite");
            let expires = c.stat("k")?.expires_at;
            ensure!(
                expires.is_none(),
                "stat k after an overwrite without TTL still expires at {expires:?}"
            );
            Ok(())
        },
        |c| {
            ensure!(
                !is_not_found(c.get("k"))?,
                "k expired with the TTL of its previous value; set without a TTL must clear it"
            );
            ensure!(c.get("k")? == "new", "get k");
            ensure!(c.list("")? == ["k"], "list after the old deadline");
            Ok(())
        },
    );
}

pub(crate) fn ttl_new_ttl_replaces_the_old(t: &Ctx) {
    let done = t.across_expiry(
        |c, ttl| {
            c.set("longer", "v", Some(ttl)).must("set");
            c.set("longer", "v", Some(ttl * 3)).must("set a longer TTL");
            c.set("shorter", "v", Some(ttl * 3)).must("set");
            c.set("shorter", "v", Some(ttl)).must("set a shorter TTL");
        },
        |c| {
            ensure!(c.exists("longer")? && c.exists("shorter")?, "both live");
            Ok(())
        },
        |c| {
            ensure!(
                c.exists("longer")?,
                "an entry given a longer TTL expired at its first deadline"
            );
            ensure!(
                !c.exists("shorter")?,
                "an entry given a shorter TTL outlived it"
            );
            Ok(())
        },
    );
    let Some((c, ttl)) = done else { return };
    check_ttl_of(t, &c, "longer", ttl * 3).unwrap_or_else(|e| panic!("{e}"));
    if let crate::TestClock::Manual(clock) = t.clock() {
        clock.advance(ttl * 2 - Duration::from_nanos(1));
        assert!(
            c.exists("longer").must("exists"),
            "1 ns before the new deadline"
        );
        clock.advance(Duration::from_nanos(1));
        assert!(!c.exists("longer").must("exists"), "at the new deadline");
    }
}

pub(crate) fn ttl_zero_is_invalid_input(t: &Ctx) {
    let c = t.open();
    c.set("k", "v", None).must("set k");
    assert_err!(
        c.set("k", "w", Some(Duration::ZERO)),
        Error::InvalidInput { .. },
        "set with a zero TTL"
    );
    assert_err!(
        c.set("new", "w", Some(Duration::ZERO)),
        Error::InvalidInput { .. },
        "set of a new key with a zero TTL"
    );
    assert_err!(
        c.set_many([("k", "w"), ("new", "w")], Some(Duration::ZERO)),
        Error::InvalidInput { .. },
        "set_many with a zero TTL"
    );
    assert_eq!(
        c.get("k").must("get k"),
        "v",
        "a rejected set changes nothing"
    );
    assert_eq!(
        c.list("").must("list"),
        ["k"],
        "a rejected set writes nothing"
    );
}

pub(crate) fn ttl_over_the_maximum_is_invalid_input(t: &Ctx) {
    let c = t.open();
    let over = MAX_TTL + Duration::from_millis(1);
    assert_err!(
        c.set("k", "v", Some(over)),
        Error::InvalidInput { .. },
        "set with a TTL over MAX_TTL"
    );
    assert!(
        !c.exists("k").must("exists"),
        "a rejected set writes nothing"
    );
    if !c.capabilities().ttl {
        return;
    }
    let before = t.now();
    c.set("k", "v", Some(MAX_TTL))
        .must("set with a TTL of exactly MAX_TTL");
    assert_eq!(c.get("k").must("get"), "v");
    let expires_at = c.stat("k").must("stat").expires_at;
    let expires_at = expires_at.unwrap_or_else(|| panic!("a MAX_TTL entry reports no expiry"));
    t.assert_time_between(
        "expires_at",
        expires_at,
        before + MAX_TTL,
        t.now() + MAX_TTL,
    );
}

pub(crate) fn ttl_stat_reports_expires_at(t: &Ctx) {
    let c = t.open();
    let ttl = Duration::from_secs(3600);
    let before = t.now();
    c.set("k", "v", Some(ttl)).must("set k with a TTL");
    let after = t.now();
    let meta = c.stat("k").must("stat k");
    let expires_at = meta
        .expires_at
        .unwrap_or_else(|| panic!("stat of an entry with a TTL reports no expiry"));
    t.assert_time_between("expires_at", expires_at, before + ttl, after + ttl);
    t.assert_time_between("modified", meta.modified, before, after);
    c.set("k", "v", Some(ttl * 2)).must("set k with a new TTL");
    let later = c.stat("k").must("stat k").expires_at;
    assert!(
        later.is_some_and(|l| l > expires_at),
        "a longer TTL moves expires_at later: {later:?} after {expires_at:?}"
    );
    c.set("k", "v", None).must("set k without a TTL");
    assert_eq!(c.stat("k").must("stat k").expires_at, None, "TTL cleared");
}

pub(crate) fn ttl_sub_millisecond_rounds_up(t: &Ctx) {
    let clock = t.manual_clock();
    let c = t.open();
    let t0 = clock.now();
    let cases = [
        ("1ns", Duration::from_nanos(1), Duration::from_millis(1)),
        (
            "999us",
            Duration::from_micros(999),
            Duration::from_millis(1),
        ),
        ("1ms", Duration::from_millis(1), Duration::from_millis(1)),
        (
            "1.5ms",
            Duration::from_micros(1500),
            Duration::from_millis(2),
        ),
        (
            "2ms+1ns",
            Duration::new(0, 2_000_001),
            Duration::from_millis(3),
        ),
    ];
    for (key, ttl, kept) in cases {
        c.set(key, "v", Some(ttl)).must("set");
        assert_eq!(
            c.stat(key).must("stat").expires_at,
            Some(t0 + kept),
            "a TTL of {ttl:?} is kept as {kept:?}"
        );
    }
    clock.advance(Duration::from_nanos(999_999));
    assert!(c.exists("1ns").must("exists"), "a 1 ns TTL lasts 1 ms");
    clock.advance(Duration::from_nanos(1));
    assert!(!c.exists("1ns").must("exists"), "gone at 1 ms");
    assert!(c.exists("1.5ms").must("exists"), "1.5 ms is kept as 2 ms");
}

pub(crate) fn ttl_expired_key_can_be_set_again(t: &Ctx) {
    t.across_expiry(
        |c, ttl| c.set("k", "old", Some(ttl)).must("set k with a TTL"),
        |c| {
            ensure!(c.get("k")? == "old", "get k");
            Ok(())
        },
        |c| {
            ensure!(!c.exists("k")?, "k has not expired");
            c.set("k", "new", None).must("set k again after it expired");
            assert_eq!(c.get("k").must("get k"), "new", "the new value");
            assert_eq!(c.list("").must("list"), ["k"], "listed once");
            assert_eq!(c.stat("k").must("stat").expires_at, None, "no expiry");
            Ok(())
        },
    );
}

pub(crate) fn ttl_unsupported_is_an_error(t: &Ctx) {
    let c = t.open();
    let err = assert_err!(
        c.set("k", "v", Some(Duration::from_secs(1))),
        Error::Unsupported { .. },
        "set with a TTL on a driver without TTLs"
    );
    assert!(err.to_string().contains(c.driver()), "{err}");
    assert_err!(
        c.set_many([("k", "v")], Some(Duration::from_secs(1))),
        Error::Unsupported { .. },
        "set_many with a TTL on a driver without TTLs"
    );
    assert!(
        !c.exists("k").must("exists"),
        "an unsupported TTL stores nothing, rather than storing forever"
    );
}

pub(crate) fn ttl_entries_without_ttl_never_expire(t: &Ctx) {
    let done = t.across_expiry(
        |c, ttl| {
            c.set("forever", "v", None).must("set forever");
            c.set("temp", "v", Some(ttl)).must("set temp");
        },
        |c| {
            ensure!(c.exists("forever")? && c.exists("temp")?, "both live");
            Ok(())
        },
        |c| {
            ensure!(!c.exists("temp")?, "temp has not expired");
            ensure!(c.get("forever")? == "v", "an entry without TTL expired");
            Ok(())
        },
    );
    if let (Some((c, _)), crate::TestClock::Manual(clock)) = (done, t.clock()) {
        clock.advance(MAX_TTL * 2);
        assert_eq!(
            c.get("forever").must("get forever"),
            "v",
            "two centuries later"
        );
        assert_eq!(c.list("").must("list"), ["forever"]);
    }
}

pub(crate) fn ttl_cleared_entries_survive_reclamation(t: &Ctx) {
    let clock = t.manual_clock();
    let c = t.open();
    let ttl = Duration::from_secs(1);
    // Each key once had a deadline at `ttl` that a later write replaced: the old deadline
    // must not take the new entry with it when expired entries are reclaimed.
    c.set("cleared", "old", Some(ttl)).must("set");
    c.set("cleared", "new", None)
        .must("overwrite without a TTL");
    c.set("longer", "old", Some(ttl)).must("set");
    c.set("longer", "new", Some(ttl * 3))
        .must("overwrite with a longer TTL");
    c.set("by-batch", "old", Some(ttl)).must("set");
    c.set_many([("by-batch", "new")], None)
        .must("overwrite by set_many without a TTL");
    c.set("recreated", "old", Some(ttl)).must("set");
    c.delete("recreated").must("delete");
    c.set("recreated", "new", None)
        .must("set again without a TTL");
    c.set("expiring", "old", Some(ttl)).must("set");
    clock.advance(ttl);
    // Whatever reclaims expired entries runs now: writes, a sweep.
    for i in 0..200 {
        let ttl = (i % 2 == 0).then_some(ttl);
        c.set(&format!("churn/{i:03}"), "v", ttl).must("set");
    }
    let _ = t.harness().sweep(&c);
    let survivors = ["by-batch", "cleared", "longer", "recreated"];
    for key in survivors {
        assert_eq!(
            c.get(key).map_err(|e| e.to_string()),
            Ok("new".into()),
            "{key} was rewritten after its first TTL; reclaiming the old deadline removed \
             the new entry"
        );
    }
    assert!(!c.exists("expiring").must("exists"), "expiring has expired");
    let listed = c.list("").must("list");
    let kept: Vec<&str> = listed
        .iter()
        .map(String::as_str)
        .filter(|k| !k.starts_with("churn/"))
        .collect();
    assert_eq!(
        kept, survivors,
        "the rewritten keys are listed after reclamation"
    );
    clock.advance(ttl * 2);
    assert!(
        !c.exists("longer").must("exists"),
        "longer expires at its new deadline"
    );
    assert!(c.exists("cleared").must("exists"), "cleared never expires");
}
