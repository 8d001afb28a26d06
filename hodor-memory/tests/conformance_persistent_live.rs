//! The hodor conformance suite, conditional writes and versions included, against
//! persistent memory stores that stay open: every write goes through the log (with
//! `fsync = always`, so the concurrent cases share group commits), and the stores without
//! limits compress values of 1 KiB and more. `conformance_persistent.rs` runs the suite
//! with restarts between steps.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hodor_core::clock::{Clock, ManualClock};
use hodor_core::{Contract, Driver, Result};
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, MemoryDriver, PersistConfig};
use hodor_testkit::{Harness, Limits, TestClock};

/// Persistent stores, each in its own directory under one per-case root, on one manual
/// clock.
struct LivePersistentMemory {
    clock: ManualClock,
    root: PathBuf,
    /// Each name's config, with its directory (numbered: a name may hold bytes a file
    /// name cannot).
    configs: Mutex<HashMap<String, MemoryConfig>>,
}

impl LivePersistentMemory {
    fn new() -> LivePersistentMemory {
        static CASES: AtomicU64 = AtomicU64::new(0);
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "conformance-live-{}-{}",
            std::process::id(),
            CASES.fetch_add(1, Ordering::Relaxed)
        ));
        LivePersistentMemory {
            clock: ManualClock::new(),
            root,
            configs: Mutex::default(),
        }
    }

    fn open_with(&self, name: &str, config: MemoryConfig) -> Result<Contract> {
        static DIRS: AtomicU64 = AtomicU64::new(0);
        let mut configs = self.configs.lock().unwrap();
        let dir = configs
            .get(name)
            .and_then(|c| c.persist.as_ref())
            .map(|p| p.dir.clone())
            .unwrap_or_else(|| {
                let n = DIRS.fetch_add(1, Ordering::Relaxed);
                self.root.join(format!("store-{n}"))
            });
        let config = config.persist(PersistConfig::new(dir).fsync(Fsync::Always));
        configs
            .entry(name.to_owned())
            .or_insert_with(|| config.clone());
        drop(configs);
        hodor_memory::open_with_clock(name, config, self.clock.clone().into())
    }
}

impl Drop for LivePersistentMemory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Harness for LivePersistentMemory {
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

    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        // A second handle on the open store (same config, same clock) sweeps it, then
        // closes without closing the store: the contract's handle still holds it.
        let name = contract.name();
        let config = self.configs.lock().unwrap().get(name).cloned()?;
        let clock = Clock::from(self.clock.clone());
        let driver = MemoryDriver::open(name, config, clock)
            .map_err(|e| e.into_error(hodor_memory::DRIVER_NAME, name, "open"));
        Some(driver.and_then(|d| {
            d.sweep();
            Driver::close(&d).map_err(|e| e.into_error(hodor_memory::DRIVER_NAME, name, "close"))
        }))
    }
}

hodor_testkit::conformance_tests!(LivePersistentMemory::new());
