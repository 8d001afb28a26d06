//! The one error type every hodor operation returns.

use std::fmt;
use std::sync::Arc;

/// A boxed error from a backend, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, hodor_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a hodor call.
///
/// Every variant says what happened and where: the driver, the contract name and, where
/// there is one, the key. The `Display` text also says what to do about it, so an error
/// printed as-is in a log is actionable.
///
/// Messages stay short whatever the input: every input they repeat (contract and driver
/// names, keys, config fields) is shown through [`Echo`], quoted, escaped and cut after a
/// few dozen characters, and every free-text reason and backend message is cut after a few
/// hundred. `Debug` follows the same rule. The fields keep the inputs in full.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a `_` arm.
///
/// ```
/// use hodor_core::Error;
/// # fn lookup(r: Result<hodor_core::Bytes, Error>) -> Option<hodor_core::Bytes> {
/// match r {
///     Ok(bytes) => Some(bytes),
///     Err(Error::NotFound { .. }) => None,
///     Err(other) => panic!("{other}"),
/// }
/// # }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is missing: never set, deleted, or expired.
    #[error(
        "key {} not found in {driver} contract {}: it was never set, was deleted or has expired; \
         treat this as a miss, or call exists() first",
        Echo(key),
        Echo(contract)
    )]
    NotFound {
        /// Driver name, e.g. `"memory"`.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The key that was looked up.
        key: String,
    },

    /// The key breaks the key rules (1 to 1024 bytes, no NUL). Raised before any driver runs.
    #[error(
        "invalid key {} for {driver} contract {}: {}; a key must be 1 to 1024 bytes of UTF-8 \
         with no NUL character",
        Echo(key),
        Echo(contract),
        Echo::prose(reason)
    )]
    InvalidKey {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The rejected key (in full; the message shortens long keys).
        key: String,
        /// Which rule the key breaks.
        reason: String,
    },

    /// An argument other than the key is invalid (a zero TTL, a value that cannot be
    /// serialized, a stored value that is not the JSON `get_json` expected, ...).
    #[error(
        "invalid input for {driver} contract {}{}: {}",
        Echo(contract),
        OnKey(key),
        Echo::prose(reason)
    )]
    InvalidInput {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The key the call was about, if any.
        key: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The driver configuration passed to [`Contract::new`](crate::Contract::new) is invalid.
    #[error(
        "invalid config for {driver} contract {}{}: {}",
        Echo(contract),
        InField(field),
        Echo::prose(reason)
    )]
    InvalidConfig {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The offending field (a path such as `pool.size`), when one is to blame.
        field: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// No driver with this name is linked into the program.
    #[error("{}", UnknownDriverText { driver, registered })]
    UnknownDriver {
        /// The name that was asked for.
        driver: String,
        /// The names that are registered, sorted.
        registered: Vec<&'static str>,
    },

    /// Two linked crates register the same driver name.
    #[error(
        "driver {} is registered twice, by {} and by {}; link only one crate that registers this \
         name (check `cargo tree -d` for two versions of one driver crate)",
        Echo(driver),
        Echo::prose(first),
        Echo::prose(second)
    )]
    DuplicateDriver {
        /// The duplicated name.
        driver: String,
        /// Where the first registration was made (module and source location).
        first: String,
        /// Where the second registration was made.
        second: String,
    },

    /// The contract, or a clone of it, was closed.
    #[error(
        "{operation} on closed {driver} contract {}: this contract or a clone of it was closed; \
         open a new one with Contract::new",
        Echo(contract)
    )]
    Closed {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The operation that was attempted.
        operation: &'static str,
    },

    /// The driver does not support this operation or argument.
    #[error(
        "the {driver} driver does not support {operation} (contract {}){}; check \
         Contract::capabilities() before relying on it",
        Echo(contract),
        Because(reason)
    )]
    Unsupported {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The unsupported operation or argument.
        operation: &'static str,
        /// Why, when the driver says more.
        reason: Option<String>,
    },

    /// The store's configured limits cannot hold the value.
    #[error(
        "{driver} contract {} cannot store{}: {}",
        Echo(contract),
        OnKey(key),
        Echo::prose(reason)
    )]
    CapacityExceeded {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The key that did not fit, if any.
        key: Option<String>,
        /// Which limit, and what to do (raise it or store less).
        reason: String,
    },

    /// The backend failed: network, server or I/O error. The backend's own error is the source.
    ///
    /// `kind` says why, as far as the driver can tell, and `applied` what a failed write is
    /// known to have done: a write that timed out or lost its connection after its request
    /// left may have been applied by the server all the same. The message says which, for
    /// writes. [`Error::is_retryable`] sums up whether trying again may help.
    #[error(
        "{driver} backend failed during {operation}{} in contract {}: {}{}",
        OnKey(key),
        Echo(contract),
        SourceText(source),
        Outcome { operation, applied }
    )]
    Backend {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The operation that failed.
        operation: &'static str,
        /// The key, if the operation had one.
        key: Option<String>,
        /// Why it failed, as far as the driver can tell.
        kind: BackendKind,
        /// What the failed call is known to have changed. Always [`Applied::No`] for reads.
        applied: Applied,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// A watch asked to resume after a `seq` older than the history the store keeps
    /// (etcd's "compacted"): the events in between are gone. Resync: read the current
    /// state, or start with `Contract::watch_snapshot`, and watch from there.
    #[error(
        "cannot resume watching {driver} contract {} after seq {requested}: the store keeps \
         only the events after seq {floor}; resync: read the current state \
         (Contract::watch_snapshot) and watch from there",
        Echo(contract)
    )]
    Compacted {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The `seq` the watch asked to resume after.
        requested: u64,
        /// The store keeps the events after this `seq`.
        floor: u64,
    },

    /// A callback the caller gave ([`crate::sync`]'s `on_change`) panicked. The panic was
    /// caught; what called it goes on.
    #[error(
        "a callback for {driver} contract {}{} panicked: {}",
        Echo(contract),
        OnKey(key),
        Echo::prose(message)
    )]
    Callback {
        /// Driver name.
        driver: &'static str,
        /// Contract name.
        contract: Arc<str>,
        /// The key the callback was about, if any.
        key: Option<String>,
        /// The panic's message.
        message: String,
    },
}

/// Why a backend call failed, as far as the driver can tell: see [`Error::Backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// The backend did not answer in time: a connect, a reply or a wait for a free
    /// connection timed out. The backend may be overloaded, hung or unreachable.
    Timeout,
    /// The backend could not be reached: the connection was refused, could not be opened
    /// or broke.
    Unavailable,
    /// The backend refused the credentials. Trying again with the same ones will not help.
    Unauthenticated,
    /// Anything else: an error the backend returned, an unexpected reply, a driver bug.
    Other,
}

/// What a failed call is known to have changed: see [`Error::Backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Applied {
    /// Nothing: the call only reads, or it failed before its request left, or the backend
    /// refused it before carrying any of it out.
    No,
    /// Unknown: the request was sent (or may have been) and no answer came back, as when
    /// a reply times out or the connection breaks mid-call. A write may or may not have
    /// been applied; read the data back to know.
    Unknown,
}

/// The operations a [`Contract`](crate::Contract) reports that change data: a backend
/// failure of one of them says whether it was applied. (A new write operation belongs
/// here.)
const WRITES: &[&str] = &[
    "set",
    "set_many",
    "delete",
    "delete_many",
    "create",
    "set_if_version",
    "increment",
    "get_or_insert_with",
];

/// Whether `operation` changes data.
pub(crate) fn is_write(operation: &str) -> bool {
    WRITES.contains(&operation)
}

/// The end of a Backend message: what is known about a failed write.
struct Outcome<'a> {
    operation: &'a str,
    applied: &'a Applied,
}

impl fmt::Display for Outcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !is_write(self.operation) {
            return Ok(());
        }
        match self.applied {
            Applied::No => f.write_str("; it was not applied"),
            Applied::Unknown => f.write_str("; it may or may not have been applied"),
        }
    }
}

/// An input repeated in a message, bounded: whatever its length, it is shown quoted and
/// escaped (control characters, quotes and backslashes as Rust escapes), cut after
/// [`Echo::LIMIT`] bytes of escaped text and followed by its length in bytes when cut.
/// [`Echo::prose`] bounds free text (a reason, a backend's message) the same way, unquoted
/// and with a longer limit.
///
/// Every hodor message shows inputs through it; drivers should too, for anything a caller
/// passed (a URL, a path, a name), so one huge or hostile input cannot flood a log line.
///
/// ```
/// use hodor_core::Echo;
/// assert_eq!(Echo("user/1").to_string(), r#""user/1""#);
/// assert_eq!(Echo("a\nb").to_string(), r#""a\nb""#);
/// let long = "k".repeat(5000);
/// let shown = Echo(&long).to_string();
/// assert!(shown.len() < 100 && shown.ends_with("... (5000 bytes)"), "{shown}");
/// ```
#[derive(Clone, Copy)]
pub struct Echo<'a>(pub &'a str);

/// Free text bounded by [`Echo::prose`].
#[derive(Clone, Copy)]
pub struct Prose<'a>(&'a str);

impl<'a> Echo<'a> {
    /// The most bytes of escaped input an [`Echo`] shows.
    pub const LIMIT: usize = 64;
    /// The most bytes of text a [`Prose`] shows.
    pub const PROSE_LIMIT: usize = 400;

    /// Free text (a reason, a backend's message), shown unquoted with control characters
    /// escaped and cut after [`Echo::PROSE_LIMIT`] bytes.
    pub fn prose(text: &'a str) -> Prose<'a> {
        Prose(text)
    }
}

/// Collects at most `limit` bytes of escaped text and counts the rest, so even a huge
/// backend message is never copied whole.
struct Clip {
    shown: String,
    limit: usize,
    quote: bool,
    total: usize,
    cut: bool,
}

impl fmt::Write for Clip {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total += s.len();
        if self.cut {
            return Ok(());
        }
        for c in s.chars() {
            let before = self.shown.len();
            if self.quote {
                self.shown.extend(c.escape_debug());
            } else if c.is_control() {
                self.shown.extend(c.escape_default());
            } else {
                self.shown.push(c);
            }
            if self.shown.len() > self.limit {
                self.shown.truncate(before);
                self.cut = true;
                break;
            }
        }
        Ok(())
    }
}

/// Writes `text` escaped, at most `limit` bytes of it, and its full length if it was cut.
fn write_bounded(
    f: &mut fmt::Formatter<'_>,
    text: &dyn fmt::Display,
    limit: usize,
    quote: bool,
) -> fmt::Result {
    let mut clip = Clip {
        shown: String::new(),
        limit,
        quote,
        total: 0,
        cut: false,
    };
    fmt::write(&mut clip, format_args!("{text}"))?;
    let q = if quote { "\"" } else { "" };
    if clip.cut {
        write!(f, "{q}{}{q}... ({} bytes)", clip.shown, clip.total)
    } else {
        write!(f, "{q}{}{q}", clip.shown)
    }
}

/// A backend's error, shown as bounded prose.
pub(crate) struct SourceText<'a>(pub(crate) &'a BoxError);

impl fmt::Display for SourceText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bounded(f, &self.0, Echo::PROSE_LIMIT, false)
    }
}

impl fmt::Debug for SourceText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bounded(f, &self.0, Echo::PROSE_LIMIT, true)
    }
}

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bounded(f, &self.0, Echo::LIMIT, true)
    }
}

impl fmt::Debug for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Prose<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bounded(f, &self.0, Echo::PROSE_LIMIT, false)
    }
}

impl fmt::Debug for Prose<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quoted, so a Debug dump still shows where the text starts and ends.
        write_bounded(f, &self.0, Echo::PROSE_LIMIT, true)
    }
}

struct OnKey<'a>(&'a Option<String>);

impl fmt::Display for OnKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, " (key {})", Echo(key)),
            None => Ok(()),
        }
    }
}

struct InField<'a>(&'a Option<String>);

impl fmt::Display for InField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, ", field {}", Echo(field)),
            None => Ok(()),
        }
    }
}

struct Because<'a>(&'a Option<String>);

impl fmt::Display for Because<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(reason) => write!(f, ": {}", Echo::prose(reason)),
            None => Ok(()),
        }
    }
}

struct UnknownDriverText<'a> {
    driver: &'a str,
    registered: &'a [&'static str],
}

impl fmt::Display for UnknownDriverText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown driver {}; ", Echo(self.driver))?;
        if self.registered.is_empty() {
            write!(f, "no drivers are linked into this program")?;
        } else {
            write!(f, "registered drivers: ")?;
            for (i, name) in self.registered.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}{}", Echo::prose(name))?;
            }
        }
        // Rust links a crate only where code names it; this line is Go's blank import.
        // Only a name that could be part of a crate name is repeated in the hint.
        let plausible = self.driver.len() <= Echo::LIMIT
            && self
                .driver
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if plausible {
            let crate_name = self.driver.replace('-', "_");
            write!(
                f,
                "; add the driver crate as a dependency and link it with `use hodor_{crate_name} as _;`"
            )
        } else {
            write!(
                f,
                "; add the driver crate as a dependency and link it with `use <driver crate> as _;`"
            )
        }
    }
}

/// Debug shows the same bounded inputs as Display, as a struct per variant.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn key(key: &Option<String>) -> Option<Echo<'_>> {
            key.as_deref().map(Echo)
        }
        fn prose(text: &Option<String>) -> Option<Prose<'_>> {
            text.as_deref().map(Echo::prose)
        }
        match self {
            Error::NotFound {
                driver,
                contract,
                key,
            } => f
                .debug_struct("NotFound")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("key", &Echo(key))
                .finish(),
            Error::InvalidKey {
                driver,
                contract,
                key,
                reason,
            } => f
                .debug_struct("InvalidKey")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("key", &Echo(key))
                .field("reason", &Echo::prose(reason))
                .finish(),
            Error::InvalidInput {
                driver,
                contract,
                key: k,
                reason,
            } => f
                .debug_struct("InvalidInput")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("key", &key(k))
                .field("reason", &Echo::prose(reason))
                .finish(),
            Error::InvalidConfig {
                driver,
                contract,
                field,
                reason,
            } => f
                .debug_struct("InvalidConfig")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("field", &key(field))
                .field("reason", &Echo::prose(reason))
                .finish(),
            Error::UnknownDriver { driver, registered } => f
                .debug_struct("UnknownDriver")
                .field("driver", &Echo(driver))
                .field("registered", registered)
                .finish(),
            Error::DuplicateDriver {
                driver,
                first,
                second,
            } => f
                .debug_struct("DuplicateDriver")
                .field("driver", &Echo(driver))
                .field("first", &Echo::prose(first))
                .field("second", &Echo::prose(second))
                .finish(),
            Error::Closed {
                driver,
                contract,
                operation,
            } => f
                .debug_struct("Closed")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("operation", operation)
                .finish(),
            Error::Unsupported {
                driver,
                contract,
                operation,
                reason,
            } => f
                .debug_struct("Unsupported")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("operation", operation)
                .field("reason", &prose(reason))
                .finish(),
            Error::CapacityExceeded {
                driver,
                contract,
                key: k,
                reason,
            } => f
                .debug_struct("CapacityExceeded")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("key", &key(k))
                .field("reason", &Echo::prose(reason))
                .finish(),
            Error::Backend {
                driver,
                contract,
                operation,
                key: k,
                kind,
                applied,
                source,
            } => f
                .debug_struct("Backend")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("operation", operation)
                .field("key", &key(k))
                .field("kind", kind)
                .field("applied", applied)
                // The source's Display, bounded: its Debug is the driver's and unbounded.
                .field("source", &SourceText(source))
                .finish(),
            Error::Compacted {
                driver,
                contract,
                requested,
                floor,
            } => f
                .debug_struct("Compacted")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("requested", requested)
                .field("floor", floor)
                .finish(),
            Error::Callback {
                driver,
                contract,
                key: k,
                message,
            } => f
                .debug_struct("Callback")
                .field("driver", driver)
                .field("contract", &Echo(contract))
                .field("key", &key(k))
                .field("message", &Echo::prose(message))
                .finish(),
        }
    }
}

impl Error {
    /// The driver name this error is about, when it is about one opened driver.
    pub fn driver(&self) -> Option<&str> {
        match self {
            Error::NotFound { driver, .. }
            | Error::InvalidKey { driver, .. }
            | Error::InvalidInput { driver, .. }
            | Error::InvalidConfig { driver, .. }
            | Error::Closed { driver, .. }
            | Error::Unsupported { driver, .. }
            | Error::CapacityExceeded { driver, .. }
            | Error::Backend { driver, .. }
            | Error::Compacted { driver, .. }
            | Error::Callback { driver, .. } => Some(driver),
            Error::UnknownDriver { driver, .. } | Error::DuplicateDriver { driver, .. } => {
                Some(driver)
            }
        }
    }

    /// The key this error is about, if there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::NotFound { key, .. } | Error::InvalidKey { key, .. } => Some(key),
            Error::InvalidInput { key, .. }
            | Error::CapacityExceeded { key, .. }
            | Error::Backend { key, .. }
            | Error::Callback { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// `true` for [`Error::NotFound`]: the usual way to treat a miss.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// `true` when the same call may succeed if tried again later: a [`Error::Backend`]
    /// failure of kind [`BackendKind::Timeout`] or [`BackendKind::Unavailable`]. Every
    /// other error says something about the call or the configuration that a retry does
    /// not change.
    ///
    /// It does not say a retry is harmless: a write whose `applied` is
    /// [`Applied::Unknown`] may already have been applied. Retrying a `set` leaves the same
    /// result; retrying a `delete` may report `false` for an entry the first attempt
    /// removed, and a `create` or `set_if_version` `false` for a write the first attempt
    /// made; retrying an `increment` may count twice.
    ///
    /// ```
    /// # fn read(c: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// use std::time::Duration;
    /// let mut wait = Duration::from_millis(50);
    /// let value = loop {
    ///     match c.get("config") {
    ///         Err(e) if e.is_retryable() && wait < Duration::from_secs(2) => {
    ///             std::thread::sleep(wait); // the server is down or slow: wait and retry
    ///             wait *= 2;
    ///         }
    ///         other => break other?, // a miss or a lasting failure: no retry helps
    ///     }
    /// };
    /// # drop(value); Ok(()) }
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Backend {
                kind: BackendKind::Timeout | BackendKind::Unavailable,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Arc<str> {
        Arc::from("sessions")
    }

    #[test]
    fn not_found_names_driver_contract_and_key() {
        let e = Error::NotFound {
            driver: "memory",
            contract: contract(),
            key: "user/1".into(),
        };
        let text = e.to_string();
        assert!(text.contains("memory"), "{text}");
        assert!(text.contains("\"sessions\""), "{text}");
        assert!(text.contains("\"user/1\""), "{text}");
        assert_eq!(e.key(), Some("user/1"));
        assert!(e.is_not_found());
    }

    #[test]
    fn long_keys_are_shortened_in_messages_but_kept_in_full() {
        let key = "k".repeat(2000);
        let e = Error::InvalidKey {
            driver: "memory",
            contract: contract(),
            key: key.clone(),
            reason: "too long".into(),
        };
        let text = e.to_string();
        assert!(text.len() < 400, "{text}");
        assert!(text.contains("(2000 bytes)"), "{text}");
        assert_eq!(e.key(), Some(key.as_str()));
    }

    #[test]
    fn control_characters_in_keys_are_escaped() {
        let e = Error::NotFound {
            driver: "memory",
            contract: contract(),
            key: "a\nb\0".into(),
        };
        assert!(e.to_string().contains(r#""a\nb\0""#), "{e}");
    }

    #[test]
    fn unknown_driver_lists_registered_and_says_how_to_link() {
        let e = Error::UnknownDriver {
            driver: "redis".into(),
            registered: vec!["memory"],
        };
        let text = e.to_string();
        assert!(text.contains("registered drivers: memory"), "{text}");
        assert!(text.contains("use hodor_redis as _;"), "{text}");

        let none = Error::UnknownDriver {
            driver: "memory".into(),
            registered: vec![],
        };
        assert!(none.to_string().contains("no drivers are linked"), "{none}");
    }

    #[test]
    fn every_variant_stays_short_whatever_its_inputs() {
        let huge = |c: char| c.to_string().repeat(1 << 20);
        let contract: Arc<str> = Arc::from(huge('\u{10FFFF}'));
        let variants = [
            Error::NotFound {
                driver: "memory",
                contract: contract.clone(),
                key: huge('k'),
            },
            Error::InvalidKey {
                driver: "memory",
                contract: contract.clone(),
                key: huge('\0'),
                reason: huge('r'),
            },
            Error::InvalidInput {
                driver: "memory",
                contract: contract.clone(),
                key: Some(huge('"')),
                reason: huge('\n'),
            },
            Error::InvalidConfig {
                driver: "memory",
                contract: contract.clone(),
                field: Some(huge('f')),
                reason: huge('r'),
            },
            Error::UnknownDriver {
                driver: huge('d'),
                registered: vec!["memory", "redis"],
            },
            Error::DuplicateDriver {
                driver: huge('d'),
                first: "a_driver_crate::registration (a-driver-crate/src/lib.rs:120)".into(),
                second: "a_driver_crate::registration (a-driver-crate/src/lib.rs:121)".into(),
            },
            Error::Closed {
                driver: "memory",
                contract: contract.clone(),
                operation: "get",
            },
            Error::Unsupported {
                driver: "memory",
                contract: contract.clone(),
                operation: "watch",
                reason: Some(huge('u')),
            },
            Error::CapacityExceeded {
                driver: "memory",
                contract: contract.clone(),
                key: Some(huge('k')),
                reason: huge('c'),
            },
            Error::Backend {
                driver: "redis",
                contract: contract.clone(),
                operation: "set",
                key: Some(huge('\u{7f}')),
                kind: BackendKind::Timeout,
                applied: Applied::Unknown,
                source: huge('s').into(),
            },
            Error::Compacted {
                driver: "memory",
                contract: contract.clone(),
                requested: 1,
                floor: u64::MAX,
            },
            Error::Callback {
                driver: "memory",
                contract: contract.clone(),
                key: Some(huge('k')),
                message: huge('p'),
            },
        ];
        for e in variants {
            let (shown, debug) = (e.to_string(), format!("{e:?}"));
            assert!(shown.len() < 1024, "{} bytes: {shown}", shown.len());
            assert!(debug.len() < 1024, "{} bytes: {debug}", debug.len());
            assert!(shown.contains("bytes)"), "the cut is said: {shown}");
        }
    }

    proptest::proptest! {
        #[test]
        fn an_echo_is_bounded_and_exact_when_short(text in "\\PC{0,100}|.{0,100}") {
            let shown = Echo(&text).to_string();
            let limit = Echo::LIMIT + "\"\"... (100000 bytes)".len();
            proptest::prop_assert!(shown.len() <= limit, "{}", shown);
            if shown.ends_with(" bytes)") && !text.ends_with(" bytes)") {
                let suffix = format!("... ({} bytes)", text.len());
                proptest::prop_assert!(shown.ends_with(&suffix), "{}", shown);
            } else {
                let escaped: String = text.chars().flat_map(char::escape_debug).collect();
                proptest::prop_assert_eq!(shown, format!("\"{escaped}\""));
            }
        }
    }

    #[test]
    fn backend_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::Backend {
            driver: "redis",
            contract: contract(),
            operation: "get",
            key: Some("k".into()),
            kind: BackendKind::Unavailable,
            applied: Applied::No,
            source: Box::new(io),
        };
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("refused"));
        assert!(e.to_string().contains("during get (key \"k\")"), "{e}");
        assert!(e.is_retryable());
    }

    #[test]
    fn a_failed_write_says_what_is_known_and_a_read_says_nothing() {
        let backend = |operation, applied| Error::Backend {
            driver: "redis",
            contract: contract(),
            operation,
            key: None,
            kind: BackendKind::Timeout,
            applied,
            source: "timed out".into(),
        };
        let text = backend("set", Applied::Unknown).to_string();
        assert!(
            text.ends_with("timed out; it may or may not have been applied"),
            "{text}"
        );
        let text = backend("delete_many", Applied::No).to_string();
        assert!(text.ends_with("timed out; it was not applied"), "{text}");
        let text = backend("get", Applied::No).to_string();
        assert!(text.ends_with("timed out"), "{text}");
        for kind in [BackendKind::Unauthenticated, BackendKind::Other] {
            let e = Error::Backend {
                driver: "redis",
                contract: contract(),
                operation: "get",
                key: None,
                kind,
                applied: Applied::No,
                source: "no".into(),
            };
            assert!(!e.is_retryable(), "{kind:?}");
        }
    }
}
