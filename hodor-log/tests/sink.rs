//! A sink's behaviour through its public API: ordering, keys, the queue, shutdown,
//! retention, failures and reading back.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, UNIX_EPOCH};

use hodor_core::clock::{Clock, ManualClock};
use hodor_core::{Contract, Error};
use hodor_log::{Guard, Logger, Sink};
use hodor_memory::MemoryConfig;
use support::{Gate, gated, messages, records, unique};

fn memory(name: &str) -> Contract {
    hodor_memory::open(&unique(name), MemoryConfig::default()).unwrap()
}

fn info(logger: &Logger, message: &str) {
    log::Log::log(
        logger,
        &log::Record::builder()
            .level(log::Level::Info)
            .target("test")
            .args(format_args!("{message}"))
            .build(),
    );
}

const HOUR: Duration = Duration::from_secs(3600);

/// Polls `done` for up to 30 s; a hang becomes a failure with `what` in it.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn records_come_back_in_order_across_batches() {
    let logs = memory("order");
    let (sink, _guard) = Sink::builder(logs.clone())
        .prefix("app/")
        .batch_records(3)
        .batch_age(HOUR)
        .build()
        .unwrap();
    let logger = sink.logger();
    let sent: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    for m in &sent {
        info(&logger, m);
    }
    assert!(sink.flush(Duration::from_secs(30)));
    assert_eq!(messages(&logs, "app/"), sent);
    let stats = sink.stats();
    assert_eq!(stats.records_written, 20);
    let read = records(&logs, "app/");
    let batches = support::batch_sizes(&read);
    assert!(
        batches.len() >= 7 && batches.iter().all(|&n| n <= 3),
        "{batches:?}"
    );
    assert_eq!(stats.batches_written, batches.len() as u64);
    assert_eq!(logs.list("app/").unwrap().len(), batches.len());
    assert!(read.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert_eq!(read[0].level, "INFO");
    assert_eq!(read[0].target, "test");
}

#[test]
fn two_sinks_on_one_contract_read_back_in_time_order() {
    let logs = memory("two-sinks");
    let clock = ManualClock::new();
    let build = || {
        Sink::builder(logs.clone())
            .prefix("shared/")
            .batch_records(4)
            .batch_age(HOUR)
            .clock(Clock::from(clock.clone()))
            .build()
            .unwrap()
    };
    let (a, _ga) = build();
    let (b, _gb) = build();
    let (la, lb) = (a.logger(), b.logger());
    let mut sent = Vec::new();
    // Alternate, so every batch of one sink overlaps batches of the other in time.
    for i in 0..30 {
        for (name, logger) in [("a", &la), ("b", &lb)] {
            let m = format!("{name}{i}");
            info(logger, &m);
            sent.push(m);
            clock.advance(Duration::from_millis(1));
        }
    }
    assert!(a.flush(Duration::from_secs(30)) && b.flush(Duration::from_secs(30)));
    assert_eq!(messages(&logs, "shared/"), sent);
    let batches = support::batch_sizes(&records(&logs, "shared/"));
    assert!(
        batches.len() >= 16 && batches.iter().all(|&n| n <= 4),
        "{batches:?}"
    );
}

#[test]
fn bursts_at_one_instant_never_overwrite_a_batch() {
    let logs = memory("burst");
    // A clock that never moves: every batch starts and ends at the same microsecond.
    let clock = Clock::from(ManualClock::new());
    let sinks: Vec<_> = (0..2)
        .map(|_| {
            Sink::builder(logs.clone())
                .prefix("burst/")
                .batch_records(3)
                .clock(clock.clone())
                .build()
                .unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let logger = sinks[t % 2].0.logger();
            s.spawn(move || {
                for i in 0..500 {
                    info(&logger, &format!("t{t}-{i}"));
                }
            });
        }
    });
    let mut written = 0;
    let mut batches = 0;
    for (sink, _) in &sinks {
        assert!(sink.flush(Duration::from_secs(30)));
        let stats = sink.stats();
        assert_eq!(stats.records_dropped, 0, "{stats:?}");
        written += stats.records_written;
        batches += stats.batches_written;
    }
    assert_eq!(written, 2000);
    assert_eq!(logs.list("burst/").unwrap().len() as u64, batches);
    let mut got = messages(&logs, "burst/");
    assert_eq!(got.len(), 2000);
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 2000, "every record once");
    // One thread's records keep their order.
    let read = messages(&logs, "burst/");
    let t0: Vec<&String> = read.iter().filter(|m| m.starts_with("t0-")).collect();
    let expected: Vec<String> = (0..500).map(|i| format!("t0-{i}")).collect();
    assert_eq!(t0, expected.iter().collect::<Vec<_>>());
}

/// A sink with a 4-record queue and 2-record batches whose store is stalled while writing
/// its first batch ("first", "second").
fn stalled(prefix: &str, blocking: bool) -> (Contract, Arc<Gate>, Sink, Guard) {
    let (logs, gate) = gated(prefix, true);
    let (sink, guard) = Sink::builder(logs.clone())
        .prefix(prefix)
        .blocking(blocking)
        .queue_records(4)
        .batch_records(2)
        .batch_age(HOUR)
        .build()
        .unwrap();
    gate.close();
    info(&sink.logger(), "first");
    info(&sink.logger(), "second");
    gate.wait_for_a_stuck_set();
    (logs, gate, sink, guard)
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking_and_the_next_batch_says_so() {
    let (logs, gate, sink, _guard) = stalled("d/", false);
    let logger = sink.logger();

    // The store is stalled: the caller must still return at once, every time.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let caller = {
        let logger = logger.clone();
        std::thread::spawn(move || {
            for i in 0..1000 {
                info(&logger, &format!("r{i}"));
            }
            done_tx.send(()).unwrap();
        })
    };
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("logging returned while the store was stalled");
    caller.join().unwrap();
    assert_eq!(sink.stats().records_dropped, 996);
    assert_eq!(sink.stats().records_queued, 4);

    gate.open();
    eventually("the queued records", || sink.stats().records_written == 6);
    info(&logger, "after");
    info(&logger, "after2");
    assert!(sink.flush(Duration::from_secs(30)));

    let read = records(&logs, "d/");
    let got: Vec<&str> = read.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got[..6], ["first", "second", "r0", "r1", "r2", "r3"]);
    let notice = &read[6];
    assert_eq!(
        (notice.level.as_str(), notice.target.as_str()),
        ("WARN", "hodor_log")
    );
    assert_eq!(notice.fields["dropped"], 996);
    assert_eq!(notice.fields["lost"], 0);
    assert!(notice.message.contains("996"), "{}", notice.message);
    assert_eq!(notice.line, 0, "the notice starts its batch");
    assert_eq!(read[7].message, "after");
    assert_eq!(
        read[7].batch, notice.batch,
        "and that batch is the next one"
    );
    assert_eq!(read.len(), 9);
    let stats = sink.stats();
    assert_eq!((stats.records_written, stats.records_dropped), (8, 996));
}

#[test]
fn blocking_mode_waits_for_room_and_drops_nothing() {
    let (logs, gate, sink, _guard) = stalled("b/", true);
    let logger = sink.logger();
    let caller = {
        let logger = logger.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                info(&logger, &format!("r{i}"));
            }
        })
    };
    eventually("a full queue", || sink.stats().records_queued == 4);
    assert!(!caller.is_finished(), "the caller waits for room");
    gate.open();
    caller.join().unwrap();
    assert!(sink.flush(Duration::from_secs(30)));
    let stats = sink.stats();
    assert_eq!((stats.records_written, stats.records_dropped), (102, 0));
    let expected: Vec<String> = ["first", "second"]
        .into_iter()
        .map(String::from)
        .chain((0..100).map(|i| format!("r{i}")))
        .collect();
    assert_eq!(messages(&logs, "b/"), expected);
}

#[test]
fn log_flush_and_dropping_the_guard_write_everything_logged_before_them() {
    let logs = memory("flush");
    let (sink, guard) = Sink::builder(logs.clone())
        .prefix("f/")
        .batch_age(HOUR)
        .build()
        .unwrap();
    let logger = sink.logger();
    let sent: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for m in &sent[..3] {
        info(&logger, m);
    }
    assert!(
        logs.list("f/").unwrap().is_empty(),
        "a batch waits for its age"
    );
    log::Log::flush(&logger);
    assert_eq!(messages(&logs, "f/"), sent[..3]);

    for m in &sent[3..] {
        info(&logger, m);
    }
    drop(guard);
    assert_eq!(messages(&logs, "f/"), sent);
    // After shutdown, records are refused and counted.
    info(&logger, "late");
    assert_eq!(sink.stats().records_dropped, 1);
    assert!(sink.flush(Duration::from_secs(1)));
    assert_eq!(messages(&logs, "f/"), sent);
}

#[test]
fn dropping_the_guard_returns_even_when_the_store_hangs() {
    let (logs, gate) = gated("hang", true);
    let (sink, guard) = Sink::builder(logs.clone())
        .prefix("h/")
        .batch_records(1)
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    gate.close();
    info(&sink.logger(), "stuck");
    gate.wait_for_a_stuck_set();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the guard's drop returned while the store hung");
    gate.open();
    eventually("the stuck batch", || sink.stats().records_written == 1);
}

#[test]
fn retention_expires_batches_on_the_stores_clock() {
    let clock = ManualClock::new();
    let logs = hodor_memory::open_with_clock(
        &unique("retention"),
        MemoryConfig::default(),
        clock.clone().into(),
    )
    .unwrap();
    let (sink, _guard) = Sink::builder(logs.clone())
        .prefix("r/")
        .retention(HOUR)
        .clock(clock.clone().into())
        .build()
        .unwrap();
    for i in 0..3 {
        info(&sink.logger(), &format!("m{i}"));
    }
    assert!(sink.flush(Duration::from_secs(30)));
    let keys = logs.list("r/").unwrap();
    assert_eq!(keys.len(), 1);
    let meta = logs.stat(&keys[0]).unwrap();
    assert_eq!(meta.expires_at, Some(meta.modified + HOUR));
    clock.advance(HOUR - Duration::from_millis(1));
    assert_eq!(messages(&logs, "r/").len(), 3);
    clock.advance(Duration::from_millis(1));
    assert!(logs.list("r/").unwrap().is_empty());
    assert!(messages(&logs, "r/").is_empty());
}

#[test]
fn retention_on_a_driver_without_ttls_is_unsupported_at_build() {
    let (logs, _gate) = gated("no-ttl", false);
    let err = Sink::builder(logs.clone())
        .retention(HOUR)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("retention"), "{err}");
    let (sink, _guard) = Sink::builder(logs.clone()).no_retention().build().unwrap();
    info(&sink.logger(), "kept");
    assert!(sink.flush(Duration::from_secs(30)));
    assert_eq!(messages(&logs, "logs/"), ["kept"]);
}

#[test]
fn failed_writes_are_retried_then_counted_and_told_by_the_next_batch() {
    let (logs, gate) = gated("failures", true);
    let (sink, _guard) = Sink::builder(logs.clone())
        .prefix("x/")
        .retries(3, Duration::from_millis(1))
        .batch_age(HOUR)
        .build()
        .unwrap();
    let logger = sink.logger();

    gate.fail_next.store(2, Ordering::SeqCst);
    info(&logger, "survives");
    assert!(sink.flush(Duration::from_secs(30)));
    let stats = sink.stats();
    assert_eq!(
        (
            stats.records_written,
            stats.write_errors,
            stats.records_lost
        ),
        (1, 2, 0)
    );

    gate.fail_next.store(4, Ordering::SeqCst); // the first try and all three retries
    info(&logger, "doomed");
    assert!(sink.flush(Duration::from_secs(30)));
    let stats = sink.stats();
    assert_eq!(
        (
            stats.records_written,
            stats.write_errors,
            stats.records_lost
        ),
        (1, 6, 1)
    );

    info(&logger, "next");
    assert!(sink.flush(Duration::from_secs(30)));
    let read = records(&logs, "x/");
    let got: Vec<&str> = read.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], "survives");
    let notice = &read[1];
    assert_eq!(notice.target, "hodor_log");
    assert_eq!(
        (
            notice.fields["dropped"].clone(),
            notice.fields["lost"].clone()
        ),
        (0.into(), 1.into())
    );
    assert_eq!((notice.line, read[2].message.as_str()), (0, "next"));
    // The flush after the loss wrote the notice at once, in the batch after the lost one.
    assert!(notice.batch < read[2].batch);
}

#[test]
fn a_closed_contract_is_not_retried() {
    let (logs, gate) = gated("closed", true);
    let (sink, _guard) = Sink::builder(logs.clone())
        .retries(5, Duration::from_secs(60))
        .build()
        .unwrap();
    logs.close().unwrap();
    info(&sink.logger(), "nowhere");
    // A retry would sleep a minute: a flush that returns shows there was none.
    assert!(sink.flush(Duration::from_secs(30)));
    let stats = sink.stats();
    // The batch and then the notice about it, each tried once.
    assert_eq!((stats.records_lost, stats.write_errors), (1, 2));
    assert_eq!(gate.sets.load(Ordering::SeqCst), 0);
}

#[test]
fn settings_are_checked_when_the_sink_is_built() {
    let logs = memory("settings");
    let b = || Sink::builder(logs.clone());
    let invalid = [
        b().batch_records(0),
        b().batch_bytes(0),
        b().queue_records(0),
        b().queue_bytes(0),
        b().batch_age(Duration::ZERO),
        b().max_record_bytes(10),
        b().max_record_bytes(2 << 20),
        b().batch_bytes(1 << 30),
        b().retention(Duration::ZERO),
        b().retention(Duration::from_secs(u64::MAX)),
        b().prefix("p".repeat(926)),
        b().prefix("a\0b"),
    ];
    for builder in invalid {
        let shown = format!("{builder:?}");
        match builder.build() {
            Err(Error::InvalidInput { .. }) => {}
            other => panic!("{shown}: {other:?}"),
        }
    }
    assert!(b().prefix("p".repeat(925)).build().is_ok());
    logs.close().unwrap();
    assert!(matches!(b().build(), Err(Error::Closed { .. })));
}

#[test]
fn read_starts_at_since_skips_foreign_keys_and_reports_bad_batches() {
    let logs = memory("read");
    let clock = ManualClock::new();
    let start = clock.now();
    let (sink, _guard) = Sink::builder(logs.clone())
        .prefix("r/")
        .batch_records(1)
        .clock(clock.clone().into())
        .build()
        .unwrap();
    for m in ["early", "late"] {
        info(&sink.logger(), m);
        clock.advance(Duration::from_secs(10));
    }
    assert!(sink.flush(Duration::from_secs(30)));
    let since = |s| {
        hodor_log::read(&logs, "r/", start + Duration::from_secs(s))
            .unwrap()
            .map(|r| r.unwrap().message)
            .collect::<Vec<_>>()
    };
    assert_eq!(since(0), ["early", "late"]);
    assert_eq!(since(5), ["late"]);
    assert!(since(11).is_empty());

    logs.set("r/README", "not a batch", None).unwrap();
    let bad_key = "r/2025-01-01T00:00:05.000000Z_2025-01-01T00:00:05.000000Z_00000000000000ff_0000000000000000.jsonl";
    logs.set(bad_key, "{\"broken\n", None).unwrap();
    let items: Vec<_> = hodor_log::read(&logs, "r/", UNIX_EPOCH).unwrap().collect();
    assert_eq!(items.len(), 3, "{items:?}");
    let errors: Vec<&Error> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key(), Some(bad_key));
    let ok: Vec<&str> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(ok, ["early", "late"]);
}

#[test]
fn a_batch_gone_between_listing_and_reading_is_skipped_without_an_error() {
    let logs = memory("read-gone");
    let (sink, _guard) = Sink::builder(logs.clone())
        .prefix("g/")
        .batch_records(1)
        .build()
        .unwrap();
    for m in ["first", "second"] {
        info(&sink.logger(), m);
        assert!(sink.flush(Duration::from_secs(30)));
    }
    // `read` lists now and reads each batch when the iteration reaches it; a batch that
    // expires (or is deleted) in between is simply not there any more.
    let records = hodor_log::read(&logs, "g/", UNIX_EPOCH).unwrap();
    let batches = logs.list("g/").unwrap();
    assert_eq!(batches.len(), 2);
    logs.delete(&batches[0]).unwrap();
    let items: Vec<_> = records.collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().message, "second");
}

#[test]
fn tracing_events_carry_fields_and_span_names() {
    use tracing_subscriber::prelude::*;
    let logs = memory("tracing");
    let (layer, guard) = Sink::builder(logs.clone()).prefix("t/").layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let outer = tracing::info_span!("request", id = 7);
        let _o = outer.enter();
        let inner = tracing::debug_span!("db");
        let _i = inner.enter();
        let err = std::io::Error::other("disk full");
        tracing::warn!(
            target: "app::db",
            rows = 3u64,
            delta = -2i64,
            ratio = 0.25,
            ok = false,
            name = "q\"1\"",
            list = ?vec![1, 2],
            error = &err as &dyn std::error::Error,
            "query {} done",
            "slowly"
        );
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        tracing::info!("not this one: another subscriber");
    });
    drop(guard);
    let read = records(&logs, "t/");
    assert_eq!(read.len(), 1);
    let r = &read[0];
    assert_eq!((r.level.as_str(), r.target.as_str()), ("WARN", "app::db"));
    assert_eq!(r.message, "query slowly done");
    assert_eq!(r.spans, ["request", "db"]);
    let f = &r.fields;
    assert_eq!(
        (f["rows"].clone(), f["delta"].clone()),
        (3.into(), (-2).into())
    );
    assert_eq!(
        (f["ratio"].clone(), f["ok"].clone()),
        (0.25.into(), false.into())
    );
    assert_eq!(f["name"], "q\"1\"");
    assert_eq!(f["list"], "[1, 2]");
    assert_eq!(f["error"], "disk full");
    assert!(!r.truncated);
    let shown = r.to_string();
    assert!(
        shown.contains(" WARN request>db: app::db: query slowly done delta=-2 "),
        "{shown}"
    );
}

#[test]
fn a_value_that_logs_while_it_is_formatted_does_not_feed_the_sink() {
    use tracing_subscriber::prelude::*;
    struct Noisy;
    impl std::fmt::Debug for Noisy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::error!("logged from inside Debug");
            f.write_str("noisy")
        }
    }
    let logs = memory("reentry");
    let (layer, guard) = Sink::builder(logs.clone()).prefix("n/").layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(value = ?Noisy, "outer");
        tracing::info!("after");
    });
    drop(guard);
    let read = records(&logs, "n/");
    let got: Vec<&str> = read.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got, ["outer", "after"]);
    assert_eq!(read[0].fields["value"], "noisy");
}

#[test]
fn ignored_targets_stay_out() {
    let logs = memory("ignored");
    let (logger, guard) = Sink::builder(logs.clone())
        .prefix("i/")
        .ignore_target("noisy::dep")
        .logger()
        .unwrap();
    for target in [
        "noisy::dep",
        "noisy::dep::inner",
        "hodor_log",
        "hodor_log::x",
        "noisy::depot",
        "app",
    ] {
        log::Log::log(
            &logger,
            &log::Record::builder()
                .target(target)
                .args(format_args!("{target}"))
                .build(),
        );
    }
    drop(guard);
    assert_eq!(messages(&logs, "i/"), ["noisy::depot", "app"]);
}

#[cfg(feature = "lz4")]
#[test]
fn compressed_batches_are_tagged_in_the_key_and_read_back() {
    let logs = memory("lz4");
    let (sink, guard) = Sink::builder(logs.clone())
        .prefix("z/")
        .compression(hodor_log::Compression::Lz4)
        .build()
        .unwrap();
    let sent: Vec<String> = (0..500)
        .map(|i| format!("request {i} handled in 3 ms"))
        .collect();
    for m in &sent {
        info(&sink.logger(), m);
    }
    drop(guard);
    let keys = logs.list("z/").unwrap();
    assert!(keys.iter().all(|k| k.ends_with(".jsonl.lz4")), "{keys:?}");
    let stored: u64 = keys.iter().map(|k| logs.stat(k).unwrap().size).sum();
    assert!(stored < 500 * 60 / 4, "{stored} bytes: compressed");
    assert_eq!(messages(&logs, "z/"), sent);
}
