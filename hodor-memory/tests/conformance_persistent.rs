//! The hodor conformance suite against persistent, compressing memory stores that are
//! closed and recovered from disk between steps: after the 1st, 2nd, 4th, 8th, ... write
//! and every 64th, the contract's store is closed (its log synced, its memory released)
//! and opened again from its directory, so the cases check recovered state as much as live
//! state. Every rule of the suite must hold across those restarts.
//!
//! The stores without limits also compress values of 1 KiB and more. The limited ones do
//! not: `max_bytes` counts compressed bytes, so a compressible value larger than the limit
//! fits, where the suite expects it refused.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hodor_core::clock::{Clock, ManualClock};
use hodor_core::driver::{Capabilities, DriverResult, Gauges};
use hodor_core::{Contract, Driver, Metadata, Result};
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, MemoryDriver, PersistConfig};
use hodor_testkit::{Harness, Limits, TestClock};
use parking_lot::RwLock;

/// A memory driver handle that closes and reopens its store now and then.
#[derive(Debug)]
struct Reopening {
    name: String,
    config: MemoryConfig,
    clock: Clock,
    inner: RwLock<Option<MemoryDriver>>,
    writes: AtomicU64,
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
        if n.is_power_of_two() || n.is_multiple_of(64) {
            let mut inner = self.inner.write();
            if let Some(old) = inner.take() {
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
        self.with(|d| Ok(d.capabilities()))
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
        self.with(|d| Ok(d.gauges())).unwrap_or_default()
    }
}

/// Persistent stores, each in its own directory under one per-case root, on one manual
/// clock.
struct PersistentMemory {
    clock: ManualClock,
    root: PathBuf,
}

impl PersistentMemory {
    fn new() -> PersistentMemory {
        static CASES: AtomicU64 = AtomicU64::new(0);
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "conformance-persistent-{}-{}",
            std::process::id(),
            CASES.fetch_add(1, Ordering::Relaxed)
        ));
        PersistentMemory {
            clock: ManualClock::new(),
            root,
        }
    }

    fn open_with(&self, name: &str, config: MemoryConfig) -> Result<Contract> {
        // Names may hold `/` and other bytes a directory name cannot: hex-encode them.
        let dir: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        let config = config.persist(PersistConfig::new(self.root.join(dir)).fsync(Fsync::Interval));
        let clock = Clock::from(self.clock.clone());
        let driver = MemoryDriver::open(name, config.clone(), clock.clone())
            .map_err(|e| e.into_error("memory", name, "open"))?;
        let reopening = Reopening {
            name: name.to_owned(),
            config,
            clock,
            inner: RwLock::new(Some(driver)),
            writes: AtomicU64::new(0),
        };
        Contract::from_driver("memory", name, reopening)
    }
}

impl Drop for PersistentMemory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Harness for PersistentMemory {
    fn open(&self, name: &str) -> Result<Contract> {
        self.open_with(
            name,
            MemoryConfig::default().compression(CompressionConfig::lz4(1024)),
        )
    }

    fn clock(&self) -> TestClock {
        TestClock::Manual(self.clock.clone())
    }

    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        let mut config = MemoryConfig::default();
        if let Some(bytes) = limits.max_bytes {
            config = config.max_bytes(bytes);
        }
        if let Some(entries) = limits.max_entries {
            config = config.max_entries(entries);
        }
        Some(self.open_with(name, config))
    }
}

hodor_testkit::conformance_tests!(PersistentMemory::new());
