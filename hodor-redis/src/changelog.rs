//! Watches: each contract's change log, read by one blocking connection per pool and fanned
//! out to the contract's [`Hub`].
//!
//! Every write script appends its changes to the contract's log in the same atomic step
//! (see [`crate::scripts`]): a counter `hodor:{E}:s` numbers them and the stream
//! `hodor:{E}:w` holds them, entry id `<seq>-0`, trimmed to about `watch_history` entries.
//! No keyspace notifications, so no `CONFIG` rights are needed, and a change made by any
//! process through hodor is in the log.
//!
//! One thread per pool reads the logs of the contracts watched in this process with
//! `XREAD BLOCK` on a connection of its own (not one of the pool's), and publishes each
//! entry to the contract's hub with its `seq`, so every watch in the process sees every
//! change in `seq` order. The thread starts with the pool's first watch and ends with the
//! pool. A contract watched for the first time joins the read within one
//! [`BLOCK`] of its watch starting; its watch still starts where it asked (the log has
//! the changes in between).
//!
//! **Losses are reported, never silent.** A log entry's `seq` beyond the next one means the
//! log was trimmed past what this reader had read (it fell more than `watch_history`
//! changes behind, say while disconnected): the watches get `Lagged`. A counter below what
//! was read means the log restarted (the server lost its data, or someone deleted the
//! keys): the watches get `Lagged { missed: 0 }` and reading continues from there. The
//! thread checks for that when it reconnects and every second. (The last `seq` is the
//! counter or the log's last entry, whichever is larger, so a counter deleted alone is not
//! taken for a restart: the next write moves it past the log.)
//!
//! **Out of scope:** changes that bypass hodor (a `redis-cli` `HSET` on an entry's hash,
//! or keys the server evicts or expires by itself, beyond what the pruner finds) are not
//! in the log and no watch sees them.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use hodor_core::driver::{DriverError, DriverResult};
use hodor_core::watch::{Event, EventKind, Hub, HubConfig};
use hodor_core::{Applied, BackendKind};
use parking_lot::Mutex;
use redis::{Connection, Value};

use crate::error::BackendError;
use crate::keys::Namespace;
use crate::pool::Pool;
use crate::scripts;

/// How long one `XREAD` blocks: how soon a newly watched contract joins the read.
const BLOCK: Duration = Duration::from_millis(100);
/// The most entries one `XREAD` returns per contract.
const BATCH: usize = 1000;
/// How often a connected reader checks that no log went backwards.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The longest pause between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A contract open on the pool and its hub.
type Watched = (Namespace, Weak<Hub>);

/// The pool's watched contracts and its reader thread.
#[derive(Debug, Default)]
pub(crate) struct Changelog {
    /// The hub of every contract open on the pool, by index key; a hub lives as long as a
    /// driver handle on its contract.
    hubs: Mutex<HashMap<Vec<u8>, Watched>>,
    /// The reader thread, started by the first watch; it ends when this is dropped with
    /// the pool.
    reader: Mutex<Option<Stop>>,
}

/// The pool's end of its reader thread: dropping it stops the thread.
#[derive(Debug)]
struct Stop(#[expect(dead_code, reason = "held to be dropped")] mpsc::Sender<()>);

impl Changelog {
    /// The hub of `namespace`'s contract, shared by every handle on it in this process.
    pub(crate) fn hub(&self, namespace: &Namespace, name: &str, history: u64) -> Arc<Hub> {
        let mut hubs = self.hubs.lock();
        hubs.retain(|_, (_, hub)| hub.strong_count() > 0);
        if let Some(hub) = hubs
            .get(namespace.index_key())
            .and_then(|(_, hub)| hub.upgrade())
        {
            return hub;
        }
        // The hub's own history only spares a new watch a trip to the server's log.
        let config = HubConfig::new()
            .external_seq(true)
            .history(usize::try_from(history.min(10_000)).unwrap_or(10_000));
        let hub = Arc::new(Hub::new(crate::DRIVER_NAME, name, config));
        hubs.insert(
            namespace.index_key().to_vec(),
            (namespace.clone(), Arc::downgrade(&hub)),
        );
        hub
    }

    /// The contracts with at least one watch, and their hubs.
    fn watched(&self) -> Vec<(Namespace, Arc<Hub>)> {
        self.hubs
            .lock()
            .values()
            .filter_map(|(ns, hub)| Some((ns.clone(), hub.upgrade()?)))
            .filter(|(_, hub)| hub.is_watched())
            .collect()
    }

    /// Starts the pool's reader thread unless it runs.
    pub(crate) fn start_reader(pool: &Arc<Pool>) -> DriverResult<()> {
        let mut reader = pool.changelog.reader.lock();
        if reader.is_some() {
            return Ok(());
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let weak = Arc::downgrade(pool);
        thread::Builder::new()
            .name("hodor-redis-watch".to_owned())
            .spawn(move || Reader::new(weak, stopped).run())
            .map_err(|e| {
                DriverError::backend_failure(
                    BackendKind::Other,
                    Applied::No,
                    BackendError::other(format!("cannot start the change log reader: {e}")),
                )
            })?;
        *reader = Some(Stop(stop));
        Ok(())
    }
}

/// A log entry: its `seq`, key and kind.
pub(crate) fn parse_entry(entry: &Value) -> Option<Event> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let seq = seq_of(id)?;
    let (mut key, mut kind) = (None, None);
    for pair in fields.chunks(2) {
        match pair {
            [name, value] if bytes(name)? == b"k" => {
                key = Some(String::from_utf8(bytes(value)?.to_vec()).ok()?);
            }
            [name, value] if bytes(name)? == b"t" => kind = EventKind::from_code(bytes(value)?),
            _ => {}
        }
    }
    Some(Event::new(seq, key?, kind?))
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// The `seq` of a log entry id `<seq>-0`.
fn seq_of(id: &Value) -> Option<u64> {
    let id = std::str::from_utf8(bytes(id)?).ok()?;
    id.split('-').next()?.parse().ok()
}

/// The entries of one `XRANGE`/`XREAD` stream reply.
pub(crate) fn parse_entries(entries: &Value) -> Vec<Event> {
    match entries {
        Value::Array(items) => items.iter().filter_map(parse_entry).collect(),
        _ => Vec::new(),
    }
}

/// The reader thread's state.
struct Reader {
    pool: Weak<Pool>,
    stopped: mpsc::Receiver<()>,
    conn: Option<Connection>,
    backoff: Duration,
    checked: Instant,
    /// The next check of the counters is due now (after a reconnect).
    check_now: bool,
}

impl Reader {
    fn new(pool: Weak<Pool>, stopped: mpsc::Receiver<()>) -> Reader {
        Reader {
            pool,
            stopped,
            conn: None,
            backoff: Duration::from_millis(20),
            checked: Instant::now(),
            check_now: true,
        }
    }

    /// Waits `d`; `false` once the pool is gone.
    fn pause(&self, d: Duration) -> bool {
        matches!(self.stopped.recv_timeout(d), Err(RecvTimeoutError::Timeout))
    }

    fn run(mut self) {
        loop {
            let Some(pool) = self.pool.upgrade() else {
                return;
            };
            let watched = pool.changelog.watched();
            if watched.is_empty() {
                drop(pool);
                if !self.pause(BLOCK / 2) {
                    return;
                }
                continue;
            }
            if self.conn.is_none() {
                match pool.dedicated(BLOCK) {
                    Ok(conn) => {
                        self.conn = Some(conn);
                        self.backoff = Duration::from_millis(20);
                        self.check_now = true;
                    }
                    Err(_) => {
                        // The callers see the server's failures; keep trying.
                        drop(pool);
                        let wait = self.backoff;
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                        if !self.pause(wait) {
                            return;
                        }
                        continue;
                    }
                }
            }
            drop(pool);
            if self.read(&watched).is_err() {
                // A broken connection: the next round opens another, checks the counters
                // and reads on from where each hub stands.
                self.conn = None;
            }
        }
    }

    /// One round: checks the counters when due, then one blocking read of every watched
    /// log.
    fn read(&mut self, watched: &[(Namespace, Arc<Hub>)]) -> redis::RedisResult<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        if self.check_now || self.checked.elapsed() >= CHECK_EVERY {
            check_counters(conn, watched)?;
            self.check_now = false;
            self.checked = Instant::now();
        }
        let cursors: Vec<u64> = watched.iter().map(|(_, hub)| hub.last_seq()).collect();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS");
        for (ns, _) in watched {
            cmd.arg(ns.log_key());
        }
        for cursor in &cursors {
            cmd.arg(format!("{cursor}-0"));
        }
        let reply: Value = cmd.query(conn)?;
        let Value::Array(streams) = reply else {
            // Nil: nothing new within BLOCK.
            return Ok(());
        };
        for stream in &streams {
            let Value::Array(parts) = stream else {
                continue;
            };
            let [name, entries] = parts.as_slice() else {
                continue;
            };
            let Some(at) = bytes(name)
                .and_then(|name| watched.iter().position(|(ns, _)| ns.log_key() == name))
            else {
                continue;
            };
            let (Some((_, hub)), Some(&cursor)) = (watched.get(at), cursors.get(at)) else {
                continue;
            };
            // A hub whose first watch came meanwhile restarted where that watch starts:
            // this reply is for its old position.
            if hub.last_seq() != cursor {
                continue;
            }
            for event in parse_entries(entries) {
                let last = hub.last_seq();
                if event.seq > last + 1 {
                    // The log was trimmed past what was read.
                    hub.lag(event.seq - last - 1);
                }
                hub.publish_at(event.seq, &event.key, event.kind);
            }
        }
        Ok(())
    }
}

/// Restarts the hub of every log whose last `seq` went below what was read.
fn check_counters(
    conn: &mut Connection,
    watched: &[(Namespace, Arc<Hub>)],
) -> redis::RedisResult<()> {
    for (ns, hub) in watched {
        let seq: u64 = scripts::SEQ
            .key(ns.seq_key())
            .key(ns.log_key())
            .invoke(conn)?;
        if seq < hub.last_seq() {
            hub.restart_at(seq);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            Value::BulkString(id.as_bytes().to_vec()),
            Value::Array(
                fields
                    .iter()
                    .map(|f| Value::BulkString(f.as_bytes().to_vec()))
                    .collect(),
            ),
        ])
    }

    #[test]
    fn entries_parse_into_events() {
        let e = parse_entry(&entry("42-0", &["k", "a/b", "t", "d"])).unwrap();
        assert_eq!((e.seq, &*e.key, e.kind), (42, "a/b", EventKind::Delete));
        assert!(parse_entry(&entry("x-0", &["k", "a", "t", "p"])).is_none());
        assert!(parse_entry(&entry("1-0", &["k", "a", "t", "?"])).is_none());
        assert!(parse_entry(&entry("1-0", &["t", "p"])).is_none());
        let not_utf8 = Value::Array(vec![
            Value::BulkString(b"1-0".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"k".to_vec()),
                Value::BulkString(vec![0xff]),
                Value::BulkString(b"t".to_vec()),
                Value::BulkString(b"p".to_vec()),
            ]),
        ]);
        assert!(parse_entry(&not_utf8).is_none());
    }
}
