//! The bounded queue between the application's threads and the sink's worker, and the
//! settings both sides read.
//!
//! Producers append a record's body to one shared byte buffer and its timestamp and end
//! offset to an index, under a mutex held only for that copy: no allocation per record,
//! and no user code ever runs under the lock (formatting is done before it is taken). The
//! worker swaps both buffers out in one step and writes them while producers fill the
//! other pair. The worker is woken only when it has something to do: the first record
//! after it went idle, a full batch, a full queue, a flush or the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hodor_core::clock::Clock;
use parking_lot::{Condvar, Mutex};

use crate::codec::Compression;
use crate::reentry;

/// Everything a running sink was built with.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) prefix: String,
    pub(crate) retention: Option<Duration>,
    pub(crate) batch_records: usize,
    pub(crate) batch_bytes: usize,
    pub(crate) batch_age: Duration,
    pub(crate) queue_records: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) blocking: bool,
    pub(crate) compression: Compression,
    pub(crate) max_record_bytes: usize,
    pub(crate) retries: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) flush_timeout: Duration,
    pub(crate) report_interval: Duration,
    pub(crate) ignore_targets: Vec<String>,
    pub(crate) clock: Clock,
}

impl Settings {
    /// Whether events of `target` are kept out of the sink: a listed module path and its
    /// submodules (`hodor_log` covers `hodor_log::worker`, not `hodor_logger`).
    pub(crate) fn ignores(&self, target: &str) -> bool {
        self.ignore_targets.iter().any(|ignored| {
            target
                .strip_prefix(ignored.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
    }

    /// Now, in microseconds since the epoch, from the sink's clock.
    pub(crate) fn now_micros(&self) -> u64 {
        self.clock.now_nanos() / 1000
    }
}

/// A queued record: its timestamp and where its body ends in the data buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) ts: u64,
    pub(crate) end: usize,
}

#[derive(Debug, Default)]
struct Queue {
    data: Vec<u8>,
    index: Vec<Entry>,
    /// The latest timestamp handed out: timestamps never go back within a sink, so its
    /// records are stored in timestamp order even if the wall clock steps back.
    last_ts: u64,
    /// Records refused since the worker last took the queue, and when the first was.
    dropped: u64,
    first_drop_ts: u64,
    dropped_total: u64,
    flush_asked: u64,
    flush_done: u64,
    stopping: bool,
    stopped: bool,
    worker_idle: bool,
    worker_timed: bool,
    blocked: usize,
}

/// What the worker takes from the queue in one step.
#[derive(Debug)]
pub(crate) struct Taken {
    /// Records refused because the queue was full, after every record taken with them.
    pub(crate) dropped: u64,
    /// Timestamp of the first of them.
    pub(crate) first_drop_ts: u64,
    /// The flush requests this take answers.
    pub(crate) flush_ticket: u64,
    /// A flush asked for everything to be written now.
    pub(crate) flushing: bool,
    /// The sink is shutting down: this is the last take.
    pub(crate) stopping: bool,
}

/// Counters only the worker writes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) written: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) write_errors: AtomicU64,
}

/// What the application threads and the worker share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) counters: Counters,
    queue: Mutex<Queue>,
    /// The worker waits here.
    wake: Condvar,
    /// Producers in blocking mode wait here for room.
    room: Condvar,
    /// Flushes and the guard wait here for the worker.
    done: Condvar,
}

/// A snapshot of the queue's counters, for [`crate::Stats`].
pub(crate) struct QueueStats {
    pub(crate) queued: u64,
    pub(crate) dropped: u64,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> Shared {
        Shared {
            settings,
            counters: Counters::default(),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            room: Condvar::new(),
            done: Condvar::new(),
        }
    }

    /// Queues one record body taken at `ts`. `false` when it was dropped: the queue was
    /// full (and the sink does not block), or the sink has shut down.
    pub(crate) fn push(&self, ts: u64, body: &[u8]) -> bool {
        let s = &self.settings;
        let mut q = self.queue.lock();
        loop {
            if q.stopping {
                q.dropped_total += 1;
                return false;
            }
            if q.index.len() < s.queue_records && q.data.len() + body.len() <= s.queue_bytes {
                break;
            }
            // Full: the worker should write now rather than wait for the batch's age.
            if q.worker_timed || q.worker_idle {
                q.worker_timed = false;
                q.worker_idle = false;
                self.wake.notify_one();
            }
            if !s.blocking {
                if q.dropped == 0 {
                    q.first_drop_ts = ts.max(q.last_ts);
                }
                q.dropped += 1;
                q.dropped_total += 1;
                return false;
            }
            q.blocked += 1;
            self.room.wait(&mut q);
            q.blocked -= 1;
        }
        let ts = ts.max(q.last_ts);
        q.last_ts = ts;
        q.data.extend_from_slice(body);
        let end = q.data.len();
        q.index.push(Entry { ts, end });
        let batch_full = q.index.len() >= s.batch_records || q.data.len() >= s.batch_bytes;
        if q.worker_idle || (q.worker_timed && batch_full) {
            q.worker_idle = false;
            q.worker_timed = false;
            self.wake.notify_one();
        }
        true
    }

    /// The worker's wait: returns when there is something to write and a reason to write it
    /// now (a full batch, a full queue, the batch's age, a flush, the end), after swapping
    /// the queued records into `data` and `index` (whose old contents are discarded).
    /// `pending` says the worker has a notice to write even if no record comes.
    pub(crate) fn take(&self, data: &mut Vec<u8>, index: &mut Vec<Entry>, pending: bool) -> Taken {
        let s = &self.settings;
        let mut q = self.queue.lock();
        let mut since: Option<Instant> = None;
        loop {
            if q.stopping || q.flush_asked > q.flush_done {
                break;
            }
            if q.index.is_empty() && !pending {
                since = None;
                q.worker_idle = true;
                self.wake.wait(&mut q);
                q.worker_idle = false;
                continue;
            }
            let full = q.index.len() >= s.batch_records
                || q.data.len() >= s.batch_bytes
                || q.dropped > 0
                || q.blocked > 0;
            if full {
                break;
            }
            let started = *since.get_or_insert_with(Instant::now);
            let Some(deadline) = started.checked_add(s.batch_age) else {
                break;
            };
            if Instant::now() >= deadline {
                break;
            }
            q.worker_timed = true;
            self.wake.wait_until(&mut q, deadline);
            q.worker_timed = false;
        }
        data.clear();
        index.clear();
        std::mem::swap(&mut q.data, data);
        std::mem::swap(&mut q.index, index);
        let taken = Taken {
            dropped: std::mem::take(&mut q.dropped),
            first_drop_ts: q.first_drop_ts,
            flush_ticket: q.flush_asked,
            flushing: q.flush_asked > q.flush_done,
            stopping: q.stopping,
        };
        if q.blocked > 0 {
            self.room.notify_all();
        }
        taken
    }

    /// The worker wrote everything taken with `ticket`.
    pub(crate) fn flushed(&self, ticket: u64) {
        let mut q = self.queue.lock();
        if ticket > q.flush_done {
            q.flush_done = ticket;
            self.done.notify_all();
        }
    }

    /// The worker has exited.
    pub(crate) fn stopped(&self) {
        let mut q = self.queue.lock();
        q.stopped = true;
        self.done.notify_all();
    }

    /// Waits until every record queued before this call is written (or failed), at most
    /// `timeout`. `false` on timeout, and at once on the worker's own thread or inside a
    /// record's formatting (waiting there could never end).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        if reentry::active() {
            return false;
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut q = self.queue.lock();
        if q.stopped {
            return true;
        }
        q.flush_asked += 1;
        let ticket = q.flush_asked;
        self.wake.notify_one();
        while q.flush_done < ticket && !q.stopped {
            match deadline {
                Some(deadline) => {
                    if self.done.wait_until(&mut q, deadline).timed_out() {
                        return q.flush_done >= ticket || q.stopped;
                    }
                }
                None => self.done.wait(&mut q),
            }
        }
        true
    }

    /// Refuses new records, asks the worker to write what is queued and exit, and waits for
    /// that at most `timeout`. `false` on timeout.
    pub(crate) fn stop(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut q = self.queue.lock();
        q.stopping = true;
        self.wake.notify_one();
        self.room.notify_all();
        if reentry::active() {
            return q.stopped;
        }
        while !q.stopped {
            match deadline {
                Some(deadline) => {
                    if self.done.wait_until(&mut q, deadline).timed_out() {
                        return q.stopped;
                    }
                }
                None => self.done.wait(&mut q),
            }
        }
        true
    }

    pub(crate) fn queue_stats(&self) -> QueueStats {
        let q = self.queue.lock();
        QueueStats {
            queued: q.index.len() as u64,
            dropped: q.dropped_total,
        }
    }

    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
