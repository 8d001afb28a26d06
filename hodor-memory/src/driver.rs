//! [`MemoryDriver`]: the [`Driver`] implementation, and the process-wide table of open stores
//! that makes one name mean one store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use hodor_core::clock::Clock;
use hodor_core::driver::{Capabilities, Driver, DriverError, DriverResult, Gauges, parse_config};
use hodor_core::{Contract, Metadata};

use crate::config::MemoryConfig;
use crate::store::Store;
use crate::sweeper;

/// The name the driver registers under.
pub const DRIVER_NAME: &str = "memory";

/// A handle on one memory store. Opening the same name again returns a handle on the same
/// store; the store's data is released when its last handle is closed or dropped.
///
/// Most code opens it by name through [`Contract::new`]; [`crate::open`] and
/// [`crate::open_with_clock`] open it without the registry.
pub struct MemoryDriver {
    store: Arc<Store>,
}

impl std::fmt::Debug for MemoryDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDriver")
            .field("name", &self.store.name)
            .field("config", &self.store.config)
            .field("clock", &self.store.clock)
            .finish()
    }
}

struct Open {
    store: Weak<Store>,
    handles: usize,
}

/// Open stores by name. A store leaves the table when its last handle closes, so the next
/// open of that name starts empty.
fn open_stores() -> &'static Mutex<HashMap<String, Open>> {
    static STORES: OnceLock<Mutex<HashMap<String, Open>>> = OnceLock::new();
    STORES.get_or_init(Mutex::default)
}

impl MemoryDriver {
    /// Opens (or joins) the store called `name`.
    ///
    /// Joining an open store with a different config or clock is an
    /// [`DriverError::InvalidConfig`]: two users of one store must agree on what it is.
    pub fn open(name: &str, config: MemoryConfig, clock: Clock) -> DriverResult<MemoryDriver> {
        if let Some((field, reason)) = config.problem() {
            return Err(DriverError::invalid_config(Some(field), reason));
        }
        let mut stores = open_stores().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = stores.get_mut(name)
            && let Some(store) = open.store.upgrade()
        {
            if store.config != config {
                return Err(DriverError::invalid_config(
                    None,
                    format!(
                        "memory store {name:?} is already open with {:?}, not {config:?}; open \
                         it with the same config, or close every contract on it first",
                        store.config
                    ),
                ));
            }
            if !store.clock.same_as(&clock) {
                return Err(DriverError::invalid_config(
                    None,
                    format!(
                        "memory store {name:?} is already open with another clock ({:?}); \
                         every contract on one store must use the same clock",
                        store.clock
                    ),
                ));
            }
            open.handles += 1;
            return Ok(MemoryDriver { store });
        }
        let store = Arc::new(Store::open(name, config, clock)?);
        store.start();
        stores.insert(
            name.to_owned(),
            Open {
                store: Arc::downgrade(&store),
                handles: 1,
            },
        );
        drop(stores);
        sweeper::register(&store);
        Ok(MemoryDriver { store })
    }

    /// Reclaims expired entries now instead of waiting for the background sweep.
    pub fn sweep(&self) {
        self.store.sweep();
    }

    /// Writes a snapshot of a persistent store now, on this thread, instead of waiting for
    /// the log to grow past `snapshot_log_bytes`; afterwards recovery replays only what is
    /// written from here on. `Ok(false)` for a store without persistence, or when the
    /// snapshot was skipped (the store is closing, or the log could not start a new
    /// segment).
    pub fn snapshot(&self) -> DriverResult<bool> {
        self.store.snapshot()
    }
}

/// The registry's entry point: `Contract::new("memory", name, config)`.
pub(crate) fn open_registered(
    name: &str,
    config: Option<serde_json::Value>,
) -> DriverResult<Box<dyn Driver>> {
    let config: MemoryConfig = parse_config(config)?;
    Ok(Box::new(MemoryDriver::open(name, config, Clock::system())?))
}

/// Opens the memory store `name` as a [`Contract`], without the registry.
///
/// ```
/// let c = hodor_memory::open("direct", hodor_memory::MemoryConfig::default())?;
/// c.set("k", "v", None)?;
/// assert_eq!(c.get("k")?, "v");
/// # Ok::<(), hodor_core::Error>(())
/// ```
pub fn open(name: &str, config: MemoryConfig) -> hodor_core::Result<Contract> {
    open_with_clock(name, config, Clock::system())
}

/// Opens the memory store `name` with an injected clock: tests use a
/// [`ManualClock`](hodor_core::clock::ManualClock) to cross TTL boundaries exactly.
///
/// ```
/// use hodor_core::clock::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let c = hodor_memory::open_with_clock("clocked", Default::default(), clock.clone().into())?;
/// c.set("k", "v", Some(Duration::from_secs(1)))?;
/// clock.advance(Duration::from_millis(999));
/// assert!(c.exists("k")?);
/// clock.advance(Duration::from_millis(1));
/// assert!(!c.exists("k")?);
/// # Ok::<(), hodor_core::Error>(())
/// ```
pub fn open_with_clock(
    name: &str,
    config: MemoryConfig,
    clock: Clock,
) -> hodor_core::Result<Contract> {
    let driver = MemoryDriver::open(name, config, clock)
        .map_err(|e| e.into_error(DRIVER_NAME, name, "open"))?;
    Contract::from_driver(DRIVER_NAME, name, driver)
}

impl Driver for MemoryDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .ttl(true)
            .atomic_bulk(true)
            .limits(true)
            .persistent(self.store.persist_dir().is_some())
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.store.set(key, value, ttl)
    }

    #[inline]
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        self.store.get(key)
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        self.store.delete(key)
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        Ok(self.store.list(prefix))
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        Ok(self.store.stat(key))
    }

    fn exists(&self, key: &str) -> DriverResult<bool> {
        Ok(self.store.exists(key))
    }

    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        self.store.get_many(keys)
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        self.store.set_many(entries, ttl)
    }

    fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        self.store.delete_many(keys)
    }

    fn close(&self) -> DriverResult<()> {
        let mut stores = open_stores().lock().unwrap_or_else(PoisonError::into_inner);
        let name = self.store.name.as_str();
        let last = match stores.get_mut(name) {
            Some(open) if open.store.as_ptr() == Arc::as_ptr(&self.store) => {
                open.handles = open.handles.saturating_sub(1);
                open.handles == 0
            }
            // Not in the table: an earlier last close already released the store.
            _ => false,
        };
        if last {
            // A persistent store gives its directory back before the next open of the name
            // (which waits for the table) can try to take it.
            let persisted = self.store.close_persist();
            stores.remove(name);
            drop(stores);
            self.store.clear();
            return persisted;
        }
        Ok(())
    }

    fn gauges(&self) -> Gauges {
        self.store.gauges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hodor_core::clock::ManualClock;

    fn handles(name: &str) -> Option<usize> {
        let stores = open_stores().lock().unwrap();
        stores.get(name).map(|open| open.handles)
    }

    #[test]
    fn each_open_is_a_handle_and_the_last_close_releases_the_store() {
        let name = "driver-unit-handles";
        let a = MemoryDriver::open(name, MemoryConfig::default(), Clock::system()).unwrap();
        let b = MemoryDriver::open(name, MemoryConfig::default(), Clock::system()).unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store));
        assert_eq!(handles(name), Some(2));
        a.set("k", Bytes::from_static(b"v"), None).unwrap();
        a.close().unwrap();
        assert_eq!(handles(name), Some(1));
        assert!(b.get("k").unwrap().is_some());
        b.close().unwrap();
        assert_eq!(handles(name), None);
        assert!(b.store.get("k").unwrap().is_none(), "the data was released");
    }

    #[test]
    fn a_store_joined_with_another_clock_or_config_is_refused() {
        let name = "driver-unit-mismatch";
        let _a = MemoryDriver::open(name, MemoryConfig::default(), Clock::system()).unwrap();
        let clock = Clock::from(ManualClock::new());
        assert!(matches!(
            MemoryDriver::open(name, MemoryConfig::default(), clock),
            Err(DriverError::InvalidConfig { .. })
        ));
        assert!(matches!(
            MemoryDriver::open(
                name,
                MemoryConfig::default().max_entries(3),
                Clock::system()
            ),
            Err(DriverError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn sweep_reclaims_on_demand() {
        let clock = ManualClock::new();
        let d = MemoryDriver::open(
            "driver-unit-sweep",
            MemoryConfig::default(),
            clock.clone().into(),
        )
        .unwrap();
        d.set("k", Bytes::new(), Some(Duration::from_millis(5)))
            .unwrap();
        clock.advance(Duration::from_millis(5));
        d.sweep();
        assert_eq!(d.gauges().entries, Some(0));
        assert_eq!(d.gauges().expirations, Some(1));
    }
}
