//! The directory's epoch: a number that grows at every open, kept in the file `EPOCH`.
//!
//! A persistent store's versions are built from its epoch (see `Store::version`), and its
//! clock starts over at every open, so a version a caller saw before a restart (or a crash)
//! could otherwise be issued again for another value of the key, and a stale
//! `set_if_version` would succeed. The new epoch is durable (written to a temporary file,
//! synced, renamed, the directory synced) before the store hands out any version; the
//! versions of the last process were all built from an epoch at most the one on disk.
//!
//! ```text
//! EPOCH = "hodor-epoch" | epoch:u64 | crc32c:u32   (little endian, crc over what precedes)
//! ```

use std::io::ErrorKind;
use std::path::Path;

use super::error::PersistError;
use super::fs::Fs;

/// The file's name inside a store's directory.
pub(crate) const EPOCH_FILE: &str = "EPOCH";
const TEMP_FILE: &str = "EPOCH.tmp";
const MAGIC: &[u8] = b"hodor-epoch";
const LEN: usize = MAGIC.len() + 8 + 4;
/// Epochs stay below this: a version keeps 48 bits for its epoch, and a larger number on
/// disk can only be damage.
pub(crate) const MAX_EPOCH: u64 = 1 << 47;

/// Reads the directory's epoch (0 if it has none yet), and durably replaces it with a
/// larger one, at least `at_least`; returns the new one.
pub(crate) fn advance(dir: &Path, fs: &Fs, at_least: u64) -> Result<u64, PersistError> {
    let path = dir.join(EPOCH_FILE);
    let old = match std::fs::read(&path) {
        Ok(bytes) => parse(&bytes).ok_or_else(|| {
            PersistError::corrupt(&path, 0, "not an epoch file of this format, or damaged")
        })?,
        Err(e) if e.kind() == ErrorKind::NotFound => 0,
        Err(e) => return Err(PersistError::io("read", &path, e)),
    };
    let new = old.saturating_add(1).max(at_least);
    if new >= MAX_EPOCH {
        return Err(PersistError::corrupt(
            &path,
            0,
            "the epoch is past 2^47: the directory was opened too often, or the file is damaged",
        ));
    }
    let temp = dir.join(TEMP_FILE);
    // A leftover of a crash between create and rename (recovery removes `*.tmp` too).
    let _ = std::fs::remove_file(&temp);
    let mut file = fs
        .create(&temp)
        .map_err(|e| PersistError::io("create", &temp, e))?;
    file.write_all(&encode(new))
        .map_err(|e| PersistError::io("write", &temp, e))?;
    file.sync()
        .map_err(|e| PersistError::io("fsync", &temp, e))?;
    drop(file);
    fs.rename(&temp, &path)
        .map_err(|e| PersistError::io("rename", &temp, e))?;
    fs.sync_dir(dir)
        .map_err(|e| PersistError::io("fsync directory", dir, e))?;
    Ok(new)
}

fn encode(epoch: u64) -> [u8; LEN] {
    let mut out = [0; LEN];
    let (magic, rest) = out.split_at_mut(MAGIC.len());
    magic.copy_from_slice(MAGIC);
    let (number, crc) = rest.split_at_mut(8);
    number.copy_from_slice(&epoch.to_le_bytes());
    let sum = crc32c::crc32c_append(crc32c::crc32c(MAGIC), &epoch.to_le_bytes());
    crc.copy_from_slice(&sum.to_le_bytes());
    out
}

fn parse(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != LEN {
        return None;
    }
    let (magic, rest) = bytes.split_at(MAGIC.len());
    let (number, crc) = rest.split_at(8);
    if magic != MAGIC {
        return None;
    }
    let sum = crc32c::crc32c_append(crc32c::crc32c(MAGIC), number);
    if crc != sum.to_le_bytes() {
        return None;
    }
    Some(u64::from_le_bytes(number.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hodor-epoch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_advance_is_past_the_last_and_past_the_floor() {
        let dir = temp_dir("advance");
        let fs = Fs::default();
        assert_eq!(advance(&dir, &fs, 0).unwrap(), 1);
        assert_eq!(advance(&dir, &fs, 0).unwrap(), 2);
        assert_eq!(advance(&dir, &fs, 40).unwrap(), 40);
        assert_eq!(advance(&dir, &fs, 3).unwrap(), 41);
        assert!(!dir.join(TEMP_FILE).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_epoch_file_is_an_error_not_a_restart_from_zero() {
        let dir = temp_dir("damaged");
        let fs = Fs::default();
        advance(&dir, &fs, 7).unwrap();
        let path = dir.join(EPOCH_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[MAGIC.len()] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = advance(&dir, &fs, 0).unwrap_err();
        assert!(matches!(err, PersistError::Corrupt { .. }), "{err}");
        std::fs::write(&path, encode(MAX_EPOCH - 1)).unwrap();
        assert!(matches!(
            advance(&dir, &fs, 0),
            Err(PersistError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
