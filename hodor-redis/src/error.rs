//! The backend error this driver hands to `hodor_core` as the source of `Error::Backend`.

use std::fmt;

use hodor_core::{BackendKind, Echo};

use crate::config::RedisConfig;
use crate::secret::Secrets;

/// What went wrong talking to the server.
///
/// Only text the driver wrote, and the redis crate's message with every piece of the URL
/// that may be a password scrubbed out ([`Secrets`]); the redis crate's error itself is not
/// kept as a source, so nothing unscrubbed can be reached through the error chain.
#[derive(Debug)]
pub(crate) struct BackendError {
    message: String,
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
    /// A failure of the redis client at `stage`: why, as far as can be told, and the
    /// message, with `server` (a URL without its credentials).
    pub(crate) fn redis(
        server: &str,
        config: &RedisConfig,
        secrets: &Secrets,
        stage: Stage,
        error: &redis::RedisError,
    ) -> (BackendKind, BackendError) {
        let (setting, ms) = match stage {
            Stage::Connect | Stage::Opening => ("connect_timeout_ms", config.connect_timeout_ms),
            Stage::Request => ("timeout_ms", config.timeout_ms),
        };
        // The client's text, which may repeat parts of the URL: scrubbed, then bounded.
        let text = secrets.scrub(&error.to_string());
        let text = Echo::prose(&text);
        let kind = kind_of(error);
        let message = match kind {
            BackendKind::Timeout if interrupted(error) => {
                format!("the wait for {server} was interrupted by a signal before it answered")
            }
            BackendKind::Timeout => {
                format!("{server} did not answer within {ms} ms (the {setting} setting)")
            }
            BackendKind::Unauthenticated => {
                format!("authentication to {server} failed: {text}")
            }
            BackendKind::Unavailable if error.is_connection_refusal() => {
                format!("{server} refused the connection (is the server running?)")
            }
            BackendKind::Unavailable if error.code().is_some() => {
                format!("{server} cannot serve requests for now: {text}")
            }
            BackendKind::Unavailable => format!("connection to {server} failed: {text}"),
            _ => format!("{server} returned an error: {text}"),
        };
        (kind, BackendError { message })
    }

    /// A failure that is the driver's own (no free connection, an unexpected reply).
    pub(crate) fn other(message: String) -> BackendError {
        BackendError { message }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {}

/// Server error codes that say the server cannot serve anyone for now, whatever the
/// command: it is loading its data (`LOADING`), running a script past its time limit
/// (`BUSY`), has no reachable master or cluster (`MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`),
/// or has become a read-only replica in a failover (`READONLY`). A retry later may succeed.
const PASSING: &[&str] = &[
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "READONLY",
];

/// Server error codes the server sends before it runs any of the command (a script
/// included): the command changed nothing. `READONLY` and `OOM` are not among them: a
/// script meets them at its first write, after it may have written... nothing of ours,
/// today, but a reply cannot prove it.
const REFUSED_BEFORE_RUNNING: &[&str] = &[
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MOVED",
    "ASK",
    "CROSSSLOT",
    "NOAUTH",
    "NOPERM",
    "WRONGPASS",
];

/// Why the redis client failed, in hodor's terms.
///
/// An interrupted read or write (EINTR: a signal reached the thread blocked on the socket
/// before its timeout fired) is a timeout: it says nothing about the server, and like a
/// reply that did not come in time, the request may have been carried out, so a write
/// that met it may have been applied. The read is not resumed: the redis client has
/// already given up on that reply (it would skip it on that connection), and the pool
/// closes a connection whose call failed; the request is never sent again.
fn kind_of(error: &redis::RedisError) -> BackendKind {
    if error.is_timeout() || interrupted(error) {
        BackendKind::Timeout
    } else if error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
    {
        BackendKind::Unauthenticated
    } else if error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.code().is_some_and(|code| PASSING.contains(&code))
    {
        BackendKind::Unavailable
    } else {
        BackendKind::Other
    }
}

/// `true` when the redis client failed because a signal interrupted a blocking socket call.
///
/// The redis client has no public accessor for the io error it wraps, and its `source` is
/// the shared pointer that holds it, not the io error itself: look through both. The tests
/// below break if a new version of the client hides it some other way.
fn interrupted(error: &redis::RedisError) -> bool {
    use std::error::Error as _;
    use std::io;
    use std::sync::Arc;

    let mut next = error.source();
    while let Some(source) = next {
        let io_error = source.downcast_ref::<io::Error>().or_else(|| {
            source
                .downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()
                .and_then(|inner| inner.downcast_ref::<io::Error>())
        });
        if io_error.is_some_and(|e| e.kind() == io::ErrorKind::Interrupted) {
            return true;
        }
        next = source.source();
    }
    false
}

/// `true` when the server answered with an error it sends before running any of the
/// command: a write that failed this way was not applied, even though its request left.
pub(crate) fn refused_before_running(error: &redis::RedisError) -> bool {
    error
        .code()
        .is_some_and(|code| REFUSED_BEFORE_RUNNING.contains(&code))
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn io_error(kind: io::ErrorKind) -> redis::RedisError {
        redis::RedisError::from(io::Error::from(kind))
    }

    /// A signal can interrupt the blocking read of a reply (EINTR) before the read timeout
    /// fires; the redis client hands that up as an io error. It says nothing about the
    /// server, and the request may have been carried out: like a timeout, not an outage.
    #[test]
    fn an_interrupted_read_is_a_timeout_not_an_outage() {
        let error = io_error(io::ErrorKind::Interrupted);
        assert!(error.is_io_error(), "{error}");
        assert_eq!(kind_of(&error), BackendKind::Timeout);

        let config = RedisConfig::new("redis://127.0.0.1:1/0");
        let secrets = Secrets::of(&config.url, None);
        let (kind, backend) = BackendError::redis(
            "redis://127.0.0.1:1/0",
            &config,
            &secrets,
            Stage::Request,
            &error,
        );
        assert_eq!(kind, BackendKind::Timeout);
        let text = backend.to_string();
        assert!(text.contains("interrupted"), "{text}");
        assert!(!text.contains("did not answer within"), "{text}");
    }

    #[test]
    fn io_errors_are_classified_by_what_they_say_about_the_server() {
        for (io_kind, kind) in [
            (io::ErrorKind::TimedOut, BackendKind::Timeout),
            (io::ErrorKind::WouldBlock, BackendKind::Timeout),
            (io::ErrorKind::Interrupted, BackendKind::Timeout),
            (io::ErrorKind::ConnectionRefused, BackendKind::Unavailable),
            (io::ErrorKind::ConnectionReset, BackendKind::Unavailable),
            (io::ErrorKind::UnexpectedEof, BackendKind::Unavailable),
            (io::ErrorKind::BrokenPipe, BackendKind::Unavailable),
        ] {
            assert_eq!(kind_of(&io_error(io_kind)), kind, "{io_kind:?}");
        }
    }
}
