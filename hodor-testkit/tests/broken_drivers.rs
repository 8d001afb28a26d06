//! The suite catches real mistakes: each driver here wraps the correct memory driver and
//! breaks one behaviour, and each must fail the suite (at least in the case written for
//! that rule). The unbroken wrapper must pass, so the failures are the flaws' doing.
//!
//! Run with `--nocapture` to see which cases catch which flaw.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hodor_core::clock::{Clock, ManualClock};
use hodor_core::driver::{Driver, DriverResult, Gauges};
use hodor_core::{Bytes, Capabilities, Contract, Metadata, Result};
use hodor_memory::{MemoryConfig, MemoryDriver};
use hodor_testkit::{Harness, Outcome, Report, TestClock, run_suite};

/// One deliberate mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    /// No mistake: the wrapper must pass everything.
    None,
    /// The driver has no TTLs and says so: TTL cases must be skipped, not failed.
    NoTtlCapability,
    /// `list` returns keys in descending order.
    UnsortedList,
    /// `list` sorts case-insensitively, as a database collation might.
    ListSortedIgnoringCase,
    /// `list("foo")` matches whole path segments only: `foo` and `foo/...`, not `foo.bar`.
    ListAsPathSegments,
    /// `list` still shows keys whose TTL has passed.
    ListIncludesExpired,
    /// TTLs are accepted and ignored: nothing expires.
    TtlIgnored,
    /// Entries expire one millisecond after their deadline (a `<=` for a `<`).
    ExpiresOneMillisecondLate,
    /// `exists` is true for an expired entry that has not been reclaimed.
    ExistsTrueForExpired,
    /// `delete` always answers true.
    DeleteAlwaysTrue,
    /// `delete` answers true for an expired entry it removed.
    DeleteTrueForExpired,
    /// `set` without a TTL keeps the TTL of the value it overwrites.
    OverwriteKeepsTtl,
    /// A `set` racing another is dropped (a check-then-act race).
    LostWrites,
    /// Every name opens one shared store.
    NamesShareOneStore,
    /// Claims atomic bulk calls but runs them key by key.
    ClaimsAtomicBulk,
}

/// What the broken wrappers of one store remember beside the real data.
#[derive(Default)]
struct Shared {
    /// Keys last set with a TTL and not deleted since (expired or not).
    ttl_keys: Mutex<BTreeSet<String>>,
    /// A set is in progress (for [`Flaw::LostWrites`]).
    writing: AtomicBool,
    /// Wrappers open on the store: the races are widened only when there can be any.
    handles: AtomicUsize,
}

fn shared(name: &str) -> Arc<Shared> {
    static ALL: OnceLock<Mutex<HashMap<String, Arc<Shared>>>> = OnceLock::new();
    let mut all = ALL.get_or_init(Mutex::default).lock().unwrap();
    all.entry(name.to_owned()).or_default().clone()
}

#[derive(Debug)]
struct Broken {
    inner: MemoryDriver,
    flaw: Flaw,
    clock: Clock,
    shared: SharedRef,
}

struct SharedRef(Arc<Shared>);

impl std::fmt::Debug for SharedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Broken {
    fn ttl_keys(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.shared.0.ttl_keys.lock().unwrap()
    }
}

impl Driver for Broken {
    fn capabilities(&self) -> Capabilities {
        // The wrapper's bulk calls are the trait's key-by-key defaults, and it opens no
        // limited stores: it claims neither (unless that claim is the flaw).
        let caps = self.inner.capabilities().atomic_bulk(false).limits(false);
        match self.flaw {
            Flaw::NoTtlCapability => caps.ttl(false),
            Flaw::ClaimsAtomicBulk => caps.atomic_bulk(true),
            _ => caps,
        }
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        let mut ttl = ttl;
        match self.flaw {
            Flaw::TtlIgnored => ttl = None,
            Flaw::ExpiresOneMillisecondLate => ttl = ttl.map(|d| d + Duration::from_millis(1)),
            Flaw::OverwriteKeepsTtl if ttl.is_none() => {
                if let Some(Metadata {
                    expires_at: Some(at),
                    ..
                }) = self.inner.stat(key)?
                {
                    ttl = at.duration_since(self.clock.now()).ok();
                }
            }
            Flaw::LostWrites => {
                if self.shared.0.writing.swap(true, Ordering::AcqRel) {
                    return Ok(()); // "someone else is writing"
                }
                if self.shared.0.handles.load(Ordering::Acquire) > 1 {
                    std::thread::yield_now();
                }
                let result = self.inner.set(key, value, ttl);
                self.shared.0.writing.store(false, Ordering::Release);
                return result;
            }
            _ => {}
        }
        if ttl.is_some() {
            self.ttl_keys().insert(key.to_owned());
        } else {
            self.ttl_keys().remove(key);
        }
        self.inner.set(key, value, ttl)
    }

    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        self.inner.get(key)
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        for (key, value) in entries {
            self.set(key, value.clone(), ttl)?;
            if self.flaw == Flaw::ClaimsAtomicBulk {
                std::thread::yield_now(); // readers see the half-done call
            }
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        let had_ttl = self.ttl_keys().remove(key);
        let removed = self.inner.delete(key)?;
        Ok(match self.flaw {
            Flaw::DeleteAlwaysTrue => true,
            Flaw::DeleteTrueForExpired => removed || had_ttl,
            _ => removed,
        })
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        let mut keys = self.inner.list(prefix)?;
        match self.flaw {
            Flaw::UnsortedList => keys.reverse(),
            Flaw::ListSortedIgnoringCase => keys.sort_by_key(|k| k.to_lowercase()),
            Flaw::ListAsPathSegments => keys.retain(|k| {
                let rest = &k[prefix.len()..];
                prefix.is_empty()
                    || prefix.ends_with('/')
                    || rest.is_empty()
                    || rest.starts_with('/')
            }),
            Flaw::ListIncludesExpired => {
                let mut all: BTreeSet<String> = keys.into_iter().collect();
                all.extend(
                    self.ttl_keys()
                        .iter()
                        .filter(|k| k.starts_with(prefix))
                        .cloned(),
                );
                keys = all.into_iter().collect();
            }
            _ => {}
        }
        Ok(keys)
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        self.inner.stat(key)
    }

    fn exists(&self, key: &str) -> DriverResult<bool> {
        let live = self.inner.exists(key)?;
        Ok(match self.flaw {
            Flaw::ExistsTrueForExpired => live || self.ttl_keys().contains(key),
            _ => live,
        })
    }

    fn close(&self) -> DriverResult<()> {
        self.shared.0.handles.fetch_sub(1, Ordering::AcqRel);
        self.inner.close()
    }

    fn gauges(&self) -> Gauges {
        self.inner.gauges()
    }
}

struct BrokenHarness {
    flaw: Flaw,
    clock: ManualClock,
    /// The one store every name opens, for [`Flaw::NamesShareOneStore`].
    one_store: String,
}

impl BrokenHarness {
    fn new(flaw: Flaw) -> BrokenHarness {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        BrokenHarness {
            flaw,
            clock: ManualClock::new(),
            one_store: format!("one-store-{}", N.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl Harness for BrokenHarness {
    fn open(&self, name: &str) -> Result<Contract> {
        let store = match self.flaw {
            Flaw::NamesShareOneStore => self.one_store.as_str(),
            _ => name,
        };
        let clock = Clock::from(self.clock.clone());
        let inner = MemoryDriver::open(store, MemoryConfig::default(), clock.clone())
            .map_err(|e| e.into_error("broken", name, "open"))?;
        let shared = shared(store);
        shared.handles.fetch_add(1, Ordering::AcqRel);
        let driver = Broken {
            inner,
            flaw: self.flaw,
            clock,
            shared: SharedRef(shared),
        };
        Contract::from_driver("broken", name, driver)
    }

    fn clock(&self) -> TestClock {
        TestClock::Manual(self.clock.clone())
    }
}

fn run(flaw: Flaw) -> Report {
    let report = run_suite(&BrokenHarness::new(flaw));
    let failed = report.failed();
    let mut slow: Vec<_> = report.results.iter().map(|(n, _, d)| (*d, *n)).collect();
    slow.sort();
    println!("{flaw:?} slowest: {:?}", &slow[slow.len() - 4..]);
    println!("{flaw:?}: {} failing cases: {failed:?}", failed.len());
    for (name, outcome, _) in &report.results {
        if let Outcome::Failed(why) = outcome {
            let first = why.lines().next().unwrap_or_default();
            println!("  {name}: {first}");
        }
    }
    report
}

/// The flaw fails the suite, and in particular the case written for its rule.
fn caught(flaw: Flaw, by: &str) {
    let report = run(flaw);
    assert!(
        !report.is_success(),
        "the suite passed a driver with the flaw {flaw:?}"
    );
    assert!(
        report.failed().contains(&by),
        "{flaw:?} was not caught by {by}; it failed {:?}",
        report.failed()
    );
}

#[test]
fn the_unbroken_wrapper_passes_everything() {
    let report = run(Flaw::None);
    assert!(report.is_success(), "{report}");
    assert!(
        report.passed().len() > 70,
        "only {} cases passed",
        report.passed().len()
    );
}

#[test]
fn a_driver_without_ttls_passes_with_the_ttl_cases_skipped() {
    let report = run(Flaw::NoTtlCapability);
    assert!(report.is_success(), "{report}");
    let skipped = report.skipped();
    assert!(
        skipped.contains(&"ttl_get_is_not_found_from_the_deadline"),
        "{skipped:?}"
    );
    assert!(skipped.contains(&"same_name_shares_expiry"), "{skipped:?}");
    assert_eq!(
        report.outcome("ttl_unsupported_is_an_error"),
        Some(&Outcome::Passed),
        "the one TTL case for drivers without TTLs runs"
    );
    match report.outcome("ttl_exists_is_false_from_the_deadline") {
        Some(Outcome::Skipped(why)) => assert!(why.contains("Capabilities::ttl"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsorted_list_is_caught() {
    caught(Flaw::UnsortedList, "list_is_sorted_by_bytes");
}

#[test]
fn list_sorted_ignoring_case_is_caught() {
    caught(Flaw::ListSortedIgnoringCase, "list_is_sorted_by_bytes");
}

#[test]
fn list_by_path_segments_is_caught() {
    caught(Flaw::ListAsPathSegments, "list_is_a_byte_prefix_not_a_path");
}

#[test]
fn list_including_expired_keys_is_caught() {
    caught(
        Flaw::ListIncludesExpired,
        "ttl_list_omits_keys_from_the_deadline",
    );
}

#[test]
fn ignored_ttl_is_caught() {
    caught(Flaw::TtlIgnored, "ttl_get_is_not_found_from_the_deadline");
}

#[test]
fn expiry_one_millisecond_late_is_caught() {
    caught(
        Flaw::ExpiresOneMillisecondLate,
        "ttl_get_is_not_found_from_the_deadline",
    );
}

#[test]
fn exists_true_for_expired_keys_is_caught() {
    caught(
        Flaw::ExistsTrueForExpired,
        "ttl_exists_is_false_from_the_deadline",
    );
}

#[test]
fn delete_always_true_is_caught() {
    caught(Flaw::DeleteAlwaysTrue, "delete_missing_is_false");
}

#[test]
fn delete_true_for_expired_keys_is_caught() {
    caught(
        Flaw::DeleteTrueForExpired,
        "ttl_delete_of_an_expired_key_is_false",
    );
}

#[test]
fn overwrite_keeping_the_old_ttl_is_caught() {
    caught(Flaw::OverwriteKeepsTtl, "ttl_set_without_ttl_clears_it");
}

#[test]
fn lost_writes_under_concurrency_are_caught() {
    caught(Flaw::LostWrites, "concurrent_writers_lose_no_write");
}

#[test]
fn names_sharing_one_store_are_caught() {
    caught(Flaw::NamesShareOneStore, "different_names_are_isolated");
}

#[test]
fn a_false_atomic_bulk_claim_is_caught() {
    caught(Flaw::ClaimsAtomicBulk, "set_many_is_atomic_for_readers");
}
