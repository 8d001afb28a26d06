//! The Redis driver's configuration.

use std::fmt;
use std::time::Duration;

use hodor_core::Echo;
use hodor_core::driver::{DriverError, DriverResult};
use serde::{Deserialize, Serialize};

use crate::secret::{Secrets, describe_url};

/// The URL used when the config names none: a server on this machine, database 0.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// Configuration of a Redis contract, given as JSON to
/// `Contract::new("redis", name, config)`.
///
/// Every field is optional; `None` and `{}` give the defaults. Unknown fields and wrong
/// types are `InvalidConfig` errors naming the field.
///
/// ```
/// use hodor_redis::RedisConfig;
/// use serde_json::json;
///
/// let config: RedisConfig = hodor_core::driver::parse_config(Some(json!({
///     "url": "redis://:secret@cache.internal:6379/2",
///     "pool_size": 16,
///     "timeout_ms": 500,
/// })))?;
/// assert_eq!(config.pool_size, 16);
/// // The password never shows in logs.
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok::<(), hodor_core::driver::DriverError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` for TLS,
    /// or `redis+unix:///path/to/socket[?db=N&user=U&pass=P]` for a Unix socket. Default
    /// [`DEFAULT_URL`]. Username and password (Redis 6 ACL, or `:password` for the classic
    /// `requirepass`) come from the URL; percent-encode `/`, `#`, `?`, `@` and `%` in them.
    ///
    /// Messages and `Debug` never show the credentials, the query or the fragment of this
    /// URL, and show its address only when it has the plain shape `host[:port][/db]` (or a
    /// socket path), so a password that breaks the URL's shape cannot leak through it.
    pub url: String,
    /// The database number; overrides the one in the URL when set.
    pub database: Option<u32>,
    /// The most connections this process opens to the server for all contracts that share
    /// this config (default 8, 1 to 1024). A call waits for a free connection for at most
    /// `timeout_ms`.
    pub pool_size: u32,
    /// How long opening one connection may take, in milliseconds (default 2000, at least
    /// 1): the TCP connect, the TLS handshake, authentication, `SELECT` and the server's
    /// first answer. Opening a contract (`Contract::new`) is bounded by it as a whole, the
    /// driver's check of the server included.
    pub connect_timeout_ms: u64,
    /// How long any one call may wait for a free connection, and how long any read or write
    /// on a connection may block, in milliseconds (default 2000, at least 1). A server that
    /// stops answering makes calls fail with `Backend` instead of hanging.
    pub timeout_ms: u64,
    /// How often, in milliseconds, this process removes the index entries of expired keys
    /// for the contracts it has open (default 1000, at least 10). Redis frees the expired
    /// values itself; this bounds how long their index entries stay.
    pub prune_interval_ms: u64,
    /// How many changes the contract's change log keeps for watches to resume from
    /// (default 10,000; up to 10,000,000). The log is a Redis stream trimmed approximately
    /// (`MAXLEN ~`), so it may hold a little more. Every process writing a contract should
    /// use the same value.
    ///
    /// 0 turns watching off for the contracts this process opens: their writes are counted
    /// in the log's sequence but not logged (one `INCR` instead of an `INCR` and an
    /// `XADD`), so they claim no `watch` capability, and watchers in other processes see
    /// the gap and resync instead of missing the change.
    pub watch_history: u64,
    /// With a `rediss://` URL: a PEM file of the certificate authorities to trust instead
    /// of the system's.
    pub tls_ca_file: Option<String>,
    /// With a `rediss://` URL: a PEM client certificate, for servers that authenticate
    /// clients (`tls-auth-clients yes`). Needs [`RedisConfig::tls_key_file`].
    pub tls_cert_file: Option<String>,
    /// The PEM private key of [`RedisConfig::tls_cert_file`].
    pub tls_key_file: Option<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: DEFAULT_URL.to_owned(),
            database: None,
            pool_size: 8,
            connect_timeout_ms: 2000,
            timeout_ms: 2000,
            prune_interval_ms: 1000,
            watch_history: 10_000,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.display_url())
            .field("database", &self.database)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("prune_interval_ms", &self.prune_interval_ms)
            .field("watch_history", &self.watch_history)
            .field("tls_ca_file", &self.tls_ca_file.as_deref().map(Echo))
            .field("tls_cert_file", &self.tls_cert_file.as_deref().map(Echo))
            .field("tls_key_file", &self.tls_key_file.as_deref().map(Echo))
            .finish()
    }
}

impl RedisConfig {
    /// A config for the server at `url`, everything else default.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            ..RedisConfig::default()
        }
    }

    /// Sets [`RedisConfig::database`].
    pub fn database(mut self, database: u32) -> Self {
        self.database = Some(database);
        self
    }

    /// Sets [`RedisConfig::pool_size`].
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets [`RedisConfig::connect_timeout_ms`].
    pub fn connect_timeout_ms(mut self, ms: u64) -> Self {
        self.connect_timeout_ms = ms;
        self
    }

    /// Sets [`RedisConfig::timeout_ms`].
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// Sets [`RedisConfig::tls_ca_file`].
    pub fn tls_ca_file(mut self, path: impl Into<String>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }

    /// Sets [`RedisConfig::prune_interval_ms`].
    pub fn prune_interval_ms(mut self, ms: u64) -> Self {
        self.prune_interval_ms = ms;
        self
    }

    /// Sets [`RedisConfig::watch_history`].
    pub fn watch_history(mut self, changes: u64) -> Self {
        self.watch_history = changes;
        self
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn prune_interval(&self) -> Duration {
        Duration::from_millis(self.prune_interval_ms)
    }

    /// The URL as messages show it: no credentials, no query, bounded.
    pub(crate) fn display_url(&self) -> String {
        describe_url(&self.url)
    }

    /// Checks what serde cannot, and builds the client's connection info.
    pub(crate) fn connection_info(&self) -> DriverResult<redis::ConnectionInfo> {
        const HOUR_MS: u64 = 60 * 60 * 1000;
        let range = |field: &'static str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(DriverError::invalid_config(
                    Some(field),
                    format!("{value} is out of range; use {min} to {max}"),
                ))
            }
        };
        range("pool_size", u64::from(self.pool_size), 1, 1024)?;
        range("connect_timeout_ms", self.connect_timeout_ms, 1, HOUR_MS)?;
        range("timeout_ms", self.timeout_ms, 1, HOUR_MS)?;
        range("prune_interval_ms", self.prune_interval_ms, 10, HOUR_MS)?;
        range("watch_history", self.watch_history, 0, 10_000_000)?;

        let info =
            redis::IntoConnectionInfo::into_connection_info(self.url.as_str()).map_err(|e| {
                // The client's message may repeat part of the URL.
                let why = Secrets::of(&self.url, None).scrub(&e.to_string());
                DriverError::invalid_config(
                    Some("url"),
                    format!(
                        "{} is not a Redis URL ({}); write \
                         redis://[[user]:password@]host[:port][/db] (percent-encode / # ? @ % \
                         in a password) or redis+unix:///path/to/socket",
                        self.display_url(),
                        Echo::prose(&why)
                    ),
                )
            })?;
        if !info.addr().is_supported() {
            return Err(DriverError::invalid_config(
                Some("url"),
                format!(
                    "{} needs TLS (rediss://), which this build of hodor-redis leaves out; \
                     enable the crate's `tls` feature (on by default)",
                    self.display_url()
                ),
            ));
        }
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        for (field, value) in [
            ("tls_ca_file", &self.tls_ca_file),
            ("tls_cert_file", &self.tls_cert_file),
            ("tls_key_file", &self.tls_key_file),
        ] {
            if value.is_some() && !tls {
                return Err(DriverError::invalid_config(
                    Some(field),
                    "is only used with TLS; write the url as rediss://...",
                ));
            }
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => {
                return Err(DriverError::invalid_config(
                    Some("tls_key_file"),
                    "a client certificate (tls_cert_file) needs its private key",
                ));
            }
            (None, Some(_)) => {
                return Err(DriverError::invalid_config(
                    Some("tls_cert_file"),
                    "a private key (tls_key_file) needs its client certificate",
                ));
            }
            _ => {}
        }
        Ok(match self.database {
            None => info,
            Some(db) => {
                let settings = info.redis_settings().clone().set_db(i64::from(db));
                info.set_redis_settings(settings)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hodor_core::driver::parse_config;
    use serde_json::json;

    fn field_of(r: DriverResult<impl fmt::Debug>) -> Option<String> {
        match r {
            Err(DriverError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c: RedisConfig = parse_config(None).unwrap();
        assert_eq!(c, RedisConfig::default());
        assert_eq!(c.url, DEFAULT_URL);
        c.connection_info().unwrap();
    }

    #[test]
    fn unknown_and_mistyped_fields_are_named() {
        assert_eq!(
            field_of(parse_config::<RedisConfig>(Some(json!({"uri": "x"})))).as_deref(),
            Some("uri")
        );
        assert_eq!(
            field_of(parse_config::<RedisConfig>(Some(json!({"pool_size": "8"})))).as_deref(),
            Some("pool_size")
        );
        assert_eq!(
            field_of(parse_config::<RedisConfig>(Some(json!({"database": -1})))).as_deref(),
            Some("database")
        );
    }

    #[test]
    fn out_of_range_values_are_named() {
        for (field, value) in [
            ("pool_size", json!(0)),
            ("pool_size", json!(5000)),
            ("timeout_ms", json!(0)),
            ("connect_timeout_ms", json!(0)),
            ("prune_interval_ms", json!(1)),
            ("watch_history", json!(10_000_001)),
        ] {
            let c: RedisConfig = parse_config(Some(json!({ field: value }))).unwrap();
            assert_eq!(field_of(c.connection_info()).as_deref(), Some(field));
        }
    }

    #[test]
    fn a_bad_url_is_named_without_its_password() {
        let c = RedisConfig::new("http://:hunter2@example.com");
        match c.connection_info() {
            Err(DriverError::InvalidConfig { field, reason }) => {
                assert_eq!(field.as_deref(), Some("url"));
                assert!(!reason.contains("hunter2"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn url_database_user_and_password_are_read() {
        let info = RedisConfig::new("redis://app:pw@127.0.0.1:6380/3")
            .connection_info()
            .unwrap();
        assert_eq!(info.redis_settings().db(), 3);
        assert_eq!(info.redis_settings().username(), Some("app"));
        assert_eq!(info.redis_settings().password(), Some("pw"));
        let info = RedisConfig::new("redis://127.0.0.1:6380/3")
            .database(5)
            .connection_info()
            .unwrap();
        assert_eq!(info.redis_settings().db(), 5);
    }

    #[test]
    fn tls_fields_need_a_tls_url_and_each_other() {
        let plain = RedisConfig::new("redis://127.0.0.1:6380/0");
        let tls = RedisConfig::new("rediss://127.0.0.1:6380/0");
        assert_eq!(
            field_of(plain.clone().tls_ca_file("ca.pem").connection_info()).as_deref(),
            Some("tls_ca_file")
        );
        if cfg!(feature = "tls") {
            let mut cert_only = tls.clone();
            cert_only.tls_cert_file = Some("c.pem".into());
            assert_eq!(
                field_of(cert_only.connection_info()).as_deref(),
                Some("tls_key_file")
            );
            let mut key_only = tls.clone();
            key_only.tls_key_file = Some("k.pem".into());
            assert_eq!(
                field_of(key_only.connection_info()).as_deref(),
                Some("tls_cert_file")
            );
        }
        let result = tls.connection_info();
        if cfg!(feature = "tls") {
            result.unwrap();
        } else {
            assert_eq!(field_of(result).as_deref(), Some("url"));
        }
    }
}
