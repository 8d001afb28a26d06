//! Many threads at once: no lost writes, no torn or expired reads, one winner per delete.
//!
//! Half of the threads use clones of one contract and half open the store by name again,
//! so both sharing paths are exercised.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hodor_core::{Contract, Error};

use crate::TestClock;
use crate::ctx::{Ctx, Must, parallel, show};

const THREADS: usize = 4;

/// One contract per thread: clones for even threads, second opens for odd ones.
fn handles(t: &Ctx, c: &Contract, n: usize) -> Vec<Contract> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                c.clone()
            } else {
                t.open_as(c.name())
            }
        })
        .collect()
}

pub(crate) fn concurrent_writers_lose_no_write(t: &Ctx) {
    const PER_THREAD: usize = 250;
    let c = t.open();
    parallel(handles(t, &c, THREADS), |i, h| {
        for n in 0..PER_THREAD {
            h.set(&format!("w/{i}/{n:03}"), format!("{i}:{n}"), None)
                .must("set");
        }
    });
    let listed = c.list("w/").must("list");
    assert_eq!(
        listed.len(),
        THREADS * PER_THREAD,
        "every write of distinct keys by concurrent threads is kept"
    );
    for i in 0..THREADS {
        for n in 0..PER_THREAD {
            let key = format!("w/{i}/{n:03}");
            match c.get(&key) {
                Ok(v) => assert_eq!(v, format!("{i}:{n}"), "the value of {key}"),
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
    const WRITES: usize = 300;
    let c = t.open();
    c.set("k", vec![0u8; torn_len(0)], None).must("set");
    let done = AtomicUsize::new(0);
    parallel(handles(t, &c, WRITERS + 2), |i, h| {
        if i < WRITERS {
            for n in 0..WRITES {
                let byte = ((n * WRITERS + i) % 256) as u8;
                h.set("k", vec![byte; torn_len(byte)], None).must("set");
            }
            done.fetch_add(1, Ordering::AcqRel);
        } else {
            let mut reads = 0;
            while (done.load(Ordering::Acquire) < WRITERS && reads < 300) || reads < 10 {
                check_whole(&h.get("k").must("get"), "get");
                if let [Some(v)] = h.get_many(&["k"]).must("get_many").as_slice() {
                    check_whole(v, "get_many");
                } else {
                    panic!("get_many of a key that always exists returned no value");
                }
                reads += 1;
            }
        }
    });
}

pub(crate) fn readers_never_see_expired_values(t: &Ctx) {
    let c = t.open();
    if !t.supports_ttl(&c) {
        return;
    }
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

/// Sets the flag when dropped, which includes unwinding from a panic.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
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
    const ROUNDS: usize = 300;
    let c = t.open();
    let stable: Vec<String> = (0..100).step_by(2).map(|n| format!("s/{n:03}")).collect();
    for key in &stable {
        c.set(key, "v", None).must("set");
    }
    let done = AtomicUsize::new(0);
    parallel(handles(t, &c, 4), |i, h| {
        if i < 2 {
            for round in 0..ROUNDS {
                let n = (round * 2 + 1 + i * 50) % 100;
                let key = format!("s/{n:03}");
                h.set(&key, "v", None).must("set");
                h.set(&format!("{key}x"), "v", None).must("set");
                h.delete(&key).must("delete");
            }
            done.fetch_add(1, Ordering::AcqRel);
        } else {
            // Until the writers finish, within a bound so readers cannot starve them.
            let mut lists = 0;
            while (done.load(Ordering::Acquire) < 2 && lists < 300) || lists < 10 {
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
                lists += 1;
            }
        }
    });
}
