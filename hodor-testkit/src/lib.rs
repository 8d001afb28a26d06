//! # hodor-testkit: the conformance suite every hodor driver runs
//!
//! Code written against [`hodor_core::Contract`] must behave the same on every driver. This
//! crate checks that a driver keeps the contract, with one line in the driver crate's
//! `tests/conformance.rs`:
//!
//! ```ignore
//! hodor_testkit::conformance_tests!(MyHarness::new());
//! ```
//!
//! `cargo test` then shows one test per case, named after the rule it checks
//! (`conformance::list_is_sorted_by_bytes`, `conformance::ttl_set_without_ttl_clears_it`,
//! ...), so a failure names the broken rule and `cargo test ttl_` runs one family.
//!
//! - **Every rule, by name.** Over 120 cases: round trips up to 16 MiB and of values that
//!   text-mode code damages, a table of [awkward keys](AWKWARD_KEYS), numeric look-alike and
//!   1024-byte multi-byte keys, listing order, prefixes and pages, TTL boundaries, stat and
//!   reads that change nothing, versions, paged listing, close and the data's lifetime,
//!   names (by case, by length) and sharing, concurrency, bulk calls of thousands of keys,
//!   conditional writes and their races, metrics, limits and watch. The list is
//!   [`cases::ALL`].
//! - **Capability-aware.** Each case lists what it [needs](Need): TTLs, atomic bulk calls,
//!   limits, a manual clock. An unmet need skips the case before it runs, and the skip
//!   says which need (on stderr under `cargo test`, so it is seen; in the [`Report`] when
//!   run from code). Cases that need the harness to act (open a limited store, open with
//!   another config, reclaim expired entries now) skip when its hook returns `None`.
//! - **Deterministic time.** With a [`TestClock::Manual`] clock the TTL cases check the
//!   deadline to the nanosecond (live 1 ns before, gone at it) without sleeping; with
//!   [`TestClock::Real`] they sleep and poll within the slack the harness allows.
//! - **Races that happen.** Racing threads start together on one key from a spinning
//!   barrier, round after round, and readers read for as long as writers write: a
//!   check-then-act delete or a write done in two steps (delete then insert, value then
//!   TTL, index then data) with a backend call or a wait between the steps fails its case
//!   in every run.
//! - **Model-based.** `model_matches_reference` runs seeded sequences of operations (and
//!   clock moves) against the driver and a reference model, compares every result, and
//!   shrinks a failure to a minimal sequence with proptest. The seed is fixed, so every run
//!   checks the same sequences (`PROPTEST_RNG_SEED` picks others, `PROPTEST_CASES` runs
//!   more); the operations are weighted so TTLs, overwrites, bulk calls and deletes meet.
//! - **Strict.** This crate's `tests/broken_drivers.rs` runs the suite against 79
//!   deliberately broken drivers (a batch limit nobody split for, a trimmed newline, a
//!   per-handle cache, a two-step write, an eviction that counts an overwrite as growth, a
//!   check-then-act create, a compare-and-set that does not compare, an increment that
//!   loses updates, a page that repeats its cursor, a version that is only a timestamp,
//!   ...) and checks that each fails the case written for its rule, three runs out of
//!   three, while the unbroken reference passes everything.
//!
//! ## Writing a driver
//!
//! A driver is a type implementing [`hodor_core::Driver`]: `capabilities`, `set`, `get`,
//! `delete`, `list` and `stat` are required; `exists`, `close`, the bulk calls and `gauges`
//! have defaults. The [`Contract`](hodor_core::Contract) in front of it has already checked
//! keys (1 to 1024 bytes, no NUL), refused calls after close, rejected zero TTLs and
//! rounded TTLs up to whole milliseconds, and it adds the driver, contract and key to every
//! error, so a driver returns the small [`DriverError`](hodor_core::driver::DriverError).
//! What a driver must do itself:
//!
//! - **Overwrite** on `set`, clearing an earlier TTL when `ttl` is `None`.
//! - **Expire exactly**: an entry set at `t` with TTL `d` is live strictly before `t + d`
//!   and gone from that instant on for `get`, `exists`, `stat`, `list` and `delete` (which
//!   returns `false` for an expired entry).
//! - **List** live keys starting with the prefix as plain bytes, sorted by bytes, each
//!   once, every page of them.
//! - **Keep bytes**: keys compared by every byte, values returned byte for byte.
//! - **Share by name**: two drivers opened with one name (as exact bytes) see the same data
//!   at once, with no per-handle cache, and different names share nothing; the data lives
//!   while any of them is open.
//! - **Write in one step**: a concurrent reader sees the old entry or the new one, with its
//!   own TTL, listed exactly when readable; reads change nothing.
//! - **Take any number of keys** in bulk calls, splitting for a backend's batch limit.
//! - **Version every write**: `stat`'s version changes on every write of a key, a key
//!   written again after a delete included, and never on a read.
//! - **Page** with `list_page` (or keep the default, which pages through `list`): each
//!   page strictly after its cursor, every key of the listing once.
//! - **Never panic**, and be `Send + Sync`: contracts are shared between threads.
//!
//! Register it so `Contract::new("name", ...)` finds it, at module level in the driver
//! crate:
//!
//! ```ignore
//! fn open(name: &str, config: Option<serde_json::Value>)
//!     -> hodor_core::driver::DriverResult<Box<dyn hodor_core::Driver>> { ... }
//!
//! hodor_core::register_driver!("mydriver", open);
//! ```
//!
//! A program links it with `use my_driver_crate as _;`. Then give the suite a [`Harness`]:
//! how to open a store by name, and which clock the stores read. A driver that can take an
//! injected [`Clock`](hodor_core::clock::Clock) should accept one (the suite then controls
//! time exactly); a server-backed driver uses [`TestClock::Real`] with a small slack:
//!
//! ```
//! use hodor_core::clock::ManualClock;
//! use hodor_core::{Contract, Result};
//! use hodor_testkit::{Harness, TestClock};
//!
//! struct MemoryHarness(ManualClock);
//!
//! impl Harness for MemoryHarness {
//!     fn open(&self, name: &str) -> Result<Contract> {
//!         // Every store the harness opens reads the harness's clock.
//!         hodor_memory::open_with_clock(name, Default::default(), self.0.clone().into())
//!     }
//!     fn clock(&self) -> TestClock {
//!         TestClock::Manual(self.0.clone())
//!     }
//! }
//!
//! // In tests/conformance.rs:
//! // hodor_testkit::conformance_tests!(MemoryHarness(ManualClock::new()));
//! # let report = hodor_testkit::run_cases(
//! #     &MemoryHarness(ManualClock::new()),
//! #     &[hodor_testkit::cases::ALL[0]],
//! # );
//! # assert!(report.is_success());
//! ```
//!
//! `examples/custom-driver` in the hodor repository is a complete driver of about a hundred
//! lines (a `Mutex<BTreeMap>` with expiry) that passes the whole suite: copy it to start.
//!
//! ### Capabilities
//!
//! A driver states what it supports in [`Capabilities`](hodor_core::Capabilities); the
//! suite checks each claim and skips what is not claimed:
//!
//! | capability | meaning | cases |
//! |---|---|---|
//! | `ttl` | `set` accepts a TTL and entries expire; without it a TTL is `Unsupported` | every `ttl_*` case, expiry in the model, lists and metrics |
//! | `atomic_bulk` | no reader sees part of a `set_many` or `delete_many`; `get_many` reads one moment | `set_many_is_atomic_for_readers`, `delete_many_is_atomic_for_readers` |
//! | `limits` | the driver enforces `max_bytes` / `max_entries` by evicting, and reports them in its gauges; the harness implements [`Harness::open_limited`] (and [`Harness::sweep`] for the gauges after reclamation) | every `limits_*` case |
//! | `persistent` | data outlives the process; without it a store's data is released when its last contract is closed or dropped | `data_lifetime_follows_persistence`, `data_lives_while_any_contract_is_open` |
//! | `conditional` | `create`, `set_if_version` and `increment` are implemented and atomic per key (so `get_or_insert_with` works) | `create_*`, `set_if_version_*`, `increment_*`, `concurrent_creates_of_one_key_have_one_winner`, `concurrent_set_if_version_has_one_winner`, `concurrent_increments_lose_no_update`, `get_or_insert_with_*`, and with `watch` `watch_reports_conditional_writes` |
//! | `non_blocking` | no call waits on I/O: async callers run calls inline | none (a claim about time, which the suite does not measure) |
//! | `watch` | `Driver::watch` delivers every change by the rules of `hodor_core::watch`; the harness implements [`Harness::open_with_watch_history`] for the resume-before-history case | every `watch_*` case but `watch_unsupported_is_an_error` |
//!
//! A driver that refuses to join an open store with another config (as the memory driver
//! does) lets [`Harness::open_with_other_config`] open one, and
//! `reopening_with_another_config_is_invalid_config` checks the refusal.
//!
//! ### Running the suite from code
//!
//! [`run_cases`] and [`run_suite`] run cases against a harness and return a [`Report`]
//! instead of stopping at the first failure.

#![deny(missing_docs)]
// A conformance case reports a broken rule by panicking, like any test; unwrap and expect on
// a driver's results are how the cases assert, so the workspace's lints against them do not
// apply here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![warn(clippy::indexing_slicing)]

mod ctx;
mod harness;
mod keys;
mod macros;
mod race;
mod run;

pub mod cases;

pub use harness::{Harness, Limits, TestClock};
pub use keys::{AWKWARD_KEYS, INVALID_KEYS, LONGEST_KEY, PRINTABLE_ASCII};
pub use run::{Case, Need, Outcome, Report, run_cases, run_suite};

#[doc(hidden)]
pub mod __private {
    pub use crate::harness::WithRegressions;
}
