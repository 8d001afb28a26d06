//! The backend error this driver hands to `hodor_core` as the source of `Error::Backend`.

use std::fmt;

use crate::config::RedisConfig;

/// What went wrong talking to the server, with the redis crate's error as the source when
/// there is one.
#[derive(Debug)]
pub(crate) struct BackendError {
    message: String,
    source: Option<redis::RedisError>,
}

/// Where in a call the redis client failed, which says which setting bounded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Opening a connection: bounded by `connect_timeout_ms`.
    Connect,
    /// The request of an ordinary call: bounded by `timeout_ms`.
    Request,
    /// The check request of an open: bounded by `connect_timeout_ms`, like connecting.
    Opening,
}

impl BackendError {
    /// A failure of the redis client at `stage`, with `server` (a URL without its
    /// password) and what the driver knows about why.
    pub(crate) fn redis(
        server: &str,
        config: &RedisConfig,
        stage: Stage,
        error: redis::RedisError,
    ) -> BackendError {
        let (setting, ms) = match stage {
            Stage::Connect | Stage::Opening => ("connect_timeout_ms", config.connect_timeout_ms),
            Stage::Request => ("timeout_ms", config.timeout_ms),
        };
        let message = if error.is_timeout() {
            format!("{server} did not answer within {ms} ms (the {setting} setting): {error}")
        } else if error.is_connection_refusal() {
            format!("{server} refused the connection (is the server running?): {error}")
        } else if error.is_io_error() {
            format!("connection to {server} failed: {error}")
        } else {
            format!("{server} returned an error: {error}")
        };
        BackendError {
            message,
            source: Some(error),
        }
    }

    /// A failure that is the driver's own (no free connection, an unexpected reply).
    pub(crate) fn other(message: String) -> BackendError {
        BackendError {
            message,
            source: None,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
