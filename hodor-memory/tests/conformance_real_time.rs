//! The hodor conformance suite against the memory driver on the system clock, as a
//! server-backed driver would run it: TTL cases sleep for short deadlines and poll.

use std::time::Duration;

use hodor_core::{Contract, Result};
use hodor_memory::MemoryConfig;
use hodor_testkit::{Harness, Limits, TestClock};

/// Opens memory stores on the system clock.
struct RealTimeMemory;

impl Harness for RealTimeMemory {
    fn open(&self, name: &str) -> Result<Contract> {
        hodor_memory::open(name, MemoryConfig::default())
    }

    fn clock(&self) -> TestClock {
        // The memory driver expires entries exactly at their deadline; the slack only
        // absorbs scheduling delays on a loaded machine.
        TestClock::Real {
            slack: Duration::from_millis(250),
        }
    }

    fn open_limited(&self, name: &str, limits: Limits) -> Option<Result<Contract>> {
        let mut config = MemoryConfig::default();
        if let Some(bytes) = limits.max_bytes {
            config = config.max_bytes(bytes);
        }
        if let Some(entries) = limits.max_entries {
            config = config.max_entries(entries);
        }
        Some(hodor_memory::open(name, config))
    }

    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        Some(hodor_memory::open(
            name,
            MemoryConfig::default().sweep_interval_ms(37),
        ))
    }

    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        Some(hodor_memory::open(
            name,
            MemoryConfig::default().watch_history(events),
        ))
    }
}

hodor_testkit::conformance_tests!(RealTimeMemory);
