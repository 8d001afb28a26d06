//! [`Contract`]: the handle applications hold.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::driver::{Capabilities, Driver, DriverError, Metadata};
use crate::error::{Applied, Echo, Error, Result};
use crate::key;
use crate::metrics::{Counter, Counters, Metrics};
use crate::registry;
use crate::watch::{self, Snapshot, Start, Watch, WatchOptions, WatchRequest};

mod conditional;
mod paging;

/// The longest TTL a contract accepts: 100 years. Longer ones are almost surely unit
/// mistakes, and no backend keeps time that far ahead; pass `None` for no expiry.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60 + 25 * 24 * 60 * 60);

/// A handle to one named store of one driver: what application code holds.
///
/// Cheap to clone; clones share one handle, so closing any of them closes all. `Send` and
/// `Sync`: share it between threads freely.
///
/// ```
/// use hodor_core::{Contract, Error};
///
/// // A program that links the memory driver (`use hodor_memory as _;`) opens one with
/// // `Contract::new("memory", "sessions", None)?`.
/// fn sign_in(sessions: &Contract) -> Result<(), Error> {
///     sessions.set("user/42", "alice", None)?;
///     assert_eq!(sessions.get("user/42")?, "alice");
///     assert_eq!(sessions.list("user/")?, vec!["user/42"]);
///     assert!(matches!(sessions.get("user/7"), Err(Error::NotFound { .. })));
///     sessions.close()
/// }
/// ```
#[derive(Clone)]
pub struct Contract {
    inner: Arc<Inner>,
}

struct Inner {
    driver_name: &'static str,
    name: Arc<str>,
    driver: Box<dyn Driver>,
    capabilities: Capabilities,
    closed: AtomicBool,
    counters: Counters,
    /// The watches started through this contract: ended when it closes.
    watches: Mutex<Vec<watch::Ender>>,
}

impl Inner {
    fn end_watches(&self) {
        let watches = std::mem::take(&mut *watch::lock(&self.watches));
        for w in watches {
            w.end();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.end_watches();
        if !*self.closed.get_mut() {
            // Nobody is left to see an error from a drop; close() reports it when called.
            let _ = self.driver.close();
        }
    }
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("driver", &self.inner.driver_name)
            .field("name", &Echo(&self.inner.name))
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The contract name follows the key rules, so every driver can use it as a namespace.
fn check_name(driver: &'static str, name: &str) -> Result<()> {
    match key::problem(name) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidInput {
            driver,
            contract: Arc::from(name),
            key: None,
            reason: key::name_reason(&reason),
        }),
    }
}

impl Contract {
    /// Opens the store called `name` with the driver registered as `driver`.
    ///
    /// The same driver and name give the same data: two memory contracts named `"sessions"`
    /// in one process share their entries. `config` is driver-specific JSON; `None` and
    /// `{}` mean defaults, and an unknown field or a wrong type is [`Error::InvalidConfig`]
    /// naming the field. An unlinked driver is [`Error::UnknownDriver`], which lists the
    /// linked ones.
    pub fn new(driver: &str, name: &str, config: Option<serde_json::Value>) -> Result<Contract> {
        let registration = registry::lookup(driver)?;
        let driver_name = registration.name();
        check_name(driver_name, name)?;
        let opened = (registration.open_fn())(name, config)
            .map_err(|e| map_error(driver_name, &Arc::from(name), "open", None, e))?;
        Ok(Contract::build(driver_name, name, opened))
    }

    /// Wraps an already opened driver without the registry: for static libraries, targets
    /// where link-time registration does not run, and drivers configured with things JSON
    /// cannot carry (such as a test clock).
    ///
    /// `driver_name` is what [`Contract::driver`] and error messages report.
    pub fn from_driver(
        driver_name: &'static str,
        name: &str,
        driver: impl Driver,
    ) -> Result<Contract> {
        check_name(driver_name, name)?;
        Ok(Contract::build(driver_name, name, Box::new(driver)))
    }

    fn build(driver_name: &'static str, name: &str, driver: Box<dyn Driver>) -> Contract {
        let capabilities = driver.capabilities();
        Contract {
            inner: Arc::new(Inner {
                driver_name,
                name: Arc::from(name),
                driver,
                capabilities,
                closed: AtomicBool::new(false),
                counters: Counters::new(),
                watches: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The driver's registered name, e.g. `"memory"`. `'static`, so code built on a contract
    /// can put it in the [`Error`] variants it returns.
    pub fn driver(&self) -> &'static str {
        self.inner.driver_name
    }

    /// The contract (store) name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the driver supports.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.capabilities
    }

    /// `true` once this contract or a clone of it was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Stores `value` under `key`, replacing any earlier value.
    ///
    /// `ttl: None` means no expiry and clears an earlier TTL. `Some(d)` makes the entry live
    /// strictly before now + `d`, kept to the millisecond and rounded up; a zero TTL is
    /// [`Error::InvalidInput`], and so is one over [`MAX_TTL`]. A driver without TTL support
    /// returns [`Error::Unsupported`] rather than storing the value forever.
    pub fn set(&self, key: &str, value: impl Into<Bytes>, ttl: Option<Duration>) -> Result<()> {
        self.check("set", key)?;
        let ttl = self.ttl(Some(key), ttl)?;
        self.inner
            .driver
            .set(key, value.into(), ttl)
            .map_err(|e| self.error("set", Some(key), e))?;
        self.count(Counter::Sets, 1);
        Ok(())
    }

    /// The value stored under `key`, without copying it.
    ///
    /// A missing or expired key is [`Error::NotFound`]; an expired value is never returned.
    /// Where a miss is an everyday outcome (a cache lookup), [`Contract::get_opt`] says so
    /// with `Ok(None)` and builds no error.
    #[inline]
    pub fn get(&self, key: &str) -> Result<Bytes> {
        self.read("get", key, Ok, || Err(self.not_found(key)))
    }

    /// The value stored under `key`, or `Ok(None)` when it is missing or expired: `get` for
    /// callers to whom a miss is normal, such as a cache-aside lookup.
    ///
    /// A miss costs no allocation: no [`Error::NotFound`] is built. Otherwise it is
    /// [`Contract::get`]: the same checks and errors (an invalid key, a closed contract, a
    /// backend failure), never an expired value, and it counts a hit or a miss in
    /// [`Contract::metrics`].
    ///
    /// ```
    /// use hodor_core::{Bytes, Contract};
    ///
    /// # fn load_from_database(_: &str) -> Bytes { Bytes::from_static(b"alice") }
    /// fn user(cache: &Contract) -> hodor_core::Result<Bytes> {
    ///     let key = "user/42";
    ///     Ok(match cache.get_opt(key)? {
    ///         Some(hit) => hit,
    ///         None => {
    ///             let fresh = load_from_database(key);
    ///             cache.set(key, fresh.clone(), Some(std::time::Duration::from_secs(60)))?;
    ///             fresh
    ///         }
    ///     })
    /// }
    /// ```
    ///
    /// ([`Contract::get_or_insert_with`] does the same with one loader per key.)
    #[inline]
    pub fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        self.read("get_opt", key, |value| Ok(Some(value)), || Ok(None))
    }

    /// What `get` and `get_opt` share: one driver read, counted as a hit or a miss; `hit`
    /// or `miss` then shapes the answer. Generic, so each of the two has a body of its own
    /// and `get`'s hit does not go through an `Option` first.
    #[inline]
    fn read<T>(
        &self,
        operation: &'static str,
        key: &str,
        hit: impl FnOnce(Bytes) -> Result<T>,
        miss: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.check(operation, key)?;
        let found = self.inner.driver.get(key);
        // Counted before the value is taken out: counting after, the compiler kept the
        // value in registers across the count and then stored it again.
        match &found {
            Ok(Some(_)) => self.count(Counter::Hits, 1),
            Ok(None) => self.count(Counter::Misses, 1),
            Err(_) => {}
        }
        match found {
            Ok(Some(value)) => hit(value),
            Ok(None) => miss(),
            Err(e) => Err(self.error(operation, Some(key), e)),
        }
    }

    /// Whether a live entry is stored under `key` (`false` when missing or expired).
    pub fn exists(&self, key: &str) -> Result<bool> {
        self.check("exists", key)?;
        self.inner
            .driver
            .exists(key)
            .map_err(|e| self.error("exists", Some(key), e))
    }

    /// Removes `key`. `Ok(true)` when a live entry was removed, `Ok(false)` when there was
    /// none; a missing key is never an error.
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.check("delete", key)?;
        let removed = self
            .inner
            .driver
            .delete(key)
            .map_err(|e| self.error("delete", Some(key), e))?;
        self.count(Counter::Deletes, 1);
        Ok(removed)
    }

    /// Every live key that starts with `prefix`, sorted by bytes ascending.
    ///
    /// The prefix is plain bytes, not a path segment: `"foo"` lists `"foo/x"` and
    /// `"foo.bar"`. `""` lists everything; no match is an empty list. Glob characters in the
    /// prefix are data.
    ///
    /// Its cost is every matching key at once: one `String` each, built in one call (the
    /// memory driver seeks to the prefix and copies the matches; Redis answers with all of
    /// them in one reply, and the server does nothing else meanwhile). For a prefix that
    /// may hold many keys, or for an open-ended one like `""`, read it a page at a time
    /// with [`Contract::list_page`] or [`Contract::pages`].
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.check_open("list")?;
        let keys = if prefix.len() > key::MAX_KEY_LEN || prefix.contains('\0') {
            // No valid key can start with such a prefix.
            Vec::new()
        } else {
            self.inner
                .driver
                .list(prefix)
                .map_err(|e| self.error("list", None, e))?
        };
        self.count(Counter::Lists, 1);
        Ok(keys)
    }

    /// Size, last modification, expiry and [`Version`](crate::Version) of the entry under
    /// `key`; [`Error::NotFound`] like [`Contract::get`]. The version changes on every
    /// write of the key; [`Contract::set_if_version`] writes only while it has not.
    pub fn stat(&self, key: &str) -> Result<Metadata> {
        self.check("stat", key)?;
        match self.inner.driver.stat(key) {
            Ok(Some(meta)) => Ok(meta),
            Ok(None) => Err(self.not_found(key)),
            Err(e) => Err(self.error("stat", Some(key), e)),
        }
    }

    /// Closes the contract and every clone of it. Idempotent: closing again is `Ok(())`.
    /// Afterwards every operation is [`Error::Closed`].
    ///
    /// For a process-local store (memory), the data is released when the last contract
    /// opened on it is closed or dropped.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.end_watches();
        self.inner
            .driver
            .close()
            .map_err(|e| self.error("close", None, e))
    }

    /// Serializes `value` as JSON and stores it like [`Contract::set`].
    ///
    /// ```
    /// # fn limits(c: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct Limits { rps: u32 }
    ///
    /// c.set_json("limits", &Limits { rps: 100 }, None)?;
    /// assert_eq!(c.get_json::<Limits>("limits")?, Limits { rps: 100 });
    /// # Ok(()) }
    /// ```
    pub fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.check("set_json", key)?;
        let bytes = self.encode_json(key, value)?;
        self.set(key, bytes, ttl)
    }

    /// `value` as JSON, for `set_json`.
    pub(crate) fn encode_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::InvalidInput {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            key: Some(key.to_owned()),
            reason: format!(
                "cannot serialize the {} value as JSON: {}",
                std::any::type_name::<T>(),
                Echo::prose(&e.to_string())
            ),
        })
    }

    /// Reads the value under `key` and deserializes it from JSON.
    ///
    /// A stored value that is not valid JSON for `T` is [`Error::InvalidInput`] naming the
    /// type and the position of the problem.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let bytes = self.get(key)?;
        self.decode_json(key, &bytes)
    }

    /// The stored `bytes` of `key` read as JSON for `T`, for `get_json`.
    pub(crate) fn decode_json<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidInput {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            key: Some(key.to_owned()),
            reason: format!(
                "the stored value is not JSON for {}: {}; it was probably written with set() \
                 or with another type",
                std::any::type_name::<T>(),
                Echo::prose(&e.to_string())
            ),
        })
    }

    /// The values of many keys in one call, in the order given, `None` for missing or
    /// expired keys. Every key is checked before any is read. Atomic (one consistent
    /// moment) when [`Capabilities::atomic_bulk`] says so.
    pub fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.check_open("get_many")?;
        self.check_keys(keys.iter().copied())?;
        let values = self
            .inner
            .driver
            .get_many(keys)
            .map_err(|e| self.error("get_many", None, e))?;
        if values.len() != keys.len() {
            return Err(self.error(
                "get_many",
                None,
                DriverError::backend(format!(
                    "the driver returned {} values for {} keys",
                    values.len(),
                    keys.len()
                )),
            ));
        }
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.count(Counter::Hits, hits);
        self.count(Counter::Misses, keys.len() as u64 - hits);
        Ok(values)
    }

    /// Stores many entries with one TTL. Every key is checked first: one invalid key fails
    /// the whole call and nothing is written. A key given twice ends with its last value.
    /// Atomic (no reader sees part of it) when [`Capabilities::atomic_bulk`] says so.
    pub fn set_many<K, V>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
        ttl: Option<Duration>,
    ) -> Result<()>
    where
        K: AsRef<str>,
        V: Into<Bytes>,
    {
        self.check_open("set_many")?;
        let owned: Vec<(K, Bytes)> = entries.into_iter().map(|(k, v)| (k, v.into())).collect();
        self.check_keys(owned.iter().map(|(k, _)| k.as_ref()))?;
        let ttl = self.ttl(None, ttl)?;
        let borrowed: Vec<(&str, Bytes)> =
            owned.iter().map(|(k, v)| (k.as_ref(), v.clone())).collect();
        self.inner
            .driver
            .set_many(&borrowed, ttl)
            .map_err(|e| self.error("set_many", None, e))?;
        self.count(Counter::Sets, distinct(borrowed.iter().map(|(k, _)| *k)));
        Ok(())
    }

    /// Removes many keys; returns how many live entries were removed. Every key is checked
    /// before any is removed.
    pub fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        self.check_open("delete_many")?;
        self.check_keys(keys.iter().copied())?;
        let removed = self
            .inner
            .driver
            .delete_many(keys)
            .map_err(|e| self.error("delete_many", None, e))?;
        self.count(Counter::Deletes, distinct(keys.iter().copied()));
        Ok(removed)
    }

    /// Watches every key that starts with `prefix` (a plain byte prefix, as [`Contract::list`]
    /// matches; `""` watches the whole store), from now on.
    ///
    /// The [`Watch`] receives an [`Event`](watch::Event) per change (put, delete, expiry,
    /// eviction) with the key and a `seq`, in the order the writes took effect per key, and
    /// [`Item::Lagged`](watch::Item::Lagged) if it falls too far behind. See
    /// [`crate::watch`] for the rules. A driver without [`Capabilities::watch`] returns
    /// [`Error::Unsupported`]; [`crate::sync`] then polls.
    pub fn watch(&self, prefix: &str) -> Result<Watch> {
        self.watch_with(prefix, WatchOptions::new())
    }

    /// Watches one key: [`Contract::watch`] of the exact key, not the keys it is a prefix
    /// of. An invalid key is [`Error::InvalidKey`].
    pub fn watch_key(&self, key: &str) -> Result<Watch> {
        self.watch_with(key, WatchOptions::new().exact(true))
    }

    /// Watches `prefix` starting with every change after `seq` (the `seq` of the last event
    /// the caller handled), replayed from the history the store keeps.
    ///
    /// A `seq` older than that history is [`Error::Compacted`]: the events in between are
    /// gone, so read the current state again ([`Contract::watch_snapshot`]).
    pub fn watch_from(&self, prefix: &str, seq: u64) -> Result<Watch> {
        self.watch_with(prefix, WatchOptions::new().start(Start::After(seq)))
    }

    /// Lists the live keys under `prefix` and starts a watch at the same moment: the
    /// [`Snapshot`] says which `seq` the keys are current to, and the watch delivers exactly
    /// the events after it, so nothing between the list and the watch is lost or repeated.
    ///
    /// ```
    /// # fn flags(c: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// // `c` is a new, empty store.
    /// c.set("flag/a", "on", None)?;
    /// let (snapshot, mut watch) = c.watch_snapshot("flag/")?;
    /// assert_eq!(snapshot.keys, ["flag/a"]);
    /// c.set("flag/b", "off", None)?;
    /// let Some(hodor_core::watch::Item::Event(e)) = watch.try_recv()? else { panic!() };
    /// assert_eq!((&*e.key, e.seq > snapshot.seq), ("flag/b", true));
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch_snapshot(&self, prefix: &str) -> Result<(Snapshot, Watch)> {
        let mut watch = self.watch_with(prefix, WatchOptions::new().start(Start::Snapshot))?;
        match watch.take_snapshot() {
            Some(snapshot) => Ok((snapshot, watch)),
            None => Err(self.error(
                "watch",
                None,
                DriverError::backend(
                    "the driver started a snapshot watch without a snapshot (a bug in the driver)",
                ),
            )),
        }
    }

    /// Starts a watch with [`WatchOptions`]: exact or prefix, its buffer, where it starts.
    /// With [`Start::Snapshot`] the snapshot is in [`Watch::snapshot`].
    ///
    /// A buffer of 0 or over [`WatchOptions::MAX_BUFFER`] is [`Error::InvalidInput`].
    pub fn watch_with(&self, prefix: &str, options: WatchOptions) -> Result<Watch> {
        self.check_open("watch")?;
        if options.exact {
            self.check_key(prefix)?;
        }
        if let Some(buffer) = options.buffer
            && !(1..=WatchOptions::MAX_BUFFER).contains(&buffer)
        {
            return Err(Error::InvalidInput {
                driver: self.inner.driver_name,
                contract: self.inner.name.clone(),
                key: None,
                reason: format!(
                    "a watch buffer of {buffer} events is outside 1..={}",
                    WatchOptions::MAX_BUFFER
                ),
            });
        }
        if !self.inner.capabilities.watch {
            return Err(Error::Unsupported {
                driver: self.inner.driver_name,
                contract: self.inner.name.clone(),
                operation: "watch",
                reason: Some(
                    "this driver does not report changes; hodor_core::sync polls such drivers"
                        .to_owned(),
                ),
            });
        }
        let key = options.exact.then_some(prefix);
        let watch = self
            .inner
            .driver
            .watch(&WatchRequest::new(prefix, options))
            .map_err(|e| self.error("watch", key, e))?;
        let mut watches = watch::lock(&self.inner.watches);
        watches.retain(|w| !w.is_gone());
        watches.push(watch.ender());
        drop(watches);
        // A close that took the list before this watch joined it: end the watch here.
        if self.is_closed() {
            watch.ender().end();
        }
        Ok(watch)
    }

    /// This handle's operation counters and the store's gauges.
    pub fn metrics(&self) -> Metrics {
        self.inner.counters.snapshot(self.inner.driver.gauges())
    }

    /// Every operation counter goes through here, so `--cfg hodor_no_counters` (see
    /// [`Metrics`]) removes all counting and nothing else: the benchmark builds the same
    /// calls with and without it to measure what counting costs.
    #[inline]
    fn count(&self, counter: Counter, n: u64) {
        #[cfg(not(hodor_no_counters))]
        self.inner.counters.add(counter, n);
        #[cfg(hodor_no_counters)]
        let _ = (counter, n);
    }

    #[inline]
    fn check_open(&self, operation: &'static str) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                driver: self.inner.driver_name,
                contract: self.inner.name.clone(),
                operation,
            });
        }
        Ok(())
    }

    /// Always inlined: every call starts here, and when the compiler put it out of line
    /// (it did as the code around the calls grew), a 10k-key `get` hit took 16 more
    /// instructions, about 4% of it, for the call and the returned `Result`.
    #[inline(always)]
    fn check(&self, operation: &'static str, key: &str) -> Result<()> {
        self.check_open(operation)?;
        self.check_key(key)
    }

    #[inline(always)]
    fn check_key(&self, key: &str) -> Result<()> {
        if key::is_valid(key) {
            return Ok(());
        }
        Err(self.invalid_key(key))
    }

    #[cold]
    fn invalid_key(&self, key: &str) -> Error {
        Error::InvalidKey {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            key: key.to_owned(),
            reason: key::problem(key).unwrap_or_default(),
        }
    }

    fn check_keys<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Result<()> {
        for key in keys {
            self.check_key(key)?;
        }
        Ok(())
    }

    /// Validates a TTL and rounds it up to whole milliseconds.
    ///
    /// Inline for the common case of no TTL: a call returning this `Result` costs a write
    /// a few dozen instructions for nothing.
    #[inline]
    fn ttl(&self, key: Option<&str>, ttl: Option<Duration>) -> Result<Option<Duration>> {
        match ttl {
            None => Ok(None),
            Some(ttl) => self.checked_ttl(key, ttl),
        }
    }

    fn checked_ttl(&self, key: Option<&str>, ttl: Duration) -> Result<Option<Duration>> {
        let invalid = |reason: String| Error::InvalidInput {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            key: key.map(str::to_owned),
            reason,
        };
        if ttl.is_zero() {
            return Err(invalid(
                "a TTL of zero would expire the entry before anyone could read it; pass None \
                 for no expiry or a positive duration"
                    .to_owned(),
            ));
        }
        if ttl > MAX_TTL {
            return Err(invalid(format!(
                "a TTL of {ttl:?} is longer than the maximum of 100 years; pass None for no expiry"
            )));
        }
        if !self.inner.capabilities.ttl {
            return Err(Error::Unsupported {
                driver: self.inner.driver_name,
                contract: self.inner.name.clone(),
                operation: "set with a TTL",
                reason: Some("this driver does not expire entries".to_owned()),
            });
        }
        Ok(Some(round_up_to_millis(ttl)))
    }

    #[cold]
    fn not_found(&self, key: &str) -> Error {
        Error::NotFound {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            key: key.to_owned(),
        }
    }

    #[cold]
    fn error(&self, operation: &'static str, key: Option<&str>, e: DriverError) -> Error {
        map_error(self.inner.driver_name, &self.inner.name, operation, key, e)
    }
}

/// How many different keys a batch holds: what a batch that gives a key twice wrote or
/// deleted.
fn distinct<'k>(keys: impl ExactSizeIterator<Item = &'k str>) -> u64 {
    let count = if keys.len() < 2 {
        keys.len()
    } else {
        keys.collect::<std::collections::HashSet<&str>>().len()
    };
    count as u64
}

/// Sub-millisecond parts round up, so a TTL never ends earlier than asked.
fn round_up_to_millis(ttl: Duration) -> Duration {
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

pub(crate) fn map_error(
    driver: &'static str,
    contract: &Arc<str>,
    operation: &'static str,
    key: Option<&str>,
    e: DriverError,
) -> Error {
    let contract = contract.clone();
    let key = key.map(str::to_owned);
    match e {
        DriverError::Backend {
            kind,
            applied,
            source,
        } => Error::Backend {
            driver,
            contract,
            operation,
            key,
            kind,
            // A read changes nothing, whatever the driver could tell.
            applied: if crate::error::is_write(operation) {
                applied
            } else {
                Applied::No
            },
            source,
        },
        DriverError::Unsupported {
            operation: what,
            reason,
        } => Error::Unsupported {
            driver,
            contract,
            operation: what,
            reason,
        },
        DriverError::CapacityExceeded(reason) => Error::CapacityExceeded {
            driver,
            contract,
            key,
            reason,
        },
        DriverError::InvalidInput(reason) => Error::InvalidInput {
            driver,
            contract,
            key,
            reason,
        },
        DriverError::Closed => Error::Closed {
            driver,
            contract,
            operation,
        },
        DriverError::InvalidConfig { field, reason } => Error::InvalidConfig {
            driver,
            contract,
            field,
            reason,
        },
        DriverError::Compacted { requested, floor } => Error::Compacted {
            driver,
            contract,
            requested,
            floor,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_milliseconds() {
        assert_eq!(
            round_up_to_millis(Duration::from_nanos(1)),
            Duration::from_millis(1)
        );
        assert_eq!(
            round_up_to_millis(Duration::from_micros(1500)),
            Duration::from_millis(2)
        );
        assert_eq!(
            round_up_to_millis(Duration::from_millis(7)),
            Duration::from_millis(7)
        );
        assert_eq!(round_up_to_millis(MAX_TTL), MAX_TTL);
    }

    #[test]
    fn contract_is_send_sync_clone_debug() {
        fn assert_traits<T: Send + Sync + Clone + fmt::Debug>() {}
        assert_traits::<Contract>();
    }
}
