//! Time as drivers see it: the system clock, or a manual clock a test moves by hand.
//!
//! Expiry is wall-clock: an entry set at `t` with TTL `d` is live strictly before `t + d`.
//! A driver that keeps time itself (the memory driver) reads it from a [`Clock`], so a test
//! can hand it a [`ManualClock`] and check TTL boundaries exactly, without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    /// The current time.
    pub fn now(&self) -> SystemTime {
        match &self.0 {
            Source::System => SystemTime::now(),
            Source::Manual(manual) => manual.now(),
        }
    }

    /// The current time in nanoseconds since the Unix epoch (0 before the epoch, saturating
    /// in the year 2554): the compact form drivers store.
    pub fn now_nanos(&self) -> u64 {
        match &self.0 {
            Source::System => to_nanos(SystemTime::now()),
            Source::Manual(manual) => manual.nanos.load(Ordering::Acquire),
        }
    }

    /// `true` when both are the system clock, or both are the same manual clock.
    pub fn same_as(&self, other: &Clock) -> bool {
        match (&self.0, &other.0) {
            (Source::System, Source::System) => true,
            (Source::Manual(a), Source::Manual(b)) => Arc::ptr_eq(&a.nanos, &b.nanos),
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
/// code under test behaves as it would in production.
#[derive(Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
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
            nanos: Arc::new(AtomicU64::new(to_nanos(start))),
        }
    }

    /// The clock's current time.
    pub fn now(&self) -> SystemTime {
        from_nanos(self.nanos.load(Ordering::Acquire))
    }

    /// Moves the clock forward by `by` (saturating at the largest time it can show).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `to`, forward or backward.
    pub fn set(&self, to: SystemTime) {
        self.nanos.store(to_nanos(to), Ordering::Release);
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
    fn advance_saturates_instead_of_overflowing() {
        let manual = ManualClock::new();
        manual.advance(Duration::MAX);
        manual.advance(Duration::MAX);
        assert_eq!(to_nanos(manual.now()), u64::MAX);
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
