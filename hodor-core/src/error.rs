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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is missing: never set, deleted, or expired.
    #[error(
        "key {} not found in {driver} contract {contract:?}: it was never set, was deleted or has expired; \
         treat this as a miss, or call exists() first",
        KeyText(key)
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
        "invalid key {} for {driver} contract {contract:?}: {reason}; a key must be 1 to 1024 bytes of UTF-8 \
         with no NUL character",
        KeyText(key)
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
        "invalid input for {driver} contract {contract:?}{}: {reason}",
        OnKey(key)
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
        "invalid config for {driver} contract {contract:?}{}: {reason}",
        InField(field)
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
        "driver {driver:?} is registered twice, by {first} and by {second}; link only one crate that \
         registers this name (check `cargo tree -d` for two versions of one driver crate)"
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
        "{operation} on closed {driver} contract {contract:?}: this contract or a clone of it was closed; \
         open a new one with Contract::new"
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
        "the {driver} driver does not support {operation} (contract {contract:?}){}; check \
         Contract::capabilities() before relying on it",
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
    #[error("{driver} contract {contract:?} cannot store{}: {reason}", OnKey(key))]
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
    #[error(
        "{driver} backend failed during {operation}{} in contract {contract:?}: {source}; the operation \
         did not complete and may be retried once the backend is reachable",
        OnKey(key)
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
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

/// Keys can be long and contain control characters: show them escaped and shortened so one
/// bad key cannot flood a log line.
struct KeyText<'a>(&'a str);

impl fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let key = self.0;
        if key.chars().count() <= SHOWN {
            return write!(f, "{key:?}");
        }
        let head: String = key.chars().take(SHOWN).collect();
        write!(f, "{head:?}... ({} bytes)", key.len())
    }
}

struct OnKey<'a>(&'a Option<String>);

impl fmt::Display for OnKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, " (key {})", KeyText(key)),
            None => Ok(()),
        }
    }
}

struct InField<'a>(&'a Option<String>);

impl fmt::Display for InField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, ", field `{field}`"),
            None => Ok(()),
        }
    }
}

struct Because<'a>(&'a Option<String>);

impl fmt::Display for Because<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(reason) => write!(f, ": {reason}"),
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
        write!(f, "unknown driver {:?}; ", self.driver)?;
        if self.registered.is_empty() {
            write!(f, "no drivers are linked into this program")?;
        } else {
            write!(f, "registered drivers: {}", self.registered.join(", "))?;
        }
        // Rust links a crate only where code names it; this line is Go's blank import.
        let crate_name = self.driver.replace('-', "_");
        write!(
            f,
            "; add the driver crate as a dependency and link it with `use hodor_{crate_name} as _;`"
        )
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
            | Error::Backend { driver, .. } => Some(driver),
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
            | Error::Backend { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// `true` for [`Error::NotFound`]: the usual way to treat a miss.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
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
    fn backend_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::Backend {
            driver: "redis",
            contract: contract(),
            operation: "get",
            key: Some("k".into()),
            source: Box::new(io),
        };
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("refused"));
        assert!(e.to_string().contains("during get (key \"k\")"), "{e}");
    }
}
