//! The hodor conformance suite against the memory driver, with a manual clock: every TTL
//! deadline is crossed exactly, without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Result};
use hodor_memory::{MemoryConfig, MemoryDriver};
use hodor_testkit::{Harness, Limits, TestClock};

/// Opens memory stores that all read one manual clock.
struct ManualMemory {
    clock: ManualClock,
    /// The config each store was opened with, so the sweep hook can join it.
    configs: Mutex<HashMap<String, MemoryConfig>>,
}

impl ManualMemory {
    fn new() -> ManualMemory {
        ManualMemory {
            clock: ManualClock::new(),
            configs: Mutex::default(),
        }
    }

    fn open_with(&self, name: &str, config: MemoryConfig) -> Result<Contract> {
        let opened = hodor_memory::open_with_clock(name, config.clone(), self.clock.clone().into());
        if opened.is_ok() {
            self.configs.lock().unwrap().insert(name.to_owned(), config);
        }
        opened
    }
}

impl Harness for ManualMemory {
    fn open(&self, name: &str) -> Result<Contract> {
        self.open_with(name, MemoryConfig::default())
    }

    fn clock(&self) -> TestClock {
        TestClock::Manual(self.clock.clone())
    }

    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        Some(self.open_with(name, limited(limits)))
    }

    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        Some(self.open_with(name, MemoryConfig::default().sweep_interval_ms(37)))
    }

    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        Some(self.open_with(name, MemoryConfig::default().watch_history(events)))
    }

    fn sweep(&self, contract: &Contract) -> Option<Result<()>> {
        // A second handle on the open store (same config, same clock) sweeps it, then
        // closes without releasing it: the contract's handle still holds it.
        let name = contract.name();
        let config = self.configs.lock().unwrap().get(name).cloned()?;
        let driver = MemoryDriver::open(name, config, self.clock.clone().into())
            .map_err(|e| e.into_error(hodor_memory::DRIVER_NAME, name, "open"));
        Some(driver.and_then(|d| {
            d.sweep();
            hodor_core::Driver::close(&d)
                .map_err(|e| e.into_error(hodor_memory::DRIVER_NAME, name, "close"))
        }))
    }
}

/// A memory config with the suite's limits.
fn limited(limits: Limits) -> MemoryConfig {
    let mut config = MemoryConfig::default();
    if let Some(bytes) = limits.max_bytes {
        config = config.max_bytes(bytes);
    }
    if let Some(entries) = limits.max_entries {
        config = config.max_entries(entries);
    }
    config
}

hodor_testkit::conformance_tests!(ManualMemory::new());
