//! The hodor conformance suite against the memory driver, with a manual clock: every TTL
//! deadline is crossed exactly, without sleeping.

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Result};
use hodor_memory::MemoryConfig;
use hodor_testkit::{Harness, TestClock};

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

    // The memory driver has no size limits yet, so `open_limited` keeps its default (None)
    // and the limit cases are skipped.
}

hodor_testkit::conformance_tests!(ManualMemory::new());
