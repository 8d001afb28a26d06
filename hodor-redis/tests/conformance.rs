//! The hodor conformance suite against a real Redis server, on the server's clock.
//!
//! The server is `HODOR_REDIS_URL`, or a `redis-server` from `PATH` that this test binary
//! starts (see `support`). Without either, each case prints a loud skip line and passes,
//! unless `HODOR_REQUIRE_REDIS=1`.

mod support;

use std::time::Duration;

use hodor_core::{Contract, Result};
use hodor_redis as _;
use hodor_testkit::{Harness, TestClock};

struct RedisHarness {
    url: String,
}

impl RedisHarness {
    /// The harness for the shared server, or `None` (after a loud skip line).
    fn new(case: &str) -> Option<RedisHarness> {
        support::url(case).map(|url| RedisHarness { url })
    }
}

impl Harness for RedisHarness {
    fn open(&self, name: &str) -> Result<Contract> {
        // The suite's names are unique per case and run; the namespace is the name.
        Contract::new("redis", name, Some(support::config(&self.url)))
    }

    fn clock(&self) -> TestClock {
        // The server expires keys to the millisecond (rounded up); the rest is a round
        // trip on loopback and scheduling on a busy machine.
        TestClock::Real {
            slack: Duration::from_millis(50),
        }
    }

    fn open_with_watch_history(&self, name: &str, events: usize) -> Option<Result<Contract>> {
        let mut config = support::config(&self.url);
        config["watch_history"] = serde_json::json!(events);
        Some(Contract::new("redis", name, Some(config)))
    }
}

// The harness expression runs at the top of each generated test; without a server it
// returns from the test, which then passes after the skip line `support::url` printed.
hodor_testkit::conformance_tests!(match RedisHarness::new("conformance") {
    Some(harness) => harness,
    None => return,
});
