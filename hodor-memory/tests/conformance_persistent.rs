//! The hodor conformance suite against persistent, compressing memory stores that are
//! closed and recovered from disk between steps: after the 1st, 2nd, 4th, 8th, ... write
//! and every 64th, the contract's store is closed (its log synced, its memory released)
//! and opened again from its directory, so the cases check recovered state as much as live
//! state. Every rule of the suite must hold across those restarts.
//!
//! Versions do not survive a restart (a persistent store's versions carry the epoch of
//! its opening), so these handles do not claim `conditional`, and the stores of the
//! version cases (`version_*`) are never restarted: `conformance_persistent_live.rs` runs
//! the whole suite, conditional cases included, against persistent stores that stay open,
//! and `persist_conditional.rs` checks conditional writes and versions across restarts.
//!
//! The stores without limits also compress values of 1 KiB and more. The limited ones do
//! not: `max_bytes` counts compressed bytes, so a compressible value larger than the limit
//! fits, where the suite expects it refused.
//!
//! A store's `evictions` and `expirations` gauges count since it was opened in this
//! process (the crate docs say so); the handle adds up those of the stores it closed, so the
//! contract sees one store's counts across the restarts, as the suite expects of a store
//! that never closed.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::persistent::PersistentHarness;
use hodor_core::clock::Clock;
use hodor_core::driver::{Capabilities, DriverResult, Gauges};
use hodor_core::{Contract, Driver, Metadata, Result};
use hodor_memory::{Fsync, MemoryConfig, MemoryDriver};
use parking_lot::RwLock;

/// A memory driver handle that closes and reopens its store now and then.
#[derive(Debug)]
struct Reopening {
    name: String,
    config: MemoryConfig,
    clock: Clock,
    inner: RwLock<Option<MemoryDriver>>,
    writes: AtomicU64,
    /// The evictions and expirations of the stores closed so far.
    before: Mutex<(u64, u64)>,
}

impl Reopening {
    fn with<T>(&self, f: impl FnOnce(&MemoryDriver) -> DriverResult<T>) -> DriverResult<T> {
        match &*self.inner.read() {
            Some(d) => f(d),
            None => Err(hodor_core::driver::DriverError::backend(
                "the test handle is closed",
            )),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&MemoryDriver) -> DriverResult<T>) -> DriverResult<T> {
        let result = self.with(f);
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        // The version cases hold a version across writes: a restart between them gives
        // every entry a new version (see the file's docs), so their stores never restart.
        let keeps_versions = self.name.starts_with("version_");
        if !keeps_versions && (n.is_power_of_two() || n.is_multiple_of(64)) {
            let mut inner = self.inner.write();
            if let Some(old) = inner.take() {
                let g = old.gauges();
                let mut before = self.before.lock().unwrap();
                before.0 += g.evictions.unwrap_or(0);
                before.1 += g.expirations.unwrap_or(0);
                drop(before);
                old.close()?;
                *inner = Some(MemoryDriver::open(
                    &self.name,
                    self.config.clone(),
                    self.clock.clone(),
                )?);
            }
        }
        result
    }
}

impl Driver for Reopening {
    fn capabilities(&self) -> Capabilities {
        // Versions do not survive a restart (the crate docs say so), and this handle
        // restarts its store between steps the suite expects to share versions: the
        // conditional cases run against live persistent stores in
        // `conformance_persistent_live.rs` instead, and across restarts in
        // `persist_conditional.rs`.
        //
        // Nor does it claim `watch`: a restart ends the store's watches (Closed) between
        // steps. The watch cases run against live persistent stores in
        // `conformance_persistent_live.rs`, and across a restart in `tests/watch.rs`.
        self.with(|d| Ok(d.capabilities().conditional(false).watch(false)))
            .unwrap_or(Capabilities::NONE)
    }
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.write(|d| d.set(key, value, ttl))
    }
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        self.with(|d| d.get(key))
    }
    fn delete(&self, key: &str) -> DriverResult<bool> {
        self.write(|d| d.delete(key))
    }
    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        self.with(|d| d.list(prefix))
    }
    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        self.with(|d| d.stat(key))
    }
    fn exists(&self, key: &str) -> DriverResult<bool> {
        self.with(|d| d.exists(key))
    }
    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        self.with(|d| d.get_many(keys))
    }
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        self.write(|d| d.set_many(entries, ttl))
    }
    fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        self.write(|d| d.delete_many(keys))
    }
    fn close(&self) -> DriverResult<()> {
        match self.inner.write().take() {
            Some(d) => d.close(),
            None => Ok(()),
        }
    }
    fn gauges(&self) -> Gauges {
        // Under the handle's lock, so a reopen cannot count a store twice or not at all.
        let inner = self.inner.read();
        let Some(d) = &*inner else {
            return Gauges::default();
        };
        let mut g = d.gauges();
        let (evictions, expirations) = *self.before.lock().unwrap();
        g.evictions = g.evictions.map(|n| n + evictions);
        g.expirations = g.expirations.map(|n| n + expirations);
        g
    }
}

/// Opens `name`'s store behind a handle that restarts it now and then.
fn open_reopening(name: &str, config: MemoryConfig, clock: Clock) -> Result<Contract> {
    let driver = MemoryDriver::open(name, config.clone(), clock.clone())
        .map_err(|e| e.into_error("memory", name, "open"))?;
    let reopening = Reopening {
        name: name.to_owned(),
        config,
        clock,
        inner: RwLock::new(Some(driver)),
        writes: AtomicU64::new(0),
        before: Mutex::new((0, 0)),
    };
    Contract::from_driver("memory", name, reopening)
}

hodor_testkit::conformance_tests!(PersistentHarness::new(
    "conformance-persistent",
    Fsync::Interval,
    open_reopening
));
