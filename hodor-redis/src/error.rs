//! The backend error this driver hands to `hodor_core` as the source of `Error::Backend`.

use std::fmt;

/// What went wrong talking to the server, with the redis crate's error as the source when
/// there is one.
#[derive(Debug)]
pub(crate) struct BackendError {
    message: String,
    source: Option<redis::RedisError>,
}

impl BackendError {
    /// A failure of the redis client, with `server` (a URL without its password) and what
    /// the driver knows about why.
    pub(crate) fn redis(server: &str, timeout_ms: u64, error: redis::RedisError) -> BackendError {
        let message = if error.is_timeout() {
            format!(
                "{server} did not answer within {timeout_ms} ms (the timeout_ms setting): {error}"
            )
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
