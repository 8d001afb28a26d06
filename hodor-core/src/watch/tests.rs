use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::driver::DriverError;

fn hub() -> Hub {
    Hub::new("test", "store", HubConfig::new())
}

fn prefix(p: &str) -> WatchRequest<'_> {
    WatchRequest::new(p, WatchOptions::new())
}

fn events(watch: &mut Watch) -> Vec<(u64, String, EventKind)> {
    let mut out = Vec::new();
    while let Some(item) = watch.try_recv().unwrap() {
        match item {
            Item::Event(e) => out.push((e.seq, e.key.to_string(), e.kind)),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

fn keys(watch: &mut Watch) -> Vec<String> {
    events(watch).into_iter().map(|(_, k, _)| k).collect()
}

#[test]
fn a_prefix_matches_bytes_not_path_segments() {
    let hub = hub();
    let mut w = hub.subscribe_now(&prefix("app")).unwrap();
    let mut exact = hub
        .subscribe_now(&WatchRequest::new("app", WatchOptions::new().exact(true)))
        .unwrap();
    let mut glob = hub.subscribe_now(&prefix("a*")).unwrap();
    for k in ["app", "app/x", "apple", "ap", "xapp", "APP", "a*b", "ab"] {
        hub.publish(k, EventKind::Put);
    }
    assert_eq!(keys(&mut w), ["app", "app/x", "apple"]);
    assert_eq!(keys(&mut exact), ["app"]);
    assert_eq!(keys(&mut glob), ["a*b"], "glob characters are data");
}

#[test]
fn seqs_increase_in_publish_order_and_kinds_are_kept() {
    let hub = hub();
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    let kinds = [
        EventKind::Put,
        EventKind::Delete,
        EventKind::Expired,
        EventKind::Evicted,
    ];
    for (i, kind) in kinds.iter().enumerate() {
        hub.publish(&format!("k{i}"), *kind);
    }
    let got = events(&mut w);
    assert_eq!(
        got.iter().map(|(_, _, k)| *k).collect::<Vec<_>>(),
        kinds.to_vec()
    );
    assert!(got.windows(2).all(|p| p[0].0 < p[1].0), "{got:?}");
    for kind in kinds {
        assert_eq!(EventKind::from_code(kind.code().as_bytes()), Some(kind));
    }
}

#[test]
fn an_overflow_drops_the_buffer_and_reports_one_lagged() {
    let hub = hub();
    let request = WatchRequest::new("", WatchOptions::new().buffer(3));
    let mut w = hub.subscribe_now(&request).unwrap();
    for i in 0..5 {
        hub.publish(&format!("k{i}"), EventKind::Put);
    }
    assert_eq!(w.try_recv().unwrap(), Some(Item::Lagged { missed: 3 }));
    assert_eq!(keys(&mut w), ["k3", "k4"]);
    // Two overflows before the consumer looks: still one marker, counting both.
    for i in 0..8 {
        hub.publish(&format!("n{i}"), EventKind::Put);
    }
    assert_eq!(w.try_recv().unwrap(), Some(Item::Lagged { missed: 6 }));
    assert_eq!(keys(&mut w), ["n6", "n7"]);
}

#[test]
fn a_consumer_that_never_reads_never_blocks_the_publisher() {
    let hub = Arc::new(hub());
    let _w = hub
        .subscribe_now(&WatchRequest::new("", WatchOptions::new().buffer(16)))
        .unwrap();
    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            for i in 0..200_000u32 {
                hub.publish(if i % 2 == 0 { "a" } else { "b" }, EventKind::Put);
            }
        })
    };
    let started = Instant::now();
    while !publisher.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the publisher is stuck behind a consumer that does not read"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    publisher.join().unwrap();
}

#[test]
fn recv_wakes_when_an_event_is_published_and_times_out_otherwise() {
    let hub = Arc::new(hub());
    let mut w = hub.subscribe_now(&prefix("k")).unwrap();
    assert_eq!(w.recv_timeout(Duration::from_millis(10)).unwrap(), None);
    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            hub.publish("k", EventKind::Put)
        })
    };
    match w.recv().unwrap() {
        Item::Event(e) => assert_eq!(&*e.key, "k"),
        other => panic!("{other:?}"),
    }
    publisher.join().unwrap();
}

#[test]
fn resuming_replays_the_history_after_the_seq() {
    let hub = Hub::new("test", "store", HubConfig::new().history(4));
    let _keep = hub.subscribe_now(&prefix("")).unwrap();
    let seqs: Vec<u64> = (0..6)
        .map(|i| hub.publish(&format!("k{i}"), EventKind::Put).unwrap())
        .collect();
    // The history holds the last four: k2..k5.
    let mut w = hub.subscribe(&prefix(""), seqs[2]).unwrap();
    assert_eq!(keys(&mut w), ["k3", "k4", "k5"]);
    let mut w = hub.subscribe(&prefix(""), seqs[1]).unwrap();
    assert_eq!(keys(&mut w), ["k2", "k3", "k4", "k5"]);
    match hub.subscribe(&prefix(""), seqs[0]) {
        Err(DriverError::Compacted { requested, floor }) => {
            assert_eq!((requested, floor), (seqs[0], seqs[1]));
        }
        other => panic!("{other:?}"),
    }
    // A seq no event had yet is not something a caller can have seen.
    assert!(matches!(
        hub.subscribe(&prefix(""), seqs[5] + 1),
        Err(DriverError::InvalidInput(_))
    ));
}

#[test]
fn changes_made_while_nobody_watched_make_older_seqs_compacted() {
    let hub = hub();
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    let seen = hub.publish("a", EventKind::Put).unwrap();
    assert_eq!(events(&mut w).len(), 1);
    drop(w);
    assert!(!hub.is_watched());
    // Nobody watches: nothing is recorded, no seq is assigned.
    assert_eq!(hub.publish("b", EventKind::Put), None);
    assert!(
        matches!(
            hub.subscribe(&prefix(""), seen),
            Err(DriverError::Compacted { .. })
        ),
        "resuming across unrecorded changes must say resync"
    );
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    let next = hub.publish("c", EventKind::Put).unwrap();
    assert!(next > seen + 1);
    assert_eq!(keys(&mut w), ["c"]);
}

#[test]
fn dropping_a_watch_unsubscribes_it() {
    let hub = hub();
    let a = hub.subscribe_now(&prefix("")).unwrap();
    let b = hub.subscribe_now(&prefix("")).unwrap();
    assert!(hub.is_watched());
    drop(a);
    assert!(hub.is_watched());
    drop(b);
    assert!(!hub.is_watched());
    assert_eq!(hub.publish("k", EventKind::Put), None);
    assert!(format!("{hub:?}").contains("watches: 0"), "{hub:?}");
}

#[test]
fn closing_delivers_what_was_buffered_then_ends() {
    let hub = hub();
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    hub.publish("k", EventKind::Put);
    hub.close();
    assert!(matches!(w.recv(), Ok(Item::Event(_))));
    let err = w.recv().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Closed {
                operation: "watch",
                ..
            }
        ),
        "{err}"
    );
    assert!(w.try_recv().is_err());
    assert_eq!(w.next(), None);
    assert!(matches!(
        hub.subscribe_now(&prefix("")),
        Err(DriverError::Closed)
    ));
}

#[test]
fn ending_a_watch_wakes_a_blocked_recv() {
    let hub = hub();
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    let ender = w.ender();
    let waiter = std::thread::spawn(move || w.recv());
    std::thread::sleep(Duration::from_millis(20));
    ender.end();
    assert!(waiter.join().unwrap().is_err());
}

#[test]
fn an_interrupt_returns_from_a_wait_without_an_item() {
    let hub = hub();
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    let interrupter = w.interrupter();
    let waiter = std::thread::spawn(move || {
        let got = w.recv_timeout(Duration::from_secs(60));
        (got, w)
    });
    std::thread::sleep(Duration::from_millis(20));
    interrupter.interrupt();
    let (got, _w) = waiter.join().unwrap();
    assert_eq!(got.unwrap(), None);
}

#[test]
fn external_numbers_skip_duplicates_and_a_gap_restarts_the_history() {
    let hub = Hub::new("test", "store", HubConfig::new().external_seq(true));
    let mut w = hub.subscribe(&prefix(""), 10).unwrap();
    assert!(
        !hub.publish_at(9, "old", EventKind::Put),
        "before the start"
    );
    assert!(hub.publish_at(11, "a", EventKind::Put));
    assert!(!hub.publish_at(11, "a", EventKind::Put), "a duplicate");
    assert!(hub.publish_at(12, "b", EventKind::Put));
    assert!(hub.publish_at(20, "c", EventKind::Put), "after a gap");
    assert_eq!(keys(&mut w), ["a", "b", "c"]);
    // The history does not span the gap.
    assert!(matches!(
        hub.subscribe(&prefix(""), 12),
        Err(DriverError::Compacted { floor: 19, .. })
    ));
    assert!(hub.subscribe(&prefix(""), 19).is_ok());
}

#[test]
fn external_numbers_a_watch_ahead_of_the_hub_skips_what_it_already_has() {
    let hub = Hub::new("test", "store", HubConfig::new().external_seq(true));
    let mut first = hub.subscribe(&prefix(""), 5).unwrap();
    // A snapshot read from the backend at 8 while the hub still stands at 5.
    let mut second = hub.subscribe(&prefix(""), 8).unwrap();
    for seq in 6..=9 {
        hub.publish_at(seq, &format!("k{seq}"), EventKind::Put);
    }
    assert_eq!(keys(&mut first), ["k6", "k7", "k8", "k9"]);
    assert_eq!(keys(&mut second), ["k9"]);
}

#[test]
fn backfill_makes_up_for_the_history_the_hub_lost() {
    let hub = Hub::new(
        "test",
        "store",
        HubConfig::new().external_seq(true).history(2),
    );
    let _keep = hub.subscribe(&prefix(""), 0).unwrap();
    for seq in 1..=5 {
        hub.publish_at(seq, &format!("k{seq}"), EventKind::Put);
    }
    // The hub keeps 4 and 5; the log has the rest.
    assert!(matches!(
        hub.subscribe(&prefix(""), 1),
        Err(DriverError::Compacted { floor: 3, .. })
    ));
    let log: Vec<Event> = (2..=3)
        .map(|s| Event::new(s, format!("k{s}"), EventKind::Put))
        .collect();
    let mut w = hub
        .subscribe_with_backfill(&prefix(""), 1, 3, &log)
        .unwrap();
    assert_eq!(
        keys(&mut w),
        ["k2", "k3", "k4", "k5"],
        "no gap, no duplicate"
    );
    // A backfill that stops short of the history is not enough.
    assert!(matches!(
        hub.subscribe_with_backfill(&prefix(""), 1, 2, &log[..1]),
        Err(DriverError::Compacted { .. })
    ));
}

#[test]
fn lag_and_restart_reach_every_watch() {
    let hub = Hub::new("test", "store", HubConfig::new().external_seq(true));
    let mut w = hub.subscribe(&prefix(""), 0).unwrap();
    hub.publish_at(1, "a", EventKind::Put);
    hub.lag(7);
    hub.publish_at(9, "b", EventKind::Put);
    assert_eq!(w.try_recv().unwrap(), Some(Item::Lagged { missed: 8 }));
    assert_eq!(keys(&mut w), ["b"]);
    hub.restart_at(2);
    assert_eq!(w.try_recv().unwrap(), Some(Item::Lagged { missed: 0 }));
    assert!(hub.publish_at(3, "c", EventKind::Put));
    assert_eq!(keys(&mut w), ["c"]);
}

#[test]
fn a_restarted_log_reaches_watches_that_started_later_in_the_old_numbering() {
    let hub = Hub::new("test", "store", HubConfig::new().external_seq(true));
    let _first = hub.subscribe(&prefix(""), 0).unwrap();
    let mut late = hub.subscribe(&prefix(""), 50).unwrap();
    hub.restart_at(0);
    assert_eq!(late.try_recv().unwrap(), Some(Item::Lagged { missed: 0 }));
    assert!(hub.publish_at(1, "a", EventKind::Put));
    assert_eq!(keys(&mut late), ["a"], "seq 1 of the new log is news");
    assert_eq!(late.started_after(), 0);
}

#[test]
fn without_history_nothing_can_be_resumed() {
    let hub = Hub::new("test", "store", HubConfig::new().history(0));
    let _keep = hub.subscribe_now(&prefix("")).unwrap();
    let a = hub.publish("a", EventKind::Put).unwrap();
    assert!(
        hub.subscribe(&prefix(""), a).is_ok(),
        "nothing after a is missing"
    );
    hub.publish("b", EventKind::Put);
    assert!(matches!(
        hub.subscribe(&prefix(""), a),
        Err(DriverError::Compacted { .. })
    ));
}

#[test]
fn messages_are_bounded() {
    let long = "k".repeat(10_000);
    let event = Event::new(1, long.as_str(), EventKind::Put);
    assert!(format!("{event:?}").len() < 200);
    let hub = hub();
    let w = hub.subscribe_now(&prefix(&long)).unwrap();
    assert!(format!("{w:?}").len() < 400);
}

#[test]
fn after_a_stream_a_lone_event_still_arrives_without_waiting_for_a_batch() {
    let hub = Arc::new(hub());
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    // A stream: the consumer takes a large batch, and so sleeps for batches next.
    for i in 0..100 {
        hub.publish(&format!("s{i}"), EventKind::Put);
    }
    for _ in 0..100 {
        assert!(matches!(w.recv().unwrap(), Item::Event(_)));
    }
    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            hub.publish("lone", EventKind::Put);
        })
    };
    // A batch of one must not wait for 127 more that never come.
    match w.recv_timeout(Duration::from_secs(5)).unwrap() {
        Some(Item::Event(e)) => assert_eq!(&*e.key, "lone"),
        other => panic!("the lone event did not come: {other:?}"),
    }
    publisher.join().unwrap();
}

#[test]
fn a_streaming_consumer_is_not_woken_by_publishers_for_each_small_batch() {
    let hub = hub();
    assert_eq!(hub.config().buffer, 4096);
    let streaming = wake_at(4096, true);
    let mut w = hub.subscribe_now(&prefix("")).unwrap();
    let shared = w.shared.clone();
    let consumer = std::thread::spawn(move || {
        loop {
            match w.recv_timeout(Duration::from_secs(10)).unwrap() {
                Some(Item::Event(e)) if &*e.key == "stop" => return,
                Some(Item::Event(_)) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    });
    // A burst far below an eighth of the buffer, pushed while the consumer sleeps as a
    // stream consumer: its own timer takes it, and no publisher pays for a wake-up (each
    // `true` is one). The consumer's timer is short, so on a loaded machine it may fire
    // during the burst (and a wake-up is then right: a consumer that found a small batch
    // is no longer streaming); such a round says nothing and another is tried. A round
    // counts when, at its end, the consumer has taken nothing and still sleeps as a
    // stream consumer: it then slept through the whole burst.
    const BURST: u64 = 400;
    let mut seq = 1000;
    let mut counted = 0;
    for _ in 0..400 {
        // The round starts once the consumer sleeps as a stream consumer, which it does
        // after a large batch; until then it is given one.
        let ready = Instant::now() + Duration::from_millis(20);
        let streaming_sleep = loop {
            let state = shared.state.lock();
            if state.waiting && state.queue.is_empty() && state.wake_at == streaming {
                break true;
            }
            drop(state);
            if Instant::now() >= ready {
                break false;
            }
            std::thread::yield_now();
        };
        if !streaming_sleep {
            for i in 0..100 {
                hub.publish(&format!("s{i}"), EventKind::Put);
            }
            continue;
        }
        let burst: Vec<Event> = (0..BURST)
            .map(|i| Event::new(seq + i, format!("b{i}"), EventKind::Put))
            .collect();
        seq += BURST;
        let woken = burst.iter().filter(|e| shared.push(e)).count();
        let state = shared.state.lock();
        let slept_through = state.queue.len() == BURST as usize && state.wake_at == streaming;
        drop(state);
        // Whatever happened, the consumer is woken now so that the next round starts clean.
        shared.wake();
        if slept_through {
            assert_eq!(
                woken, 0,
                "a publisher woke a streaming consumer for a small batch"
            );
            counted += 1;
            if counted == 3 {
                break;
            }
        }
    }
    assert!(
        counted > 0,
        "no round saw the consumer sleep through a burst"
    );
    hub.publish("stop", EventKind::Put);
    consumer.join().unwrap();
}

#[test]
fn a_publisher_wakes_a_streaming_consumer_while_half_its_buffer_is_free() {
    for capacity in [1, 2, 3, 15, 16, 255, 256, 4096, WatchOptions::MAX_BUFFER] {
        let at = wake_at(capacity, true);
        assert!(
            (1..=capacity.div_ceil(2)).contains(&at),
            "buffer {capacity}: woken at {at}"
        );
        assert_eq!(wake_at(capacity, false), 1, "a lone event wakes at once");
    }
}
