//! Every file operation that changes a persistent store's directory goes through [`Fs`],
//! so tests can make any one of them fail (an `fsync` returning `EIO`, a full disk at a
//! rename) and check that the store survives it.
//!
//! In production `Fs` has no faults and each method is the plain `std::fs` call plus one
//! branch.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// A kind of file operation, for fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Create,
    Open,
    Write,
    Sync,
    SyncDir,
    Rename,
    Remove,
    Truncate,
}

/// The file operations of one store.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fs {
    faults: Option<Arc<Faults>>,
}

/// Planned failures, and a journal of the operations seen (tests only).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Fail the operation with this index in the journal (0-based, counting every op).
    fail_at: Option<usize>,
    /// Fail every operation of these kinds.
    fail_all: Vec<Op>,
    journal: Vec<(Op, PathBuf)>,
}

impl Faults {
    /// Fails the `n`th operation from the start of the journal.
    #[cfg(test)]
    pub(crate) fn fail_at(&self, n: usize) {
        self.state.lock().fail_at = Some(n);
    }

    /// Fails every operation of kind `op` from now on.
    #[cfg(test)]
    pub(crate) fn fail_all(&self, op: Op) {
        self.state.lock().fail_all.push(op);
    }

    /// Stops failing.
    #[cfg(test)]
    pub(crate) fn heal(&self) {
        let mut s = self.state.lock();
        s.fail_at = None;
        s.fail_all.clear();
    }

    /// The operations seen so far.
    #[cfg(test)]
    pub(crate) fn journal(&self) -> Vec<(Op, PathBuf)> {
        self.state.lock().journal.clone()
    }

    fn check(&self, op: Op, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let index = s.journal.len();
        s.journal.push((op, path.to_owned()));
        if s.fail_at == Some(index) || s.fail_all.contains(&op) {
            return Err(io::Error::other(format!("injected {op:?} failure")));
        }
        Ok(())
    }
}

impl Fs {
    /// A file system that fails where `faults` says.
    #[cfg(test)]
    pub(crate) fn with_faults(faults: Arc<Faults>) -> Fs {
        Fs {
            faults: Some(faults),
        }
    }

    #[inline]
    fn check(&self, op: Op, path: &Path) -> io::Result<()> {
        match &self.faults {
            None => Ok(()),
            Some(faults) => faults.check(op, path),
        }
    }

    /// Creates a file that must not exist yet, for writing.
    pub(crate) fn create(&self, path: &Path) -> io::Result<FsFile> {
        self.check(Op::Create, path)?;
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(FsFile {
            file,
            path: path.to_owned(),
            fs: self.clone(),
        })
    }

    /// Opens an existing file for appending.
    pub(crate) fn open_append(&self, path: &Path) -> io::Result<FsFile> {
        self.check(Op::Open, path)?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(FsFile {
            file,
            path: path.to_owned(),
            fs: self.clone(),
        })
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Op::Rename, to)?;
        std::fs::rename(from, to)
    }

    pub(crate) fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(Op::Remove, path)?;
        std::fs::remove_file(path)
    }

    /// Makes the directory's entries (created, renamed, removed files) durable.
    pub(crate) fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::SyncDir, dir)?;
        sync_dir(dir)
    }

    /// Cuts a file to `len` bytes and syncs it, so nothing after `len` can come back.
    pub(crate) fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.check(Op::Truncate, path)?;
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }
}

/// On Unix a rename or a new file is durable only once its directory is synced.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file without extra flags, and NTFS journals
/// directory changes itself.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// A file being written through [`Fs`].
#[derive(Debug)]
pub(crate) struct FsFile {
    file: File,
    path: PathBuf,
    fs: Fs,
}

impl FsFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.fs.check(Op::Write, &self.path)?;
        self.file.write_all(bytes)
    }

    /// `fdatasync`: the data and the length, not the timestamps.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.fs.check(Op::Sync, &self.path)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fail_the_chosen_operation_and_journal_every_one() {
        let dir = std::env::temp_dir().join(format!("hodor-fs-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let faults = Arc::new(Faults::default());
        let fs = Fs::with_faults(faults.clone());
        let path = dir.join("a");
        let _ = std::fs::remove_file(&path);
        faults.fail_at(2);
        let mut f = fs.create(&path).unwrap();
        f.write_all(b"x").unwrap();
        assert!(f.sync().is_err(), "the third operation fails");
        f.sync().unwrap();
        faults.fail_all(Op::Write);
        assert!(f.write_all(b"y").is_err());
        faults.heal();
        f.write_all(b"y").unwrap();
        let ops: Vec<Op> = faults.journal().into_iter().map(|(op, _)| op).collect();
        assert_eq!(
            ops,
            [
                Op::Create,
                Op::Write,
                Op::Sync,
                Op::Sync,
                Op::Write,
                Op::Write
            ]
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"xy");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
