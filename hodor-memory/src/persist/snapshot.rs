//! Snapshots: the whole store in one file, so the log before it can be dropped.
//!
//! 1. The log moves to a new segment (the old one written out and synced).
//! 2. The store is copied shard by shard into a temporary file. Under a shard's read lock
//!    its entries are encoded into a buffer (readers go on; a writer of that shard waits
//!    as long as a copy of the shard takes); a value over 64 KiB only has its handle cloned
//!    there and is encoded after. Writing to the file happens outside every lock. The
//!    handles are given back to the caller, to be dropped once one snapshot at a time is
//!    over (see `take`).
//! 3. The temporary file is synced; the log is synced too, so every state the copy saw is
//!    also in the durable log (a snapshot never holds a write the log could lose).
//! 4. The file is renamed into place and the directory synced: only now does recovery
//!    start from it.
//! 5. Only then are the older snapshot and the segments before the new one removed.
//!
//! A failure before step 4 leaves a temporary file (removed, or ignored and removed at the
//! next open) and the old snapshot and segments in place; the store goes on and tries
//! again after the log grows by another threshold. The copy is fuzzy (writers go on
//! meanwhile): recovery replays the new segment on top of it, and since each record states
//! a key's whole new state, replaying a write the copy already holds changes nothing.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::Shared;
use super::error::PersistError;
use super::format::{self, Kind};
use super::log::segment_path;
use super::{EntryRef, Source};

/// The snapshot whose log replay starts at `segment`.
pub(crate) fn snapshot_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("snapshot-{segment:020}.hsnap"))
}

fn temp_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("snapshot-{segment:020}.hsnap.tmp"))
}

/// Snapshot bytes buffered before a write.
const WRITE_CHUNK: usize = 1 << 20;
/// Values up to this size are encoded under their shard's read lock; larger ones after.
const ENCODE_UNDER_LOCK: usize = 64 << 10;

/// A snapshot that was taken.
#[derive(Debug)]
pub(crate) struct Taken {
    /// Its size in bytes.
    pub(crate) bytes: u64,
    /// When it began (ns since the epoch, on the store's clock).
    pub(crate) created: u64,
}

/// Takes a snapshot of `source`. `Ok(None)` when it was skipped (the new segment could not
/// be made) or abandoned (the store is closing).
///
/// The handles of the values over 64 KiB that were copied after their shard's lock go to
/// `held`, for the caller to drop after it releases `Shared::snapshotting`. Once the store
/// has dropped a value (overwritten, removed), the snapshot's handle is the last, and its
/// drop runs the value's own `Drop`, which may do anything, such as opening a store: that
/// waits for the table of open stores, which the last close of this store holds while it
/// waits for `snapshotting`. Dropped here they deadlocked. Kept until the end, a value the
/// store dropped lives as long as the snapshot.
pub(crate) fn take(
    shared: &Shared,
    source: &dyn Source,
    held: &mut Vec<Bytes>,
) -> Result<Option<Taken>, PersistError> {
    let Some(rotation) = shared.log.rotate()? else {
        return Ok(None);
    };
    let dir = shared.dir.as_path();
    let fs = &shared.fs;
    let segment = rotation.segment;
    let temp = temp_path(dir, segment);
    let created = source.now();
    let written = (|| {
        let mut file = fs
            .create(&temp)
            .map_err(|e| PersistError::io("create", &temp, e))?;
        let salt = format::new_salt();
        let seed = format::seed(salt);
        let mut buf = Vec::with_capacity(WRITE_CHUNK + (64 << 10));
        let header = format::snapshot_header_payload(segment, created, salt);
        format::append(
            &mut buf,
            0,
            Kind::SnapshotHeader,
            rotation.cut_seq,
            &[&header],
        );
        let mut bytes = 0u64;
        let mut write = |file: &mut super::fs::FsFile, buf: &mut Vec<u8>| {
            bytes += buf.len() as u64;
            let r = file.write_all(buf);
            buf.clear();
            r.map_err(|e| PersistError::io("write", &temp, e))
        };
        let mut count = 0u64;
        let mut too_large = None;
        let cut = rotation.cut_seq;
        for shard in 0..source.shard_count() {
            if shared.closing() {
                return Ok(None);
            }
            // Handles of the values too large to copy under the lock.
            let mut later = Vec::new();
            source.visit_shard(shard, &mut |e| {
                if e.value.len() > ENCODE_UNDER_LOCK {
                    later.push((
                        e.key.clone(),
                        e.value.clone(),
                        e.codec,
                        e.modified,
                        e.expires,
                    ));
                } else if encode(&mut buf, seed, cut, e) {
                    count += 1;
                } else {
                    too_large = Some(e.value.len());
                }
            });
            for (key, value, codec, modified, expires) in &later {
                let e = EntryRef {
                    key,
                    value,
                    codec: *codec,
                    modified: *modified,
                    expires: *expires,
                };
                if encode(&mut buf, seed, cut, e) {
                    count += 1;
                } else {
                    too_large = Some(value.len());
                }
            }
            #[cfg(test)]
            crate::pause::reach("snapshot: a shard copied");
            // The keys are the store's own; the values go to the caller (see above).
            held.extend(later.into_iter().map(|(_, value, ..)| value));
            if let Some(len) = too_large {
                return Err(PersistError::TooLarge {
                    len: len as u64,
                    max: format::MAX_PAYLOAD,
                });
            }
            if buf.len() >= WRITE_CHUNK {
                write(&mut file, &mut buf)?;
            }
        }
        format::append(
            &mut buf,
            seed,
            Kind::SnapshotEnd,
            rotation.cut_seq,
            &[&count.to_le_bytes()],
        );
        write(&mut file, &mut buf)?;
        file.sync()
            .map_err(|e| PersistError::io("fsync", &temp, e))?;
        Ok(Some(bytes))
    })();
    let bytes = match written {
        Ok(Some(bytes)) => bytes,
        other => {
            let _ = fs.remove(&temp);
            return other.map(|_| None);
        }
    };
    // Every state the copy saw was appended to the log before the copy saw it; once the
    // log is synced, the snapshot holds nothing a crash could take back.
    if let Err(e) = shared.log.flush(true) {
        let _ = fs.remove(&temp);
        return Err(e);
    }
    let path = snapshot_path(dir, segment);
    if let Err(e) = fs.rename(&temp, &path) {
        let _ = fs.remove(&temp);
        return Err(PersistError::io("rename", &temp, e));
    }
    // Until the rename is durable, the old snapshot and segments are what a crash recovers
    // from: keep them.
    fs.sync_dir(dir)
        .map_err(|e| PersistError::io("fsync directory", dir, e))?;
    let listing = std::fs::read_dir(dir).map_err(|e| PersistError::io("list", dir, e))?;
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let old = |prefix: &str, suffix: &str| {
            name.strip_prefix(prefix)
                .and_then(|n| n.strip_suffix(suffix))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n < segment)
        };
        if old("log-", ".hlog") || old("snapshot-", ".hsnap") {
            // A file that cannot be removed now is removed at the next open or snapshot.
            let _ = fs.remove(&entry.path());
        }
    }
    let _ = fs.sync_dir(dir);
    shared.log.set_on_disk(segment_sizes(dir, segment));
    Ok(Some(Taken { bytes, created }))
}

/// Appends an entry's record to `buf`; `false` if it is too large for the format.
fn encode(buf: &mut Vec<u8>, seed: u32, seq: u64, e: EntryRef<'_>) -> bool {
    let key = e.key.as_bytes();
    let meta = format::put_meta(e.codec, e.modified, e.expires, key.len());
    format::append(buf, seed, Kind::Put, seq, &[&meta, key, e.value])
}

/// Bytes in the segments from `segment` on.
fn segment_sizes(dir: &Path, segment: u64) -> u64 {
    (segment..)
        .map(|n| std::fs::metadata(segment_path(dir, n)).map(|m| m.len()))
        .take_while(Result::is_ok)
        .map(|m| m.unwrap_or(0))
        .sum()
}
