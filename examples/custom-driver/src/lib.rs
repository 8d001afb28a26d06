//! # A complete hodor driver in one file
//!
//! The template for a new backend: an in-process store (a `BTreeMap` behind a `Mutex`, with
//! expiry) that implements [`Driver`], registers itself as `"custom"`, and passes the whole
//! conformance suite (`tests/conformance.rs` is one line plus the harness). Copy this crate,
//! replace the map with calls to your backend, and keep the suite green.
//!
//! ```
//! use hodor_core::Contract;
//! use hodor_custom_driver as _; // link the driver, which registers "custom"
//!
//! let c = Contract::new("custom", "doc", None)?;
//! c.set("greeting", "hello", None)?;
//! assert_eq!(c.get("greeting")?, "hello");
//! assert_eq!(c.list("")?, ["greeting"]);
//! # Ok::<(), hodor_core::Error>(())
//! ```
//!
//! What it shows: the same name opens the same store (and the last close releases it), the
//! clock is injectable so tests control time, the bulk calls and the conditional writes are
//! atomic (one lock) and say so in [`Capabilities`], every write gives the entry a new
//! [`Version`], `list_page` seeks instead of listing everything, config is typed JSON that
//! rejects unknown fields.
//!
//! Expired entries are never returned; their memory is reclaimed by writes, in one pass once
//! the writes since the last pass reach the store's size (amortized O(1) per write). A
//! production driver would also reclaim them in the background, as `hodor-memory` does.

#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use hodor_core::clock::Clock;
use hodor_core::driver::{
    Driver, DriverError, DriverResult, Gauges, increment_counter, page_of, parse_config,
};
use hodor_core::{Bytes, Capabilities, Contract, Metadata, Page, Version};

/// The name the driver registers under: `Contract::new("custom", name, config)`.
pub const DRIVER_NAME: &str = "custom";

hodor_core::register_driver!(DRIVER_NAME, open_registered);

/// The driver's JSON config. It has no fields yet, but still rejects unknown ones, so a
/// typo in a config is an error instead of a silently ignored setting.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {}

fn open_registered(name: &str, config: Option<serde_json::Value>) -> DriverResult<Box<dyn Driver>> {
    let _config: Config = parse_config(config)?;
    Ok(Box::new(CustomDriver::open(name, Clock::system())?))
}

/// Opens the store `name` reading `clock`, without the registry: tests pass a
/// [`ManualClock`](hodor_core::clock::ManualClock) to cross TTL deadlines exactly.
pub fn open_with_clock(name: &str, clock: Clock) -> hodor_core::Result<Contract> {
    let driver =
        CustomDriver::open(name, clock).map_err(|e| e.into_error(DRIVER_NAME, name, "open"))?;
    Contract::from_driver(DRIVER_NAME, name, driver)
}

struct Entry {
    value: Bytes,
    modified: SystemTime,
    expires: Option<SystemTime>,
    version: u64,
}

/// Every write in the process takes the next number as its entry's version: never reused,
/// not even by a key deleted and written again, or by a store released and opened again.
fn next_version() -> u64 {
    static VERSIONS: AtomicU64 = AtomicU64::new(1);
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

impl Entry {
    fn new(value: Bytes, now: SystemTime, expires: Option<SystemTime>) -> Entry {
        Entry {
            value,
            modified: now,
            expires,
            version: next_version(),
        }
    }

    /// Live strictly before the deadline, gone from it on.
    fn live(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

#[derive(Default)]
struct Map {
    /// Ordered by key bytes (`String`'s order), so `list` is a sorted range scan.
    entries: BTreeMap<String, Entry>,
    writes_since_purge: usize,
}

impl Map {
    /// Counts `n` writes, and once they reach the store's size, reclaims what has expired.
    fn wrote(&mut self, n: usize, now: SystemTime) {
        self.writes_since_purge += n;
        if self.writes_since_purge >= self.entries.len() {
            self.entries.retain(|_, entry| entry.live(now));
            self.writes_since_purge = 0;
        }
    }
}

/// One named store.
struct Store {
    clock: Clock,
    map: Mutex<Map>,
}

/// The open stores and how many drivers hold each: one name is one store while any
/// contract on it is open, and the last close releases its data.
type OpenStores = Mutex<HashMap<String, (Arc<Store>, usize)>>;

fn open_stores() -> &'static OpenStores {
    static STORES: OnceLock<OpenStores> = OnceLock::new();
    STORES.get_or_init(Mutex::default)
}

/// A poisoned lock only means another thread panicked; the map itself is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A handle on one store; see the crate docs.
pub struct CustomDriver {
    name: String,
    store: Arc<Store>,
}

impl std::fmt::Debug for CustomDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomDriver")
            .field("name", &self.name)
            .finish()
    }
}

impl CustomDriver {
    /// Opens (or joins) the store `name`. Joining with another clock is an error: every
    /// user of one store must agree on its time.
    pub fn open(name: &str, clock: Clock) -> DriverResult<CustomDriver> {
        let mut stores = lock(open_stores());
        let (store, handles) = stores.entry(name.to_owned()).or_insert_with(|| {
            let map = Mutex::default();
            (
                Arc::new(Store {
                    clock: clock.clone(),
                    map,
                }),
                0,
            )
        });
        if !store.clock.same_as(&clock) {
            return Err(DriverError::invalid_config(
                None,
                format!("store {name:?} is already open with another clock"),
            ));
        }
        *handles += 1;
        let store = store.clone();
        Ok(CustomDriver {
            name: name.to_owned(),
            store,
        })
    }

    fn map(&self) -> MutexGuard<'_, Map> {
        lock(&self.store.map)
    }

    fn now(&self) -> SystemTime {
        self.store.clock.now()
    }
}

impl Driver for CustomDriver {
    fn capabilities(&self) -> Capabilities {
        // Every bulk call and every conditional write runs under one lock, so it is atomic.
        // The lock is held only for map operations, never for I/O: async callers may run
        // calls inline.
        Capabilities::NONE
            .ttl(true)
            .atomic_bulk(true)
            .conditional(true)
            .non_blocking(true)
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.set_many(&[(key, value)], ttl)
    }

    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        Ok(self.get_many(&[key])?.pop().flatten())
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        Ok(self.delete_many(&[key])? == 1)
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        let now = self.now();
        let map = self.map();
        let from = (Bound::Included(prefix), Bound::Unbounded);
        let matching = map.entries.range::<str, _>(from);
        Ok(matching
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, entry)| entry.live(now))
            .map(|(key, _)| key.clone())
            .collect())
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        let now = self.now();
        let map = self.map();
        Ok(map.entries.get(key).filter(|e| e.live(now)).map(|e| {
            let version = Version::from_raw(u128::from(e.version));
            Metadata::new(e.value.len() as u64, e.modified, e.expires, version)
        }))
    }

    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        let now = self.now();
        let map = self.map();
        let value = |key: &&str| map.entries.get(*key).filter(|e| e.live(now));
        Ok(keys
            .iter()
            .map(|key| value(key).map(|e| e.value.clone()))
            .collect())
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        let now = self.now();
        let expires = ttl.map(|ttl| now + ttl);
        let mut map = self.map();
        for (key, value) in entries {
            let entry = Entry::new(value.clone(), now, expires);
            map.entries.insert((*key).to_owned(), entry);
        }
        map.wrote(entries.len(), now);
        Ok(())
    }

    fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<bool> {
        let now = self.now();
        let mut map = self.map();
        if map.entries.get(key).is_some_and(|e| e.live(now)) {
            return Ok(false);
        }
        let entry = Entry::new(value, now, ttl.map(|ttl| now + ttl));
        map.entries.insert(key.to_owned(), entry);
        map.wrote(1, now);
        Ok(true)
    }

    fn set_if_version(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Version,
    ) -> DriverResult<bool> {
        let now = self.now();
        let mut map = self.map();
        let current = map.entries.get(key).filter(|e| e.live(now));
        if current.is_none_or(|e| u128::from(e.version) != expected.to_raw()) {
            return Ok(false);
        }
        let entry = Entry::new(value, now, ttl.map(|ttl| now + ttl));
        map.entries.insert(key.to_owned(), entry);
        map.wrote(1, now);
        Ok(true)
    }

    fn increment(&self, key: &str, delta: i64) -> DriverResult<i64> {
        let now = self.now();
        let mut map = self.map();
        let current = map.entries.get(key).filter(|e| e.live(now));
        let sum = increment_counter(current.map(|e| &e.value[..]), delta)?;
        // A counter keeps its TTL; a new one has none.
        let expires = current.and_then(|e| e.expires);
        let entry = Entry::new(Bytes::from(sum.to_string()), now, expires);
        map.entries.insert(key.to_owned(), entry);
        map.wrote(1, now);
        Ok(sum)
    }

    fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> DriverResult<Page> {
        let now = self.now();
        let map = self.map();
        // Seek to the later of the prefix and the cursor: the page costs what it returns.
        let from = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let keys = map
            .entries
            .range::<str, _>((from, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, entry)| entry.live(now))
            .map(|(key, _)| key.clone());
        Ok(page_of(keys, limit))
    }

    fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        let now = self.now();
        let mut map = self.map();
        let live = |e: Entry| e.live(now);
        Ok(keys
            .iter()
            .filter(|key| map.entries.remove(**key).is_some_and(live))
            .count())
    }

    fn close(&self) -> DriverResult<()> {
        let mut stores = lock(open_stores());
        if let Some((store, handles)) = stores.get_mut(&self.name) {
            if Arc::ptr_eq(store, &self.store) {
                *handles -= 1;
                if *handles == 0 {
                    stores.remove(&self.name);
                }
            }
        }
        Ok(())
    }

    fn gauges(&self) -> Gauges {
        let mut gauges = Gauges::default();
        gauges.entries = Some(self.map().entries.len() as u64);
        gauges
    }
}
