//! A driver that records what reaches it, to show what the `Contract` layer stops.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hodor_core::driver::{Driver, DriverError, DriverResult};
use hodor_core::{Bytes, Capabilities, Metadata};

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
        Ok(self.data.lock().unwrap().get(key).map(|v| Metadata {
            size: v.len() as u64,
            modified: std::time::SystemTime::UNIX_EPOCH,
            expires_at: None,
        }))
    }
    fn close(&self) -> DriverResult<()> {
        self.log.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
