//! Persistence of a memory store: an append-only log of every write, snapshots, and
//! recovery from both at open.
//!
//! The engine knows nothing of shards or indexes. The store talks to it through a narrow
//! interface:
//!
//! - **Open**: [`Persist::open`] takes the directory's lock and feeds every surviving state
//!   change to a callback ([`Replay`]), which applies it to the still-private store.
//! - **Each write**: while holding the lock of the shard(s) it changed, the store takes a
//!   sequence number ([`Persist::next_seq`]) and hands over the new state of each key
//!   ([`Persist::log`], or [`Persist::log_batch`] for an atomic batch), getting a
//!   [`Ticket`]. After releasing its locks it calls [`Persist::commit`] with the ticket,
//!   which waits for the sync that covers it with `fsync = always` (concurrent writers
//!   share syncs) and returns at once otherwise. Removals the store makes on its own
//!   (expiry, eviction) are logged the same way and never waited for.
//! - **Snapshots**: a background thread copies the store shard by shard through
//!   [`Source`], which holds only a `Weak` reference to it.
//!
//! The one invariant the store must keep: the records of one key reach the log in the
//! order the writes took effect, which holds because they are handed over under the key's
//! shard lock. Records of different keys may arrive out of sequence-number order.

mod epoch;
mod error;
mod format;
pub(crate) mod fs;
mod lock;
mod log;
mod recover;
mod snapshot;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hodor_core::driver::Gauges;
use parking_lot::{Condvar, Mutex};

use crate::codec::Codec;
use crate::config::{Fsync, PersistConfig};
use crate::key::KeyRef;

pub use error::PersistError;
pub(crate) use format::PutRef;
pub(crate) use fs::Fs;
pub(crate) use log::Ticket;
pub(crate) use recover::Replay;

/// The largest record payload the log format holds (its length field is a `u32`).
pub(crate) const MAX_RECORD: u64 = format::MAX_PAYLOAD;

use lock::DirLock;
use log::Log;

/// Why the store removed a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// `delete` or `delete_many`.
    Delete,
    /// Its TTL ran out and it was reclaimed.
    Expire,
    /// It was evicted to make room.
    Evict,
}

/// A key's new state, as the store hands it to the log.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Record<'a> {
    /// The key holds `value`, stored as `codec` says.
    Put {
        key: &'a [u8],
        value: &'a [u8],
        codec: Codec,
        /// ns since the epoch.
        modified: u64,
        /// ns since the epoch, 0 for never.
        expires: u64,
    },
    /// The key is gone.
    Remove { key: &'a [u8], why: Removal },
    /// Every key is gone.
    #[allow(dead_code)] // The store has no clear operation yet; recovery understands it.
    Clear,
}

impl Record<'_> {
    /// Calls `f` with the record's kind and payload pieces.
    fn with_parts<T>(self, f: impl FnOnce(format::Kind, &[&[u8]]) -> T) -> T {
        match self {
            Record::Put {
                key,
                value,
                codec,
                modified,
                expires,
            } => {
                let meta = format::put_meta(codec, modified, expires, key.len());
                f(format::Kind::Put, &[&meta, key, value])
            }
            Record::Remove { key, why } => {
                let kind = match why {
                    Removal::Delete => format::Kind::Delete,
                    Removal::Expire => format::Kind::Expire,
                    Removal::Evict => format::Kind::Evict,
                };
                f(kind, &[key])
            }
            Record::Clear => f(format::Kind::Clear, &[]),
        }
    }
}

/// One entry of a shard, as a snapshot reads it under the shard's lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryRef<'a> {
    pub(crate) key: &'a KeyRef,
    pub(crate) value: &'a Bytes,
    pub(crate) codec: Codec,
    pub(crate) modified: u64,
    pub(crate) expires: u64,
}

/// What a snapshot reads: the store, shard by shard.
pub(crate) trait Source: Send + Sync {
    fn shard_count(&self) -> usize;
    /// Calls `f` with each live entry of shard `shard`, holding the shard's read lock; `f`
    /// only copies (it is the snapshot's own code, never a caller's).
    fn visit_shard(&self, shard: usize, f: &mut dyn FnMut(EntryRef<'_>));
    /// The store's clock, ns since the epoch.
    fn now(&self) -> u64;
}

#[derive(Debug, Default)]
struct Signal {
    closing: bool,
    snapshot: bool,
}

/// What the engine's threads share with the store.
pub(crate) struct Shared {
    dir: PathBuf,
    fs: Fs,
    config: PersistConfig,
    log: Log,
    seq: AtomicU64,
    signal: Mutex<Signal>,
    wake: Condvar,
    /// Held while a snapshot is taken: one at a time.
    snapshotting: Mutex<()>,
    recovery_micros: u64,
    recovery_records: u64,
    /// The latest snapshot: when it began (store clock, ns) and its size.
    last_snapshot: Mutex<Option<(u64, u64)>>,
    snapshots: AtomicU64,
    snapshot_failures: AtomicU64,
}

impl Shared {
    fn closing(&self) -> bool {
        self.signal.lock().closing
    }

    /// Takes a snapshot now; `Ok(false)` if it was skipped or abandoned.
    ///
    /// Runs no code of the caller's while it holds `snapshotting`: the value handles the
    /// copy held are dropped after (see `snapshot::take`).
    fn snapshot(&self, source: &dyn Source) -> Result<bool, PersistError> {
        let mut held = Vec::new();
        let taken = self.snapshot_held(source, &mut held);
        drop(held);
        taken
    }

    fn snapshot_held(
        &self,
        source: &dyn Source,
        held: &mut Vec<Bytes>,
    ) -> Result<bool, PersistError> {
        let _one = self.snapshotting.lock();
        // Checked under the lock `Persist::close` takes after setting `closing`: a snapshot
        // that gets the lock after close did never touches the directory.
        if self.closing() {
            return Ok(false);
        }
        match snapshot::take(self, source, held) {
            Ok(Some(taken)) => {
                *self.last_snapshot.lock() = Some((taken.created, taken.bytes));
                self.snapshots.fetch_add(1, Ordering::Relaxed);
                // Like Redis' auto-aof-rewrite-percentage 100: the log may grow to the
                // snapshot's size before the next one, so snapshots of a big store do not
                // follow each other back to back.
                self.log
                    .snapshot_done(self.config.snapshot_log_bytes.max(taken.bytes));
                Ok(true)
            }
            Ok(None) => {
                self.log.snapshot_done(self.config.snapshot_log_bytes);
                Ok(false)
            }
            Err(e) => {
                self.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                self.log.snapshot_done(self.config.snapshot_log_bytes);
                Err(e)
            }
        }
    }
}

/// A store's persistence: owned by the store, closed with it.
pub(crate) struct Persist {
    /// This opening's epoch: larger than that of every earlier opening of the directory.
    epoch: u64,
    shared: Arc<Shared>,
    /// The flusher, joined at close. The snapshot thread is not joined: it may be running a
    /// value's `Drop` (see `snapshot::take`) or dropping the store, and close must never
    /// wait for code of the caller's; it stops on its own at its next look at `closing`,
    /// and `snapshotting` keeps it from touching the directory after close.
    flusher: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    /// Released on close, so the directory can be opened again.
    lock: Mutex<Option<DirLock>>,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Persist {
    /// Takes `config.dir` for the store `name` and recovers it, applying each surviving
    /// state change with `apply`, then durably advances the directory's epoch to at least
    /// `epoch_at_least` (see [`Persist::epoch`]).
    pub(crate) fn open(
        name: &str,
        config: &PersistConfig,
        fs: Fs,
        now: u64,
        epoch_at_least: u64,
        apply: &mut dyn FnMut(Replay<'_>),
    ) -> Result<Persist, PersistError> {
        let started = Instant::now();
        let lock = DirLock::acquire(&config.dir, name)?;
        let dir = lock.dir().to_owned();
        let recovered = recover::recover(&dir, &fs, config.recovery, now, apply)?;
        let epoch = epoch::advance(&dir, &fs, epoch_at_least)?;
        let mut start = recovered.start;
        start.snapshot_after = config
            .snapshot_log_bytes
            .max(recovered.snapshot.map_or(0, |(_, bytes)| bytes));
        let log = Log::open(&dir, fs.clone(), config.fsync, start)?;
        let shared = Arc::new(Shared {
            dir,
            fs,
            config: config.clone(),
            log,
            seq: AtomicU64::new(start.max_seq.saturating_add(1)),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            snapshotting: Mutex::new(()),
            recovery_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            recovery_records: recovered.records,
            last_snapshot: Mutex::new(recovered.snapshot),
            snapshots: AtomicU64::new(0),
            snapshot_failures: AtomicU64::new(0),
        });
        Ok(Persist {
            epoch,
            shared,
            flusher: Mutex::new(None),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// Starts the background threads: the snapshotter, and for `interval` and `never` the
    /// flusher. If a thread cannot be started, that work happens only at close (a log that
    /// is never snapshotted keeps growing; it is still replayed correctly).
    pub(crate) fn start(&self, source: Weak<dyn Source>) {
        let shared = self.shared.clone();
        // Detached (see `Persist::flusher`).
        let _ = std::thread::Builder::new()
            .name("hodor-persist-snapshot".to_owned())
            .spawn(move || snapshotter(&shared, &source));
        if self.shared.config.fsync != Fsync::Always {
            let shared = self.shared.clone();
            if let Ok(t) = std::thread::Builder::new()
                .name("hodor-persist-flush".to_owned())
                .spawn(move || flusher(&shared))
            {
                *self.flusher.lock() = Some(t);
            }
        }
    }

    /// The last sequence number handed out (or recovered): every record logged so far has
    /// one at most this.
    pub(crate) fn last_seq(&self) -> u64 {
        self.shared.seq.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// This opening's epoch, durable before `open` returned: larger than the epoch of
    /// every earlier opening of the directory, in any process, and below 2^47.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The directory, as resolved at open.
    pub(crate) fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The next sequence number. Take it under the lock of the shard being written.
    #[inline]
    pub(crate) fn next_seq(&self) -> u64 {
        self.shared.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// `Err` once the log has failed: check before changing anything.
    #[inline]
    pub(crate) fn writable(&self) -> Result<(), PersistError> {
        self.shared.log.check()
    }

    /// Logs one key's new state.
    pub(crate) fn log(&self, seq: u64, record: Record<'_>) -> Result<Ticket, PersistError> {
        let (ticket, wanted) =
            record.with_parts(|kind, parts| self.shared.log.append(kind, seq, parts))?;
        if wanted {
            self.request_snapshot();
        }
        Ok(ticket)
    }

    /// Logs the new states of a batch's keys as one atomic unit: recovery applies all of
    /// them or none. Only puts and deletes.
    pub(crate) fn log_batch(&self, records: &[(u64, Record<'_>)]) -> Result<Ticket, PersistError> {
        let mut ops = Vec::new();
        let mut cuts = Vec::with_capacity(records.len());
        let mut max_seq = 0;
        for &(seq, record) in records {
            max_seq = max_seq.max(seq);
            record.with_parts(|kind, parts| match kind {
                format::Kind::Put => format::append_op(&mut ops, kind, seq, parts),
                format::Kind::Delete | format::Kind::Expire | format::Kind::Evict => {
                    format::append_op(&mut ops, format::Kind::Delete, seq, parts);
                }
                _ => {}
            });
            cuts.push(ops.len());
        }
        let (ticket, wanted) = self.shared.log.append_batch(&ops, &cuts, max_seq)?;
        if wanted {
            self.request_snapshot();
        }
        Ok(ticket)
    }

    /// After the store released its locks: returns once the write is as durable as the
    /// fsync mode promises.
    #[inline]
    pub(crate) fn commit(&self, ticket: Ticket) -> Result<(), PersistError> {
        self.shared.log.commit(ticket)
    }

    /// Asks the snapshot thread for a snapshot soon.
    pub(crate) fn request_snapshot(&self) {
        self.shared.signal.lock().snapshot = true;
        self.shared.wake.notify_all();
    }

    /// Takes a snapshot on this thread; `Ok(false)` if it was skipped.
    pub(crate) fn snapshot_now(&self, source: &dyn Source) -> Result<bool, PersistError> {
        self.shared.snapshot(source)
    }

    /// Stops the threads, writes and syncs the log, and releases the directory. Idempotent;
    /// only the first call reports a failure.
    pub(crate) fn close(&self) -> Result<(), PersistError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shared.signal.lock().closing = true;
        self.shared.wake.notify_all();
        // The flusher runs only the log's own code, and never closes a store.
        if let Some(t) = self.flusher.lock().take() {
            let _ = t.join();
        }
        // A snapshot (on the snapshot thread, or a caller's: `MemoryDriver::snapshot`) may
        // still be running: it stops at its next shard, but once past them it renames its
        // file into the directory, which must not happen after the directory is given
        // back. It runs no code of the caller's while it holds this lock, and one that
        // takes it after this sees `closing` (see `Shared::snapshot`).
        let _no_snapshot = self.shared.snapshotting.lock();
        let result = self.shared.log.close();
        *self.lock.lock() = None;
        result
    }

    /// Adds the persistence gauges; `now` is the store's clock.
    pub(crate) fn gauges(&self, now: u64, g: &mut Gauges) {
        let s = &self.shared;
        g.log_bytes = Some(s.log.on_disk.load(Ordering::Relaxed));
        g.snapshot_age_ms =
            (*s.last_snapshot.lock()).map(|(at, _)| now.saturating_sub(at) / 1_000_000);
        g.fsyncs = Some(s.log.fsyncs.load(Ordering::Relaxed));
        g.recovery_micros = Some(s.recovery_micros);
        g.recovery_records = Some(s.recovery_records);
    }

    /// Whether the log has failed (tests).
    #[cfg(test)]
    pub(crate) fn failed(&self) -> bool {
        self.shared.log.failed()
    }
}

impl Drop for Persist {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Takes a snapshot whenever one is asked for, until the store closes or is gone.
fn snapshotter(shared: &Shared, source: &Weak<dyn Source>) {
    loop {
        {
            let mut signal = shared.signal.lock();
            while !signal.snapshot && !signal.closing {
                shared.wake.wait(&mut signal);
            }
            if signal.closing {
                return;
            }
            signal.snapshot = false;
        }
        let Some(source) = source.upgrade() else {
            return;
        };
        // A failure is counted and retried once the log has grown by another threshold;
        // a failure of the log itself has already made the store read-only.
        let _ = shared.snapshot(&*source);
    }
}

/// Writes out (and with `interval`, syncs) the log every `interval_ms`.
fn flusher(shared: &Shared) {
    let interval = Duration::from_millis(shared.config.interval_ms.max(1));
    let sync = shared.config.fsync == Fsync::Interval;
    let mut next = Instant::now() + interval;
    loop {
        {
            let mut signal = shared.signal.lock();
            while !signal.closing && Instant::now() < next {
                shared.wake.wait_until(&mut signal, next);
            }
            if signal.closing {
                return;
            }
        }
        if shared.log.flush(sync).is_err() {
            // The log has failed: nothing more to flush, ever.
            return;
        }
        next = Instant::now() + interval;
    }
}
