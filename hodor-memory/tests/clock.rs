//! Which clock TTLs run on. Deadlines are measured on a monotonic clock: a wall-clock step
//! (NTP, `date -s`) neither shortens nor extends a TTL, an expired entry never comes back,
//! and a wall clock set far in the future does not expire entries early. `stat` reports
//! `modified` and `expires_at` as wall-clock instants: the store's wall-clock time when it
//! was opened plus the monotonic time since, so `expires_at` is exactly `modified + ttl`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Error};
use hodor_memory::{MemoryConfig, open_with_clock};

const SECOND: Duration = Duration::from_secs(1);
const YEAR: u64 = 365 * 24 * 3600;

fn clocked(name: &str, clock: &ManualClock) -> Contract {
    open_with_clock(name, MemoryConfig::default(), clock.clone().into()).unwrap()
}

fn gone(c: &Contract, key: &str) -> bool {
    matches!(c.get(key), Err(Error::NotFound { .. })) && !c.exists(key).unwrap()
}

#[test]
fn a_wall_clock_past_2262_does_not_expire_entries_early() {
    let starts = [
        // The last instant u64 nanoseconds with the top bit clear can show (2262-04-11).
        UNIX_EPOCH + Duration::from_nanos(i64::MAX as u64) - SECOND,
        UNIX_EPOCH + Duration::from_nanos(i64::MAX as u64),
        UNIX_EPOCH + Duration::from_secs(330 * YEAR),
        UNIX_EPOCH + Duration::from_secs(530 * YEAR),
    ];
    for (n, start) in starts.into_iter().enumerate() {
        let clock = ManualClock::starting_at(start);
        let c = clocked(&format!("far-future-{n}"), &clock);
        let t0 = clock.now();
        c.set("k", "v", Some(SECOND)).unwrap();
        c.set_many([("m", "v")], Some(SECOND)).unwrap();
        assert!(c.exists("k").unwrap(), "{start:?}: dead at once");
        assert!(c.exists("m").unwrap(), "{start:?}: dead at once");
        let meta = c.stat("k").unwrap();
        assert_eq!(meta.modified, t0, "{start:?}");
        assert_eq!(meta.expires_at, Some(t0 + SECOND), "{start:?}");
        clock.advance(SECOND - Duration::from_millis(1));
        assert!(c.exists("k").unwrap(), "{start:?}: expired early");
        clock.advance(Duration::from_millis(1));
        assert!(
            gone(&c, "k") && gone(&c, "m"),
            "{start:?}: outlived its TTL"
        );
    }
}

#[test]
fn a_clock_that_runs_out_of_range_stops_instead_of_expiring_everything() {
    let clock = ManualClock::new();
    let c = clocked("clock-saturates", &clock);
    c.set("before", "v", Some(SECOND)).unwrap();
    clock.advance(Duration::MAX);
    assert!(gone(&c, "before"), "an entry due long ago is gone");
    // Time cannot move further: an entry set now is never expired early.
    c.set("after", "v", Some(SECOND)).unwrap();
    assert!(c.exists("after").unwrap(), "dead at once");
    clock.advance(Duration::MAX);
    assert!(c.exists("after").unwrap());
}

#[test]
fn a_wall_clock_step_forward_neither_expires_entries_nor_moves_their_deadlines() {
    let clock = ManualClock::new();
    let c = clocked("step-forward", &clock);
    let t0 = clock.now();
    c.set("k", "v", Some(10 * SECOND)).unwrap();
    clock.set(t0 + Duration::from_secs(3600));
    assert!(
        c.exists("k").unwrap(),
        "an NTP step forward expired the entry"
    );
    let meta = c.stat("k").unwrap();
    assert_eq!(
        (meta.modified, meta.expires_at),
        (t0, Some(t0 + 10 * SECOND))
    );
    clock.advance(10 * SECOND - Duration::from_millis(1));
    assert!(c.exists("k").unwrap());
    clock.advance(Duration::from_millis(1));
    assert!(gone(&c, "k"));
}

#[test]
fn a_wall_clock_step_backward_neither_extends_ttls_nor_revives_expired_entries() {
    let clock = ManualClock::new();
    let c = clocked("step-backward", &clock);
    let t0 = clock.now();
    c.set("short", "v", Some(SECOND)).unwrap();
    c.set("long", "v", Some(10 * SECOND)).unwrap();
    clock.advance(SECOND);
    assert!(gone(&c, "short"));
    clock.set(t0 - Duration::from_secs(3600));
    assert!(
        gone(&c, "short"),
        "an NTP step backward revived an expired entry"
    );
    assert_eq!(c.list("").unwrap(), ["long"]);
    clock.advance(9 * SECOND);
    assert!(gone(&c, "long"), "an NTP step backward extended a TTL");
}

#[test]
fn stat_reports_wall_clock_times_with_expires_at_exactly_modified_plus_ttl() {
    let clock = ManualClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(YEAR * 55));
    let c = clocked("stat-wall-times", &clock);
    let t0 = clock.now();
    clock.advance(Duration::from_nanos(1_234_567));
    c.set("k", "v", Some(Duration::from_millis(1500))).unwrap();
    let meta = c.stat("k").unwrap();
    let set_at = t0 + Duration::from_nanos(1_234_567);
    assert_eq!(meta.modified, set_at);
    assert_eq!(meta.expires_at, Some(set_at + Duration::from_millis(1500)));
    // Reads change nothing, however often they are repeated.
    for _ in 0..3 {
        clock.advance(Duration::from_millis(100));
        assert_eq!(c.stat("k").unwrap(), meta);
    }
}
