//! [`MemoryDriver`]: the [`Driver`] implementation, and the process-wide table of open stores
//! that makes one name mean one store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use hodor_core::clock::Clock;
use hodor_core::driver::{Capabilities, Driver, DriverError, DriverResult, Gauges, parse_config};
use hodor_core::watch::{Watch, WatchRequest};
use hodor_core::{Contract, MAX_KEY_LEN, Metadata, Page, Version};

use crate::config::MemoryConfig;
use crate::input;
use crate::store::Store;
use crate::sweeper;

/// The name the driver registers under.
pub const DRIVER_NAME: &str = "memory";

/// A handle on one memory store. Opening the same name again returns a handle on the same
/// store; the store's data is released when its last handle is closed or dropped.
///
/// Most code opens it by name through [`Contract::new`]; [`crate::open`] and
/// [`crate::open_with_clock`] open it without the registry. It can also be used directly
/// through the [`Driver`] trait, and then keeps the contract's promises on its own: invalid
/// keys and TTLs are `InvalidInput` (never a panic), TTLs are rounded up to whole
/// milliseconds, [`Driver::close`] is idempotent and releases only this handle, every call
/// after it is [`DriverError::Closed`], and dropping the handle closes it.
pub struct MemoryDriver {
    store: Arc<Store>,
    /// Set by the first close or the drop: a handle is given back exactly once.
    released: AtomicBool,
}

impl std::fmt::Debug for MemoryDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDriver")
            .field("name", &self.store.name)
            .field("config", &self.store.config)
            .field("clock", &self.store.clock)
            .field("closed", &self.released.load(Ordering::Relaxed))
            .finish()
    }
}

struct Open {
    store: Weak<Store>,
    handles: usize,
}

/// Open stores by name. A store leaves the table when its last handle is closed or dropped,
/// so the next open of that name starts empty.
fn open_stores() -> &'static Mutex<HashMap<String, Open>> {
    static STORES: OnceLock<Mutex<HashMap<String, Open>>> = OnceLock::new();
    STORES.get_or_init(Mutex::default)
}

impl MemoryDriver {
    /// Opens (or joins) the store called `name`.
    ///
    /// The name follows the key rules (1 to 1024 bytes, no NUL); another name is
    /// [`DriverError::InvalidInput`] and registers nothing. Joining an open store with a
    /// different config or clock is [`DriverError::InvalidConfig`]: two users of one store
    /// must agree on what it is.
    pub fn open(name: &str, config: MemoryConfig, clock: Clock) -> DriverResult<MemoryDriver> {
        input::check_name(name)?;
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
            return Ok(MemoryDriver::handle(store));
        }
        // A persistent store is recovered under the table's lock, so a second open of the
        // name waits for it and joins it instead of finding its directory locked.
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
        Ok(MemoryDriver::handle(store))
    }

    fn handle(store: Arc<Store>) -> MemoryDriver {
        MemoryDriver {
            store,
            released: AtomicBool::new(false),
        }
    }

    /// Reclaims expired entries now instead of waiting for the background sweep. Does
    /// nothing on a closed handle.
    pub fn sweep(&self) {
        if let Ok(store) = self.store() {
            store.sweep();
        }
    }

    /// The store, unless this handle was closed. A call racing `close` may still pass: the
    /// `Driver` contract allows calls that began before close to finish.
    #[inline]
    fn store(&self) -> DriverResult<&Store> {
        if self.released.load(Ordering::Relaxed) {
            return Err(DriverError::Closed);
        }
        Ok(&self.store)
    }

    /// Writes a snapshot of a persistent store now, on this thread, instead of waiting for
    /// the log to grow past `snapshot_log_bytes`; afterwards recovery replays only what is
    /// written from here on. `Ok(false)` for a store without persistence, or when the
    /// snapshot was skipped (the store is closing, or the log could not start a new
    /// segment).
    pub fn snapshot(&self) -> DriverResult<bool> {
        self.store()?.snapshot()
    }

    /// Gives this handle back, once: the first `close` or the drop. The last handle of a
    /// store removes it from the table and releases its data (a persistent store first
    /// writes and syncs its log and gives its directory back: its error is returned).
    fn release(&self) -> DriverResult<()> {
        if self.released.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut stores = open_stores().lock().unwrap_or_else(PoisonError::into_inner);
        let name = self.store.name.as_str();
        let last = match stores.get_mut(name) {
            Some(open) if open.store.as_ptr() == Arc::as_ptr(&self.store) => {
                open.handles = open.handles.saturating_sub(1);
                open.handles == 0
            }
            // Every handle of a store in the table is counted there, and only its release
            // takes it out, so this is unreachable; if it were reached, releasing nothing
            // is the safe answer.
            _ => false,
        };
        if !last {
            return Ok(());
        }
        // PERSIST HOOK: a persistent store gives its directory back before it leaves the
        // table, so the next open of the name (which waits for the table) can take it. It
        // runs no code of the caller's (see `Persist::close`).
        let persisted = self.store.close_persist();
        stores.remove(name);
        // Clear outside the table's lock: values' drops may open stores.
        drop(stores);
        self.store.clear();
        persisted
    }
}

impl Drop for MemoryDriver {
    fn drop(&mut self) {
        // Nobody to report a persistent store's last sync to: `close` does.
        let _ = self.release();
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
            .conditional(true)
            .watch(true)
            // A persistent store's writes may write or sync its log on the caller's thread
            // (always with `fsync = always`, past a buffer size otherwise), and its open and
            // close do file I/O.
            .non_blocking(self.store.persist_dir().is_none())
    }

    // The key is checked when the store creates its entry: an existing key passed then,
    // so an overwrite needs no check.
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.store()?.set(key, value, input::ttl(ttl)?)
    }

    // Reads look the key up first and check it only on a miss: a stored key is always
    // valid (writes check theirs), so a hit needs no check, and `get` stays as fast as it
    // was.
    #[inline]
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        let store = self.store()?;
        // COMPRESSION HOOK: a store that never held a compressed value hands out the
        // stored buffer.
        let found = if store.decodes() {
            store.get_decoded(key)?
        } else {
            store.get(key)
        };
        match found {
            Some(value) => Ok(Some(value)),
            None => input::check_key(key).map(|()| None),
        }
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        if self.store()?.delete(key)? {
            return Ok(true);
        }
        input::check_key(key).map(|()| false)
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        let store = self.store()?;
        if prefix.len() > MAX_KEY_LEN || prefix.as_bytes().contains(&0) {
            // No valid key starts with it.
            return Ok(Vec::new());
        }
        Ok(store.list(prefix))
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        match self.store()?.stat(key) {
            Some(meta) => Ok(Some(meta)),
            None => input::check_key(key).map(|()| None),
        }
    }

    fn exists(&self, key: &str) -> DriverResult<bool> {
        if self.store()?.exists(key) {
            return Ok(true);
        }
        input::check_key(key).map(|()| false)
    }

    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        let store = self.store()?;
        keys.iter().try_for_each(|k| input::check_key(k))?;
        store.get_many(keys)
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        let store = self.store()?;
        entries.iter().try_for_each(|(k, _)| input::check_key(k))?;
        store.set_many(entries, input::ttl(ttl)?)
    }

    fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        let store = self.store()?;
        keys.iter().try_for_each(|k| input::check_key(k))?;
        store.delete_many(keys)
    }

    fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<bool> {
        let store = self.store()?;
        input::check_key(key)?;
        store.create(key, value, input::ttl(ttl)?)
    }

    fn set_if_version(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Version,
    ) -> DriverResult<bool> {
        let store = self.store()?;
        input::check_key(key)?;
        store.set_if_version(key, value, input::ttl(ttl)?, expected)
    }

    fn increment(&self, key: &str, delta: i64) -> DriverResult<i64> {
        let store = self.store()?;
        input::check_key(key)?;
        store.increment(key, delta)
    }

    fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> DriverResult<Page> {
        let store = self.store()?;
        if limit == 0 {
            return Err(DriverError::InvalidInput(
                "a page of 0 keys would never reach the next key".to_owned(),
            ));
        }
        if prefix.len() > MAX_KEY_LEN || prefix.as_bytes().contains(&0) {
            return Ok(Page::default());
        }
        let (keys, more) = store.list_page(prefix, start_after, limit);
        let next = if more { keys.last().cloned() } else { None };
        Ok(Page::new(keys, next))
    }

    fn close(&self) -> DriverResult<()> {
        self.release()
    }

    fn gauges(&self) -> Gauges {
        self.store.gauges()
    }

    fn watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        self.store()?.watch(request)
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
        assert!(b.store.get("k").is_none(), "the data was released");
    }

    fn open(name: &str) -> MemoryDriver {
        MemoryDriver::open(name, MemoryConfig::default(), Clock::system()).unwrap()
    }

    #[test]
    fn a_dropped_handle_is_given_back_and_the_last_one_releases_the_store() {
        let name = "driver-unit-drop";
        let a = open(name);
        let b = open(name);
        a.set("k", Bytes::from_static(b"v"), None).unwrap();
        drop(b);
        assert_eq!(handles(name), Some(1), "a dropped handle is given back");
        let store = a.store.clone();
        drop(a);
        assert_eq!(handles(name), None, "the last drop releases the store");
        assert!(store.get("k").is_none(), "and its data");
        assert!(open(name).get("k").unwrap().is_none());
    }

    #[test]
    fn closing_one_handle_twice_releases_only_that_handle() {
        let name = "driver-unit-close-twice";
        let a = open(name);
        let b = open(name);
        b.set("k", Bytes::from_static(b"v"), None).unwrap();
        a.close().unwrap();
        a.close().unwrap();
        drop(a);
        assert_eq!(handles(name), Some(1));
        assert!(b.get("k").unwrap().is_some(), "b's store was released");
    }

    #[test]
    fn a_contract_that_closes_and_then_drops_its_driver_counts_once() {
        let name = "driver-unit-contract";
        let other = open(name);
        other.set("k", Bytes::from_static(b"v"), None).unwrap();
        let contract = Contract::from_driver(DRIVER_NAME, name, open(name)).unwrap();
        assert_eq!(handles(name), Some(2));
        contract.close().unwrap();
        drop(contract);
        assert_eq!(handles(name), Some(1));
        assert!(other.get("k").unwrap().is_some());
    }

    #[test]
    fn a_closed_handle_refuses_every_call() {
        let name = "driver-unit-closed";
        let keep = open(name);
        let a = open(name);
        a.close().unwrap();
        let closed = |r: DriverResult<()>| matches!(r, Err(DriverError::Closed));
        assert!(closed(a.set("k", Bytes::new(), None)));
        assert!(closed(a.get("k").map(drop)));
        assert!(closed(a.list("").map(drop)));
        assert!(closed(a.delete("k").map(drop)));
        assert!(closed(a.set_many(&[("k", Bytes::new())], None)));
        assert!(
            !keep.exists("k").unwrap(),
            "the closed handle wrote nothing"
        );
    }

    /// A value whose drop opens (and closes) another memory store: it needs the table of
    /// open stores.
    struct OpensAStore(Vec<u8>);

    impl AsRef<[u8]> for OpensAStore {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for OpensAStore {
        fn drop(&mut self) {
            let other = crate::open("driver-unit-opened-by-a-drop", MemoryConfig::default());
            let _ = other.and_then(|c| c.close());
        }
    }

    #[test]
    fn a_value_a_snapshot_held_last_is_dropped_without_blocking_the_last_close() {
        use crate::config::{Fsync, PersistConfig};
        let dir = std::env::temp_dir().join(format!(
            "hodor-driver-unit-snapshot-drop-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let name = "driver-unit-snapshot-drop";
        let config = MemoryConfig::default().shards(1).persist(
            PersistConfig::new(&dir)
                .fsync(Fsync::Never)
                .snapshot_log_bytes(1 << 30),
        );
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let d = Arc::new(MemoryDriver::open(name, config, Clock::system()).unwrap());
            // Large enough that a snapshot copies it after the shard's lock, from a handle.
            let big = Bytes::from_owner(OpensAStore(vec![7; 200 << 10]));
            d.set("big", big, None).unwrap();
            let closer = d.clone();
            crate::pause::at("snapshot: a shard copied", move || {
                // The store lets go of the value: the snapshot's handle is the last one.
                closer.delete("big").unwrap();
                // The last close begins on another thread, and waits for the snapshot
                // while it holds the table of open stores.
                let last = closer.clone();
                std::thread::spawn(move || last.close());
                while open_stores().try_lock().is_ok() {
                    std::thread::yield_now();
                }
                std::thread::sleep(Duration::from_millis(50));
            });
            // The snapshot goes on and drops its handle: the value's drop opens a store.
            let _ = d.snapshot();
            let _ = done.send(());
        });
        let outcome = finished.recv_timeout(Duration::from_secs(20));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            outcome.is_ok(),
            "deadlocked: a snapshot dropped a value while the last close waited for it"
        );
    }

    #[test]
    fn an_invalid_name_is_refused_before_anything_is_registered() {
        let long = "n".repeat(1 << 20);
        for name in ["", "a\0b", long.as_str()] {
            let err = MemoryDriver::open(name, MemoryConfig::default(), Clock::system());
            assert!(
                matches!(err, Err(DriverError::InvalidInput(_))),
                "{:?}",
                err.map(drop)
            );
            assert_eq!(handles(name), None, "a refused name stays registered");
            assert!(crate::open(name, MemoryConfig::default()).is_err());
            assert_eq!(handles(name), None);
        }
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
