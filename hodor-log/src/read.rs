//! Reading logs back: [`read`] and the [`Record`]s it yields.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use hodor_core::{Contract, Error, Result};
use serde::Deserialize;

use crate::builder::MAX_BATCH_BYTES;
use crate::codec;
use crate::key::{self, BatchKey};
use crate::time;

/// Room above the batch limit for a record stored alone and the dropped-records notice.
const BATCH_SLACK: usize = 1 << 20;

/// One log record, as read back from a contract.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// When it was logged (to the microsecond).
    pub timestamp: SystemTime,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The target (usually the module path).
    pub target: String,
    /// The message.
    pub message: String,
    /// The other fields (`tracing`) or key-value pairs (`log`).
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The names of the spans it was logged in, outermost first.
    pub spans: Vec<String>,
    /// The record was longer than the sink's `max_record_bytes` and was cut.
    pub truncated: bool,
    /// The key of the batch it was stored in.
    pub batch: String,
    /// Its position in that batch, from 0.
    pub line: usize,
}

/// What a stored line holds.
#[derive(Deserialize)]
struct Wire {
    timestamp: String,
    level: String,
    target: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    spans: Vec<String>,
    #[serde(default)]
    truncated: bool,
}

impl fmt::Display for Record {
    /// `2026-12-01T10:00:00.123456Z  INFO request>db: app::db: message key=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:>5} ",
            time::format(time::micros(self.timestamp)),
            self.level
        )?;
        if !self.spans.is_empty() {
            write!(f, "{}: ", self.spans.join(">"))?;
        }
        write!(f, "{}: {}", self.target, self.message)?;
        for (name, value) in &self.fields {
            match value {
                serde_json::Value::String(s) => write!(f, " {name}={s}")?,
                other => write!(f, " {name}={other}")?,
            }
        }
        if self.truncated {
            write!(f, " (truncated)")?;
        }
        Ok(())
    }
}

/// The records stored under `prefix` in `contract` by any number of sinks, oldest first,
/// from `since` on (pass `UNIX_EPOCH` for all).
///
/// Records are yielded in timestamp order across batches and across sinks (processes):
/// batch keys carry the time of their first and last record, so a batch is read only when
/// the next record to yield could be in it, and batches that end before `since` are not
/// read at all. Records with equal timestamps keep the order of their batch keys, then
/// their order within a batch. Keys under the prefix that are not batch keys are skipped;
/// a batch that expires between the listing and its read is skipped.
///
/// The listing is taken once, when `read` is called: batches written afterwards are not
/// seen (call `read` again to follow a log, as the `tail` example does). A batch that
/// cannot be decoded, or a line that is not a record, is an `Err` item, and iteration goes
/// on with the rest.
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use hodor_memory as _;
/// # fn main() -> Result<(), hodor_core::Error> {
/// let logs = hodor_core::Contract::new("memory", "read-doc", None)?;
/// for record in hodor_log::read(&logs, "logs/app/", UNIX_EPOCH)? {
///     println!("{}", record?);
/// }
/// # Ok(())
/// # }
/// ```
pub fn read(contract: &Contract, prefix: &str, since: SystemTime) -> Result<Records> {
    let since = time::micros(since);
    let batches = contract
        .list(prefix)?
        .into_iter()
        .filter_map(|k| {
            let parsed = key::parse(k.get(prefix.len()..)?)?;
            (parsed.last >= since).then_some((k, parsed))
        })
        .collect();
    Ok(Records {
        contract: contract.clone(),
        batches,
        heap: BinaryHeap::new(),
        errors: VecDeque::new(),
        since,
        loaded: 0,
    })
}

/// The iterator [`read`] returns.
pub struct Records {
    contract: Contract,
    /// Batches not read yet, in key order (the order of their first records).
    batches: VecDeque<(String, BatchKey)>,
    heap: BinaryHeap<Reverse<Pending>>,
    errors: VecDeque<Error>,
    since: u64,
    loaded: u64,
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("contract", &self.contract)
            .field("batches_left", &self.batches.len())
            .field("records_loaded", &self.heap.len())
            .finish()
    }
}

/// A record read from a batch but not yet yielded, ordered by (timestamp, batch, line).
struct Pending {
    ts: u64,
    batch: u64,
    record: Record,
}

impl Pending {
    fn order(&self) -> (u64, u64, usize) {
        (self.ts, self.batch, self.record.line)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(e) = self.errors.pop_front() {
                return Some(Err(e));
            }
            // A batch whose first record is before the earliest loaded one may hold
            // records to yield before it: read it first.
            let next_first = self.batches.front().map(|(_, k)| k.first);
            let earliest = self.heap.peek().map(|Reverse(p)| p.ts);
            match (next_first, earliest) {
                (Some(first), Some(ts)) if first >= ts => {}
                (Some(_), _) => {
                    if let Some((key, parsed)) = self.batches.pop_front() {
                        self.load(&key, &parsed);
                    }
                    continue;
                }
                (None, _) => {}
            }
            return self.heap.pop().map(|Reverse(p)| Ok(p.record));
        }
    }
}

impl Records {
    fn load(&mut self, key: &str, parsed: &BatchKey) {
        // A batch listed a moment ago may have expired since: nothing to read, no error.
        let stored = match self.contract.get_opt(key) {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => {
                self.errors.push_back(e);
                return;
            }
        };
        let bad = |reason: String| Error::InvalidInput {
            driver: self.contract.driver(),
            contract: Arc::from(self.contract.name()),
            key: Some(key.to_owned()),
            reason,
        };
        let raw = match codec::decode(parsed.codec, &stored, MAX_BATCH_BYTES + BATCH_SLACK) {
            Ok(raw) => raw,
            Err(reason) => {
                self.errors.push_back(bad(reason));
                return;
            }
        };
        let batch = self.loaded;
        self.loaded += 1;
        let lines = raw.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        for (line, text) in lines.enumerate() {
            let wire: Wire = match serde_json::from_slice(text) {
                Ok(wire) => wire,
                Err(e) => {
                    self.errors
                        .push_back(bad(format!("line {line} is not a log record: {e}")));
                    continue;
                }
            };
            let Some(ts) = time::parse(&wire.timestamp) else {
                self.errors.push_back(bad(format!(
                    "line {line} has a timestamp that is not RFC 3339 UTC"
                )));
                continue;
            };
            if ts < self.since {
                continue;
            }
            self.heap.push(Reverse(Pending {
                ts,
                batch,
                record: Record {
                    timestamp: time::system_time(ts),
                    level: wire.level,
                    target: wire.target,
                    message: wire.message,
                    fields: wire.fields,
                    spans: wire.spans,
                    truncated: wire.truncated,
                    batch: key.to_owned(),
                    line,
                },
            }));
        }
    }
}
