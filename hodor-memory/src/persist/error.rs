//! [`PersistError`]: what can go wrong with a persistent store's files.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a persistent memory store could not open, or stopped accepting writes.
///
/// It reaches callers as the source of [`hodor_core::Error::Backend`]; downcast to tell the
/// cases apart:
///
/// ```
/// # use hodor_memory as _;
/// use hodor_memory::PersistError;
/// use serde_json::json;
/// let dir = std::env::temp_dir().join(format!("hodor-doc-locked-{}", std::process::id()));
/// let first = hodor_core::Contract::new("memory", "a", Some(json!({"persist": {"dir": dir}})))?;
/// let err = hodor_core::Contract::new("memory", "b", Some(json!({"persist": {"dir": dir}})))
///     .unwrap_err();
/// let source = std::error::Error::source(&err).unwrap();
/// assert!(matches!(source.downcast_ref(), Some(PersistError::Locked { .. })));
/// # first.close()?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), hodor_core::Error>(())
/// ```
///
/// Its `Display` and `Debug` show paths cut to their last 160 characters, like every echoed
/// input of hodor's messages.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Another store, in this process or another one, holds the directory.
    #[error("persistence directory {} is in use by {holder}", Shown(dir))]
    Locked {
        /// The directory, as configured.
        dir: PathBuf,
        /// Who holds it: a store in this process, or another process.
        holder: String,
    },
    /// A file holds data that is not what was written: damage, not a crash (a crash only
    /// tears the log's tail, which recovery truncates).
    #[error("{} is corrupt at byte {offset}: {reason}", Shown(file))]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A file operation failed.
    #[error("{op} {} failed: {source}", Shown(path))]
    Io {
        /// What was being done (`write`, `fsync`, `rename`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An earlier write to the log or sync of it failed, so this store no longer accepts
    /// writes: a failed `fsync` is never retried, because the OS may have dropped the data
    /// it could not write. Reads still see memory, which may hold writes that are not on
    /// disk. Close the store and open it again to continue from what is on disk.
    #[error("the store is read-only since its log failed ({cause})")]
    Failed {
        /// The first failure.
        #[source]
        cause: Arc<PersistError>,
    },
    /// A record is larger than the log format can hold.
    #[error("a log record of {len} bytes is over the format's limit of {max} bytes")]
    TooLarge {
        /// The record's length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The store was closed while this write was being logged.
    #[error("the store was closed while the write was being logged")]
    Closed,
}

impl PersistError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> PersistError {
        PersistError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> PersistError {
        PersistError::Corrupt {
            file: file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Debug for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::Locked { dir, holder } => f
                .debug_struct("Locked")
                .field("dir", &Shown(dir))
                .field("holder", holder)
                .finish(),
            PersistError::Corrupt {
                file,
                offset,
                reason,
            } => f
                .debug_struct("Corrupt")
                .field("file", &Shown(file))
                .field("offset", offset)
                .field("reason", reason)
                .finish(),
            PersistError::Io { op, path, source } => f
                .debug_struct("Io")
                .field("op", op)
                .field("path", &Shown(path))
                .field("source", source)
                .finish(),
            PersistError::Failed { cause } => {
                f.debug_struct("Failed").field("cause", cause).finish()
            }
            PersistError::TooLarge { len, max } => f
                .debug_struct("TooLarge")
                .field("len", len)
                .field("max", max)
                .finish(),
            PersistError::Closed => f.write_str("Closed"),
        }
    }
}

/// A path in a message, cut to a bounded length so a huge configured path cannot flood a
/// log line.
pub(crate) struct Shown<'a>(pub(crate) &'a Path);

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 160;
        let text = self.0.to_string_lossy();
        if text.chars().count() <= SHOWN {
            return write!(f, "{text:?}");
        }
        let skip = text.chars().count() - SHOWN;
        let tail: String = text.chars().skip(skip).collect();
        write!(f, "\"...{}\" ({} bytes)", tail.escape_debug(), text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_shortened_to_their_end() {
        let long = PathBuf::from(format!("/{}/log-1.hlog", "d".repeat(5000)));
        let e = PersistError::corrupt(&long, 7, "bad checksum");
        let text = e.to_string();
        assert!(text.len() < 300, "{text}");
        assert!(
            text.contains("log-1.hlog") && text.contains("5012 bytes"),
            "{text}"
        );
        let short = PersistError::corrupt(Path::new("/d/x"), 7, "bad checksum").to_string();
        assert_eq!(short, "\"/d/x\" is corrupt at byte 7: bad checksum");
        for e in [
            PersistError::corrupt(&long, 7, "bad checksum"),
            PersistError::io("fsync", &long, io::Error::other("no")),
            PersistError::Locked {
                dir: long.clone(),
                holder: "another process".to_owned(),
            },
            PersistError::Failed {
                cause: Arc::new(PersistError::io("write", &long, io::Error::other("no"))),
            },
        ] {
            let debug = format!("{e:?}");
            assert!(debug.len() < 400, "{debug}");
            assert!(debug.contains("log-1.hlog"), "{debug}");
        }
    }

    #[test]
    fn a_failed_store_keeps_the_first_cause_as_its_source() {
        let cause = Arc::new(PersistError::io(
            "fsync",
            Path::new("/d/log-1.hlog"),
            io::Error::other("disk on fire"),
        ));
        let e = PersistError::Failed { cause };
        assert!(e.to_string().contains("disk on fire"), "{e}");
        let source = std::error::Error::source(&e).unwrap();
        assert!(source.to_string().starts_with("fsync \"/d/log-1.hlog\""));
    }
}
