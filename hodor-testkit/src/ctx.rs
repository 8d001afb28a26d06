//! What every case uses: unique store names, skips, time that works with either clock,
//! threads that report their panics, and small assertion helpers.

use std::cell::OnceCell;
use std::fmt;
use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hodor_core::clock::ManualClock;
use hodor_core::{Capabilities, Contract, Error};

use crate::harness::{Harness, Limits, TestClock};
use crate::run::{self, Need};

/// The TTLs tried, in turn, with a real clock: when the machine is too slow to check an
/// entry before a short deadline, the check is repeated with a longer one instead of
/// failing.
const REAL_TTLS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1600),
];

/// The TTL used with a manual clock; any value works, since nothing sleeps.
pub(crate) const MANUAL_TTL: Duration = Duration::from_secs(10);

/// One case's view of the harness.
pub(crate) struct Ctx<'h> {
    harness: &'h dyn Harness,
    case: &'static str,
    clock: TestClock,
    /// The driver's capabilities, read from a probe store on first use.
    capabilities: OnceCell<Capabilities>,
}

/// A failed check inside a closure that may be retried (polling with a real clock).
#[derive(Debug)]
pub(crate) struct Failed(pub(crate) String);

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed(format!("unexpected error: {e}"))
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of a retryable check.
pub(crate) type Check = Result<(), Failed>;

/// `ensure!(condition, "format", args)`: fail a [`Check`] unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::ctx::Failed(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;

/// `assert_err!(result, Pattern, "what")`: the result is an error matching the pattern;
/// evaluates to the error.
macro_rules! assert_err {
    ($result:expr, $pattern:pat, $($what:tt)+) => {
        match $result {
            Err(e @ $pattern) => e,
            other => panic!(
                "{}: expected Err({}), got {:?}",
                format!($($what)+),
                stringify!($pattern),
                other
            ),
        }
    };
}
pub(crate) use assert_err;

/// Unwraps a contract call, naming the call when it fails.
pub(crate) trait Must<T> {
    fn must(self, what: impl fmt::Display) -> T;
}

impl<T> Must<T> for hodor_core::Result<T> {
    #[track_caller]
    fn must(self, what: impl fmt::Display) -> T {
        match self {
            Ok(value) => value,
            Err(e) => panic!("{what} failed: {e}"),
        }
    }
}

/// A name no other case, process or run uses.
fn unique_suffix() -> String {
    static RUN: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let run = *RUN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}-{run:x}-{n}", std::process::id())
}

impl<'h> Ctx<'h> {
    pub(crate) fn new(harness: &'h dyn Harness, case: &'static str) -> Ctx<'h> {
        Ctx {
            harness,
            case,
            clock: harness.clock(),
            capabilities: OnceCell::new(),
        }
    }

    /// What the driver claims, from a store opened (and closed) for the purpose.
    pub(crate) fn capabilities(&self) -> Capabilities {
        *self.capabilities.get_or_init(|| {
            let probe = self.open_as(&self.fresh_name_tagged("caps"));
            let caps = probe.capabilities();
            let _ = probe.close();
            caps
        })
    }

    /// `true` if every need is met; otherwise says the case is skipped, naming the first
    /// unmet need, and returns `false`.
    pub(crate) fn meets(&self, needs: &[Need]) -> bool {
        for &need in needs {
            let met = match need {
                Need::Ttl => self.capabilities().ttl,
                Need::NoTtl => !self.capabilities().ttl,
                Need::AtomicBulk => self.capabilities().atomic_bulk,
                Need::Limits => self.capabilities().limits,
                Need::ManualClock => matches!(self.clock, TestClock::Manual(_)),
                Need::Conditional => self.capabilities().conditional,
                Need::Watch => self.capabilities().watch,
                Need::NoWatch => !self.capabilities().watch,
            };
            if !met {
                self.skip(need.unmet_reason());
                return false;
            }
        }
        true
    }

    pub(crate) fn harness(&self) -> &'h dyn Harness {
        self.harness
    }

    /// A store name unique to this case, process and run.
    pub(crate) fn fresh_name(&self) -> String {
        format!("{}-{}", self.case, unique_suffix())
    }

    /// A unique store name starting with a short `tag` instead of the case name, for cases
    /// that need the unique part within the first few dozen bytes.
    pub(crate) fn fresh_name_tagged(&self, tag: &str) -> String {
        format!("{tag}-{}", unique_suffix())
    }

    /// Opens a new, empty store.
    #[track_caller]
    pub(crate) fn open(&self) -> Contract {
        self.open_as(&self.fresh_name())
    }

    /// Opens the store called `name` (again).
    #[track_caller]
    pub(crate) fn open_as(&self, name: &str) -> Contract {
        match self.harness.open(name) {
            Ok(c) => c,
            Err(e) => panic!("the harness could not open store {name:?}: {e}"),
        }
    }

    /// Opens a new store with limits, or `None` (after saying why the case is skipped).
    pub(crate) fn open_limited(&self, limits: Limits) -> Option<Contract> {
        let name = self.fresh_name();
        let Some(opened) = self.harness.open_limited(&name, limits) else {
            let c = self.open();
            let claimed = c.capabilities().limits;
            let _ = c.close();
            if claimed {
                self.skip(
                    "the driver claims Capabilities::limits but Harness::open_limited returns \
                     None; implement it to check the limits",
                );
            } else {
                self.skip("the harness opens no limited stores (Harness::open_limited is None)");
            }
            return None;
        };
        let c = match opened {
            Ok(c) => c,
            Err(e) => panic!("the harness could not open limited store {name:?}: {e}"),
        };
        assert!(
            c.capabilities().limits,
            "Harness::open_limited opened a store whose driver does not claim \
             Capabilities::limits; a driver that enforces limits must say so"
        );
        Some(c)
    }

    /// Says that the case is skipped and why; the case then returns and passes.
    pub(crate) fn skip(&self, why: &str) {
        // Run from code, the skip is in the report. Under `cargo test`, it goes straight to
        // stderr: the test harness captures `println!` of passing tests, and a skip must
        // be seen.
        if !run::is_quiet() {
            let _ = writeln!(
                std::io::stderr().lock(),
                "conformance case {} skipped: {why}",
                self.case
            );
        }
        run::note_skip(why);
    }

    /// Opens the store `name` with another config through
    /// [`Harness::open_with_other_config`]; `None` after saying the case is skipped.
    pub(crate) fn open_with_other_config(
        &self,
        name: &str,
    ) -> Option<hodor_core::Result<Contract>> {
        let opened = self.harness.open_with_other_config(name);
        if opened.is_none() {
            self.skip(
                "the harness opens no store with another config \
                 (Harness::open_with_other_config is None)",
            );
        }
        opened
    }

    /// Reclaims the expired entries of `c`'s store through [`Harness::sweep`]; `false`
    /// after saying the case is skipped.
    #[track_caller]
    pub(crate) fn sweep(&self, c: &Contract) -> bool {
        match self.harness.sweep(c) {
            None => {
                self.skip(
                    "the harness cannot reclaim expired entries now (Harness::sweep is None)",
                );
                false
            }
            Some(Ok(())) => true,
            Some(Err(e)) => panic!("Harness::sweep failed: {e}"),
        }
    }

    /// The manual clock. The case must list [`Need::ManualClock`]; the check before it ran
    /// made sure there is one.
    pub(crate) fn manual_clock(&self) -> ManualClock {
        match &self.clock {
            TestClock::Manual(clock) => clock.clone(),
            TestClock::Real { .. } => {
                panic!(
                    "case {} needs a manual clock but does not list Need::ManualClock",
                    self.case
                )
            }
        }
    }

    pub(crate) fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// The time the stores see now (for a real clock, this machine's).
    pub(crate) fn now(&self) -> SystemTime {
        match &self.clock {
            TestClock::Manual(clock) => clock.now(),
            TestClock::Real { .. } => SystemTime::now(),
        }
    }

    /// Lets time pass: moves a manual clock, or sleeps.
    pub(crate) fn pass(&self, d: Duration) {
        match &self.clock {
            TestClock::Manual(clock) => clock.advance(d),
            TestClock::Real { .. } => std::thread::sleep(d),
        }
    }

    /// How far a real backend's timestamps may be from this machine's; zero for a manual
    /// clock, whose times must be exact.
    pub(crate) fn slack(&self) -> Duration {
        match &self.clock {
            TestClock::Manual(_) => Duration::ZERO,
            TestClock::Real { slack } => *slack,
        }
    }

    /// Checks `time` is within `[earliest, latest]`, widened by the slack.
    #[track_caller]
    pub(crate) fn assert_time_between(
        &self,
        what: &str,
        time: SystemTime,
        earliest: SystemTime,
        latest: SystemTime,
    ) {
        let slack = self.slack();
        let low = earliest.checked_sub(slack).unwrap_or(earliest);
        let high = latest + slack;
        assert!(
            low <= time && time <= high,
            "{what} is {time:?}, expected between {earliest:?} and {latest:?} (slack {slack:?})"
        );
    }

    /// The heart of every TTL case. `setup(contract, ttl)` writes entries with `ttl`;
    /// `before` must hold while they are live and `after` once they have expired.
    ///
    /// With a manual clock, `before` is checked right after the set and 1 ns before the
    /// deadline, `after` exactly at the deadline. With a real clock, `before` is checked
    /// right after the set (retrying with a longer TTL if the machine was too slow to do
    /// that before the deadline) and `after` is polled from the deadline until it holds or
    /// the slack runs out. A panic in `after` fails at once, without polling.
    ///
    /// Returns the contract, the clock standing at the deadline, and the TTL used. The case
    /// must list [`Need::Ttl`].
    pub(crate) fn across_expiry(
        &self,
        setup: impl Fn(&Contract, Duration),
        before: impl Fn(&Contract) -> Check,
        after: impl Fn(&Contract) -> Check,
    ) -> Option<(Contract, Duration)> {
        match &self.clock {
            TestClock::Manual(clock) => {
                let c = self.open();
                setup(&c, MANUAL_TTL);
                self.check("right after the set", before(&c));
                clock.advance(MANUAL_TTL - Duration::from_nanos(1));
                self.check("1 ns before the deadline", before(&c));
                clock.advance(Duration::from_nanos(1));
                self.check("exactly at the deadline", after(&c));
                Some((c, MANUAL_TTL))
            }
            TestClock::Real { slack } => {
                for (attempt, &ttl) in REAL_TTLS.iter().enumerate() {
                    let c = self.open();
                    let start = Instant::now();
                    setup(&c, ttl);
                    let set_done = Instant::now();
                    if let Err(e) = before(&c) {
                        if start.elapsed() < ttl || attempt + 1 == REAL_TTLS.len() {
                            panic!("right after the set (TTL {ttl:?}): {e}");
                        }
                        // Too slow to tell whether the deadline had passed: retry longer.
                        let _ = c.close();
                        continue;
                    }
                    let deadline = set_done + ttl;
                    sleep_until(deadline);
                    let give_up = deadline + *slack;
                    loop {
                        match after(&c) {
                            Ok(()) => return Some((c, ttl)),
                            Err(e) if Instant::now() >= give_up => panic!(
                                "still wrong {slack:?} (the harness's slack) after the \
                                 {ttl:?} deadline: {e}"
                            ),
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                }
                None
            }
        }
    }

    #[track_caller]
    fn check(&self, when: &str, result: Check) {
        if let Err(e) = result {
            panic!("{when}: {e}");
        }
    }
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// Runs `f(i, item)` for each of `items` on its own thread, all at once, and returns the
/// results in order. A panic in any thread is re-raised here with its own message, after
/// every thread has finished.
pub(crate) fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(usize, T) -> R + Sync,
) -> Vec<R> {
    let barrier = std::sync::Barrier::new(items.len());
    let quiet = run::is_quiet();
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let (f, barrier) = (&f, &barrier);
                scope.spawn(move || {
                    run::set_quiet(quiet);
                    barrier.wait();
                    f(i, item)
                })
            })
            .collect();
        let mut results = Vec::with_capacity(handles.len());
        let mut panic = None;
        for handle in handles {
            match handle.join() {
                Ok(r) => results.push(r),
                Err(payload) => panic = panic.or(Some(payload)),
            }
        }
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        results
    })
}

/// One contract per thread: clones for even threads, second opens for odd ones.
pub(crate) fn handles(t: &Ctx, c: &Contract, n: usize) -> Vec<Contract> {
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

/// A value's description for messages: short values in full, long ones by length.
pub(crate) fn show(bytes: &[u8]) -> String {
    if bytes.len() <= 64 {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        let head: Vec<u8> = bytes.iter().copied().take(16).collect();
        format!("{} bytes starting {head:?}", bytes.len())
    }
}
