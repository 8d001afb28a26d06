//! What a backend implements: the [`Driver`] trait, its error type and its capabilities.
//!
//! A driver is one opened store (one contract name) of one backend. It implements only the
//! raw operations. The [`Contract`](crate::Contract) in front of it has already checked the
//! key, rejected calls after close, validated and rounded the TTL, and it adds the driver,
//! contract and key to every error; so a driver returns the small [`DriverError`] and never
//! builds a [`crate::Error`] itself.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

/// Result of a driver call.
pub type DriverResult<T> = std::result::Result<T, DriverError>;

/// How a driver is opened by the registry: the contract name and the user's config.
///
/// `config` is `None` when the user passed none; parse it with [`parse_config`].
pub type OpenFn =
    fn(name: &str, config: Option<serde_json::Value>) -> DriverResult<Box<dyn Driver>>;

/// A backend's failure, before the [`Contract`](crate::Contract) adds where it happened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The backend failed (I/O, network, server error). Becomes [`crate::Error::Backend`].
    #[error(transparent)]
    Backend(BoxError),
    /// The operation or argument is not supported. Becomes [`crate::Error::Unsupported`].
    #[error("{operation} is not supported")]
    Unsupported {
        /// The operation or argument.
        operation: &'static str,
        /// Why, if there is more to say.
        reason: Option<String>,
    },
    /// A configured limit cannot hold the value. Becomes [`crate::Error::CapacityExceeded`].
    #[error("{0}")]
    CapacityExceeded(String),
    /// An argument the `Contract` could not check is invalid. Becomes
    /// [`crate::Error::InvalidInput`].
    #[error("{0}")]
    InvalidInput(String),
    /// The configuration is invalid (only from an [`OpenFn`]). Becomes
    /// [`crate::Error::InvalidConfig`].
    #[error("{reason}")]
    InvalidConfig {
        /// The offending field, as a path such as `pool.size`.
        field: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl DriverError {
    /// Wraps a backend error.
    pub fn backend(error: impl Into<BoxError>) -> DriverError {
        DriverError::Backend(error.into())
    }

    /// An unsupported operation, with no further reason.
    pub fn unsupported(operation: &'static str) -> DriverError {
        DriverError::Unsupported {
            operation,
            reason: None,
        }
    }

    /// The user-facing [`crate::Error`] for this failure in `operation` on `contract`. The
    /// `Contract` does this for every call; a driver needs it only in its own convenience
    /// constructors that return a `Contract`.
    pub fn into_error(
        self,
        driver: &'static str,
        contract: &str,
        operation: &'static str,
    ) -> crate::Error {
        crate::contract::map_error(
            driver,
            &std::sync::Arc::from(contract),
            operation,
            None,
            self,
        )
    }

    /// An invalid configuration, naming the field when there is one.
    pub fn invalid_config(field: Option<&str>, reason: impl Into<String>) -> DriverError {
        DriverError::InvalidConfig {
            field: field.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// What a stored entry looks like without reading its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The value's length in bytes.
    pub size: u64,
    /// Wall-clock time of the last `set`.
    pub modified: SystemTime,
    /// Wall-clock time from which the entry is gone, or `None` if it never expires.
    pub expires_at: Option<SystemTime>,
}

/// What a driver supports. The conformance suite skips (and says it skipped) the cases a
/// driver's capabilities exclude, and the `Contract` turns an unsupported argument into
/// [`crate::Error::Unsupported`] instead of silently ignoring it.
///
/// Build one from [`Capabilities::NONE`] with the builder methods:
///
/// ```
/// use hodor_core::Capabilities;
/// let caps = Capabilities::NONE.ttl(true).atomic_bulk(true);
/// assert!(caps.ttl && caps.atomic_bulk && !caps.limits);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `set` accepts a TTL and entries expire. Without it a TTL is `Unsupported`.
    pub ttl: bool,
    /// `set_many`, `delete_many` and `get_many` are atomic: no reader sees part of a
    /// `set_many` or `delete_many`, and `get_many` reads one consistent moment.
    pub atomic_bulk: bool,
    /// The driver enforces its own `max_bytes` / `max_entries` limits by evicting entries,
    /// and reports them in its gauges.
    pub limits: bool,
    /// Data outlives the process (a server, a file). Without it, a store's data is released
    /// when its last contract is closed or dropped.
    pub persistent: bool,
}

impl Capabilities {
    /// Nothing beyond the required operations.
    pub const NONE: Capabilities = Capabilities {
        ttl: false,
        atomic_bulk: false,
        limits: false,
        persistent: false,
    };

    /// Sets [`Capabilities::ttl`].
    pub const fn ttl(mut self, yes: bool) -> Self {
        self.ttl = yes;
        self
    }

    /// Sets [`Capabilities::atomic_bulk`].
    pub const fn atomic_bulk(mut self, yes: bool) -> Self {
        self.atomic_bulk = yes;
        self
    }

    /// Sets [`Capabilities::limits`].
    pub const fn limits(mut self, yes: bool) -> Self {
        self.limits = yes;
        self
    }

    /// Sets [`Capabilities::persistent`].
    pub const fn persistent(mut self, yes: bool) -> Self {
        self.persistent = yes;
        self
    }
}

/// The numbers only the driver knows; `None` where it cannot tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gauges {
    /// Entries resident now (expired ones not yet reclaimed included).
    pub entries: Option<u64>,
    /// Bytes charged against `max_bytes` now.
    pub bytes: Option<u64>,
    /// Live entries removed to make room, since the store was created.
    pub evictions: Option<u64>,
    /// Expired entries reclaimed, since the store was created.
    pub expirations: Option<u64>,
    /// The configured byte limit.
    pub max_bytes: Option<u64>,
    /// The configured entry limit.
    pub max_entries: Option<u64>,
    /// Persistent stores that keep a log: bytes of log on disk since the latest snapshot
    /// (what recovery would replay).
    pub log_bytes: Option<u64>,
    /// Persistent stores that take snapshots: milliseconds since the latest snapshot was
    /// begun, `None` while there is none.
    pub snapshot_age_ms: Option<u64>,
    /// Persistent stores: `fsync` calls on the log since the store was opened.
    pub fsyncs: Option<u64>,
    /// Persistent stores: how long recovery took when the store was opened, in
    /// microseconds.
    pub recovery_micros: Option<u64>,
    /// Persistent stores: snapshot entries and log records recovery replayed when the store
    /// was opened.
    pub recovery_records: Option<u64>,
}

/// A backend: one opened store behind a [`Contract`](crate::Contract).
///
/// # What the `Contract` guarantees to a driver
/// - Every key satisfies the key rules (1 to 1024 bytes, no NUL); a driver that cannot store
///   some byte natively must encode it, because every valid key must round-trip.
/// - A `ttl` is `Some` only if [`Capabilities::ttl`] is set, is never zero and is a whole
///   number of milliseconds (the `Contract` rounds up).
/// - [`Driver::close`] is called exactly once, when the contract is closed or its last
///   clone dropped; no call starts after it. A call that began before `close` may still be
///   running while `close` runs, and must not panic or corrupt shared state because of it.
///
/// # What a driver must guarantee
/// Each method's documentation states its obligation; the conformance suite in
/// `hodor-testkit` checks every one of them. In short: overwrite clears an old TTL, an
/// entry is gone from `set time + ttl` on for every operation, `list` is a sorted,
/// duplicate-free plain byte-prefix match over live keys, two drivers opened with the same
/// name see the same data, and no method panics.
pub trait Driver: Send + Sync + fmt::Debug + 'static {
    /// What this driver supports. Called once, when the contract is opened.
    fn capabilities(&self) -> Capabilities;

    /// Stores `value` under `key`, replacing any earlier value and TTL. With `ttl: None` the
    /// entry never expires (an earlier TTL is cleared); with `Some(d)` it is live strictly
    /// before now + `d`.
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()>;

    /// The value of a live entry, or `None` if it is missing or expired. Must never return
    /// an expired value.
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>>;

    /// Removes the entry. `true` only when a live entry was removed; a missing or expired
    /// entry is `false`, never an error.
    fn delete(&self, key: &str) -> DriverResult<bool>;

    /// Every live key starting with `prefix` (a plain byte prefix, not a path segment),
    /// sorted by bytes ascending, with no duplicates and no expired key. `""` lists all.
    fn list(&self, prefix: &str) -> DriverResult<Vec<String>>;

    /// Size, modification time and expiry of a live entry, or `None` like [`Driver::get`].
    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>>;

    /// Whether a live entry exists. The default asks [`Driver::stat`].
    fn exists(&self, key: &str) -> DriverResult<bool> {
        Ok(self.stat(key)?.is_some())
    }

    /// Releases what this handle holds. Called exactly once; see the trait docs.
    fn close(&self) -> DriverResult<()> {
        Ok(())
    }

    /// The values of `keys`, in order, `None` for missing or expired ones; a key may appear
    /// more than once. The default calls [`Driver::get`] per key and is not atomic.
    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// Stores every entry with the same `ttl`, in order, so a later duplicate key wins. The
    /// default calls [`Driver::set`] per entry and is not atomic.
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        for (key, value) in entries {
            self.set(key, value.clone(), ttl)?;
        }
        Ok(())
    }

    /// Removes every key; returns how many live entries were removed (a key listed twice
    /// counts once). The default calls [`Driver::delete`] per key and is not atomic.
    fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        let mut removed = 0;
        for key in keys {
            if self.delete(key)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Gauges only the driver can tell. The default tells nothing.
    fn gauges(&self) -> Gauges {
        Gauges::default()
    }
}

/// Parses a driver's JSON config into its typed struct.
///
/// `None`, `null` and `{}` give `T::default()` (give `T` `#[serde(default)]`); anything but
/// an object is rejected. Errors name the offending field as a path, for unknown fields
/// (use `#[serde(deny_unknown_fields)]`) and wrong types alike.
///
/// ```
/// use hodor_core::driver::{parse_config, DriverError};
///
/// #[derive(serde::Deserialize, Default, Debug)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config { pool_size: u32 }
///
/// let err = parse_config::<Config>(Some(serde_json::json!({"pool_sise": 4}))).unwrap_err();
/// match err {
///     DriverError::InvalidConfig { field, .. } => assert_eq!(field.as_deref(), Some("pool_sise")),
///     other => panic!("{other}"),
/// }
/// ```
pub fn parse_config<T>(config: Option<serde_json::Value>) -> DriverResult<T>
where
    T: DeserializeOwned + Default,
{
    let value = match config {
        None | Some(serde_json::Value::Null) => return Ok(T::default()),
        Some(value @ serde_json::Value::Object(_)) => value,
        Some(other) => {
            return Err(DriverError::invalid_config(
                None,
                format!("the config must be a JSON object (or None), not {other}"),
            ));
        }
    };
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        // serde_path_to_error's path already ends in the unknown or mistyped field.
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = (path != "." && !path.is_empty()).then_some(path);
        DriverError::InvalidConfig {
            field,
            reason: format!("{inner}; see the driver's documentation for its config fields"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Config {
        size: u64,
        pool: Pool,
    }

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Pool {
        max: u32,
    }

    fn field_of(r: DriverResult<Config>) -> Option<String> {
        match r {
            Err(DriverError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn none_null_and_empty_object_are_defaults() {
        assert_eq!(parse_config::<Config>(None).unwrap(), Config::default());
        assert_eq!(
            parse_config::<Config>(Some(json!(null))).unwrap(),
            Config::default()
        );
        assert_eq!(
            parse_config::<Config>(Some(json!({}))).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        assert_eq!(
            field_of(parse_config(Some(json!({"sise": 1})))).as_deref(),
            Some("sise")
        );
        assert_eq!(
            field_of(parse_config(Some(json!({"pool": {"mx": 1}})))).as_deref(),
            Some("pool.mx")
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        assert_eq!(
            field_of(parse_config(Some(json!({"size": "big"})))).as_deref(),
            Some("size")
        );
        assert_eq!(
            field_of(parse_config(Some(json!({"pool": {"max": -1}})))).as_deref(),
            Some("pool.max")
        );
    }

    #[test]
    fn a_config_that_is_not_an_object_is_rejected() {
        assert_eq!(field_of(parse_config(Some(json!([1, 2])))), None);
        assert_eq!(field_of(parse_config(Some(json!("size=1")))), None);
    }
}
