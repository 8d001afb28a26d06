//! The harness of the conformance binaries on persistent stores
//! (`conformance_persistent.rs`, `conformance_persistent_live.rs`): persistent stores, each
//! in its own directory under one per-case root, on one manual clock. The binaries differ
//! only in the log's fsync mode and in how a store's config becomes the contract under test
//! (a handle that restarts its store, or the live store itself), which they pass in.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hodor_core::clock::{Clock, ManualClock};
use hodor_core::{Contract, Driver, Result};
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, MemoryDriver, PersistConfig};
use hodor_testkit::{Harness, Limits, TestClock};

/// Opens the store called `name` with `config` (its directory included) on `clock`.
pub type Opener = fn(name: &str, config: MemoryConfig, clock: Clock) -> Result<Contract>;

/// Persistent stores, each in its own directory under one per-case root (removed when the
/// harness drops), on one manual clock.
pub struct PersistentHarness {
    clock: ManualClock,
    root: PathBuf,
    fsync: Fsync,
    opener: Opener,
    /// Each name's config, with its directory (numbered: a name may hold bytes a file name
    /// cannot, and be longer than one may be), as its store was first opened.
    configs: Mutex<HashMap<String, MemoryConfig>>,
}

impl PersistentHarness {
    /// A harness whose stores live under a new directory of `CARGO_TARGET_TMPDIR` named
    /// after `prefix`, log with `fsync`, and are opened by `opener`.
    pub fn new(prefix: &str, fsync: Fsync, opener: Opener) -> PersistentHarness {
        static CASES: AtomicU64 = AtomicU64::new(0);
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            CASES.fetch_add(1, Ordering::Relaxed)
        ));
        PersistentHarness {
            clock: ManualClock::new(),
            root,
            fsync,
            opener,
            configs: Mutex::default(),
        }
    }

    fn open_with(&self, name: &str, config: MemoryConfig) -> Result<Contract> {
        static DIRS: AtomicU64 = AtomicU64::new(0);
        // The directory is chosen and recorded under one lock, so two opens of a new name
        // share it.
        let mut configs = self.configs.lock().unwrap();
        let dir = configs
            .get(name)
            .and_then(|c| c.persist.as_ref())
            .map(|p| p.dir.clone())
            .unwrap_or_else(|| {
                let n = DIRS.fetch_add(1, Ordering::Relaxed);
                self.root.join(format!("store-{n}"))
            });
        let config = config.persist(PersistConfig::new(dir).fsync(self.fsync));
        configs
            .entry(name.to_owned())
            .or_insert_with(|| config.clone());
        drop(configs);
        (self.opener)(name, config, self.clock.clone().into())
    }
}

impl Drop for PersistentHarness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Harness for PersistentHarness {
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
        // No compression: `max_bytes` counts compressed bytes, so a compressible value
        // larger than the limit would fit, where the suite expects it refused.
        let mut config = MemoryConfig::default();
        if let Some(bytes) = limits.max_bytes {
            config = config.max_bytes(bytes);
        }
        if let Some(entries) = limits.max_entries {
            config = config.max_entries(entries);
        }
        Some(self.open_with(name, config))
    }

    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        Some(
            self.open_with(
                name,
                MemoryConfig::default()
                    .compression(CompressionConfig::lz4(1024))
                    .sweep_interval_ms(37),
            ),
        )
    }

    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        // As `open` but for the history, so the case runs on a store that logs and
        // compresses: a persistent store publishes its changes under the shard lock of
        // their log records, and numbers them past every earlier opening's, and its
        // history must still be bounded and still refuse a seq from before it (Compacted).
        Some(
            self.open_with(
                name,
                MemoryConfig::default()
                    .compression(CompressionConfig::lz4(1024))
                    .watch_history(events),
            ),
        )
    }

    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        // A second handle on the open store (same config, same clock) sweeps it, then
        // closes without closing the store: the contract's handle still holds it.
        let name = contract.name();
        let config = self.configs.lock().unwrap().get(name).cloned()?;
        let driver = MemoryDriver::open(name, config, self.clock.clone().into())
            .map_err(|e| e.into_error(hodor_memory::DRIVER_NAME, name, "open"));
        Some(driver.and_then(|d| {
            d.sweep();
            Driver::close(&d).map_err(|e| e.into_error(hodor_memory::DRIVER_NAME, name, "close"))
        }))
    }
}
