//! One store per directory: a `LOCK` file held with `flock` against other processes, and
//! a table of the directories this process holds (two `flock`s of one file in one process
//! may not exclude each other on every platform, and the table gives a better message).

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::error::PersistError;

/// The lock file's name inside a store's directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Directories held by stores of this process (canonical path -> store name).
fn held() -> &'static Mutex<HashMap<PathBuf, String>> {
    static HELD: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    HELD.get_or_init(Mutex::default)
}

/// Holds a store's directory until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    canonical: PathBuf,
    file: File,
}

impl DirLock {
    /// Creates `dir` if needed and takes it for the store `name`.
    pub(crate) fn acquire(dir: &Path, name: &str) -> Result<DirLock, PersistError> {
        std::fs::create_dir_all(dir).map_err(|e| PersistError::io("create directory", dir, e))?;
        let canonical = dir
            .canonicalize()
            .map_err(|e| PersistError::io("resolve", dir, e))?;
        let mut table = held().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(holder) = table.get(&canonical) {
            return Err(PersistError::Locked {
                dir: dir.to_owned(),
                holder: format!("memory store {:?} in this process", Cut(holder)),
            });
        }
        let path = canonical.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| PersistError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(PersistError::Locked {
                    dir: dir.to_owned(),
                    holder: if pid.is_empty() || pid.len() > 20 {
                        "another process".to_owned()
                    } else {
                        format!("another process (pid {pid})")
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(PersistError::io("lock", &path, e)),
        }
        // Who holds it, for the next opener's message; not needed for correctness.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()));
        table.insert(canonical.clone(), name.to_owned());
        Ok(DirLock { canonical, file })
    }
}

impl DirLock {
    /// The directory, resolved (absolute, symlinks followed).
    pub(crate) fn dir(&self) -> &Path {
        &self.canonical
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut table = held().lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        table.remove(&self.canonical);
    }
}

/// A store name in a message, shortened.
struct Cut<'a>(&'a str);

impl std::fmt::Debug for Cut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head: String = self.0.chars().take(64).collect();
        if head.len() == self.0.len() {
            write!(f, "{head:?}")
        } else {
            write!(f, "{head:?}...")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_held_once_per_process_until_released() {
        let dir = std::env::temp_dir().join(format!("hodor-lock-unit-{}", std::process::id()));
        let first = DirLock::acquire(&dir, "first").unwrap();
        // Another spelling of the same directory is the same directory.
        let other = dir.join("..").join(dir.file_name().unwrap());
        match DirLock::acquire(&other, "second") {
            Err(PersistError::Locked { holder, .. }) => {
                assert!(holder.contains("\"first\" in this process"), "{holder}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
            std::process::id().to_string()
        );
        drop(first);
        let again = DirLock::acquire(&dir, "second").unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
