//! What counting costs a `get`.
//!
//! `Contract::get` and `Contract::exists` do the same checks (closed flag, key rules) and
//! one driver call; only `get` bumps the hit/miss counters. On a driver whose calls return
//! at once, the difference between the two is the counting, and everything else is equal:
//! both return the same empty, static `Bytes` through the harness.

use std::time::Duration;

use bytes::Bytes;
use hodor_core::driver::{DriverResult, Gauges};
use hodor_core::{Capabilities, Contract, Driver, Metadata};

use crate::keys::Values;
use crate::plan::Plan;
use crate::results::{MetricsCost, Summary};
use crate::runner::{Until, replay};
use crate::stores::Store;
use crate::stream::Stream;

/// A driver that stores nothing and answers every read with a hit.
#[derive(Debug)]
pub(crate) struct NoopDriver;

impl Driver for NoopDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    fn set(&self, _: &str, _: Bytes, _: Option<Duration>) -> DriverResult<()> {
        Ok(())
    }
    #[inline]
    fn get(&self, _: &str) -> DriverResult<Option<Bytes>> {
        Ok(Some(Bytes::new()))
    }
    fn delete(&self, _: &str) -> DriverResult<bool> {
        Ok(false)
    }
    fn list(&self, _: &str) -> DriverResult<Vec<String>> {
        Ok(Vec::new())
    }
    fn stat(&self, _: &str) -> DriverResult<Option<Metadata>> {
        Ok(None)
    }
    #[inline]
    fn exists(&self, _: &str) -> DriverResult<bool> {
        Ok(true)
    }
    fn gauges(&self) -> Gauges {
        Gauges::default()
    }
}

/// `get` through the contract.
struct GetProbe(Contract);
/// `exists` through the contract, shaped like a get.
struct ExistsProbe(Contract);

impl Store for GetProbe {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get(key).ok()
    }
    fn set(&self, _: &str, _: Bytes, _: Option<Duration>) -> bool {
        false
    }
    fn delete(&self, _: &str) -> bool {
        false
    }
    fn list(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn resident(&self) -> u64 {
        0
    }
}

impl Store for ExistsProbe {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        match self.0.exists(key) {
            Ok(true) => Some(Bytes::new()),
            _ => None,
        }
    }
    fn set(&self, _: &str, _: Bytes, _: Option<Duration>) -> bool {
        false
    }
    fn delete(&self, _: &str) -> bool {
        false
    }
    fn list(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn resident(&self) -> u64 {
        0
    }
}

/// Measures `get` and `exists` on the no-op driver, interleaved, one thread, replaying
/// `stream` (its sets, if any, are ignored by the driver).
pub fn run(plan: &Plan, stream: &Stream) -> Option<MetricsCost> {
    let contract = Contract::from_driver("noop", "metrics-cost", NoopDriver).ok()?;
    let get = GetProbe(contract.clone());
    let exists = ExistsProbe(contract);
    let values = Values::new(1, 1, 0);
    let until = Until::Elapsed(plan.duration);
    let ns = |t: crate::runner::Tally| t.nanos as f64 / t.ops.max(1) as f64;
    replay(&get, stream, &values, Until::Elapsed(plan.warmup));
    replay(&exists, stream, &values, Until::Elapsed(plan.warmup));
    let mut get_ns = Vec::new();
    let mut exists_ns = Vec::new();
    for rep in 0..plan.reps {
        if rep % 2 == 0 {
            get_ns.push(ns(replay(&get, stream, &values, until)));
            exists_ns.push(ns(replay(&exists, stream, &values, until)));
        } else {
            exists_ns.push(ns(replay(&exists, stream, &values, until)));
            get_ns.push(ns(replay(&get, stream, &values, until)));
        }
    }
    Some(MetricsCost {
        get_ns: Summary::of(get_ns),
        exists_ns: Summary::of(exists_ns),
    })
}
