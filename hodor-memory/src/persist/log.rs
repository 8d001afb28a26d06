//! The append-only log: an in-memory buffer that writers append records to, and the
//! segment file it is written to, with group commit.
//!
//! Positions are logical: byte offsets in the stream of records appended since the store
//! opened, across segments. A write's [`Ticket`] is the position just after its record;
//! the write is durable once `synced` reaches it.
//!
//! Two locks, always taken in this order when both are held: `io` (the file; held while
//! writing and syncing) then `state` (the buffer; held only to copy a record in or to swap
//! the buffer out). Writers append under their shard's lock, so they take only `state`, for
//! the length of a copy.
//!
//! Group commit (`fsync = always`): a writer whose record is not synced yet becomes the
//! leader if no sync is running: it writes out the whole buffer (its record and every
//! record appended before it) and syncs once. Writers that need a sync while one runs wait
//! for it to end, all woken at once; those it covered return, and one of the others leads
//! the next sync, covering every record appended meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use super::error::PersistError;
use super::format::{self, HEADER_LEN, Kind};
use super::fs::{Fs, FsFile};
use crate::config::Fsync;

/// In `interval` and `never` modes, a writer that finds this much buffered writes it out
/// itself, so the buffer stays small whatever the write rate.
const FLUSH_BYTES: u64 = 1 << 20;
/// How many times a group-commit leader yields to writers that are appending.
const GROUP_YIELDS: usize = 16;
/// A spare buffer larger than this is freed after use instead of kept.
const KEEP_BUFFER: usize = 16 << 20;

/// A record's place in the log: durable once the log is synced up to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a write is acknowledged only after its ticket is committed"]
pub(crate) struct Ticket(pub(crate) u64);

pub(crate) struct Log {
    dir: PathBuf,
    fs: Fs,
    mode: Fsync,
    state: Mutex<State>,
    io: Mutex<Io>,
    /// The current segment's CRC seed (low 32 bits) and a rotation count (high 32 bits),
    /// read without a lock to frame a record before appending it; `State::seed` is the
    /// truth, checked under the lock.
    seed: AtomicU64,
    /// Mirrors `State::end`, for the lock-free "is much buffered" check.
    appended: AtomicU64,
    /// Position handed to the OS.
    written: AtomicU64,
    /// Position known to be on disk.
    synced: AtomicU64,
    /// Whether a group-commit leader is syncing; writers waiting for it sleep on `synced_cv`.
    syncing: Mutex<bool>,
    synced_cv: Condvar,
    /// Writers covered by a sync another writer led, since the last sync began: when
    /// writers share syncs, the next leader lets the others append before it syncs.
    followers: AtomicU64,
    /// Set once by the first failed write or sync; never cleared.
    failure: Mutex<Option<Arc<PersistError>>>,
    failed: AtomicBool,
    pub(crate) fsyncs: AtomicU64,
    /// Bytes in the segment files since the latest snapshot's first segment.
    pub(crate) on_disk: AtomicU64,
}

struct State {
    buf: Vec<u8>,
    end: u64,
    /// As `Log::seed`: the seed of the segment the buffer will be written to.
    seed: u64,
    /// The largest sequence number appended.
    max_seq: u64,
    closed: bool,
    /// `end` when the last snapshot began: the log grows from here.
    snapshot_base: u64,
    /// A snapshot is wanted once `end - snapshot_base` reaches this.
    snapshot_after: u64,
    snapshot_wanted: bool,
}

impl State {
    fn grew(&mut self, len: u64, max_seq: u64) -> bool {
        self.end += len;
        self.max_seq = self.max_seq.max(max_seq);
        let wanted = !self.snapshot_wanted && self.end - self.snapshot_base >= self.snapshot_after;
        if wanted {
            self.snapshot_wanted = true;
        }
        wanted
    }
}

struct Io {
    /// `None` once closed or failed: a failed file is never written or synced again.
    file: Option<FsFile>,
    segment: u64,
    spare: Vec<u8>,
}

/// The outcome of switching to a new segment for a snapshot.
#[derive(Debug)]
pub(crate) struct Rotation {
    /// The new segment: replay after the snapshot starts here.
    pub(crate) segment: u64,
    /// The largest sequence number appended before the switch.
    pub(crate) cut_seq: u64,
}

/// Where a reopened log continues.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start {
    /// The segment to append to.
    pub(crate) segment: u64,
    /// Its length after recovery cut any torn tail (0: it does not exist yet, or is empty).
    pub(crate) len: u64,
    /// Its salt, when `len > 0`.
    pub(crate) salt: u64,
    /// The largest sequence number recovered.
    pub(crate) max_seq: u64,
    /// Bytes of log already on disk after the latest snapshot.
    pub(crate) on_disk: u64,
    /// Log growth that asks for the next snapshot.
    pub(crate) snapshot_after: u64,
}

pub(crate) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("log-{segment:020}.hlog"))
}

/// Writes a new segment's header record (seed 0, carrying the salt) and syncs the file.
fn write_segment_header(
    file: &mut FsFile,
    segment: u64,
    salt: u64,
    seq: u64,
) -> Result<u64, PersistError> {
    let payload = format::segment_header_payload(segment, salt);
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    format::append(&mut bytes, 0, Kind::SegmentHeader, seq, &[&payload]);
    file.write_all(&bytes)
        .map_err(|e| PersistError::io("write", file.path(), e))?;
    file.sync()
        .map_err(|e| PersistError::io("fsync", file.path(), e))?;
    Ok(bytes.len() as u64)
}

fn seed_of(tag: u64) -> u32 {
    tag as u32
}

fn too_large(len: usize) -> PersistError {
    PersistError::TooLarge {
        len: len as u64,
        max: format::MAX_PAYLOAD,
    }
}

impl Log {
    /// Opens the log to append to `start.segment`: the recovered last segment (its tail
    /// already cut to the last good record), or a new one.
    pub(crate) fn open(dir: &Path, fs: Fs, mode: Fsync, start: Start) -> Result<Log, PersistError> {
        let path = segment_path(dir, start.segment);
        let mut on_disk = start.on_disk;
        let (file, salt) = if start.len > 0 {
            let file = fs
                .open_append(&path)
                .map_err(|e| PersistError::io("open", &path, e))?;
            (file, start.salt)
        } else {
            let mut file = match fs.open_append(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs
                    .create(&path)
                    .map_err(|e| PersistError::io("create", &path, e))?,
                Err(e) => return Err(PersistError::io("open", &path, e)),
            };
            let salt = format::new_salt();
            on_disk += write_segment_header(&mut file, start.segment, salt, start.max_seq)?;
            fs.sync_dir(dir)
                .map_err(|e| PersistError::io("fsync directory", dir, e))?;
            (file, salt)
        };
        let seed = u64::from(format::seed(salt));
        Ok(Log {
            dir: dir.to_owned(),
            fs,
            mode,
            state: Mutex::new(State {
                buf: Vec::new(),
                end: 0,
                seed,
                max_seq: start.max_seq,
                closed: false,
                snapshot_base: 0,
                snapshot_after: start.snapshot_after,
                snapshot_wanted: false,
            }),
            io: Mutex::new(Io {
                file: Some(file),
                segment: start.segment,
                spare: Vec::new(),
            }),
            seed: AtomicU64::new(seed),
            appended: AtomicU64::new(0),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncing: Mutex::new(false),
            synced_cv: Condvar::new(),
            followers: AtomicU64::new(0),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            on_disk: AtomicU64::new(on_disk),
        })
    }

    /// The error every write gets once the log has failed.
    #[inline]
    pub(crate) fn check(&self) -> Result<(), PersistError> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(self.failed_error())
    }

    #[cold]
    fn failed_error(&self) -> PersistError {
        match &*self.failure.lock() {
            Some(cause) => PersistError::Failed {
                cause: cause.clone(),
            },
            None => PersistError::Closed,
        }
    }

    /// Records the first failure; the file is dropped so nothing retries it.
    #[cold]
    fn fail(&self, io: &mut Io, error: PersistError) -> PersistError {
        let mut failure = self.failure.lock();
        let cause = failure.get_or_insert_with(|| Arc::new(error)).clone();
        self.failed.store(true, Ordering::Release);
        drop(failure);
        io.file = None;
        PersistError::Failed { cause }
    }

    /// Appends one record. The caller holds the lock of the shard the record's key is in,
    /// which keeps the records of one key in the order their writes took effect. The
    /// second element is `true` when the log has just grown enough for a snapshot.
    pub(crate) fn append(
        &self,
        kind: Kind,
        seq: u64,
        parts: &[&[u8]],
    ) -> Result<(Ticket, bool), PersistError> {
        self.check()?;
        // Frame (and checksum) before taking the lock; a rotation in between changes the
        // seed, and then the record is framed again under the lock.
        let tag = self.seed.load(Ordering::Acquire);
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut header =
            format::frame(seed_of(tag), kind, seq, parts).ok_or_else(|| too_large(len))?;
        let mut s = self.state.lock();
        if s.closed {
            return Err(PersistError::Closed);
        }
        if s.seed != tag {
            header =
                format::frame(seed_of(s.seed), kind, seq, parts).ok_or_else(|| too_large(len))?;
        }
        s.buf.extend_from_slice(&header);
        for part in parts {
            s.buf.extend_from_slice(part);
        }
        let wanted = s.grew((HEADER_LEN + len) as u64, seq);
        self.appended.store(s.end, Ordering::Relaxed);
        Ok((Ticket(s.end), wanted))
    }

    /// Appends a batch: `ops` (op-framed, see `format::append_op`) as one `Batch` record, or
    /// as `BatchPart` records ending in a `Batch` when it is large; `cuts` are the op
    /// boundaries where it may be split. The caller holds every involved shard's lock.
    pub(crate) fn append_batch(
        &self,
        ops: &[u8],
        cuts: &[usize],
        max_seq: u64,
    ) -> Result<(Ticket, bool), PersistError> {
        self.check()?;
        let chunks = split(ops, cuts);
        if let Some(big) = chunks.iter().find(|c| c.len() as u64 > format::MAX_PAYLOAD) {
            return Err(too_large(big.len()));
        }
        let mut s = self.state.lock();
        if s.closed {
            return Err(PersistError::Closed);
        }
        let seed = seed_of(s.seed);
        let before = s.buf.len();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            let kind = if i == last {
                Kind::Batch
            } else {
                Kind::BatchPart
            };
            format::append(&mut s.buf, seed, kind, max_seq, &[chunk]);
        }
        let len = (s.buf.len() - before) as u64;
        let wanted = s.grew(len, max_seq);
        self.appended.store(s.end, Ordering::Relaxed);
        Ok((Ticket(s.end), wanted))
    }

    /// What a write does after releasing its locks: with `always`, waits until its record
    /// is synced (syncing itself if nobody else is); otherwise writes the buffer out if it
    /// has grown large.
    pub(crate) fn commit(&self, ticket: Ticket) -> Result<(), PersistError> {
        match self.mode {
            Fsync::Always => {
                if self.synced.load(Ordering::Acquire) >= ticket.0 {
                    return Ok(());
                }
                let mut syncing = self.syncing.lock();
                loop {
                    if self.synced.load(Ordering::Acquire) >= ticket.0 {
                        self.followers.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    self.check()?;
                    if *syncing {
                        self.synced_cv.wait(&mut syncing);
                        continue;
                    }
                    *syncing = true;
                    drop(syncing);
                    if self.followers.swap(0, Ordering::Relaxed) > 0 {
                        // Writers are sharing syncs: the ones just woken by the last sync are
                        // about to append; yield while they do, so this sync covers them.
                        for _ in 0..GROUP_YIELDS {
                            let before = self.appended.load(Ordering::Relaxed);
                            std::thread::yield_now();
                            if self.appended.load(Ordering::Relaxed) == before {
                                break;
                            }
                        }
                    }
                    // The flush writes out everything appended so far, this record included.
                    let result = self.flush(true);
                    *self.syncing.lock() = false;
                    self.synced_cv.notify_all();
                    return result;
                }
            }
            Fsync::Interval | Fsync::Never => {
                let buffered = self
                    .appended
                    .load(Ordering::Relaxed)
                    .saturating_sub(self.written.load(Ordering::Relaxed));
                if buffered >= FLUSH_BYTES {
                    self.flush(false)?;
                }
                self.check()
            }
        }
    }

    /// Writes the buffer out, and syncs if `sync`.
    pub(crate) fn flush(&self, sync: bool) -> Result<(), PersistError> {
        let mut io = self.io.lock();
        self.flush_locked(&mut io, sync)
    }

    fn flush_locked(&self, io: &mut Io, sync: bool) -> Result<(), PersistError> {
        self.check()?;
        let upto = {
            let mut s = self.state.lock();
            std::mem::swap(&mut s.buf, &mut io.spare);
            s.end
        };
        self.write_out(io, upto, sync)
    }

    /// Writes `io.spare` (the buffer up to `upto`) to the current file, then syncs.
    fn write_out(&self, io: &mut Io, upto: u64, sync: bool) -> Result<(), PersistError> {
        let Some(file) = io.file.as_mut() else {
            return Err(self.failed_error());
        };
        if !io.spare.is_empty() {
            if let Err(e) = file.write_all(&io.spare) {
                let e = PersistError::io("write", file.path(), e);
                return Err(self.fail(io, e));
            }
            self.on_disk
                .fetch_add(io.spare.len() as u64, Ordering::Relaxed);
            io.spare.clear();
            if io.spare.capacity() > KEEP_BUFFER {
                io.spare = Vec::new();
            }
        }
        self.written.store(upto, Ordering::Release);
        if sync && self.synced.load(Ordering::Acquire) < upto {
            if let Err(e) = file.sync() {
                let e = PersistError::io("fsync", file.path(), e);
                return Err(self.fail(io, e));
            }
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.synced.store(upto, Ordering::Release);
        }
        Ok(())
    }

    /// Ends the current segment and continues in a new one, for a snapshot: every record
    /// appended before the switch is in the old segments (written out and synced), every
    /// one after it in the new segment. The new segment is made durable before anything is
    /// switched, so a failure to make it leaves the log as it was: `Ok(None)`, and the
    /// snapshot is skipped. A failure to write out the old segment fails the log.
    pub(crate) fn rotate(&self) -> Result<Option<Rotation>, PersistError> {
        let mut io = self.io.lock();
        self.check()?;
        let segment = io.segment + 1;
        let path = segment_path(&self.dir, segment);
        let salt = format::new_salt();
        let max_seq = self.state.lock().max_seq;
        let created = (|| {
            let mut file = self
                .fs
                .create(&path)
                .map_err(|e| PersistError::io("create", &path, e))?;
            let header = write_segment_header(&mut file, segment, salt, max_seq)?;
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| PersistError::io("fsync directory", &self.dir, e))?;
            Ok::<_, PersistError>((file, header))
        })();
        let (file, header) = match created {
            Ok(made) => made,
            Err(_) => {
                // The log goes on in the current segment, so a half-made new one must not
                // survive: recovery would take it for the last segment and the current one
                // for a middle one. If even the removal fails, the next rotation's create
                // fails on the name and that snapshot is skipped too.
                let _ = self.fs.remove(&path);
                return Ok(None);
            }
        };
        // The switch: records in the buffer now go to the old segment; records appended
        // from here on are framed with the new segment's seed.
        let (upto, cut_seq) = {
            let mut s = self.state.lock();
            std::mem::swap(&mut s.buf, &mut io.spare);
            let rotations = (s.seed >> 32).wrapping_add(1);
            s.seed = (rotations << 32) | u64::from(format::seed(salt));
            self.seed.store(s.seed, Ordering::Release);
            s.snapshot_base = s.end;
            (s.end, s.max_seq)
        };
        self.write_out(&mut io, upto, true)?;
        io.file = Some(file);
        io.segment = segment;
        self.on_disk.fetch_add(header, Ordering::Relaxed);
        Ok(Some(Rotation { segment, cut_seq }))
    }

    /// Lets the next growth past `after` bytes ask for a snapshot again.
    pub(crate) fn snapshot_done(&self, after: u64) {
        let mut s = self.state.lock();
        s.snapshot_wanted = false;
        s.snapshot_after = after;
    }

    /// A snapshot replaced the segments before the current ones, which hold `bytes`.
    pub(crate) fn set_on_disk(&self, bytes: u64) {
        self.on_disk.store(bytes, Ordering::Relaxed);
    }

    /// Writes and syncs everything, then refuses further appends. Idempotent.
    pub(crate) fn close(&self) -> Result<(), PersistError> {
        let mut io = self.io.lock();
        let was_closed = std::mem::replace(&mut self.state.lock().closed, true);
        if was_closed || io.file.is_none() {
            return self.check();
        }
        let result = self.flush_locked(&mut io, true);
        io.file = None;
        result
    }

    #[cfg(test)]
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// Splits op bytes at the given boundaries into chunks of about `BATCH_PART_BYTES`.
fn split<'a>(ops: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut from = 0;
    for &cut in cuts {
        if cut - from >= format::BATCH_PART_BYTES && cut < ops.len() {
            chunks.push(ops.get(from..cut).unwrap_or_default());
            from = cut;
        }
    }
    chunks.push(ops.get(from..).unwrap_or_default());
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::fs::{Faults, Op};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hodor-log-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn start(snapshot_after: u64) -> Start {
        Start {
            segment: 1,
            len: 0,
            salt: 0,
            max_seq: 0,
            on_disk: 0,
            snapshot_after,
        }
    }

    fn record(log: &Log, seq: u64, payload: &[u8]) -> Ticket {
        log.append(Kind::Delete, seq, &[payload]).unwrap().0
    }

    #[test]
    fn concurrent_always_writers_share_syncs() {
        let d = dir("group");
        let log = Log::open(&d, Fs::default(), Fsync::Always, start(u64::MAX)).unwrap();
        let writes = 8 * 50;
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..50 {
                        let ticket = record(log, t * 1000 + i, b"key");
                        log.commit(ticket).unwrap();
                        assert!(log.synced.load(Ordering::Acquire) >= ticket.0);
                    }
                });
            }
        });
        let fsyncs = log.fsyncs.load(Ordering::Relaxed);
        assert!(fsyncs <= writes, "{fsyncs} syncs for {writes} writes");
        log.close().unwrap();
        let len = std::fs::metadata(segment_path(&d, 1)).unwrap().len();
        assert_eq!(len, log.on_disk.load(Ordering::Relaxed));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_sync_is_never_retried_and_fails_every_later_write() {
        let d = dir("fsyncgate");
        let faults = Arc::new(Faults::default());
        let log = Log::open(
            &d,
            Fs::with_faults(faults.clone()),
            Fsync::Always,
            start(u64::MAX),
        )
        .unwrap();
        log.commit(record(&log, 1, b"a")).unwrap();
        faults.fail_all(Op::Sync);
        let err = log.commit(record(&log, 2, b"b")).unwrap_err();
        assert!(matches!(err, PersistError::Failed { .. }), "{err}");
        assert!(err.to_string().contains("fsync"), "{err}");
        faults.heal();
        let syncs_before = faults
            .journal()
            .iter()
            .filter(|(op, _)| *op == Op::Sync)
            .count();
        // Healed or not, the store does not touch the file again.
        assert!(matches!(
            log.append(Kind::Delete, 3, &[b"c"]),
            Err(PersistError::Failed { .. })
        ));
        assert!(log.flush(true).is_err());
        assert!(log.close().is_err());
        let syncs_after = faults
            .journal()
            .iter()
            .filter(|(op, _)| *op == Op::Sync)
            .count();
        assert_eq!(syncs_before, syncs_after, "a failed fsync was retried");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn interval_writers_flush_a_large_buffer_themselves() {
        let d = dir("interval");
        let log = Log::open(&d, Fs::default(), Fsync::Interval, start(u64::MAX)).unwrap();
        let big = vec![b'k'; 1000];
        let mut last = Ticket(0);
        for i in 0..2000 {
            last = log.append(Kind::Delete, i, &[&big]).unwrap().0;
            log.commit(last).unwrap();
        }
        let written = log.written.load(Ordering::Relaxed);
        assert!(
            last.0 - written < FLUSH_BYTES,
            "{} bytes left buffered",
            last.0 - written
        );
        assert_eq!(
            log.fsyncs.load(Ordering::Relaxed),
            0,
            "writers never sync in interval mode"
        );
        log.close().unwrap();
        assert_eq!(log.synced.load(Ordering::Relaxed), last.0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_growth_threshold_asks_for_one_snapshot_at_a_time() {
        let d = dir("threshold");
        let log = Log::open(&d, Fs::default(), Fsync::Never, start(100)).unwrap();
        let wants: Vec<bool> = (0..20)
            .map(|i| log.append(Kind::Delete, i, &[b"0123456789"]).unwrap().1)
            .collect();
        assert_eq!(wants.iter().filter(|w| **w).count(), 1, "{wants:?}");
        let rotation = log.rotate().unwrap().unwrap();
        assert_eq!((rotation.segment, rotation.cut_seq), (2, 19));
        log.snapshot_done(100);
        assert!(log.append(Kind::Delete, 20, &[&[b'x'; 100]]).unwrap().1);
        log.close().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
