//! Watching: every change is an event of the right kind, per key in the order the writes
//! took effect; prefixes are bytes; a slow consumer gets `Lagged` and never blocks writers;
//! resuming replays exactly what came after a `seq`, or says to resync; a snapshot and its
//! stream have no gap and no duplicate; a dropped watch is gone; a closed contract ends its
//! watches.
//!
//! Events may take a moment to arrive (a server's change log is read by a thread), so the
//! cases wait for them, up to [`ARRIVAL`]: a bound for failing, never a sleep on the way to
//! passing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hodor_core::watch::{EventKind, Item, Start, Watch, WatchOptions};
use hodor_core::{Contract, Error};

use crate::ctx::{Ctx, Must, assert_err, parallel};

/// How long a case waits for the next event when one must come.
const ARRIVAL: Duration = Duration::from_secs(10);

/// How long a case waits to be sure that no further event comes.
const QUIET: Duration = Duration::from_millis(200);

/// `(key, kind, seq)` of an event.
type Seen = (String, EventKind, u64);

/// The next item, within [`ARRIVAL`].
#[track_caller]
fn next(w: &mut Watch, waiting_for: &str) -> Item {
    match w.recv_timeout(ARRIVAL) {
        Ok(Some(item)) => item,
        Ok(None) => panic!("no event came within {ARRIVAL:?} while waiting for {waiting_for}"),
        Err(e) => panic!("the watch ended while waiting for {waiting_for}: {e}"),
    }
}

/// The next event; a `Lagged` fails the case (its buffer is larger than what it sees).
#[track_caller]
fn next_event(w: &mut Watch, waiting_for: &str) -> Seen {
    match next(w, waiting_for) {
        Item::Event(e) => (e.key.to_string(), e.kind, e.seq),
        other => panic!(
            "{other:?} while waiting for {waiting_for}, with a buffer larger than every event the case makes"
        ),
    }
}

/// `n` events.
#[track_caller]
fn events(w: &mut Watch, n: usize, what: &str) -> Vec<Seen> {
    (0..n)
        .map(|i| next_event(w, &format!("event {} of {n} ({what})", i + 1)))
        .collect()
}

/// The events up to the `nth` (from 1) event of `key`, then whatever else arrives until
/// [`QUIET`]: per key events are in order, but other keys' may come after `key`'s.
#[track_caller]
fn until(w: &mut Watch, key: &str, nth: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut found = 0;
    while found < nth {
        let event = next_event(w, &format!("event {nth} of {key:?}"));
        found += usize::from(event.0 == key);
        seen.push(event);
    }
    loop {
        match w.recv_timeout(QUIET) {
            Ok(None) => return seen,
            Ok(Some(Item::Event(e))) => seen.push((e.key.to_string(), e.kind, e.seq)),
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Err(e) => panic!("the watch ended: {e}"),
        }
    }
}

/// Fails if an item arrives within [`QUIET`].
#[track_caller]
fn assert_quiet(w: &mut Watch, after: &str) {
    match w.recv_timeout(QUIET) {
        Ok(None) => {}
        Ok(Some(item)) => panic!("unexpected {item:?} after {after}"),
        Err(e) => panic!("the watch ended after {after}: {e}"),
    }
}

/// A large buffer: the cases that are not about lagging never overflow it.
fn big() -> WatchOptions {
    WatchOptions::new().buffer(1 << 20)
}

fn kinds_by_key(seen: &[Seen]) -> BTreeMap<String, Vec<EventKind>> {
    let mut by_key: BTreeMap<String, Vec<EventKind>> = BTreeMap::new();
    for (key, kind, _) in seen {
        by_key.entry(key.clone()).or_default().push(*kind);
    }
    by_key
}

#[track_caller]
fn assert_seqs_increase(seen: &[Seen]) {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    let mut all = HashSet::new();
    for (key, kind, seq) in seen {
        assert!(
            all.insert(*seq),
            "seq {seq} delivered twice ({key:?} {kind:?})"
        );
        if let Some(before) = last.insert(key, *seq) {
            assert!(
                before < *seq,
                "the events of {key:?} went back from seq {before} to {seq}"
            );
        }
    }
}

pub(crate) fn watch_reports_puts_and_deletes(t: &Ctx) {
    use EventKind::{Delete, Put};
    let c = t.open();
    let mut w = c.watch_with("", big()).must("watch");
    c.set("a", "1", None).must("set a");
    c.set_many([("b", "1"), ("c", "1"), ("b", "2")], None)
        .must("set_many b c b");
    c.set_json("a", &42, None).must("set_json a");
    assert!(c.delete("a").must("delete a"));
    assert!(!c.delete("a").must("delete a again"));
    assert!(!c.delete("never").must("delete a missing key"));
    assert_eq!(c.delete_many(&["b", "missing", "b"]).must("delete_many"), 1);
    c.set_many(Vec::<(&str, &str)>::new(), None)
        .must("empty set_many");
    let seen = events(&mut w, 6, "the writes above");
    assert_quiet(&mut w, "every write was reported");
    assert_seqs_increase(&seen);
    let by_key = kinds_by_key(&seen);
    let expected: BTreeMap<String, Vec<EventKind>> = [
        ("a", vec![Put, Put, Delete]),
        ("b", vec![Put, Delete]),
        ("c", vec![Put]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        by_key, expected,
        "one event per key changed, in write order: a set_many that gives a key twice writes \
         it once, deletes that remove nothing report nothing"
    );
}

pub(crate) fn watch_reports_conditional_writes(t: &Ctx) {
    let c = t.open();
    let mut w = c.watch_with("", big()).must("watch");
    assert!(c.create("lease", "w1", None).must("create"));
    assert!(
        !c.create("lease", "w2", None)
            .must("create over a live entry")
    );
    let version = c.stat("lease").must("stat").version;
    assert!(
        c.set_if_version("lease", "w3", None, version)
            .must("set_if_version")
    );
    assert!(
        !c.set_if_version("lease", "w4", None, version)
            .must("set_if_version with an old version")
    );
    assert!(
        !c.set_if_version("missing", "v", None, version)
            .must("set_if_version of a missing key")
    );
    assert_eq!(c.increment("hits", 2).must("increment"), 2);
    assert_eq!(c.increment("hits", -2).must("increment"), 0);
    assert_err!(
        c.increment("lease", 1),
        Error::InvalidInput { .. },
        "increment of a value that is not a number"
    );
    let seen = events(&mut w, 4, "the conditional writes above");
    assert_quiet(&mut w, "every conditional write was reported");
    assert_seqs_increase(&seen);
    let expected: BTreeMap<String, Vec<EventKind>> = [
        ("hits".to_owned(), vec![EventKind::Put; 2]),
        ("lease".to_owned(), vec![EventKind::Put; 2]),
    ]
    .into();
    assert_eq!(
        kinds_by_key(&seen),
        expected,
        "a create, set_if_version or increment that writes is a Put; one that writes \
         nothing (refused, or an error) is no event"
    );
}

pub(crate) fn watch_events_of_a_key_arrive_in_write_order(t: &Ctx) {
    const THREADS: usize = 4;
    const ROUNDS: usize = 100;
    const ALONE: usize = 10;
    let c = t.open();
    let mut w = c.watch_with("o/", big()).must("watch");
    // One writer alone first: its events are the whole stream, back to back.
    for round in 0..ALONE {
        c.set("o/alone", format!("{round}"), None).must("set");
        assert!(c.delete("o/alone").must("delete"));
    }
    let handles: Vec<Contract> = (0..THREADS)
        .map(|i| {
            if i % 2 == 0 {
                c.clone()
            } else {
                t.open_as(c.name())
            }
        })
        .collect();
    parallel(handles, |i, h| {
        let key = format!("o/{i}");
        for round in 0..ROUNDS {
            h.set(&key, format!("{round}"), None).must("set");
            assert!(h.delete(&key).must("delete"), "{key} was live");
        }
    });
    let seen = events(
        &mut w,
        (THREADS * ROUNDS + ALONE) * 2,
        "every set and delete",
    );
    assert_seqs_increase(&seen);
    for (key, kinds) in kinds_by_key(&seen) {
        for (i, pair) in kinds.chunks(2).enumerate() {
            assert_eq!(
                pair,
                [EventKind::Put, EventKind::Delete],
                "write {i} of {key}: its events are out of write order ({:?}...)",
                kinds.iter().take(8).collect::<Vec<_>>()
            );
        }
    }
}

pub(crate) fn watch_prefix_is_plain_bytes(t: &Ctx) {
    let c = t.open();
    let mut prefix = c.watch_with("app", big()).must("watch app");
    let mut slash = c.watch_with("app/", big()).must("watch app/");
    let mut glob = c.watch_with("a*", big()).must("watch a*");
    let mut exact = c.watch_with("app", big().exact(true)).must("watch_key app");
    let keys = [
        "app", "app/x", "apple", "app.json", "ap", "xapp", "APP", "a*b", "ab", "app/",
    ];
    for key in keys {
        c.set(key, "v", None).must("set");
    }
    // Last, a key each watch sees, so a case against a broken filter ends at once.
    for key in ["app", "a*~end", "app/~end"] {
        c.set(key, "v", None).must("set");
    }
    let got = |w: &mut Watch, key: &str, nth: usize| -> Vec<String> {
        let mut seen: Vec<String> = until(w, key, nth).into_iter().map(|e| e.0).collect();
        seen.sort();
        seen
    };
    assert_eq!(
        got(&mut prefix, "app/~end", 1),
        [
            "app", "app", "app.json", "app/", "app/x", "app/~end", "apple"
        ],
        "a prefix is bytes: `app` sees app, apple and app.json, not only app/..."
    );
    assert_eq!(
        got(&mut slash, "app/~end", 1),
        ["app/", "app/x", "app/~end"]
    );
    assert_eq!(
        got(&mut glob, "a*~end", 1),
        ["a*b", "a*~end"],
        "glob characters are data"
    );
    assert_eq!(
        got(&mut exact, "app", 2),
        ["app", "app"],
        "watch_key sees its key only"
    );
    assert_err!(
        c.watch_key(""),
        Error::InvalidKey { .. },
        "watch_key of an empty key"
    );
}

/// How long a writer may make no progress before the case calls it blocked. Every write
/// takes far less, even to a server on a loaded machine.
const STALL: Duration = Duration::from_secs(5);

/// Writes `n` keys under `w/` on another thread and waits for it, failing if the writer
/// stops making progress: a writer must never wait for a watch's consumer.
#[track_caller]
fn write_without_reading(c: &Contract, first: usize, n: usize) {
    let writer = c.clone();
    let progress = std::sync::Arc::new(AtomicUsize::new(0));
    let done = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            for i in first..first + n {
                writer.set(&format!("w/{i:05}"), "v", None).must("set");
                progress.fetch_add(1, Ordering::Release);
            }
        })
    };
    let (mut last, mut since) = (0, Instant::now());
    while !done.is_finished() {
        let now = progress.load(Ordering::Acquire);
        if now != last {
            (last, since) = (now, Instant::now());
        }
        assert!(
            since.elapsed() < STALL,
            "the writer made no progress for {STALL:?} after {now} of {n} writes while a \
             watch's consumer was not reading: writers wait for consumers"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    done.join().expect("the writer panicked");
}

pub(crate) fn watch_overflow_reports_lagged_and_never_blocks_writers(t: &Ctx) {
    const BUFFER: usize = 8;
    const WRITES: usize = 500;
    let c = t.open();
    let mut w = c
        .watch_with("w/", WatchOptions::new().buffer(BUFFER))
        .must("watch with a buffer of 8");
    assert_eq!(
        w.buffer(),
        BUFFER,
        "the watch keeps the buffer it was given"
    );
    write_without_reading(&c, 0, WRITES);
    // Read what the watch holds, then one more write: its event comes after everything
    // the writes left (a driver that dropped them has nothing else to show).
    let mut items = Vec::new();
    while let Some(item) = w.recv_timeout(QUIET).must("recv") {
        items.push(item);
    }
    c.set("w/~end", "v", None).must("set after reading");
    loop {
        let item = next(&mut w, "the event of a write made after reading");
        let end = matches!(&item, Item::Event(e) if &*e.key == "w/~end");
        items.push(item);
        if end {
            break;
        }
    }
    while let Some(item) = w.recv_timeout(QUIET).must("recv") {
        items.push(item);
    }
    let (mut missed, mut lagged, mut delivered) = (0u64, 0usize, Vec::new());
    for item in items {
        match item {
            Item::Lagged { missed: m } => {
                lagged += 1;
                missed += m;
            }
            Item::Event(e) if &*e.key == "w/~end" => {}
            Item::Event(e) => delivered.push((e.key.to_string(), e.kind, e.seq)),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        lagged > 0,
        "{WRITES} writes into a watch with a buffer of {BUFFER} that nobody read delivered \
         {} events and no Lagged: events were dropped silently (or buffered without bound)",
        delivered.len()
    );
    assert!(
        delivered.len() as u64 + missed >= WRITES as u64,
        "{} delivered + {missed} reported missed < {WRITES} written: events were lost without \
         being counted",
        delivered.len()
    );
    assert!(delivered.len() <= WRITES, "more events than writes");
    assert_seqs_increase(&delivered);
    let keys: Vec<&str> = delivered.iter().map(|(k, _, _)| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        keys, sorted,
        "the events after the lag marker are the newest, in order"
    );
    assert_eq!(
        keys.last().copied(),
        Some(format!("w/{:05}", WRITES - 1).as_str()),
        "the last write's event is kept"
    );
}

pub(crate) fn watch_resumes_after_a_seq(t: &Ctx) {
    let c = t.open();
    let mut first = c.watch_with("r/", big()).must("watch");
    for key in ["r/a", "r/b", "r/c", "r/d", "r/e"] {
        c.set(key, "v", None).must("set");
    }
    let seen = events(&mut first, 5, "five puts");
    let [_, b, rest @ ..] = seen.as_slice() else {
        panic!("five events: {seen:?}")
    };
    let after_b = b.2;
    let mut resumed = c
        .watch_with("r/", big().start(Start::After(after_b)))
        .must("watch_from the seq of r/b");
    assert_eq!(resumed.started_after(), after_b);
    let replayed = events(&mut resumed, 3, "the events after r/b");
    assert_eq!(
        replayed, rest,
        "resuming after a seq replays exactly the events after it, with their seqs"
    );
    assert_quiet(&mut resumed, "the replay");
    c.delete("r/a").must("delete");
    assert_eq!(next_event(&mut resumed, "a new event").0, "r/a");
    assert_eq!(next_event(&mut first, "a new event").0, "r/a");
    // Resuming after the latest seq gives only what comes next.
    let latest = rest.last().map_or(after_b, |e| e.2);
    let mut tail = c.watch_from("r/", latest).must("watch_from the latest seq");
    c.set("r/z", "v", None).must("set");
    let (key, _, seq) = next_event(&mut tail, "the next event");
    assert_eq!(
        key, "r/a",
        "watch_from replays the delete made after the latest seq"
    );
    assert!(seq > latest);
    assert_eq!(next_event(&mut tail, "the next event").0, "r/z");
}

pub(crate) fn watch_from_before_the_history_is_compacted(t: &Ctx) {
    const HISTORY: usize = 10;
    const WRITES: usize = 600;
    let name = t.fresh_name();
    let Some(opened) = t.harness().open_with_watch_history(&name, HISTORY) else {
        t.skip(
            "the harness opens no store with a small watch history \
             (Harness::open_with_watch_history is None)",
        );
        return;
    };
    let c = opened.must("open_with_watch_history");
    // Watched throughout: a store may keep history only while it is watched. This watch
    // is not read; it may well lag.
    let mut w = c.watch_with("", big()).must("watch");
    c.set("first", "v", None).must("set");
    let (_, _, first) = next_event(&mut w, "the first put");
    for i in 0..WRITES {
        c.set(&format!("k{i}"), "v", None).must("set");
    }
    let e = assert_err!(
        c.watch_from("", first),
        Error::Compacted { .. },
        "watch_from a seq {WRITES} events back, with a history of about {HISTORY}"
    );
    let text = e.to_string();
    assert!(
        text.contains("resync"),
        "the message says to resync: {text}"
    );
    // The recent past can still be resumed.
    let (snapshot, _) = c.watch_snapshot("").must("watch_snapshot");
    let mut recent = c
        .watch_from("", snapshot.seq)
        .must("watch_from the seq of a snapshot");
    c.set("next", "v", None).must("set");
    assert_eq!(next_event(&mut recent, "the next put").0, "next");
}

pub(crate) fn watch_snapshot_has_no_gap_and_no_duplicate(t: &Ctx) {
    const LIVE: usize = 8;
    // Snapshots taken one after another while the writer runs: a snapshot whose list and
    // watch are two steps with a wait between is caught whenever the writer writes in the
    // wait, and over this many rounds it does.
    const SNAPSHOTS: usize = 8;
    let c = t.open();
    let writer_handle = t.open_as(c.name());
    let written = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let key = |i: usize| format!("s/{i:06}");
    // Each key is created once and deleted once, so each has exactly one Put and one
    // Delete: an event a snapshot already covers, or one it lost, shows.
    let (watches, total) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                writer_handle.set(&key(i), "v", None).must("set");
                if i >= LIVE {
                    writer_handle.delete(&key(i - LIVE)).must("delete");
                }
                i += 1;
                written.store(i, Ordering::Release);
            }
            for j in i.saturating_sub(LIVE)..i {
                writer_handle.delete(&key(j)).must("delete at the end");
            }
            i
        });
        let wait_for = |n: usize| {
            let started = Instant::now();
            while written.load(Ordering::Acquire) < n && !writer.is_finished() {
                assert!(started.elapsed() < ARRIVAL, "the writer is stuck");
                std::thread::yield_now();
            }
        };
        let mut watches = Vec::new();
        for _ in 0..SNAPSHOTS {
            wait_for(written.load(Ordering::Acquire) + 20);
            watches.push(
                c.watch_with("s/", big().start(Start::Snapshot))
                    .must("watch_snapshot"),
            );
        }
        wait_for(written.load(Ordering::Acquire) + 50);
        stop.store(true, Ordering::Release);
        (watches, writer.join().expect("the writer panicked"))
    });
    for (round, mut w) in watches.into_iter().enumerate() {
        check_snapshot(&mut w, total, &key(total - 1), round);
    }
    assert!(c.list("s/").must("list").is_empty());
}

/// Replays one snapshot watch to the end of the writer's work.
#[track_caller]
fn check_snapshot(w: &mut Watch, total: usize, last_key: &str, round: usize) {
    let snap = w.take_snapshot().expect("the watch has its snapshot");
    assert_eq!(snap.seq, w.started_after());
    let mut present: BTreeSet<String> = BTreeSet::new();
    for k in &snap.keys {
        assert!(
            k.starts_with("s/"),
            "the snapshot holds {k:?}, not under s/"
        );
        assert!(present.insert(k.clone()), "the snapshot lists {k:?} twice");
    }
    assert!(snap.keys.is_sorted(), "the snapshot's keys are sorted");
    let mut replay = Replay {
        round,
        after: snap.seq,
        total,
        present,
        put_after: HashSet::new(),
        seen: Vec::new(),
    };
    // Every key ends deleted, the last one created among them (long after the snapshot).
    while !replay.present.is_empty() || !replay.put_after.contains(last_key) {
        replay.apply(next_event(w, "the events after the snapshot"));
    }
    // Events of other keys may still be on their way (only each key's are in order).
    while let Some(item) = w.recv_timeout(QUIET).must("recv") {
        match item {
            Item::Event(e) => replay.apply((e.key.to_string(), e.kind, e.seq)),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        replay.present.is_empty(),
        "snapshot {round}: keys left over: {:?}",
        replay.present
    );
    assert_seqs_increase(&replay.seen);
}

/// The state a snapshot and its events build, checked event by event.
struct Replay {
    round: usize,
    after: u64,
    total: usize,
    present: BTreeSet<String>,
    put_after: HashSet<String>,
    seen: Vec<Seen>,
}

impl Replay {
    #[track_caller]
    fn apply(&mut self, (k, kind, seq): Seen) {
        assert!(
            seq > self.after,
            "snapshot {}: {kind:?} {k:?} with seq {seq}, not after the snapshot's seq {}: a \
             duplicate",
            self.round,
            self.after
        );
        match kind {
            EventKind::Put => {
                assert!(
                    !self.present.contains(&k) && self.put_after.insert(k.clone()),
                    "snapshot {}: a Put of {k:?}, which the snapshot (or an earlier event) \
                     already had: the snapshot and the stream overlap",
                    self.round
                );
                self.present.insert(k.clone());
            }
            EventKind::Delete => assert!(
                self.present.remove(&k),
                "snapshot {}: a Delete of {k:?}, which neither the snapshot nor any event \
                 after it had: the stream missed its Put (a gap between the snapshot and the \
                 stream), or repeats a delete the snapshot covered",
                self.round
            ),
            other => panic!("{other:?} {k:?}: nothing expires or is evicted here"),
        }
        self.seen.push((k, kind, seq));
        assert!(
            self.seen.len() <= 2 * self.total,
            "more events than {} keys, each put and deleted once, can make",
            self.total
        );
    }
}

pub(crate) fn watch_sees_changes_made_through_other_contracts(t: &Ctx) {
    let c = t.open();
    let other = t.open_as(c.name());
    let mut w = c.watch_with("", big()).must("watch");
    let mut on_other = other.watch_key("x").must("watch_key on the other contract");
    other
        .set("x", "1", None)
        .must("set through the other contract");
    c.delete("x").must("delete through the watching contract");
    let seen = events(&mut w, 2, "a set and a delete through two contracts");
    assert_eq!(
        kinds_by_key(&seen).get("x").map(Vec::as_slice),
        Some(&[EventKind::Put, EventKind::Delete][..]),
        "a watch sees every contract's writes to its store"
    );
    let seen = events(&mut on_other, 2, "the same on the other contract's watch");
    assert_eq!(seen.get(1).map(|e| e.1), Some(EventKind::Delete));
    let isolated = t.open();
    let mut elsewhere = isolated.watch("").must("watch another store");
    c.set("y", "1", None).must("set");
    assert_quiet(&mut elsewhere, "a write to another store");
}

pub(crate) fn watch_reports_expiry(t: &Ctx) {
    let c = t.open();
    let mut w = c.watch_with("", big()).must("watch");
    let ttl = match t.clock() {
        crate::TestClock::Manual(_) => crate::ctx::MANUAL_TTL,
        crate::TestClock::Real { .. } => Duration::from_millis(100),
    };
    c.set("short", "v", Some(ttl)).must("set with a TTL");
    c.set("gone", "v", Some(ttl)).must("set with a TTL");
    c.set("kept", "v", None).must("set without a TTL");
    assert_eq!(events(&mut w, 3, "three puts").len(), 3);
    t.pass(ttl);
    // Wait until the store agrees they expired, then delete one of them.
    let started = Instant::now();
    while c.exists("gone").must("exists") {
        assert!(started.elapsed() < ARRIVAL, "the entry never expired");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !c.delete("gone").must("delete an expired key"),
        "delete of an expired key is false"
    );
    let _ = t.harness().sweep(&c);
    let seen = events(
        &mut w,
        2,
        "the expiry of both keys (reclaimed within the driver's bound)",
    );
    assert_quiet(&mut w, "both expirations");
    let by_key = kinds_by_key(&seen);
    assert_eq!(
        by_key.get("short").map(Vec::as_slice),
        Some(&[EventKind::Expired][..]),
        "an entry the store reclaims after its deadline is one Expired event"
    );
    assert_eq!(
        by_key.get("gone").map(Vec::as_slice),
        Some(&[EventKind::Expired][..]),
        "a delete that finds only an expired entry reports Expired (once), not Delete"
    );
}

pub(crate) fn watch_reports_evictions(t: &Ctx) {
    let Some(c) = t.open_limited(crate::Limits::NONE.max_entries(2)) else {
        return;
    };
    let mut w = c.watch_with("", big()).must("watch");
    for key in ["a", "b", "c"] {
        c.set(key, "v", None).must("set");
    }
    let seen = events(&mut w, 4, "three puts and one eviction");
    assert_quiet(&mut w, "the eviction");
    let evicted: Vec<&Seen> = seen
        .iter()
        .filter(|(_, kind, _)| *kind == EventKind::Evicted)
        .collect();
    let [(victim, _, _)] = evicted.as_slice() else {
        panic!("one Evicted event: {seen:?}")
    };
    assert!(
        !c.exists(victim).must("exists"),
        "{victim} was reported evicted but is still there"
    );
    assert_eq!(c.metrics().evictions, Some(1));
    let puts = seen.iter().filter(|(_, k, _)| *k == EventKind::Put).count();
    assert_eq!(puts, 3);
}

pub(crate) fn watch_dropped_is_unsubscribed(t: &Ctx) {
    let c = t.open();
    let watches = |what: &str| -> u64 {
        c.metrics()
            .watches
            .unwrap_or_else(|| panic!("a driver with watch reports the watches gauge ({what})"))
    };
    assert_eq!(watches("a fresh store"), 0);
    let a = c.watch("").must("watch");
    let b = c.watch_key("k").must("watch_key");
    let other = t.open_as(c.name());
    let d = other.watch("x").must("watch through another contract");
    assert_eq!(
        watches("with three watches"),
        3,
        "one per watch, on the store"
    );
    drop(b);
    assert_eq!(watches("after dropping one"), 2, "a dropped watch is gone");
    drop(a);
    drop(d);
    assert_eq!(
        watches("after dropping all"),
        0,
        "every dropped watch is gone"
    );
    let mut again = c.watch("").must("watch again");
    c.set("k", "v", None).must("set");
    assert_eq!(next_event(&mut again, "the put").0, "k");
}

// The contract ends its watches before its driver's `close` runs, so no driver can fail
// this case on its own: it guards the contract layer on every driver (hodor-core's
// `closing_a_contract_ends_its_watches_and_no_others` breaks with `end_watches` removed).
pub(crate) fn watch_ends_when_its_contract_closes(t: &Ctx) {
    let c = t.open();
    let mut w = c.watch_with("", big()).must("watch");
    c.set("k", "v", None).must("set");
    c.clone().close().must("close a clone");
    // What was buffered may still come (a server-backed driver may not have read it yet);
    // then the watch ends.
    let end = loop {
        match w.recv_timeout(ARRIVAL) {
            Ok(Some(Item::Event(e))) if &*e.key == "k" => {}
            Ok(Some(other)) => panic!("{other:?}"),
            Ok(None) => panic!("the watch did not end within {ARRIVAL:?} of its contract's close"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(end, Error::Closed { .. }),
        "a closed contract's watch ends with Closed, got {end}"
    );
    assert!(w.next().is_none(), "the iterator ends");
    assert_err!(
        c.watch(""),
        Error::Closed { .. },
        "watch on a closed contract"
    );
}

pub(crate) fn watch_unsupported_is_an_error(t: &Ctx) {
    let c = t.open();
    let e = assert_err!(
        c.watch(""),
        Error::Unsupported { .. },
        "watch on a driver without Capabilities::watch"
    );
    assert!(e.to_string().contains("watch"), "{e}");
    assert_err!(c.watch_key("k"), Error::Unsupported { .. }, "watch_key");
    assert_err!(c.watch_from("", 0), Error::Unsupported { .. }, "watch_from");
    assert_err!(
        c.watch_snapshot(""),
        Error::Unsupported { .. },
        "watch_snapshot"
    );
}
