//! The whole hodor conformance suite against this driver: one test per case, with a manual
//! clock so TTL deadlines are crossed exactly and nothing sleeps.

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Result};
use hodor_testkit::{Harness, TestClock};

/// Opens stores of this driver that all read one manual clock.
struct CustomHarness {
    clock: ManualClock,
}

impl Harness for CustomHarness {
    fn open(&self, name: &str) -> Result<Contract> {
        hodor_custom_driver::open_with_clock(name, self.clock.clone().into())
    }

    fn clock(&self) -> TestClock {
        TestClock::Manual(self.clock.clone())
    }

    fn open_with_other_config(&self, name: &str) -> Option<Result<Contract>> {
        // The driver's config has no fields; its other setting is the clock, and joining an
        // open store with another clock is InvalidConfig.
        Some(hodor_custom_driver::open_with_clock(
            name,
            ManualClock::new().into(),
        ))
    }
}

hodor_testkit::conformance_tests!(CustomHarness {
    clock: ManualClock::new()
});
