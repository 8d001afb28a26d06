//! Conditional writes: `create`, `set_if_version`, `increment`, and `get_or_insert_with`
//! on top of them.

use std::time::Duration;

use bytes::Bytes;

use super::Contract;
use crate::error::{Error, Result};
use crate::flight::{self, FlightKey, Join};
use crate::metrics::Counter;
use crate::version::Version;

impl Contract {
    /// Stores `value` under `key` only if no live entry is there (never set, deleted or
    /// expired); `Ok(true)` if it wrote, `Ok(false)` if a live entry was there, which is
    /// left as it was.
    ///
    /// Atomic on every driver with [`Capabilities::conditional`](
    /// crate::Capabilities::conditional): of callers creating one key at once, through any
    /// contract in any process sharing the store, exactly one gets `true`. What a lock, a
    /// lease or a once-only job claims with. `ttl` as for [`Contract::set`]. A driver
    /// without the capability returns [`Error::Unsupported`].
    ///
    /// ```
    /// # fn claim(jobs: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// use std::time::Duration;
    /// // One worker of many takes the nightly job; the lease ends by itself if it dies.
    /// if jobs.create("lease/nightly", "worker-7", Some(Duration::from_secs(600)))? {
    ///     // run the job
    /// }
    /// # Ok(()) }
    /// ```
    pub fn create(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        self.check("create", key)?;
        let ttl = self.ttl(Some(key), ttl)?;
        self.check_conditional("create")?;
        let created = self
            .inner
            .driver
            .create(key, value.into(), ttl)
            .map_err(|e| self.error("create", Some(key), e))?;
        if created {
            self.count(Counter::Sets, 1);
        }
        Ok(created)
    }

    /// Stores `value` under `key` only if its live entry still has the version
    /// `expected` (from [`Contract::stat`]); `Ok(true)` if it wrote, `Ok(false)` if the key
    /// was written since, deleted, or expired. Compare-and-set: the read-modify-write of
    /// a value several processes share, without a lock.
    ///
    /// Atomic like [`Contract::create`]: of writers racing with one version, at most one
    /// gets `true`. `ttl` as for [`Contract::set`] (it replaces the old one). A driver
    /// without [`Capabilities::conditional`](crate::Capabilities::conditional) returns
    /// [`Error::Unsupported`].
    ///
    /// ```
    /// # fn add_flag(flags: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// loop {
    ///     let meta = flags.stat("flags")?;
    ///     let mut list: Vec<String> = flags.get_json("flags")?;
    ///     list.push("dark-mode".into());
    ///     let bytes = serde_json::to_vec(&list).expect("strings serialize");
    ///     if flags.set_if_version("flags", bytes, None, meta.version)? {
    ///         break; // nobody wrote in between
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn set_if_version(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
        expected: Version,
    ) -> Result<bool> {
        self.check("set_if_version", key)?;
        let ttl = self.ttl(Some(key), ttl)?;
        self.check_conditional("set_if_version")?;
        let written = self
            .inner
            .driver
            .set_if_version(key, value.into(), ttl, expected)
            .map_err(|e| self.error("set_if_version", Some(key), e))?;
        if written {
            self.count(Counter::Sets, 1);
        }
        Ok(written)
    }

    /// Adds `delta` (which may be negative) to the counter under `key` and returns the new
    /// value.
    ///
    /// The value is a decimal integer, stored as text (`"42"`, `"-7"`), so `get` reads it
    /// and `set` can reset it. A missing or expired key counts as 0 and is created without
    /// a TTL; an existing key keeps its TTL (to count per window, `create` the key with
    /// `"0"` and a TTL first). A stored value that is not the canonical decimal form of an
    /// `i64` (an optional `-`, digits without a leading zero, nothing else: what Redis
    /// `INCRBY` accepts) is [`Error::InvalidInput`], and so is a sum outside `i64`: a
    /// counter never wraps. Atomic: concurrent increments, from any process sharing the
    /// store, lose no update. A driver without [`Capabilities::conditional`](
    /// crate::Capabilities::conditional) returns [`Error::Unsupported`].
    ///
    /// ```
    /// # fn count(hits: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// let n = hits.increment("page/home", 1)?;
    /// assert!(n >= 1);
    /// # Ok(()) }
    /// ```
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.check("increment", key)?;
        self.check_conditional("increment")?;
        let value = self
            .inner
            .driver
            .increment(key, delta)
            .map_err(|e| self.error("increment", Some(key), e))?;
        self.count(Counter::Sets, 1);
        Ok(value)
    }

    /// The value under `key`, or, when there is none, the value `f` makes, stored with
    /// `ttl`: cache-aside with one loader per key.
    ///
    /// Single flight: in this process, only one caller runs `f` for a key at a time, even
    /// across contracts of one name; the others wait for it and then read the value it
    /// stored. `f` runs with no lock of the store held. If `f` returns an error, that
    /// caller gets it and the next waiter runs its own `f`; a panic in `f` goes to its
    /// caller the same way, and never leaves the others waiting. The value is stored with
    /// [`Contract::create`], so when another process stored one first, that one is
    /// returned and kept.
    ///
    /// `f` may return any error type that a hodor [`Error`] converts into (`Error`
    /// itself, `Box<dyn std::error::Error + Send + Sync>`, `anyhow::Error`, ...), and the
    /// store's own errors come back as that type. Calling `get_or_insert_with` for the same
    /// key from inside `f` is [`Error::InvalidInput`], not a deadlock; loaders that wait
    /// for each other's keys (`f` for `a` asks for `b` while `f` for `b` asks for `a`, on
    /// two threads) wait for each other forever, as two locks taken in opposite orders
    /// would. A driver without
    /// [`Capabilities::conditional`](crate::Capabilities::conditional) returns
    /// [`Error::Unsupported`].
    ///
    /// Counted as one read: a hit when the value came from the store, a miss (and a set
    /// when it was stored) when this caller ran `f`.
    ///
    /// ```
    /// # fn profile(cache: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// # fn load_profile_from_db(_: u32) -> hodor_core::Result<Vec<u8>> { Ok(b"{}".to_vec()) }
    /// use std::time::Duration;
    /// let profile = cache.get_or_insert_with("profile/42", Some(Duration::from_secs(60)), || {
    ///     load_profile_from_db(42) // runs once, however many requests miss at once
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn get_or_insert_with<V, E, F>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        f: F,
    ) -> std::result::Result<Bytes, E>
    where
        F: FnOnce() -> std::result::Result<V, E>,
        V: Into<Bytes>,
        E: From<Error>,
    {
        const OP: &str = "get_or_insert_with";
        let ttl = self.prepare_get_or_insert(key, ttl)?;
        let me = std::thread::current().id();
        loop {
            if let Some(value) = self.read_for(OP, key)? {
                self.hit();
                return Ok(value);
            }
            match flight::join(self.flight_key(key), Some(me)) {
                Join::Wait(flight) => {
                    if flight.wait().is_err() {
                        return Err(self.reentered(key).into());
                    }
                }
                Join::Lead(lead) => {
                    // The leader before this one may have stored its value between this
                    // caller's miss and its joining.
                    if let Some(value) = self.read_for(OP, key)? {
                        self.hit();
                        return Ok(value);
                    }
                    let made: Bytes = f()?.into();
                    let kept = self.keep(key, made, ttl)?;
                    drop(lead);
                    return Ok(kept);
                }
            }
        }
    }

    /// What `get_or_insert_with` checks before it reads: the key, the TTL (returned rounded)
    /// and the capability.
    pub(crate) fn prepare_get_or_insert(
        &self,
        key: &str,
        ttl: Option<Duration>,
    ) -> Result<Option<Duration>> {
        self.check("get_or_insert_with", key)?;
        let ttl = self.ttl(Some(key), ttl)?;
        self.check_conditional("get_or_insert_with")?;
        Ok(ttl)
    }

    /// Counts a `get_or_insert_with` answered from the store.
    pub(crate) fn hit(&self) {
        self.count(Counter::Hits, 1);
    }

    /// Stores a value made for a miss with `create`, and returns what the key holds: the
    /// value, or the one another process stored first. Counts the miss (and the set).
    pub(crate) fn keep(&self, key: &str, made: Bytes, ttl: Option<Duration>) -> Result<Bytes> {
        const OP: &str = "get_or_insert_with";
        self.count(Counter::Misses, 1);
        let created = self
            .inner
            .driver
            .create(key, made.clone(), ttl)
            .map_err(|e| self.error(OP, Some(key), e))?;
        if created {
            self.count(Counter::Sets, 1);
            return Ok(made);
        }
        // Someone else's value got there first: theirs is the one every reader sees. If it
        // is already gone again, the value just made is as fresh as any.
        Ok(self.read_for(OP, key)?.unwrap_or(made))
    }

    /// The driver's answer for `key`, errors reported as `operation`; counts nothing.
    pub(crate) fn read_for(&self, operation: &'static str, key: &str) -> Result<Option<Bytes>> {
        self.inner
            .driver
            .get(key)
            .map_err(|e| self.error(operation, Some(key), e))
    }

    pub(crate) fn flight_key(&self, key: &str) -> FlightKey {
        FlightKey {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            key: key.to_owned(),
        }
    }

    #[cold]
    fn reentered(&self, key: &str) -> Error {
        Error::InvalidInput {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            key: Some(key.to_owned()),
            reason: "get_or_insert_with was called for this key from inside its own f, which \
                     would wait for itself forever; compute the value without asking for it"
                .to_owned(),
        }
    }

    /// `Unsupported` unless the driver claims conditional writes.
    pub(crate) fn check_conditional(&self, operation: &'static str) -> Result<()> {
        if self.inner.capabilities.conditional {
            return Ok(());
        }
        Err(Error::Unsupported {
            driver: self.inner.driver_name,
            contract: self.inner.name.clone(),
            operation,
            reason: Some("this driver does not claim Capabilities::conditional".to_owned()),
        })
    }
}
