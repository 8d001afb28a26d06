//! A driver that records what reaches it, to show what the `Contract` layer stops.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hodor_core::driver::{Driver, DriverError, DriverResult};
use hodor_core::{Bytes, Capabilities, Metadata, Version};

#[derive(Debug, Default)]
pub struct Log {
    pub calls: Mutex<Vec<String>>,
    pub closes: AtomicUsize,
    pub last_ttl: Mutex<Option<Duration>>,
}

impl Log {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[derive(Debug)]
pub struct Recording {
    pub log: Arc<Log>,
    pub data: Mutex<BTreeMap<String, Bytes>>,
    pub caps: Capabilities,
    pub fail_with: Option<fn() -> DriverError>,
}

impl Recording {
    pub fn new(caps: Capabilities) -> (Recording, Arc<Log>) {
        let log = Arc::new(Log::default());
        (
            Recording {
                log: log.clone(),
                data: Mutex::default(),
                caps,
                fail_with: None,
            },
            log,
        )
    }

    fn record(&self, call: String) -> DriverResult<()> {
        self.log.calls.lock().unwrap().push(call);
        match self.fail_with {
            Some(f) => Err(f()),
            None => Ok(()),
        }
    }
}

impl Driver for Recording {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.record(format!("set {key}"))?;
        *self.log.last_ttl.lock().unwrap() = ttl;
        self.data.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        self.record(format!("get {key}"))?;
        Ok(self.data.lock().unwrap().get(key).cloned())
    }
    fn delete(&self, key: &str) -> DriverResult<bool> {
        self.record(format!("delete {key}"))?;
        Ok(self.data.lock().unwrap().remove(key).is_some())
    }
    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        self.record(format!("list {prefix}"))?;
        let data = self.data.lock().unwrap();
        Ok(data
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        self.record(format!("stat {key}"))?;
        Ok(self.data.lock().unwrap().get(key).map(|v| {
            let modified = std::time::SystemTime::UNIX_EPOCH;
            Metadata::new(v.len() as u64, modified, None, Version::from_raw(0))
        }))
    }
    fn close(&self) -> DriverResult<()> {
        self.log.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<bool> {
        self.record(format!("create {key}"))?;
        *self.log.last_ttl.lock().unwrap() = ttl;
        let mut data = self.data.lock().unwrap();
        if data.contains_key(key) {
            return Ok(false);
        }
        data.insert(key.to_owned(), value);
        Ok(true)
    }
    fn set_if_version(
        &self,
        key: &str,
        value: Bytes,
        _ttl: Option<Duration>,
        _expected: Version,
    ) -> DriverResult<bool> {
        self.record(format!("set_if_version {key}"))?;
        let mut data = self.data.lock().unwrap();
        if !data.contains_key(key) {
            return Ok(false);
        }
        data.insert(key.to_owned(), value);
        Ok(true)
    }
    fn increment(&self, key: &str, delta: i64) -> DriverResult<i64> {
        self.record(format!("increment {key}"))?;
        let mut data = self.data.lock().unwrap();
        let sum = hodor_core::driver::increment_counter(data.get(key).map(|v| &v[..]), delta)?;
        data.insert(key.to_owned(), Bytes::from(sum.to_string()));
        Ok(sum)
    }
}

/// A driver whose `list_page` returns what it was built with, whatever it is asked: for
/// showing what the `Contract` makes of a driver's bad page.
#[derive(Debug)]
pub struct FixedPage(pub hodor_core::Page);

impl Driver for FixedPage {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    fn set(&self, _: &str, _: Bytes, _: Option<Duration>) -> DriverResult<()> {
        Ok(())
    }
    fn get(&self, _: &str) -> DriverResult<Option<Bytes>> {
        Ok(None)
    }
    fn delete(&self, _: &str) -> DriverResult<bool> {
        Ok(false)
    }
    fn list(&self, _: &str) -> DriverResult<Vec<String>> {
        Ok(self.0.keys.clone())
    }
    fn stat(&self, _: &str) -> DriverResult<Option<Metadata>> {
        Ok(None)
    }
    fn list_page(&self, _: &str, _: Option<&str>, _: usize) -> DriverResult<hodor_core::Page> {
        Ok(self.0.clone())
    }
}
