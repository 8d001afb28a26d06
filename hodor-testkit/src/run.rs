//! Running cases from code rather than through `cargo test`: [`run_cases`] and [`Report`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::harness::Harness;

/// One conformance case: its name (the test's name under `cargo test`), the rule it checks,
/// what it needs to apply, and the function that checks it.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name, e.g. `"list_is_sorted_by_bytes"`.
    pub name: &'static str,
    /// The rule the case checks, in one sentence.
    pub rule: &'static str,
    /// What the driver or harness must offer for the rule to apply. [`Case::run`] checks
    /// these first and reports the case as skipped, naming the unmet need, without running
    /// it.
    pub needs: &'static [Need],
    /// Runs the case against a harness; panics (with the reason) if the driver breaks the
    /// rule, returns if it keeps it or the case does not apply.
    pub run: fn(&dyn Harness),
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("rule", &self.rule)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

/// Something a case needs before its rule applies: a capability the driver claims (or does
/// not claim), or a way the harness controls the stores.
///
/// Each case lists its needs in [`cases::ALL`](crate::cases::ALL); an unmet need skips the
/// case before it runs, and the skip names the need. A new group of cases for a new
/// capability (watch, conditional writes, paged listing, persistence across a reopen) adds
/// a variant here, checked against the driver's [`Capabilities`](hodor_core::Capabilities)
/// or a [`Harness`] hook, and lists it on each case of the group: drivers that do not claim
/// the capability then skip the whole group, and say why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Need {
    /// The driver claims [`Capabilities::ttl`](hodor_core::Capabilities::ttl).
    Ttl,
    /// The driver does not claim `ttl`: the cases that check a TTL is refused.
    NoTtl,
    /// The driver claims [`Capabilities::atomic_bulk`](hodor_core::Capabilities::atomic_bulk).
    AtomicBulk,
    /// The driver claims [`Capabilities::limits`](hodor_core::Capabilities::limits) (the
    /// case also needs [`Harness::open_limited`], and says so if it is missing).
    Limits,
    /// The harness's clock is [`TestClock::Manual`](crate::TestClock::Manual): the case
    /// moves time to exact instants.
    ManualClock,
    /// The driver claims [`Capabilities::conditional`](hodor_core::Capabilities::conditional):
    /// `create`, `set_if_version`, `increment` and `get_or_insert_with`.
    Conditional,
    /// The driver claims [`Capabilities::watch`](hodor_core::Capabilities::watch).
    Watch,
    /// The driver does not claim `watch`: the case that checks a watch is refused.
    NoWatch,
}

impl Need {
    /// Why a case with this need is skipped when the need is unmet.
    pub(crate) fn unmet_reason(self) -> &'static str {
        match self {
            Need::Ttl => "needs Capabilities::ttl, which the driver does not claim",
            Need::NoTtl => "checks a driver without TTLs; this driver claims Capabilities::ttl",
            Need::AtomicBulk => "needs Capabilities::atomic_bulk, which the driver does not claim",
            Need::Limits => "needs Capabilities::limits, which the driver does not claim",
            Need::ManualClock => {
                "needs a manual clock (TestClock::Manual) to move time to exact instants"
            }
            Need::Conditional => "needs Capabilities::conditional, which the driver does not claim",
            Need::Watch => "needs Capabilities::watch, which the driver does not claim",
            Need::NoWatch => {
                "checks a driver without watch; this driver claims Capabilities::watch"
            }
        }
    }
}

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The driver keeps the rule.
    Passed,
    /// The case does not apply to this driver or harness; the reason says why.
    Skipped(String),
    /// The driver breaks the rule; the message says how.
    Failed(String),
}

/// What [`run_cases`] found: every case's outcome and duration, in the order run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// `(case name, outcome, duration)` for every case run.
    pub results: Vec<(&'static str, Outcome, Duration)>,
}

impl Report {
    /// The names of the cases that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.names(|o| matches!(o, Outcome::Failed(_)))
    }

    /// The names of the cases that were skipped.
    pub fn skipped(&self) -> Vec<&'static str> {
        self.names(|o| matches!(o, Outcome::Skipped(_)))
    }

    /// The cases that were skipped, each with why.
    pub fn skipped_with_reasons(&self) -> Vec<(&'static str, &str)> {
        self.results
            .iter()
            .filter_map(|(n, o, _)| match o {
                Outcome::Skipped(why) => Some((*n, why.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The names of the cases that passed.
    pub fn passed(&self) -> Vec<&'static str> {
        self.names(|o| matches!(o, Outcome::Passed))
    }

    /// `true` when no case failed.
    pub fn is_success(&self) -> bool {
        self.failed().is_empty()
    }

    /// The outcome of the case called `name`, if it was run.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, o, _)| o)
    }

    fn names(&self, pick: impl Fn(&Outcome) -> bool) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|(_, o, _)| pick(o))
            .map(|(n, _, _)| *n)
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, outcome, took) in &self.results {
            match outcome {
                Outcome::Passed => writeln!(f, "ok      {name} ({took:.1?})")?,
                Outcome::Skipped(why) => writeln!(f, "skipped {name}: {why}")?,
                Outcome::Failed(why) => {
                    let first = why.lines().next().unwrap_or_default();
                    writeln!(f, "FAILED  {name}: {first}")?;
                }
            }
        }
        write!(
            f,
            "{} passed, {} skipped, {} failed",
            self.passed().len(),
            self.skipped().len(),
            self.failed().len()
        )
    }
}

thread_local! {
    /// Set while [`run_cases`] runs a case on this thread: its panics are reported in the
    /// [`Report`] instead of printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Why the running case skipped, if it did.
    static SKIP: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn is_quiet() -> bool {
    QUIET.with(Cell::get)
}

pub(crate) fn set_quiet(quiet: bool) {
    QUIET.with(|q| q.set(quiet));
}

pub(crate) fn note_skip(why: &str) {
    SKIP.with(|s| *s.borrow_mut() = Some(why.to_owned()));
}

/// Keeps the panics of cases run by [`run_cases`] out of stderr (they are in the report),
/// and leaves every other panic to the hook that was installed before.
fn install_quiet_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !is_quiet() {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "the case panicked with a non-string payload".to_owned()
    }
}

/// Runs `cases` one after another against `harness` and reports each outcome, instead of
/// stopping at the first failure as a test would.
///
/// Use it to check a driver from code, or (as hodor-testkit's own tests do) to show that a
/// deliberately broken driver fails the suite. Cases run on the calling thread; while they
/// do, their panic messages go to the report rather than to stderr (a panic hook that
/// defers to the previous one for every other panic is installed on first use).
///
/// ```
/// use hodor_core::clock::ManualClock;
/// use hodor_testkit::{Harness, TestClock, cases, run_cases};
///
/// struct Memory(ManualClock);
/// impl Harness for Memory {
///     fn open(&self, name: &str) -> hodor_core::Result<hodor_core::Contract> {
///         hodor_memory::open_with_clock(name, Default::default(), self.0.clone().into())
///     }
///     fn clock(&self) -> TestClock {
///         TestClock::Manual(self.0.clone())
///     }
/// }
///
/// let some: Vec<_> = cases::ALL.iter().filter(|c| c.name.starts_with("list_")).copied().collect();
/// let report = run_cases(&Memory(ManualClock::new()), &some);
/// assert!(report.is_success(), "{report}");
/// ```
pub fn run_cases(harness: &dyn Harness, cases: &[Case]) -> Report {
    install_quiet_hook();
    let mut report = Report::default();
    for case in cases {
        let was_quiet = is_quiet();
        set_quiet(true);
        SKIP.with(|s| s.borrow_mut().take());
        let start = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| (case.run)(harness)));
        let took = start.elapsed();
        set_quiet(was_quiet);
        let outcome = match result {
            Err(payload) => Outcome::Failed(panic_message(payload.as_ref())),
            Ok(()) => match SKIP.with(|s| s.borrow_mut().take()) {
                Some(why) => Outcome::Skipped(why),
                None => Outcome::Passed,
            },
        };
        report.results.push((case.name, outcome, took));
    }
    report
}

/// Runs every case ([`cases::ALL`](crate::cases::ALL)); see [`run_cases`].
pub fn run_suite(harness: &dyn Harness) -> Report {
    run_cases(harness, crate::cases::ALL)
}
