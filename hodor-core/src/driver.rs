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

use crate::error::{Applied, BackendKind, BoxError, Echo, SourceText};
use crate::page::Page;
use crate::version::Version;
use crate::watch::{Watch, WatchRequest};

/// Result of a driver call.
pub type DriverResult<T> = std::result::Result<T, DriverError>;

/// How a driver is opened by the registry: the contract name and the user's config.
///
/// `config` is `None` when the user passed none; parse it with [`parse_config`].
pub type OpenFn =
    fn(name: &str, config: Option<serde_json::Value>) -> DriverResult<Box<dyn Driver>>;

/// A backend's failure, before the [`Contract`](crate::Contract) adds where it happened.
///
/// Its `Display` and `Debug` bound every text like [`crate::Error`]'s do.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The backend failed (I/O, network, server error). Becomes [`crate::Error::Backend`].
    ///
    /// Build it with [`DriverError::backend`] when nothing more is known, or
    /// [`DriverError::backend_failure`] to say why and whether a write may have been
    /// applied.
    #[error("{}", SourceText(source))]
    Backend {
        /// Why, as far as the driver can tell.
        kind: BackendKind,
        /// What the failed call is known to have changed. The `Contract` reports
        /// [`Applied::No`] for reads whatever the driver says.
        applied: Applied,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
    /// The operation or argument is not supported. Becomes [`crate::Error::Unsupported`].
    #[error("{operation} is not supported")]
    Unsupported {
        /// The operation or argument.
        operation: &'static str,
        /// Why, if there is more to say.
        reason: Option<String>,
    },
    /// A configured limit cannot hold the value. Becomes [`crate::Error::CapacityExceeded`].
    #[error("{}", Echo::prose(.0))]
    CapacityExceeded(String),
    /// An argument the `Contract` could not check is invalid. Becomes
    /// [`crate::Error::InvalidInput`].
    #[error("{}", Echo::prose(.0))]
    InvalidInput(String),
    /// The handle was closed before this call. A driver used through a `Contract` never
    /// sees a call after close; this is for drivers called directly, which must refuse
    /// them on their own. Becomes [`crate::Error::Closed`].
    #[error("the handle is closed")]
    Closed,
    /// The configuration is invalid (only from an [`OpenFn`]). Becomes
    /// [`crate::Error::InvalidConfig`].
    #[error("{}", Echo::prose(reason))]
    InvalidConfig {
        /// The offending field, as a path such as `pool.size`.
        field: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A watch asked to resume after a `seq` older than the history the store keeps.
    /// Becomes [`crate::Error::Compacted`].
    #[error(
        "seq {requested} is older than the history kept, which holds the events after seq {floor}"
    )]
    Compacted {
        /// The `seq` the watch asked to resume after.
        requested: u64,
        /// The history holds the events after this `seq`.
        floor: u64,
    },
}

impl fmt::Debug for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Backend {
                kind,
                applied,
                source,
            } => f
                .debug_struct("Backend")
                .field("kind", kind)
                .field("applied", applied)
                .field("source", &SourceText(source))
                .finish(),
            DriverError::Unsupported { operation, reason } => f
                .debug_struct("Unsupported")
                .field("operation", operation)
                .field("reason", &reason.as_deref().map(Echo::prose))
                .finish(),
            DriverError::CapacityExceeded(reason) => f
                .debug_tuple("CapacityExceeded")
                .field(&Echo::prose(reason))
                .finish(),
            DriverError::InvalidInput(reason) => f
                .debug_tuple("InvalidInput")
                .field(&Echo::prose(reason))
                .finish(),
            DriverError::Closed => f.write_str("Closed"),
            DriverError::InvalidConfig { field, reason } => f
                .debug_struct("InvalidConfig")
                .field("field", &field.as_deref().map(Echo))
                .field("reason", &Echo::prose(reason))
                .finish(),
            DriverError::Compacted { requested, floor } => f
                .debug_struct("Compacted")
                .field("requested", requested)
                .field("floor", floor)
                .finish(),
        }
    }
}

impl DriverError {
    /// Wraps a backend error about which nothing more is known: kind
    /// [`BackendKind::Other`], and a write it interrupted may have been applied
    /// ([`Applied::Unknown`]), the safe thing to say when the driver cannot tell.
    pub fn backend(error: impl Into<BoxError>) -> DriverError {
        DriverError::backend_failure(BackendKind::Other, Applied::Unknown, error)
    }

    /// Wraps a backend error, saying why it failed and what it is known to have changed:
    /// [`Applied::No`] when the request never left (a refused connection, an expired
    /// wait) or the backend refused it before carrying any of it out, [`Applied::Unknown`]
    /// when it was sent and no answer came back.
    pub fn backend_failure(
        kind: BackendKind,
        applied: Applied,
        error: impl Into<BoxError>,
    ) -> DriverError {
        DriverError::Backend {
            kind,
            applied,
            source: error.into(),
        }
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
///
/// `#[non_exhaustive]`: drivers build one with [`Metadata::new`], and later fields come
/// with defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// The value's length in bytes.
    pub size: u64,
    /// Wall-clock time of the last write.
    pub modified: SystemTime,
    /// Wall-clock time from which the entry is gone, or `None` if it never expires.
    pub expires_at: Option<SystemTime>,
    /// The entry's version: different after every write of the key. Pass it to
    /// [`Contract::set_if_version`](crate::Contract::set_if_version).
    pub version: Version,
}

impl Metadata {
    /// The metadata of an entry, for drivers.
    pub fn new(
        size: u64,
        modified: SystemTime,
        expires_at: Option<SystemTime>,
        version: Version,
    ) -> Metadata {
        Metadata {
            size,
            modified,
            expires_at,
            version,
        }
    }
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
    /// and reports them in its gauges (`entries`, `bytes`, `evictions`, `expirations` and
    /// the limits). After every call the gauges are within the limits, overwrites that grow
    /// values included; overwriting existing keys evicts nothing; a value or batch that
    /// cannot fit is `CapacityExceeded` with nothing written or evicted; expired entries go
    /// before live ones and count as expirations.
    pub limits: bool,
    /// Data outlives the process (a server, a file). Without it, a store's data is released
    /// when its last contract is closed or dropped.
    pub persistent: bool,
    /// `create`, `set_if_version` and `increment` are implemented and atomic per key: of
    /// racing writers of one key, each sees the effect of every write that returned before
    /// it decided, in every process that shares the store. Without it they are
    /// `Unsupported`, as is `get_or_insert_with`, which stores its value with `create`.
    pub conditional: bool,
    /// No call waits on I/O or on another process: every call returns in the time of a
    /// few memory operations (and locks held only for such). An async caller may then run
    /// calls inline on its executor's thread; calls of a driver without it run on the
    /// blocking pool (see `AsyncContract`, feature `tokio`).
    pub non_blocking: bool,
    /// [`Driver::watch`] delivers the store's changes by the rules of [`crate::watch`].
    /// Without it every watch call is `Unsupported` and [`crate::sync`] polls.
    pub watch: bool,
}

impl Capabilities {
    /// Nothing beyond the required operations.
    pub const NONE: Capabilities = Capabilities {
        ttl: false,
        atomic_bulk: false,
        limits: false,
        persistent: false,
        conditional: false,
        non_blocking: false,
        watch: false,
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

    /// Sets [`Capabilities::conditional`].
    pub const fn conditional(mut self, yes: bool) -> Self {
        self.conditional = yes;
        self
    }

    /// Sets [`Capabilities::non_blocking`].
    pub const fn non_blocking(mut self, yes: bool) -> Self {
        self.non_blocking = yes;
        self
    }

    /// Sets [`Capabilities::watch`].
    pub const fn watch(mut self, yes: bool) -> Self {
        self.watch = yes;
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
    /// Watches open on the store in this process ([`Hub::watch_count`](crate::watch::Hub::watch_count)).
    pub watches: Option<u64>,
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
/// name (compared as exact bytes) see the same data at once, keys and values are kept byte
/// for byte, reads change nothing, every write is one step for concurrent readers and
/// gives the key a new [`Version`], bulk calls handle any number of keys, conditional
/// writes (when claimed) are atomic per key, and no method panics.
pub trait Driver: Send + Sync + fmt::Debug + 'static {
    /// What this driver supports. Called once, when the contract is opened.
    fn capabilities(&self) -> Capabilities;

    /// Stores `value` under `key`, replacing any earlier value and TTL. With `ttl: None` the
    /// entry never expires (an earlier TTL is cleared); with `Some(d)` it is live strictly
    /// before now + `d`.
    ///
    /// The write is one step for readers: they see the old entry or the new one, each with
    /// its own TTL and listed, never neither (no delete-then-insert) and never the new value
    /// with the old TTL.
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()>;

    /// The value of a live entry, or `None` if it is missing or expired. Must never return
    /// an expired value. Changes nothing: no access time, no sliding TTL (likewise
    /// [`Driver::stat`], [`Driver::exists`], [`Driver::list`] and [`Driver::get_many`]).
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>>;

    /// Removes the entry. `true` only when a live entry was removed; a missing or expired
    /// entry is `false`, never an error. Of deletes of one live entry racing each other,
    /// exactly one returns `true`.
    fn delete(&self, key: &str) -> DriverResult<bool>;

    /// Every live key starting with `prefix` (a plain byte prefix, not a path segment),
    /// sorted by bytes ascending, with no duplicates and no expired key. `""` lists all,
    /// however many keys that is (a paged backend reads every page). A key is listed
    /// exactly when it can be read: the index and the data change in one step.
    fn list(&self, prefix: &str) -> DriverResult<Vec<String>>;

    /// Size, modification time, expiry and version of a live entry, or `None` like
    /// [`Driver::get`]. The [`Version`] differs after every write of the key, including a
    /// key deleted (or expired) and written again: a driver that keeps a counter per key
    /// must not restart it when the key is recreated.
    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>>;

    /// Whether a live entry exists. The default asks [`Driver::stat`].
    fn exists(&self, key: &str) -> DriverResult<bool> {
        Ok(self.stat(key)?.is_some())
    }

    /// Releases what this handle holds. Called exactly once; see the trait docs. A closed
    /// handle keeps no data alive, dropped or not: without [`Capabilities::persistent`], the
    /// close of the last open handle of a store releases its data.
    fn close(&self) -> DriverResult<()> {
        Ok(())
    }

    /// The values of `keys`, in order, `None` for missing or expired ones; a key may appear
    /// more than once. Any number of keys: a backend with batch limits splits the call
    /// itself and keeps the order. The default calls [`Driver::get`] per key and is not
    /// atomic.
    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// Stores every entry with the same `ttl`, in order, so a later duplicate key wins; the
    /// `ttl` (or `None`) replaces whatever TTL each key had. Any number of entries: a
    /// backend with batch limits splits the call itself, applying the parts in order. The
    /// default calls [`Driver::set`] per entry and is not atomic.
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        for (key, value) in entries {
            self.set(key, value.clone(), ttl)?;
        }
        Ok(())
    }

    /// Removes every key; returns how many live entries were removed (a key listed twice
    /// counts once). Any number of keys. The default calls [`Driver::delete`] per key and
    /// is not atomic.
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

    /// Stores `value` under `key` only if no live entry is there (none, or an expired one);
    /// `true` if it wrote. Atomic: of creates of one key racing each other (through any
    /// handle, in any process sharing the store), exactly one returns `true`. A TTL as for
    /// [`Driver::set`].
    ///
    /// Only called when [`Capabilities::conditional`] is claimed; the default is
    /// `Unsupported`.
    fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<bool> {
        let _ = (key, value, ttl);
        Err(DriverError::unsupported("create"))
    }

    /// Stores `value` under `key` (with `ttl` as for [`Driver::set`]) only if its live
    /// entry has the version `expected`; `true` if it wrote. A missing or expired key has
    /// no version, so it is `false`. Atomic like [`Driver::create`]: of writers racing with
    /// one expected version, at most one returns `true`.
    ///
    /// Only called when [`Capabilities::conditional`] is claimed; the default is
    /// `Unsupported`.
    fn set_if_version(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Version,
    ) -> DriverResult<bool> {
        let _ = (key, value, ttl, expected);
        Err(DriverError::unsupported("set_if_version"))
    }

    /// Adds `delta` to the decimal integer stored under `key` and returns the sum, which
    /// it stores in the same form. A missing or expired key counts as 0 and is created
    /// without a TTL; an existing key keeps its TTL. The value must be the canonical
    /// decimal form of an `i64` (an optional `-`, no `+`, no leading zero, no space; what
    /// Redis `INCRBY` accepts), else `InvalidInput`; a sum outside `i64` is `InvalidInput`
    /// and writes nothing: it never wraps. Atomic: concurrent increments lose no update.
    ///
    /// Only called when [`Capabilities::conditional`] is claimed; the default is
    /// `Unsupported`.
    fn increment(&self, key: &str, delta: i64) -> DriverResult<i64> {
        let _ = (key, delta);
        Err(DriverError::unsupported("increment"))
    }

    /// At most `limit` (at least 1) live keys starting with `prefix`, sorted by bytes, each
    /// strictly after `start_after` when it is given; [`Page::next`] is the last key
    /// returned when more keys follow, `None` when none do. Pages read one after another
    /// return every key that stays live meanwhile exactly once, in order, whatever is
    /// written between them.
    ///
    /// The default calls [`Driver::list`] and keeps one page of it: correct, but it costs
    /// the whole listing on every page. A backend that can seek should override it.
    fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> DriverResult<Page> {
        let keys = self.list(prefix)?;
        let from = match start_after {
            Some(after) => keys.partition_point(|k| k.as_str() <= after),
            None => 0,
        };
        Ok(page_of(keys.into_iter().skip(from), limit))
    }

    /// Starts a watch on the keys `request` matches, by the rules of [`crate::watch`]; only
    /// for a driver that claims [`Capabilities::watch`] (the default is `Unsupported`).
    ///
    /// **Every write produces its events.** Each operation that changes an entry (`set`,
    /// `delete`, their bulk forms, `create`, `set_if_version` and `increment` when they
    /// write, and every write operation added later) publishes one event per key it
    /// changed, as does the driver's own reclaiming (`Expired`) and eviction (`Evicted`), at
    /// the point the change takes effect, so per key the events are in the order of the
    /// writes. A driver publishes into a [`Hub`](crate::watch::Hub) per store, which does
    /// the rest. A `delete` that finds only an expired entry publishes `Expired`.
    ///
    /// With [`Start::After`](crate::watch::Start::After), a `seq` older than the history
    /// the driver keeps is [`DriverError::Compacted`]. With
    /// [`Start::Snapshot`](crate::watch::Start::Snapshot) the driver lists the matching
    /// keys and attaches the watch at one moment with no change in between, and returns the
    /// watch [`with_snapshot`](Watch::with_snapshot).
    fn watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        let _ = request;
        Err(DriverError::unsupported("watch"))
    }
}

/// The page of at most `limit` keys that `keys` (sorted, all after the cursor) starts
/// with, looking one key further to tell whether more follow. For drivers that collect
/// the keys after a cursor themselves.
///
/// ```
/// use hodor_core::driver::page_of;
/// let page = page_of(["a", "b", "c"].map(String::from), 2);
/// assert_eq!((page.keys, page.next.as_deref()), (vec!["a".to_owned(), "b".to_owned()], Some("b")));
/// assert!(page_of(["a"].map(String::from), 2).is_last());
/// ```
pub fn page_of(keys: impl IntoIterator<Item = String>, limit: usize) -> Page {
    let mut keys = keys.into_iter();
    let page: Vec<String> = keys.by_ref().take(limit).collect();
    let more = keys.next().is_some();
    let next = if more { page.last().cloned() } else { None };
    Page::new(page, next)
}

/// For drivers implementing [`Driver::increment`]: the sum of the counter `current` (the
/// stored value; `None` when the key is missing or expired, which counts as 0) and
/// `delta`, to be stored as `sum.to_string()`; or the `InvalidInput` the contract asks
/// for when the value is not the canonical decimal form of an `i64` (an optional `-`,
/// digits without a leading zero; what Redis `INCRBY` accepts) or the sum would leave
/// `i64`. Messages give the value's length, never its bytes.
///
/// ```
/// use hodor_core::driver::{increment_counter, DriverError};
/// assert_eq!(increment_counter(None, 5).unwrap(), 5);
/// assert_eq!(increment_counter(Some(b"-7"), 2).unwrap(), -5);
/// for bad in [&b"07"[..], b"+7", b" 7", b"-0", b"7.0", b"", b"seven"] {
///     assert!(matches!(increment_counter(Some(bad), 1), Err(DriverError::InvalidInput(_))));
/// }
/// assert!(increment_counter(Some(i64::MAX.to_string().as_bytes()), 1).is_err());
/// ```
pub fn increment_counter(current: Option<&[u8]>, delta: i64) -> DriverResult<i64> {
    let Some(current) = current else {
        return Ok(delta);
    };
    let Some(value) = parse_counter(current) else {
        return Err(DriverError::InvalidInput(format!(
            "the stored value ({} bytes) is not a decimal integer; increment needs the canonical \
             decimal form of a 64-bit signed integer (an optional '-' and digits without a \
             leading zero)",
            current.len()
        )));
    };
    value.checked_add(delta).ok_or_else(|| {
        DriverError::InvalidInput(format!(
            "adding {delta} to the counter's {value} would leave the 64-bit signed range; \
             nothing was written"
        ))
    })
}

/// The `i64` whose canonical decimal text `bytes` is, if it is one.
fn parse_counter(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == bytes.len(), // "0", never "-0"
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Checks a contract name against the name rules (the key rules: 1 to 1024 bytes, no NUL).
///
/// [`Contract::new`](crate::Contract::new) checks the name before it opens a driver; a
/// driver's own public `open` should call this first, before it registers or allocates
/// anything for the name, so that opening it without the registry keeps the same promise.
///
/// ```
/// use hodor_core::driver::{check_name, DriverError};
/// assert!(check_name("sessions").is_ok());
/// assert!(matches!(check_name(""), Err(DriverError::InvalidInput(_))));
/// ```
pub fn check_name(name: &str) -> DriverResult<()> {
    match crate::key::problem(name) {
        None => Ok(()),
        Some(reason) => Err(DriverError::InvalidInput(crate::key::name_reason(&reason))),
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
            let kind = match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                _ => "an array",
            };
            return Err(DriverError::invalid_config(
                None,
                format!("the config must be a JSON object (or None), not {kind}"),
            ));
        }
    };
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        // serde_path_to_error's path already ends in the unknown or mistyped field. serde's
        // message repeats the offending value, which may be huge: keep a bounded excerpt.
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = (path != "." && !path.is_empty()).then_some(path);
        DriverError::InvalidConfig {
            field,
            reason: format!(
                "{}; see the driver's documentation for its config fields",
                Echo::prose(&inner)
            ),
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
    fn counters_parse_exactly_what_redis_incrby_parses() {
        let ok = [
            ("0", 0),
            ("-1", -1),
            ("42", 42),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (text, value) in ok {
            assert_eq!(parse_counter(text.as_bytes()), Some(value), "{text}");
        }
        let refused = [
            "",
            "-",
            "-0",
            "00",
            "01",
            "+1",
            " 1",
            "1 ",
            "1\n",
            "1.0",
            "1e3",
            "0x1",
            "٣",
            "9223372036854775808",
            "-9223372036854775809",
        ];
        for text in refused {
            assert_eq!(parse_counter(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn an_increment_never_wraps_and_says_why_without_the_value() {
        let max = i64::MAX.to_string();
        match increment_counter(Some(max.as_bytes()), 1) {
            Err(DriverError::InvalidInput(reason)) => {
                assert!(reason.contains("nothing was written"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            increment_counter(Some(max.as_bytes()), -1).unwrap(),
            i64::MAX - 1
        );
        match increment_counter(Some(b"secret-token"), 1) {
            Err(DriverError::InvalidInput(reason)) => {
                assert!(!reason.contains("secret"), "{reason}");
                assert!(reason.contains("12 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_config_that_is_not_an_object_is_rejected() {
        assert_eq!(field_of(parse_config(Some(json!([1, 2])))), None);
        assert_eq!(field_of(parse_config(Some(json!("size=1")))), None);
    }
}
