//! [`Harness`]: how the suite opens a driver's stores and controls its time.

use std::time::Duration;

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Result};

/// What a driver crate gives the conformance suite: a way to open stores by name, and the
/// clock those stores read.
///
/// Only [`Harness::open`] and [`Harness::clock`] are required. The other methods are hooks
/// for what only the harness can do (open a store with limits or with another config,
/// reclaim expired entries now); each defaults to `None`, and the cases that need it are
/// then skipped with a message naming the hook. Groups of cases added later for new
/// capabilities follow the same pattern: a [`Need`](crate::Need) on the case, and where the
/// suite needs the harness to act (say, reopen a persistent store between steps), a hook
/// with a `None` default.
///
/// [`conformance_tests!`](crate::conformance_tests) evaluates the harness expression afresh
/// in every test, so each case has its own harness (and, with a manual clock, its own time)
/// and parallel cases never disturb each other.
///
/// ```
/// use hodor_core::clock::ManualClock;
/// use hodor_core::{Contract, Result};
/// use hodor_testkit::{Harness, TestClock};
///
/// struct MemoryHarness {
///     clock: ManualClock,
/// }
///
/// impl Harness for MemoryHarness {
///     fn open(&self, name: &str) -> Result<Contract> {
///         let config = hodor_memory::MemoryConfig::default();
///         hodor_memory::open_with_clock(name, config, self.clock.clone().into())
///     }
///
///     fn clock(&self) -> TestClock {
///         TestClock::Manual(self.clock.clone())
///     }
/// }
/// # let h = MemoryHarness { clock: ManualClock::new() };
/// # assert!(h.open("doc-harness").is_ok());
/// ```
pub trait Harness {
    /// Opens the store called `name`.
    ///
    /// The same name must give the same store: the sharing cases open a name twice and
    /// expect each contract to see the other's writes. The suite makes every name unique
    /// per case and per run (case name, process id, start time and a counter), so cases
    /// can run in parallel against one server. Names are valid keys (short ASCII), so a
    /// driver can use them as namespaces.
    fn open(&self, name: &str) -> Result<Contract>;

    /// The clock every contract this harness opens reads.
    ///
    /// [`TestClock::Manual`] for drivers that accept an injected clock: the TTL cases then
    /// cross deadlines exactly, to the nanosecond, without sleeping. [`TestClock::Real`]
    /// for backends that keep their own time (a server): the cases sleep and poll instead,
    /// and check only that an entry is present well before its deadline and gone by the
    /// deadline plus the slack.
    fn clock(&self) -> TestClock;

    /// Opens the store called `name` with a byte and/or entry limit, for drivers whose
    /// [`Capabilities::limits`](hodor_core::Capabilities::limits) is set.
    ///
    /// `None` (the default) means the harness cannot open limited stores, and the limit
    /// cases are skipped. A harness that returns `Some` must honour both limits; a limit
    /// of `None` in `limits` means no limit of that kind.
    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        let _ = (name, limits);
        None
    }

    /// Opens the store called `name` with a config that differs from the one
    /// [`Harness::open`] uses, for a driver that refuses to join an open store with another
    /// config (the memory driver: `InvalidConfig`, never a silent merge).
    ///
    /// `None` (the default) means the driver accepts any config for one name (a server
    /// namespace), or the harness has no other config to offer; the case that checks the
    /// refusal is then skipped.
    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        let _ = name;
        None
    }

    /// Reclaims the expired entries of the open store behind `contract` now, as the
    /// driver's own background reclamation would within its documented bound.
    ///
    /// The cases that check the gauges after reclamation call it (with a manual clock, after
    /// moving past the deadlines). `None` (the default) means the harness cannot trigger
    /// reclamation, and those cases are skipped; `Some(Err)` fails them.
    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        let _ = contract;
        None
    }

    /// Opens the store called `name` keeping at most about `events` events of watch
    /// history, for a driver with [`Capabilities::watch`](hodor_core::Capabilities::watch):
    /// the case that resumes from before the history needs a history it can outrun.
    ///
    /// `None` (the default) skips that case. The driver may keep somewhat more than asked
    /// (a server trimming its log approximately), but not ten times more.
    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        let _ = (name, events);
        None
    }

    /// The file where the model-based case saves the failing operation sequences it finds,
    /// so they are replayed first on the next run (proptest's regression file).
    ///
    /// [`conformance_tests!`](crate::conformance_tests) sets this to
    /// `proptest-regressions/<module>.txt` in the driver crate; the default, `None`, keeps
    /// nothing. Check the file into version control.
    fn regressions_file(&self) -> Option<&'static str> {
        None
    }
}

/// The time the stores of a [`Harness`] read.
#[derive(Clone, Debug)]
pub enum TestClock {
    /// The stores read this clock, and only the suite moves it.
    Manual(ManualClock),
    /// The stores keep real time (their own or the system's).
    Real {
        /// How long after its deadline an expired entry may still be seen, allowing for
        /// a backend's expiry granularity, clock skew and network delay. The TTL cases wait
        /// this long past a deadline before calling an entry that is still there a failure,
        /// so keep it as small as the backend allows.
        slack: Duration,
    },
}

/// The limits a [`Harness::open_limited`] store enforces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most bytes the store may hold (as the driver counts them in
    /// [`Metrics::bytes`](hodor_core::Metrics::bytes)); `None` for no byte limit.
    pub max_bytes: Option<u64>,
    /// The most entries the store may hold; `None` for no entry limit.
    pub max_entries: Option<u64>,
}

impl Limits {
    /// No limits; add them with [`Limits::max_bytes`] and [`Limits::max_entries`].
    pub const NONE: Limits = Limits {
        max_bytes: None,
        max_entries: None,
    };

    /// Sets the byte limit.
    pub const fn max_bytes(mut self, bytes: u64) -> Limits {
        self.max_bytes = Some(bytes);
        self
    }

    /// Sets the entry limit.
    pub const fn max_entries(mut self, entries: u64) -> Limits {
        self.max_entries = Some(entries);
        self
    }
}

impl<H: Harness + ?Sized> Harness for &H {
    fn open(&self, name: &str) -> Result<Contract> {
        (**self).open(name)
    }
    fn clock(&self) -> TestClock {
        (**self).clock()
    }
    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        (**self).open_limited(name, limits)
    }
    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        (**self).open_with_other_config(name)
    }
    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        (**self).sweep(contract)
    }
    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        (**self).open_with_watch_history(name, events)
    }
    fn regressions_file(&self) -> Option<&'static str> {
        (**self).regressions_file()
    }
}

impl<H: Harness + ?Sized> Harness for Box<H> {
    fn open(&self, name: &str) -> Result<Contract> {
        (**self).open(name)
    }
    fn clock(&self) -> TestClock {
        (**self).clock()
    }
    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        (**self).open_limited(name, limits)
    }
    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        (**self).open_with_other_config(name)
    }
    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        (**self).sweep(contract)
    }
    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        (**self).open_with_watch_history(name, events)
    }
    fn regressions_file(&self) -> Option<&'static str> {
        (**self).regressions_file()
    }
}

/// A harness with its regression file set; what the macro-generated tests run.
#[doc(hidden)]
#[derive(Debug)]
pub struct WithRegressions<H> {
    harness: H,
    file: &'static str,
}

impl<H: Harness> WithRegressions<H> {
    #[doc(hidden)]
    pub fn new(harness: H, file: &'static str) -> Self {
        WithRegressions { harness, file }
    }
}

impl<H: Harness> Harness for WithRegressions<H> {
    fn open(&self, name: &str) -> Result<Contract> {
        self.harness.open(name)
    }
    fn clock(&self) -> TestClock {
        self.harness.clock()
    }
    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        self.harness.open_limited(name, limits)
    }
    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        self.harness.open_with_other_config(name)
    }
    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        self.harness.sweep(contract)
    }
    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        self.harness.open_with_watch_history(name, events)
    }
    fn regressions_file(&self) -> Option<&'static str> {
        Some(self.file)
    }
}
