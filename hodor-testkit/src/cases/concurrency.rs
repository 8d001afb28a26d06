//! Many threads at once: no lost writes, no torn or expired reads, one winner per delete,
//! and no reader ever sees a write half done.
//!
//! Half of the threads use clones of one contract and half open the store by name again,
//! so both sharing paths are exercised. The races are built to happen in every run (see
//! [`crate::race`]): threads start together on the same key, round after round, and readers
//! read for as long as writers write.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hodor_core::{Contract, Error};

use crate::TestClock;
use crate::ctx::{Ctx, Must, handles, parallel, show};
use crate::race::{MIN_READS, MIN_ROUNDS, MIN_WRITES, SetOnDrop, rounds, writers_and_readers};

const THREADS: usize = 4;

pub(crate) fn concurrent_writers_lose_no_write(t: &Ctx) {
    let c = t.open();
    // Each round, every thread writes its own new key at the same instant.
    let key = |i: usize, round: usize| format!("w/{i}/{round:05}");
    let ran = rounds(
        handles(t, &c, THREADS),
        MIN_ROUNDS,
        |_, _| {},
        |i, h, round| {
            h.set(&key(i, round), format!("{i}:{round}"), None)
                .must("set");
        },
        |_, _| {},
    );
    let listed = c.list("w/").must("list");
    assert_eq!(
        listed.len(),
        THREADS * ran,
        "every write of distinct keys by concurrent threads is kept"
    );
    for i in 0..THREADS {
        for round in 0..ran {
            let key = key(i, round);
            match c.get(&key) {
                Ok(v) => assert_eq!(v, format!("{i}:{round}"), "the value of {key}"),
                Err(e) => panic!("the write of {key} was lost: {e}"),
            }
        }
    }
}

pub(crate) fn contended_writers_leave_a_written_value(t: &Ctx) {
    const WRITES: usize = 200;
    let c = t.open();
    parallel(handles(t, &c, THREADS), |i, h| {
        for n in 0..WRITES {
            h.set("hot", format!("t{i}-{n}"), None).must("set hot");
        }
    });
    let last: Vec<String> = (0..THREADS)
        .map(|i| format!("t{i}-{}", WRITES - 1))
        .collect();
    let got = c.get("hot").must("get hot");
    assert!(
        last.iter().any(|v| got == v.as_str()),
        "after contended writers, the value {} is not one thread's last write",
        show(&got)
    );
    assert_eq!(c.list("").must("list"), ["hot"]);
}

/// The length a value made of `byte` has, so a reader can tell a torn value.
fn torn_len(byte: u8) -> usize {
    1 + (usize::from(byte) * 7919) % 65_536
}

fn check_whole(v: &[u8], what: &str) {
    let Some(&byte) = v.first() else {
        panic!("{what}: an empty value was never written");
    };
    assert!(
        v.len() == torn_len(byte) && v.iter().all(|&b| b == byte),
        "{what}: torn value ({} bytes of which the first is {byte}, expected {} bytes all \
         {byte})",
        v.len(),
        torn_len(byte)
    );
}

pub(crate) fn readers_never_see_torn_values(t: &Ctx) {
    const WRITERS: usize = 2;
    let c = t.open();
    c.set("k", vec![0u8; torn_len(0)], None).must("set");
    writers_and_readers(
        handles(t, &c, WRITERS + 2),
        WRITERS,
        MIN_WRITES,
        MIN_READS,
        |i, h, n| {
            let byte = ((n * WRITERS + i) % 256) as u8;
            h.set("k", vec![byte; torn_len(byte)], None).must("set");
        },
        |_, h| {
            check_whole(&h.get("k").must("get"), "get");
            if let [Some(v)] = h.get_many(&["k"]).must("get_many").as_slice() {
                check_whole(v, "get_many");
            } else {
                panic!("get_many of a key that always exists returned no value");
            }
        },
    );
}

pub(crate) fn readers_never_see_expired_values(t: &Ctx) {
    let c = t.open();
    match t.clock().clone() {
        TestClock::Manual(clock) => {
            // The clock moves in steps, each after both readers finished a round of reads,
            // so reads happen at every step, the deadline exactly among them.
            const STEP: Duration = Duration::from_millis(10);
            const STEPS: usize = 60;
            let ttl = STEP * 30;
            let deadline = clock.now() + ttl;
            c.set("k", "v", Some(ttl)).must("set");
            c.set_many([("e/1", "v"), ("e/2", "v")], Some(ttl))
                .must("set_many");
            let rounds = AtomicUsize::new(0);
            let done = AtomicBool::new(false);
            let failed = AtomicBool::new(false);
            parallel(handles(t, &c, 3), |i, h| {
                if i == 0 {
                    'steps: for _ in 0..STEPS {
                        let seen = rounds.load(Ordering::Acquire);
                        while rounds.load(Ordering::Acquire) < seen + 2 {
                            if failed.load(Ordering::Acquire) {
                                break 'steps;
                            }
                            std::thread::yield_now();
                        }
                        clock.advance(STEP);
                    }
                    done.store(true, Ordering::Release);
                    return;
                }
                // A reader that fails stops the clock thread instead of leaving it waiting.
                let _flag = SetOnDrop(&failed);
                let mut gone = false;
                while !done.load(Ordering::Acquire) {
                    let now = clock.now();
                    let expired = now >= deadline;
                    let live = match h.get("k") {
                        Ok(v) => {
                            assert_eq!(v, "v");
                            true
                        }
                        Err(Error::NotFound { .. }) => false,
                        Err(e) => panic!("get: {e}"),
                    };
                    assert!(
                        !(live && expired),
                        "get returned a value expired at {deadline:?}; the read began at {now:?}"
                    );
                    assert!(!(live && gone), "an expired entry came back");
                    if !live {
                        assert!(
                            clock.now() >= deadline,
                            "get found nothing before the deadline {deadline:?}"
                        );
                        gone = true;
                    }
                    let listed = h.list("e/").must("list");
                    assert!(
                        !expired || listed.is_empty(),
                        "list showed expired keys {listed:?} at {now:?}"
                    );
                    if expired {
                        assert!(!h.exists("e/1").must("exists"), "exists of an expired key");
                    }
                    rounds.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
        TestClock::Real { slack } => {
            let ttl = Duration::from_millis(150);
            c.set("k", "v", Some(ttl)).must("set");
            let set_done = Instant::now();
            let stop = set_done + ttl + slack + Duration::from_millis(50);
            parallel(handles(t, &c, 2), |_, h| {
                let mut gone = false;
                while Instant::now() < stop {
                    let began = set_done.elapsed();
                    let live = match h.get("k") {
                        Ok(_) => true,
                        Err(Error::NotFound { .. }) => false,
                        Err(e) => panic!("get: {e}"),
                    };
                    assert!(
                        !(live && began >= ttl + slack),
                        "get returned a value {began:?} after a set with TTL {ttl:?}"
                    );
                    assert!(!(live && gone), "an expired entry came back");
                    gone |= !live;
                    std::thread::sleep(Duration::from_millis(2));
                }
                // A reader descheduled past the deadline may not have seen it go; now, well
                // past deadline and slack, it must be gone.
                assert!(
                    matches!(h.get("k"), Err(Error::NotFound { .. })),
                    "the entry was still there {:?} after a set with TTL {ttl:?}",
                    set_done.elapsed()
                );
            });
        }
    }
}

pub(crate) fn concurrent_deletes_remove_once(t: &Ctx) {
    const KEYS: usize = 200;
    let c = t.open();
    let keys: Vec<String> = (0..KEYS).map(|n| format!("d/{n:03}")).collect();
    for key in &keys {
        c.set(key, "v", None).must("set");
    }
    let removed = parallel(handles(t, &c, THREADS), |i, h| {
        let mut mine = vec![false; KEYS];
        // Each thread walks the keys from a different starting point.
        for step in 0..KEYS {
            let n = (step + i * KEYS / THREADS) % KEYS;
            if let (Some(key), Some(slot)) = (keys.get(n), mine.get_mut(n)) {
                *slot = h.delete(key).must("delete");
            }
        }
        mine
    });
    for (n, key) in keys.iter().enumerate() {
        let winners = removed
            .iter()
            .filter(|mine| mine.get(n).copied().unwrap_or(false))
            .count();
        assert_eq!(
            winners, 1,
            "{winners} of {THREADS} concurrent deletes of {key} returned true; exactly one \
             removed the live entry"
        );
    }
    assert!(c.list("").must("list").is_empty());
}

pub(crate) fn concurrent_lists_stay_sorted_and_complete(t: &Ctx) {
    let c = t.open();
    let stable: Vec<String> = (0..100).step_by(2).map(|n| format!("s/{n:03}")).collect();
    for key in &stable {
        c.set(key, "v", None).must("set");
    }
    writers_and_readers(
        handles(t, &c, 4),
        2,
        MIN_WRITES,
        MIN_READS,
        |i, h, round| {
            let n = (round * 2 + 1 + i * 50) % 100;
            let key = format!("s/{n:03}");
            h.set(&key, "v", None).must("set");
            h.set(&format!("{key}x"), "v", None).must("set");
            h.delete(&key).must("delete");
        },
        |_, h| {
            let listed = h.list("s/").must("list");
            assert!(
                listed
                    .windows(2)
                    .all(|w| matches!(w, [a, b] if a.as_bytes() < b.as_bytes())),
                "a list during writes is not strictly sorted: {listed:?}"
            );
            let missing: Vec<&String> = stable
                .iter()
                .filter(|k| listed.binary_search(k).is_err())
                .collect();
            assert!(
                missing.is_empty(),
                "a list during writes to other keys missed {missing:?}"
            );
        },
    );
}

pub(crate) fn concurrent_deletes_of_one_key_remove_it_once(t: &Ctx) {
    let c = t.open();
    c.set("other", "v", None).must("set other");
    rounds(
        handles(t, &c, THREADS),
        MIN_ROUNDS,
        |h, round| h.set("hot", round.to_string(), None).must("set hot"),
        |i, h, round| {
            // Every fourth round, half of the threads use delete_many.
            if round % 4 == 3 && i % 2 == 1 {
                h.delete_many(&["hot", "hot"]).must("delete_many hot") == 1
            } else {
                h.delete("hot").must("delete hot")
            }
        },
        |round, removed| {
            let winners = removed.iter().filter(|&&r| r).count();
            assert_eq!(
                winners, 1,
                "round {round}: {winners} of {THREADS} deletes started together on one live key \
                 reported removing it; exactly one removed the entry (a check-then-act delete?)"
            );
            assert!(
                !c.exists("hot").must("exists hot"),
                "round {round}: the key survived its deletes"
            );
        },
    );
    assert_eq!(
        c.list("").must("list"),
        ["other"],
        "only the other key is left"
    );
}

pub(crate) fn concurrent_creates_of_one_key_list_it_once(t: &Ctx) {
    let c = t.open();
    let key = |round: usize| format!("new/{round:05}");
    let ran = rounds(
        handles(t, &c, THREADS),
        MIN_ROUNDS,
        |_, _| {},
        |i, h, round| {
            let key = key(round);
            if i % 2 == 1 && round % 3 == 0 {
                h.set_many([(key.as_str(), format!("t{i}"))], None)
                    .must("set_many a new key");
            } else {
                h.set(&key, format!("t{i}"), None).must("set a new key");
            }
        },
        |round, _| {
            let key = key(round);
            let listed = c.list(&key).must("list");
            assert_eq!(
                listed,
                [key.as_str()],
                "round {round}: {THREADS} threads created one key at the same instant; it must \
                 be listed exactly once"
            );
            let value = c.get(&key).must("get the new key");
            assert!(
                (0..THREADS).any(|i| value == format!("t{i}").as_str()),
                "round {round}: the value {} was not written by any thread",
                show(&value)
            );
        },
    );
    assert_eq!(c.list("new/").must("list").len(), ran);
}

pub(crate) fn readers_never_miss_a_key_being_overwritten(t: &Ctx) {
    const WRITERS: usize = 2;
    let c = t.open();
    c.set("k", "v-init", None).must("set k");
    c.set("k/child", "v", None).must("set k/child");
    writers_and_readers(
        handles(t, &c, WRITERS + 2),
        WRITERS,
        MIN_WRITES,
        MIN_READS,
        |i, h, n| {
            let value = format!("v-{i}-{n}");
            if n % 5 == 4 {
                h.set_many([("k", value)], None).must("set_many k");
            } else {
                h.set("k", value, None).must("set k");
            }
        },
        |_, h| {
            // Each read kind in turn; every one must find the key that always exists.
            let value = h.get("k").unwrap_or_else(|e| {
                panic!(
                    "get of a key that is only ever overwritten failed: {e} (an overwrite \
                        that deletes, then inserts?)"
                )
            });
            assert!(value.starts_with(b"v-"), "get returned {}", show(&value));
            assert!(
                h.exists("k").must("exists"),
                "exists of a key being overwritten is false"
            );
            h.stat("k").unwrap_or_else(|e| {
                panic!("stat of a key that is only ever overwritten failed: {e}")
            });
            let many = h.get_many(&["k"]).must("get_many");
            assert!(
                matches!(many.as_slice(), [Some(_)]),
                "get_many of a key being overwritten found nothing"
            );
            let listed = h.list("k").must("list");
            assert_eq!(listed, ["k", "k/child"], "list of a key being overwritten");
        },
    );
}

pub(crate) fn readers_see_each_value_with_its_own_ttl(t: &Ctx) {
    // Two values of different lengths: stat's size tells which one a reader saw, and its
    // expires_at must belong to that same write.
    const WITH_TTL: &str = "with-ttl";
    const WITHOUT_TTL: &str = "written-without-ttl";
    let ttl = Duration::from_secs(3600);
    let c = t.open();
    c.set("k", WITHOUT_TTL, None).must("set k");
    writers_and_readers(
        handles(t, &c, 4),
        2,
        MIN_WRITES,
        MIN_READS,
        |i, h, n| {
            let (value, ttl) = if (n + i) % 2 == 0 {
                (WITH_TTL, Some(ttl))
            } else {
                (WITHOUT_TTL, None)
            };
            if n % 7 == 6 {
                h.set_many([("k", value)], ttl).must("set_many k");
            } else {
                h.set("k", value, ttl).must("set k");
            }
        },
        |_, h| {
            let meta = h.stat("k").must("stat k");
            if meta.size == WITH_TTL.len() as u64 {
                assert!(
                    meta.expires_at.is_some(),
                    "stat saw the value written with a TTL but no expiry: the TTL is set in a \
                     second step after the value"
                );
            } else {
                assert_eq!(meta.size, WITHOUT_TTL.len() as u64, "stat size");
                assert!(
                    meta.expires_at.is_none(),
                    "stat saw the value written without a TTL with the expiry {:?} of an \
                     earlier write: the old TTL is cleared in a second step",
                    meta.expires_at
                );
            }
        },
    );
}

/// The n-th key of the list/get agreement case.
fn nth(n: usize) -> String {
    format!("g/{n:05}")
}

fn number_of(key: &str) -> Option<usize> {
    key.strip_prefix("g/")?.parse().ok()
}

/// The keys listed in the blocks of a hundred holding keys `from..=to`, in order: a read
/// costs the same however many keys the writer has made.
fn listed_around(h: &Contract, from: usize, to: usize) -> Vec<String> {
    let mut listed = Vec::new();
    for block in from / 100..=to / 100 {
        listed.extend(h.list(&format!("g/{block:03}")).must("list"));
    }
    listed
}

pub(crate) fn list_and_get_agree_while_keys_come_and_go(t: &Ctx) {
    let c = t.open();
    // Phase one: keys are only created, in order; `done` counts the sets that returned.
    let done = AtomicUsize::new(0);
    writers_and_readers(
        handles(t, &c, 3),
        1,
        MIN_WRITES,
        MIN_READS,
        |_, h, n| {
            h.set(&nth(n), "v", None).must("set");
            done.store(n + 1, Ordering::Release);
        },
        |_, h| {
            let before = done.load(Ordering::Acquire);
            // The key being written: once get finds it, list must show it.
            let next = nth(before);
            if h.exists(&next).must("exists") {
                let listed = h.list(&next).must("list");
                assert!(
                    listed.contains(&next),
                    "{next} was readable but not listed: the data is written before the index"
                );
            }
            // The latest completed writes (earlier ones were checked by earlier reads).
            let from = before.saturating_sub(64);
            let listed = listed_around(h, from, before);
            for n in from..before {
                assert!(
                    listed.binary_search(&nth(n)).is_ok(),
                    "{} was written before the list began but is not listed",
                    nth(n)
                );
            }
            // Nothing is deleted in this phase: whatever is listed can be read.
            for key in listed
                .iter()
                .filter(|k| number_of(k).is_some_and(|n| n >= before))
            {
                assert!(
                    h.get(key).is_ok(),
                    "{key} was listed but get found nothing: the index is written before the \
                     data"
                );
            }
        },
    );
    let created = done.load(Ordering::Acquire);
    // Phase two: the keys are only deleted, in order; `gone` counts the deletes that
    // returned.
    let gone = AtomicUsize::new(0);
    writers_and_readers(
        handles(t, &c, 3),
        1,
        created.min(MIN_WRITES),
        MIN_READS,
        |_, h, n| {
            if n < created {
                h.delete(&nth(n)).must("delete");
                gone.store(n + 1, Ordering::Release);
            }
        },
        |_, h| {
            let before = gone.load(Ordering::Acquire);
            // The key being deleted: once get misses it, list must not show it.
            let next = nth(before);
            if before < created && !h.exists(&next).must("exists") {
                let listed = h.list(&next).must("list");
                assert!(
                    !listed.contains(&next),
                    "{next} was no longer readable but still listed: the data is removed before \
                     the index"
                );
            }
            let to = (before + 64).min(created);
            let listed = listed_around(h, before, to);
            if let Some(first) = listed.first() {
                assert!(
                    number_of(first).is_some_and(|n| n >= before),
                    "{first} was deleted before the list began but is listed"
                );
            }
            // Nothing is created in this phase: a key missing from the list stays gone.
            let unlisted = (before..to)
                .map(nth)
                .find(|k| listed.binary_search(k).is_err());
            if let Some(key) = unlisted {
                assert!(
                    !h.exists(&key).must("exists"),
                    "{key} was not listed but still readable: the index is removed before the \
                     data"
                );
            }
        },
    );
    assert!(c.list("g/").must("list").len() <= created);
}

pub(crate) fn entries_gauge_is_exact_after_concurrent_writes(t: &Ctx) {
    const PER_THREAD: usize = 150;
    let c = t.open();
    if c.metrics().entries.is_none() {
        t.skip("the driver reports no entries gauge");
        return;
    }
    parallel(handles(t, &c, THREADS), |i, h| {
        for n in 0..PER_THREAD {
            h.set(&format!("e/{i}/{n:03}"), "v", None).must("set");
            if n % 3 == 0 {
                // Overwrites and deletes move the gauge too, or must leave it alone.
                h.set(&format!("e/{i}/{n:03}"), "w", None).must("overwrite");
                h.delete(&format!("e/{i}/{:03}", n / 2)).must("delete");
            }
        }
    });
    let listed = c.list("").must("list").len() as u64;
    assert_eq!(
        c.metrics().entries,
        Some(listed),
        "after concurrent writes and deletes, the entries gauge differs from the {listed} \
         keys listed"
    );
}
