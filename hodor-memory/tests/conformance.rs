//! The hodor conformance suite against the memory driver, with a manual clock: every TTL
//! deadline is crossed exactly, without sleeping.

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Result};
use hodor_memory::MemoryConfig;
use hodor_testkit::{Harness, Limits, TestClock};

/// Opens memory stores that all read one manual clock.
struct ManualMemory {
    clock: ManualClock,
}

impl ManualMemory {
    fn new() -> ManualMemory {
        ManualMemory {
            clock: ManualClock::new(),
        }
    }
}

impl Harness for ManualMemory {
    fn open(&self, name: &str) -> Result<Contract> {
        hodor_memory::open_with_clock(name, MemoryConfig::default(), self.clock.clone().into())
    }

    fn clock(&self) -> TestClock {
        TestClock::Manual(self.clock.clone())
    }

    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        Some(hodor_memory::open_with_clock(
            name,
            limited(limits),
            self.clock.clone().into(),
        ))
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
