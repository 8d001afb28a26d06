//! Time as drivers see it: the system clock, or a manual clock a test moves by hand.
//!
//! A [`Clock`] has two faces. Its wall-clock time ([`Clock::now`]) is what `stat` reports
//! and what persisted expiry is written in; it can jump when NTP or an operator steps the
//! system clock. Its monotonic time ([`Clock::monotonic_nanos`]) only moves forward, at the
//! rate of real time, and ignores those steps: a driver that keeps TTLs itself (the memory
//! driver) measures them there, so a step neither shortens nor extends one. A driver reads
//! both from the `Clock` it was given, so a test can hand it a [`ManualClock`], move time
//! with [`ManualClock::advance`], step the wall clock alone with [`ManualClock::set`], and
//! check TTL boundaries exactly, without sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time: the system clock or a [`ManualClock`].
///
/// Cheap to clone; clones of a manual clock share its time.
///
/// ```
/// use hodor_core::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let manual = ManualClock::new();
/// let clock = Clock::from(manual.clone());
/// let before = clock.now();
/// manual.advance(Duration::from_millis(5));
/// assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_millis(5));
/// ```
#[derive(Clone, Default)]
pub struct Clock(Source);

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// The current wall-clock time.
    pub fn now(&self) -> SystemTime {
        match &self.0 {
            Source::System => SystemTime::now(),
            Source::Manual(manual) => manual.now(),
        }
    }

    /// The current wall-clock time in nanoseconds since the Unix epoch (0 before the
    /// epoch, saturating in the year 2554).
    pub fn now_nanos(&self) -> u64 {
        match &self.0 {
            Source::System => to_nanos(SystemTime::now()),
            Source::Manual(manual) => manual.time.wall.load(Ordering::Acquire),
        }
    }

    /// Nanoseconds on this clock's monotonic timeline: they only grow, at the rate of real
    /// time, and wall-clock steps do not move them. Only differences mean anything.
    ///
    /// For the system clock this is [`Instant`] (elapsed since the first call in the
    /// process), which on most systems stops while the machine is suspended. For a manual
    /// clock it starts at 0 and moves with [`ManualClock::advance`], not with
    /// [`ManualClock::set`]. Saturates at `u64::MAX` (584 years).
    #[inline]
    pub fn monotonic_nanos(&self) -> u64 {
        match &self.0 {
            Source::System => {
                static ORIGIN: OnceLock<Instant> = OnceLock::new();
                let elapsed = ORIGIN.get_or_init(Instant::now).elapsed();
                u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
            }
            Source::Manual(manual) => manual.time.monotonic.load(Ordering::Acquire),
        }
    }

    /// `true` when both are the system clock, or both are the same manual clock.
    pub fn same_as(&self, other: &Clock) -> bool {
        match (&self.0, &other.0) {
            (Source::System, Source::System) => true,
            (Source::Manual(a), Source::Manual(b)) => Arc::ptr_eq(&a.time, &b.time),
            _ => false,
        }
    }

    /// `true` for a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::System"),
            Source::Manual(manual) => write!(f, "Clock::Manual({:?})", manual.now()),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Clock {
        Clock(Source::Manual(manual))
    }
}

/// A clock that stands still until it is moved; clones share one time.
///
/// It starts at a fixed, recent instant (not the Unix epoch), so `SystemTime` arithmetic in
/// code under test behaves as it would in production. [`ManualClock::advance`] lets time
/// pass (both faces of the [`Clock`] move); [`ManualClock::set`] steps the wall clock alone,
/// as NTP or `date -s` would.
#[derive(Clone)]
pub struct ManualClock {
    time: Arc<ManualTime>,
}

struct ManualTime {
    /// Wall-clock nanoseconds since the Unix epoch.
    wall: AtomicU64,
    /// Nanoseconds of time passed since the clock was made.
    monotonic: AtomicU64,
}

/// 2025-01-01T00:00:00Z: where every new [`ManualClock`] starts.
const MANUAL_START_SECS: u64 = 1_735_689_600;

impl ManualClock {
    /// A manual clock at 2025-01-01T00:00:00Z.
    pub fn new() -> ManualClock {
        ManualClock::starting_at(UNIX_EPOCH + Duration::from_secs(MANUAL_START_SECS))
    }

    /// A manual clock at `start`.
    pub fn starting_at(start: SystemTime) -> ManualClock {
        ManualClock {
            time: Arc::new(ManualTime {
                wall: AtomicU64::new(to_nanos(start)),
                monotonic: AtomicU64::new(0),
            }),
        }
    }

    /// The clock's current wall-clock time.
    pub fn now(&self) -> SystemTime {
        from_nanos(self.time.wall.load(Ordering::Acquire))
    }

    /// Lets `by` pass: the wall clock and the monotonic time both move forward (each
    /// saturating at the largest value it can show).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        for counter in [&self.time.monotonic, &self.time.wall] {
            // fetch_update cannot fail with a closure that always returns Some.
            let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
        }
    }

    /// Steps the wall clock to `to`, forward or backward, as NTP or an operator would; no
    /// time passes, so [`Clock::monotonic_nanos`] does not move.
    pub fn set(&self, to: SystemTime) {
        self.time.wall.store(to_nanos(to), Ordering::Release);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// Nanoseconds since the Unix epoch, 0 for earlier times, saturating at `u64::MAX`.
pub fn to_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`to_nanos`].
pub fn from_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let t0 = clock.now_nanos();
        assert_eq!(clock.now_nanos(), t0);
        manual.advance(Duration::from_nanos(1));
        assert_eq!(clock.now_nanos(), t0 + 1);
        manual.set(from_nanos(t0 - 10));
        assert_eq!(clock.now(), from_nanos(t0 - 10));
    }

    #[test]
    fn set_steps_the_wall_clock_and_advance_moves_both() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let (wall, mono) = (clock.now(), clock.monotonic_nanos());
        manual.set(wall + Duration::from_secs(3600));
        assert_eq!(
            clock.monotonic_nanos(),
            mono,
            "a wall step is not time passing"
        );
        manual.set(wall - Duration::from_secs(3600));
        assert_eq!(clock.monotonic_nanos(), mono);
        manual.advance(Duration::from_millis(5));
        assert_eq!(clock.monotonic_nanos(), mono + 5_000_000);
        assert_eq!(
            clock.now(),
            wall - Duration::from_secs(3600) + Duration::from_millis(5)
        );
    }

    #[test]
    fn the_system_monotonic_clock_never_goes_back() {
        let clock = Clock::system();
        let mut last = clock.monotonic_nanos();
        for _ in 0..1000 {
            let now = clock.monotonic_nanos();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn advance_saturates_instead_of_overflowing() {
        let manual = ManualClock::new();
        manual.advance(Duration::MAX);
        manual.advance(Duration::MAX);
        assert_eq!(to_nanos(manual.now()), u64::MAX);
        assert_eq!(Clock::from(manual).monotonic_nanos(), u64::MAX);
    }

    #[test]
    fn identity() {
        let a = ManualClock::new();
        assert!(Clock::from(a.clone()).same_as(&Clock::from(a)));
        assert!(!Clock::from(ManualClock::new()).same_as(&Clock::from(ManualClock::new())));
        assert!(Clock::system().same_as(&Clock::default()));
        assert!(!Clock::system().same_as(&Clock::from(ManualClock::new())));
    }

    #[test]
    fn nanos_round_trip_and_clamp() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_234_567_890_123);
        assert_eq!(from_nanos(to_nanos(t)), t);
        assert_eq!(to_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
