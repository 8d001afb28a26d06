//! [`RedisDriver`]: the [`Driver`] implementation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hodor_core::driver::{
    Capabilities, Driver, DriverError, DriverResult, Gauges, check_name, increment_counter,
    parse_config,
};
use hodor_core::watch::{Event, Hub, Start, Watch, WatchRequest};
use hodor_core::{Applied, BackendKind, Contract, Echo, Metadata, Page, Version};

use crate::changelog::{Changelog, parse_entries};
use crate::config::RedisConfig;
use crate::error::BackendError;
use crate::keys::{Namespace, lex_range, page_range};
use crate::pool::{Op, Pool};
use crate::pruner;
use crate::scripts;

/// The name the driver registers under.
pub const DRIVER_NAME: &str = "redis";

/// A contract's handle on its namespace of one Redis server.
///
/// Most code opens it by name through [`Contract::new`]; [`crate::open`] opens it without
/// the registry.
pub struct RedisDriver {
    pool: Arc<Pool>,
    namespace: Namespace,
    name: String,
    /// The contract's hub, shared with every handle on it in this process.
    hub: Arc<Hub>,
    /// Set by the first `close` (or by `Drop`): the registration with the pruner is given
    /// back exactly once per handle.
    closed: AtomicBool,
}

impl std::fmt::Debug for RedisDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDriver")
            .field("name", &Echo(&self.name))
            .field("server", &self.pool.server())
            .field("config", &self.pool.config)
            .finish()
    }
}

impl RedisDriver {
    /// Opens the contract `name` on the server `config` names.
    ///
    /// Contracts opened with equal configs share one connection pool. Opening checks that
    /// the server answers and supports what the driver needs (Redis 6.2 or later, or
    /// Valkey): an unreachable server is a `Backend` error here, within
    /// `connect_timeout_ms`, rather than at the first call. An invalid name (the key rules)
    /// is `InvalidInput` before anything is opened. A failed open leaves nothing behind:
    /// no registration, no thread.
    ///
    /// Closing is idempotent, and a handle dropped without `close` releases what it holds.
    pub fn open(name: &str, config: &RedisConfig) -> DriverResult<RedisDriver> {
        check_name(name)?;
        // Opening is connecting: all of it, the check below included, within
        // connect_timeout_ms.
        let deadline = Instant::now() + config.connect_timeout();
        let pool = Pool::shared(config)?;
        let namespace = Namespace::new(name);
        // The cheapest call that proves the connection, the credentials, the database and
        // ZRANGE ... BYLEX (Redis 6.2) all work.
        let probe = pool.run_by(deadline, Op::Read, |conn| {
            redis::cmd("ZRANGE")
                .arg(namespace.index_key())
                .arg("-")
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .query::<Vec<Vec<u8>>>(conn)
        });
        if let Err(error) = probe {
            return Err(match error {
                DriverError::Backend { source, .. }
                    if source.to_string().contains("syntax error") =>
                {
                    DriverError::backend_failure(
                        BackendKind::Other,
                        Applied::No,
                        BackendError::other(format!(
                            "{} does not support ZRANGE ... BYLEX; hodor-redis needs Redis 6.2 \
                             or later, or Valkey ({source})",
                            pool.server()
                        )),
                    )
                }
                other => other,
            });
        }
        pool.register(&namespace)?;
        let hub = pool.changelog.hub(&namespace, name, config.watch_history);
        Ok(RedisDriver {
            pool,
            namespace,
            name: name.to_owned(),
            hub,
            closed: AtomicBool::new(false),
        })
    }

    /// The change log's sequence now: the `seq` of the last change.
    fn current_seq(&self) -> DriverResult<u64> {
        self.pool.run(Op::Read, |conn| {
            scripts::SEQ
                .key(self.namespace.seq_key())
                .key(self.namespace.log_key())
                .invoke::<u64>(conn)
        })
    }

    /// The live keys `request` matches and the `seq` they are current to, in one step.
    fn snapshot(&self, request: &WatchRequest<'_>) -> DriverResult<(u64, Vec<String>)> {
        let (min, max) = lex_range(request.prefix);
        let mut reply = self.pool.run(Op::Read, |conn| {
            scripts::SNAPSHOT
                .key(self.namespace.index_key())
                .key(self.namespace.expiry_key())
                .key(self.namespace.seq_key())
                .key(self.namespace.log_key())
                .arg(&min)
                .arg(&max)
                .invoke::<Vec<Vec<u8>>>(conn)
        })?;
        if reply.is_empty() {
            return Err(self.unexpected_watch("a snapshot without its sequence"));
        }
        let seq = std::str::from_utf8(&reply.remove(0))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| self.unexpected_watch("a sequence that is not a number"))?;
        let keys = self.keys_from(reply)?;
        let keys = keys.into_iter().filter(|k| request.matches(k)).collect();
        Ok((seq, keys))
    }

    /// Checks that the change log still holds every change after `after`.
    fn check_resumable(&self, after: u64) -> DriverResult<()> {
        let (seq, first): (u64, u64) = self.pool.run(Op::Read, |conn| {
            scripts::LOG_AFTER
                .key(self.namespace.seq_key())
                .key(self.namespace.log_key())
                .arg(after)
                .invoke::<(u64, u64)>(conn)
        })?;
        if after > seq {
            return Err(DriverError::InvalidInput(format!(
                "seq {after} is ahead of the contract's last seq, {seq}: it is not a seq this \
                 contract gave out"
            )));
        }
        if seq > after && first != after + 1 {
            // The log holds the changes after `first - 1` (or none at all).
            let floor = if first == 0 { seq } else { first - 1 };
            return Err(DriverError::Compacted {
                requested: after,
                floor,
            });
        }
        Ok(())
    }

    /// The changes `(after, through]` from the log, every one of them, or `Compacted`.
    fn read_log(&self, after: u64, through: u64) -> DriverResult<Vec<Event>> {
        let reply: redis::Value = self.pool.run(Op::Read, |conn| {
            redis::cmd("XRANGE")
                .arg(self.namespace.log_key())
                .arg(format!("({after}-0"))
                .arg(format!("{through}-0"))
                .query(conn)
        })?;
        let events = parse_entries(&reply);
        let complete = events.len() as u64 == through - after
            && events.iter().zip(after + 1..).all(|(e, seq)| e.seq == seq);
        if !complete {
            let floor = events.first().map_or(through, |e| e.seq.saturating_sub(1));
            return Err(DriverError::Compacted {
                requested: after,
                floor,
            });
        }
        Ok(events)
    }

    /// Attaches a watch to the hub after `after`, reading from the log what the hub's
    /// history no longer holds.
    fn attach(&self, request: &WatchRequest<'_>, after: u64) -> DriverResult<Watch> {
        let mut attempts = 0;
        loop {
            match self.hub.subscribe(request, after) {
                Err(DriverError::Compacted { floor, .. }) if attempts < 5 => {
                    attempts += 1;
                    let events = self.read_log(after, floor)?;
                    match self
                        .hub
                        .subscribe_with_backfill(request, after, floor, &events)
                    {
                        // The hub moved on meanwhile: read more.
                        Err(DriverError::Compacted { .. }) => {}
                        other => return other,
                    }
                }
                other => return other,
            }
        }
    }
}

impl RedisDriver {
    /// The contract's entries as the pruner sees them: how many keys the index holds, expired
    /// ones not yet pruned included.
    fn index_len(&self) -> DriverResult<u64> {
        self.pool.run(Op::Read, |conn| {
            redis::cmd("ZCARD")
                .arg(self.namespace.index_key())
                .query::<u64>(conn)
        })
    }
}

impl RedisDriver {
    /// Runs a script that writes one whole entry (`SET`, `CREATE`, `SET_IF_VERSION`): they
    /// take the same keys and first arguments, then `extra`, and answer 1 if they wrote.
    fn write_entry(
        &self,
        op: Op,
        script: &redis::Script,
        key: &str,
        value: &Bytes,
        ttl: Option<Duration>,
        extra: Option<&str>,
    ) -> DriverResult<bool> {
        let modified = now_nanos();
        let ttl = ttl_arg(ttl);
        let value_key = self.namespace.value_key(key);
        let wrote = self.pool.run(op, |conn| {
            let mut invocation = script.key(&value_key);
            invocation
                .key(self.namespace.index_key())
                .key(self.namespace.expiry_key())
                .key(self.namespace.version_key())
                .arg(key)
                .arg(&value[..])
                .arg(modified)
                .arg(&ttl)
                .arg(pruner::LIMIT);
            if let Some(extra) = extra {
                invocation.arg(extra);
            }
            scripts::log_args(&mut invocation, &self.namespace, self.keep());
            invocation.invoke::<u8>(conn)
        })?;
        Ok(wrote == 1)
    }

    /// The index members in `min..max` if no deadline of the contract has passed, else
    /// `None`: then some of them may be expired, and `scripts::LIST` must filter them.
    ///
    /// One transaction, so the three replies describe one instant: the server's clock, the
    /// earliest deadline in the expiry set, and the range. Every member of an entry with a
    /// TTL has its deadline in the expiry set (the invariant `scripts::write` keeps), so an
    /// earliest deadline still ahead means every member is live, by the rule `scripts`
    /// states for deadlines (live while `now < deadline`, in whole milliseconds). Nothing
    /// runs a script: the server only ranges, as a plain `ZRANGE ... BYLEX` would.
    fn list_if_none_due(&self, min: &[u8], max: &[u8]) -> DriverResult<Option<Vec<Vec<u8>>>> {
        let (time, earliest, members): (Vec<u64>, redis::Value, Vec<Vec<u8>>) =
            self.pool.run(Op::Read, |conn| {
                redis::pipe()
                    .atomic()
                    .cmd("TIME")
                    .cmd("ZRANGE")
                    .arg(self.namespace.expiry_key())
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .cmd("ZRANGE")
                    .arg(self.namespace.index_key())
                    .arg(min)
                    .arg(max)
                    .arg("BYLEX")
                    .query(conn)
            })?;
        let [seconds, micros] = time.as_slice() else {
            return Ok(None);
        };
        let now_ms = seconds.saturating_mul(1000).saturating_add(micros / 1000);
        Ok(match earliest_deadline(&earliest) {
            Some(None) => Some(members),
            // Deadlines are whole milliseconds, far below 2^53: exact as doubles.
            Some(Some(deadline)) if deadline > now_ms as f64 => Some(members),
            // Something is due, or a reply this code does not understand: the script
            // decides, member by member.
            _ => None,
        })
    }

    /// A reply a watch did not expect.
    fn unexpected_watch(&self, what: &str) -> DriverError {
        unexpected(
            Applied::No,
            format!(
                "{} answered a watch of contract {} with {what}",
                self.pool.server(),
                Echo(&self.name)
            ),
        )
    }

    /// The change log's history length (0: changes are counted, not logged).
    fn keep(&self) -> u64 {
        self.pool.config.watch_history
    }

    /// The keys of index members, which hodor wrote from `&str` keys.
    fn keys_from(&self, members: Vec<Vec<u8>>) -> DriverResult<Vec<String>> {
        members
            .into_iter()
            .map(|member| {
                String::from_utf8(member).map_err(|e| {
                    DriverError::backend_failure(
                        BackendKind::Other,
                        Applied::No,
                        BackendError::other(format!(
                            "the index of contract {} holds a key that is not UTF-8 ({e}); it was \
                             written by something other than hodor",
                            Echo(&self.name)
                        )),
                    )
                })
            })
            .collect()
    }
}

impl Drop for RedisDriver {
    fn drop(&mut self) {
        // Nobody is left to see an error, and close() cannot fail.
        let _ = self.close();
    }
}

/// The registry's entry point: `Contract::new("redis", name, config)`.
pub(crate) fn open_registered(
    name: &str,
    config: Option<serde_json::Value>,
) -> DriverResult<Box<dyn Driver>> {
    let config: RedisConfig = parse_config(config)?;
    Ok(Box::new(RedisDriver::open(name, &config)?))
}

/// Opens the Redis contract `name` as a [`Contract`], without the registry.
///
/// ```no_run
/// let sessions = hodor_redis::open("sessions", &hodor_redis::RedisConfig::new("redis://127.0.0.1:6379/0"))?;
/// sessions.set("user/1", "alice", None)?;
/// # Ok::<(), hodor_core::Error>(())
/// ```
pub fn open(name: &str, config: &RedisConfig) -> hodor_core::Result<Contract> {
    let driver =
        RedisDriver::open(name, config).map_err(|e| e.into_error(DRIVER_NAME, name, "open"))?;
    Contract::from_driver(DRIVER_NAME, name, driver)
}

/// Wall-clock nanoseconds since the epoch, as stored in an entry's `m` field.
fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn ttl_arg(ttl: Option<Duration>) -> String {
    // The Contract hands over whole milliseconds, at most 100 years.
    ttl.map(|d| d.as_millis().to_string()).unwrap_or_default()
}

/// The score in a `ZRANGE key 0 0 WITHSCORES` reply: `Some(None)` for an empty set,
/// `None` for a reply of another shape. RESP2 answers `[member, score]`, RESP3
/// `[[member, score]]`.
fn earliest_deadline(reply: &redis::Value) -> Option<Option<f64>> {
    use redis::Value;
    let Value::Array(items) = reply else {
        return None;
    };
    let score = match items.as_slice() {
        [] => return Some(None),
        [Value::Array(pair)] => match pair.as_slice() {
            [_, score] => score,
            _ => return None,
        },
        [_, score] => score,
        _ => return None,
    };
    match score {
        Value::Double(d) => Some(Some(*d)),
        Value::BulkString(text) => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .map(Some),
        _ => None,
    }
}

/// Marks a version that is an entry's `m` field (an entry written before versions
/// existed) rather than a value of the contract's counter, which never gets this high.
const FROM_MODIFIED: u128 = 1 << 127;

/// The version of an entry: its `r` field, or for an entry written before versions
/// existed, its `m` field, tagged.
fn version_of(counter: Option<u64>, modified_ns: u64) -> Version {
    match counter {
        Some(n) => Version::from_raw(u128::from(n)),
        None => Version::from_raw(FROM_MODIFIED | u128::from(modified_ns)),
    }
}

/// The text `SET_IF_VERSION` compares with what the entry holds (see `version_of`). A
/// version no entry of this driver can have gives a text no entry matches.
fn version_arg(version: Version) -> String {
    let raw = version.to_raw();
    if raw & FROM_MODIFIED != 0 {
        match u64::try_from(raw & !FROM_MODIFIED) {
            Ok(modified) => format!("m{modified}"),
            Err(_) => "none".to_owned(),
        }
    } else {
        match u64::try_from(raw) {
            Ok(counter) => format!("r{counter}"),
            Err(_) => "none".to_owned(),
        }
    }
}

/// An unexpected reply: the script and the driver disagree (a bug, or another program's
/// data under the contract's keys).
fn unexpected(applied: Applied, what: String) -> DriverError {
    DriverError::backend_failure(BackendKind::Other, applied, BackendError::other(what))
}

impl Driver for RedisDriver {
    fn capabilities(&self) -> Capabilities {
        // Every call is a round trip to a server, so it blocks.
        Capabilities::NONE
            .ttl(true)
            .atomic_bulk(true)
            .persistent(true)
            .conditional(true)
            .watch(self.pool.config.watch_history > 0)
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        self.write_entry(Op::Write, &scripts::SET, key, &value, ttl, None)
            .map(drop)
    }

    // Conditional writes are not sent again after a dropped connection (`WriteOnce`): a
    // create or compare-and-set that the first attempt applied would answer `false` the
    // second time, and an increment would count twice.
    fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<bool> {
        self.write_entry(Op::WriteOnce, &scripts::CREATE, key, &value, ttl, None)
    }

    fn set_if_version(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Version,
    ) -> DriverResult<bool> {
        let expected = version_arg(expected);
        self.write_entry(
            Op::WriteOnce,
            &scripts::SET_IF_VERSION,
            key,
            &value,
            ttl,
            Some(&expected),
        )
    }

    fn increment(&self, key: &str, delta: i64) -> DriverResult<i64> {
        let modified = now_nanos();
        let value_key = self.namespace.value_key(key);
        let reply = self.pool.run(Op::WriteOnce, |conn| {
            let mut invocation = scripts::INCREMENT.prepare_invoke();
            invocation
                .key(&value_key)
                .key(self.namespace.index_key())
                .key(self.namespace.expiry_key())
                .key(self.namespace.version_key())
                .arg(key)
                .arg(delta)
                .arg(modified)
                .arg(pruner::LIMIT);
            scripts::log_args(&mut invocation, &self.namespace, self.keep());
            invocation.invoke::<Vec<Vec<u8>>>(conn)
        })?;
        let (outcome, value, why) = match reply.as_slice() {
            [outcome, value] => (outcome.as_slice(), value.as_slice(), &[][..]),
            [outcome, value, why] => (outcome.as_slice(), value.as_slice(), why.as_slice()),
            _ => {
                return Err(unexpected(
                    Applied::Unknown,
                    format!("the increment script answered {} values", reply.len()),
                ));
            }
        };
        match outcome {
            b"ok" => std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| {
                    unexpected(
                        Applied::Unknown,
                        format!(
                            "the server stored a counter that is not an integer ({} bytes)",
                            value.len()
                        ),
                    )
                }),
            // The server refused before writing anything: say why, as every driver does.
            // A counter it could have added to was refused for another reason (out of
            // memory, say): its own words then.
            _ => match increment_counter(Some(value), delta) {
                Err(refused) => Err(refused),
                Ok(_) => Err(unexpected(
                    Applied::No,
                    format!(
                        "the server refused the increment: {}",
                        Echo::prose(&String::from_utf8_lossy(why))
                    ),
                )),
            },
        }
    }

    fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> DriverResult<Page> {
        let (min, max) = page_range(prefix, start_after);
        let (more, members) = self.pool.run(Op::Read, |conn| {
            scripts::LIST_PAGE
                .key(self.namespace.index_key())
                .key(self.namespace.expiry_key())
                .arg(&min)
                .arg(&max)
                .arg(limit)
                .invoke::<(u8, Vec<Vec<u8>>)>(conn)
        })?;
        let keys = self.keys_from(members)?;
        let next = if more == 1 {
            keys.last().cloned()
        } else {
            None
        };
        Ok(Page::new(keys, next))
    }

    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        let value_key = self.namespace.value_key(key);
        let value = self.pool.run(Op::Read, |conn| {
            redis::cmd("HGET")
                .arg(&value_key)
                .arg("v")
                .query::<Option<Vec<u8>>>(conn)
        })?;
        Ok(value.map(Bytes::from))
    }

    fn delete(&self, key: &str) -> DriverResult<bool> {
        let value_key = self.namespace.value_key(key);
        let removed = self.pool.run(Op::WriteOnce, |conn| {
            let mut invocation = scripts::DELETE.prepare_invoke();
            invocation
                .key(&value_key)
                .key(self.namespace.index_key())
                .key(self.namespace.expiry_key())
                .arg(key);
            scripts::log_args(&mut invocation, &self.namespace, self.keep());
            invocation.invoke::<u64>(conn)
        })?;
        Ok(removed > 0)
    }

    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        let (min, max) = lex_range(prefix);
        let members = match self.list_if_none_due(&min, &max)? {
            Some(members) => members,
            None => self.pool.run(Op::Read, |conn| {
                scripts::LIST
                    .key(self.namespace.index_key())
                    .key(self.namespace.expiry_key())
                    .arg(&min)
                    .arg(&max)
                    .invoke::<Vec<Vec<u8>>>(conn)
            })?,
        };
        self.keys_from(members)
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        let value_key = self.namespace.value_key(key);
        let found = self.pool.run(Op::Read, |conn| {
            scripts::STAT
                .key(&value_key)
                .invoke::<Option<(u64, u64, Option<u64>, Option<u64>)>>(conn)
        })?;
        Ok(found.map(|(size, modified_ns, deadline_ms, counter)| {
            Metadata::new(
                size,
                UNIX_EPOCH + Duration::from_nanos(modified_ns),
                deadline_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
                version_of(counter, modified_ns),
            )
        }))
    }

    fn exists(&self, key: &str) -> DriverResult<bool> {
        let value_key = self.namespace.value_key(key);
        self.pool.run(Op::Read, |conn| {
            redis::cmd("EXISTS").arg(&value_key).query::<bool>(conn)
        })
    }

    fn close(&self) -> DriverResult<()> {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.pool.unregister(&self.namespace);
        }
        Ok(())
    }

    fn get_many(&self, keys: &[&str]) -> DriverResult<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One script, not a MULTI pipeline: one reply to wait for (so one read timeout
        // bounds the call), and atomic all the same.
        let mut invocation = scripts::GET_MANY.prepare_invoke();
        for key in keys {
            invocation.key(self.namespace.value_key(key));
        }
        let values = self.pool.run(Op::Read, |conn| {
            invocation.invoke::<Vec<Option<Vec<u8>>>>(conn)
        })?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Option<Duration>) -> DriverResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let modified = now_nanos();
        let ttl = ttl_arg(ttl);
        let mut invocation = scripts::SET_MANY.prepare_invoke();
        invocation
            .key(self.namespace.index_key())
            .key(self.namespace.expiry_key())
            .key(self.namespace.version_key())
            .arg(modified)
            .arg(&ttl)
            .arg(pruner::LIMIT);
        // A key given twice is written once, with its last value: one change, one event.
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        let mut last: Vec<&(&str, Bytes)> = entries
            .iter()
            .rev()
            .filter(|(k, _)| seen.insert(*k))
            .collect();
        last.reverse();
        for (key, value) in last {
            invocation
                .key(self.namespace.value_key(key))
                .arg(*key)
                .arg(&value[..]);
        }
        scripts::log_args(&mut invocation, &self.namespace, self.keep());
        self.pool
            .run(Op::Write, |conn| invocation.invoke::<u64>(conn))
            .map(drop)
    }

    fn delete_many(&self, keys: &[&str]) -> DriverResult<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut invocation = scripts::DELETE_MANY.prepare_invoke();
        invocation
            .key(self.namespace.index_key())
            .key(self.namespace.expiry_key());
        for key in keys {
            invocation.key(self.namespace.value_key(key)).arg(*key);
        }
        scripts::log_args(&mut invocation, &self.namespace, self.keep());
        let removed = self
            .pool
            .run(Op::WriteOnce, |conn| invocation.invoke::<u64>(conn))?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    fn gauges(&self) -> Gauges {
        let mut gauges = Gauges::default();
        gauges.entries = self.index_len().ok();
        gauges.watches = Some(self.hub.watch_count());
        gauges
    }

    fn watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        if self.keep() == 0 {
            return Err(DriverError::Unsupported {
                operation: "watch",
                reason: Some("the config's watch_history is 0".to_owned()),
            });
        }
        Changelog::start_reader(&self.pool)?;
        match request.start {
            Start::Snapshot => {
                let (seq, keys) = self.snapshot(request)?;
                Ok(self.attach(request, seq)?.with_snapshot(keys))
            }
            Start::After(after) => {
                self.check_resumable(after)?;
                self.attach(request, after)
            }
            _ => {
                let seq = self.current_seq()?;
                self.attach(request, seq)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support;

    /// The contract names a pool's pruner visits.
    fn registered(pool: &Pool) -> Vec<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = pool
            .namespaces()
            .iter()
            .map(|ns| ns.index_key().to_vec())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_earliest_deadline_is_read_from_either_protocol() {
        use redis::Value;
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(earliest_deadline(&Value::Array(vec![])), Some(None));
        let resp2 = Value::Array(vec![bulk("k"), bulk("1764604800123")]);
        assert_eq!(earliest_deadline(&resp2), Some(Some(1_764_604_800_123.0)));
        let resp3 = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Double(1_764_604_800_123.0),
        ])]);
        assert_eq!(earliest_deadline(&resp3), Some(Some(1_764_604_800_123.0)));
        // Anything else is not understood, so the driver falls back to the script.
        for odd in [
            Value::Nil,
            Value::Array(vec![bulk("k"), bulk("soon")]),
            Value::Array(vec![bulk("k"), bulk("1"), bulk("l"), bulk("2")]),
            Value::Array(vec![Value::Array(vec![bulk("k")])]),
        ] {
            assert_eq!(earliest_deadline(&odd), None, "{odd:?}");
        }
    }

    #[test]
    fn an_invalid_name_is_never_registered() {
        let Some(url) = support::url("an_invalid_name_is_never_registered") else {
            return;
        };
        // An interval no other test uses: this pool is this test's alone.
        let config = RedisConfig::new(url).prune_interval_ms(3_600_000 - 7);
        let keeper_name = support::unique("keeper");
        let keeper = RedisDriver::open(&keeper_name, &config).unwrap();
        let only_keeper = registered(&keeper.pool);
        assert_eq!(only_keeper.len(), 1);
        for name in [String::new(), "a\0b".to_owned(), "x".repeat(2000)] {
            let e = crate::open(&name, &config).unwrap_err();
            assert!(matches!(e, hodor_core::Error::InvalidInput { .. }), "{e:?}");
            let e = RedisDriver::open(&name, &config).unwrap_err();
            assert!(matches!(e, DriverError::InvalidInput(_)), "{e:?}");
        }
        assert_eq!(
            registered(&keeper.pool),
            only_keeper,
            "no invalid name stays"
        );
    }

    #[test]
    fn a_driver_releases_its_registration_once_on_close_and_on_drop() {
        let Some(url) = support::url("a_driver_releases_its_registration") else {
            return;
        };
        let config = RedisConfig::new(url).prune_interval_ms(3_600_000 - 8);
        let name = support::unique("shared");
        let first = RedisDriver::open(&name, &config).unwrap();
        let second = RedisDriver::open(&name, &config).unwrap();
        let dropped = RedisDriver::open(&support::unique("dropped"), &config).unwrap();
        assert_eq!(registered(&first.pool).len(), 2);
        drop(dropped);
        assert_eq!(registered(&first.pool).len(), 1, "drop releases");
        // Closing one handle twice must not release the other handle's registration.
        second.close().unwrap();
        second.close().unwrap();
        drop(second);
        assert_eq!(registered(&first.pool).len(), 1, "close releases once");
        first.close().unwrap();
        assert!(registered(&first.pool).is_empty());
    }
}
