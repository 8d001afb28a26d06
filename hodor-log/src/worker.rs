//! The sink's one worker thread: takes queued records, cuts them into batches, writes each
//! batch with one `set`, retries failures, and reports what could not be written.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hodor_core::{Bytes, Contract, Error};

use crate::codec;
use crate::key;
use crate::queue::{Entry, Shared};
use crate::reentry;
use crate::time::TsWriter;

/// The longest pause between two attempts at one batch.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Runs the worker until the sink shuts down.
pub(crate) fn run(shared: Arc<Shared>, contract: Contract, instance: u64) {
    // Whatever the storage calls below log must not come back into this sink.
    reentry::mark_worker();
    let mut worker = Worker {
        report: Report::new(shared.settings.report_interval),
        shared,
        contract,
        instance,
        seq: 0,
        ts: TsWriter::new(),
        batch: Vec::new(),
        key: String::new(),
        notice: Notice::default(),
        open: Open::default(),
    };
    let mut data = Vec::new();
    let mut index = Vec::new();
    loop {
        let taken = worker
            .shared
            .take(&mut data, &mut index, worker.notice.pending());
        worker.write_records(&data, &index);
        // These records were refused after every record taken with them was queued: the
        // notice about them starts the next batch, before what was queued after them.
        if taken.dropped > 0 {
            worker.notice.dropped += taken.dropped;
            worker.notice.at(taken.first_drop_ts);
        }
        if worker.notice.pending() && (index.is_empty() || taken.flushing || taken.stopping) {
            worker.write_records(&[], &[]);
        }
        worker.shared.flushed(taken.flush_ticket);
        if taken.stopping {
            break;
        }
    }
    worker.report.emit();
    worker.shared.stopped();
}

/// Records that did not reach the store, to be told at the start of the next batch.
#[derive(Debug, Default, Clone, Copy)]
struct Notice {
    dropped: u64,
    lost: u64,
    ts: Option<u64>,
}

impl Notice {
    fn pending(&self) -> bool {
        self.dropped > 0 || self.lost > 0
    }

    fn at(&mut self, ts: u64) {
        self.ts = Some(self.ts.map_or(ts, |t| t.min(ts)));
    }

    fn merge(&mut self, other: Notice) {
        self.dropped += other.dropped;
        self.lost += other.lost;
        if let Some(ts) = other.ts {
            self.at(ts);
        }
    }

    /// The notice as a JSON line.
    fn write(&self, out: &mut Vec<u8>, ts: &[u8]) {
        let what = match (self.dropped, self.lost) {
            (d, 0) => format!("{d} log records were dropped because the queue was full"),
            (0, l) => format!("{l} log records were lost because their batch could not be written"),
            (d, l) => format!(
                "{d} log records were dropped because the queue was full and {l} were lost \
                 because their batch could not be written"
            ),
        };
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(ts);
        let _ = writeln!(
            out,
            "\",\"level\":\"WARN\",\"target\":\"hodor_log\",\"message\":\"{what}\",\
             \"fields\":{{\"dropped\":{},\"lost\":{}}}}}",
            self.dropped, self.lost
        );
    }
}

/// The batch being filled.
#[derive(Debug, Default)]
struct Open {
    records: u64,
    lines: usize,
    first: u64,
    last: u64,
    /// The notice this batch starts with, to be told again if the batch is lost.
    notice: Option<Notice>,
}

struct Worker {
    shared: Arc<Shared>,
    contract: Contract,
    instance: u64,
    seq: u64,
    ts: TsWriter,
    batch: Vec<u8>,
    key: String,
    notice: Notice,
    open: Open,
    report: Report,
}

/// `{"timestamp":"` + timestamp + `",`: what the worker puts before each body.
const TS_PREFIX: &[u8] = b"{\"timestamp\":\"";

impl Worker {
    /// Writes `index`'s records from `data` in as many batches as the limits ask, the first
    /// starting with the pending notice, if any.
    fn write_records(&mut self, data: &[u8], index: &[Entry]) {
        let s = &self.shared.settings;
        let (batch_records, batch_bytes) = (s.batch_records, s.batch_bytes);
        if self.notice.pending() {
            let mut notice = std::mem::take(&mut self.notice);
            let first = index.first().map_or(u64::MAX, |e| e.ts);
            let ts = notice.ts.unwrap_or(first).min(first);
            notice.ts = Some(ts);
            let text = *self.ts.format(ts);
            notice.write(&mut self.batch, &text);
            self.open = Open {
                records: 0,
                lines: 1,
                first: ts,
                last: ts,
                notice: Some(notice),
            };
        }
        let mut start = 0;
        for entry in index {
            let body = data.get(start..entry.end).unwrap_or_default();
            start = entry.end;
            let line_len = TS_PREFIX.len() + crate::time::TS_LEN + 2 + body.len();
            if self.open.lines > 0
                && (self.open.lines >= batch_records || self.batch.len() + line_len > batch_bytes)
            {
                self.store();
            }
            if self.open.lines == 0 {
                self.open.first = entry.ts;
            }
            self.open.first = self.open.first.min(entry.ts);
            self.open.last = self.open.last.max(entry.ts);
            self.open.lines += 1;
            self.open.records += 1;
            self.batch.extend_from_slice(TS_PREFIX);
            self.batch.extend_from_slice(self.ts.format(entry.ts));
            self.batch.extend_from_slice(b"\",");
            self.batch.extend_from_slice(body);
        }
        if self.open.lines > 0 {
            self.store();
        }
    }

    /// Stores the open batch with one `set` (retrying what may succeed later), then starts
    /// a new one.
    fn store(&mut self) {
        let open = std::mem::take(&mut self.open);
        let s = &self.shared.settings;
        let (codec, value) = codec::encode(s.compression, &self.batch);
        self.batch.clear();
        key::write(
            &mut self.key,
            &s.prefix,
            open.first,
            open.last,
            self.instance,
            self.seq,
            codec,
        );
        self.seq += 1;
        let value = Bytes::from(value);
        let counters = &self.shared.counters;
        let mut backoff = s.retry_backoff;
        let mut attempt = 0;
        loop {
            // A retry writes the same key: if an attempt that reported failure did land,
            // the retry overwrites it with the same bytes instead of duplicating records.
            match self.contract.set(&self.key, value.clone(), s.retention) {
                Ok(()) => {
                    self.shared.add(&counters.written, open.records);
                    self.shared.add(&counters.batches, 1);
                    return;
                }
                Err(e) => {
                    self.shared.add(&counters.write_errors, 1);
                    if retryable(&e) && attempt < s.retries {
                        attempt += 1;
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                    self.shared.add(&counters.lost, open.records);
                    // Told again with the next batch, unless no batch can ever be written
                    // (a closed contract): then stderr and the counters are all there is.
                    if let Some(notice) = open.notice.filter(|_| retryable(&e)) {
                        self.notice.merge(notice);
                    }
                    if open.records > 0 {
                        self.notice.lost += open.records;
                        self.notice.at(open.last);
                    }
                    self.report.failed(&e, open.records);
                    return;
                }
            }
        }
    }
}

/// Only a backend failure can go away by itself; a closed contract, a value over a limit or
/// an unsupported TTL will fail the same way again.
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Backend { .. })
}

/// Failed writes, told on stderr at most once per interval (and once more at the end).
struct Report {
    interval: Duration,
    last: Option<Instant>,
    batches: u64,
    records: u64,
    error: Option<String>,
}

impl Report {
    fn new(interval: Duration) -> Report {
        Report {
            interval,
            last: None,
            batches: 0,
            records: 0,
            error: None,
        }
    }

    fn failed(&mut self, e: &Error, records: u64) {
        self.batches += 1;
        self.records += records;
        self.error = Some(e.to_string());
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= self.interval)
        {
            self.last = Some(now);
            self.emit();
        }
    }

    fn emit(&mut self) {
        if self.batches == 0 {
            return;
        }
        let error = self.error.take().unwrap_or_default();
        // stderr, not a logger: this sink may be the only logger there is.
        let _ = writeln!(
            std::io::stderr(),
            "hodor-log: {} batch(es) holding {} log records could not be written; the last error: {error}",
            self.batches,
            self.records
        );
        self.batches = 0;
        self.records = 0;
    }
}
