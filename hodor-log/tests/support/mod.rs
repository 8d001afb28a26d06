//! What the behaviour tests share: a driver that can be stalled and made to fail, and
//! helpers to read a sink's records back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use hodor_core::clock::Clock;
use hodor_core::driver::{Capabilities, Driver, DriverError, DriverResult};
use hodor_core::{Bytes, Contract, Metadata};
use hodor_log::Record;
use hodor_memory::{MemoryConfig, MemoryDriver};

/// A store name no other test uses.
pub fn unique(base: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{base}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Every record under `prefix`, in order; panics on an error item.
pub fn records(contract: &Contract, prefix: &str) -> Vec<Record> {
    hodor_log::read(contract, prefix, UNIX_EPOCH)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The messages of [`records`].
pub fn messages(contract: &Contract, prefix: &str) -> Vec<String> {
    records(contract, prefix)
        .into_iter()
        .map(|r| r.message)
        .collect()
}

/// How many records each batch holds, in the order the batches were first read.
pub fn batch_sizes(records: &[Record]) -> Vec<usize> {
    let mut sizes: Vec<(String, usize)> = Vec::new();
    for r in records {
        match sizes.iter_mut().find(|(k, _)| *k == r.batch) {
            Some((_, n)) => *n += 1,
            None => sizes.push((r.batch.clone(), 1)),
        }
    }
    sizes.into_iter().map(|(_, n)| n).collect()
}

/// Controls a gated store (see [`gated`]) from the test.
#[derive(Debug, Default)]
pub struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// `set` calls waiting at the closed gate now.
    pub waiting: AtomicUsize,
    /// `set` calls that reached the store or failed.
    pub sets: AtomicUsize,
    /// The next this-many `set` calls fail with a backend error.
    pub fail_next: AtomicU32,
}

impl Gate {
    /// Stops every `set` until [`Gate::open`].
    pub fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    pub fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }

    /// Waits until a `set` is stuck at the gate.
    pub fn wait_for_a_stuck_set(&self) {
        while self.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// What a [`Hooked`] store runs before each `set`; an error fails the `set`.
pub type Hook = Box<dyn Fn(&str) -> DriverResult<()> + Send + Sync>;

/// A memory store that runs a hook before each `set`, with or without TTLs.
pub struct Hooked {
    inner: MemoryDriver,
    hook: Hook,
    ttl: bool,
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish()
    }
}

/// A contract named `name` on a fresh [`Hooked`] store.
pub fn hooked(name: &str, ttl: bool, hook: Hook) -> Contract {
    let inner = MemoryDriver::open(&unique(name), MemoryConfig::default(), Clock::system())
        .expect("memory store");
    Contract::from_driver("hooked", name, Hooked { inner, hook, ttl }).unwrap()
}

/// A contract whose `set` can be stalled and made to fail, and its gate.
pub fn gated(name: &str, ttl: bool) -> (Contract, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let contract = hooked(name, ttl, Box::new(move |_| g.pass()));
    (contract, gate)
}

impl Gate {
    /// What a gated `set` does first: wait while the gate is closed, then fail if told to.
    fn pass(&self) -> DriverResult<()> {
        let mut closed = self.closed.lock().unwrap();
        if *closed {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            while *closed {
                closed = self.opened.wait(closed).unwrap();
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        drop(closed);
        self.sets.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match failing {
            Ok(_) => Err(DriverError::backend("injected failure")),
            Err(_) => Ok(()),
        }
    }
}

impl Driver for Hooked {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.ttl(self.ttl)
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        (self.hook)(key)?;
        self.inner.set(key, value, ttl)
    }

    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        self.inner.get(key)
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        self.inner.delete(key)
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        self.inner.list(prefix)
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        self.inner.stat(key)
    }
}
