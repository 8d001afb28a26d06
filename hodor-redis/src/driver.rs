//! [`RedisDriver`]: the [`Driver`] implementation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hodor_core::driver::{
    Capabilities, Driver, DriverError, DriverResult, Gauges, check_name, parse_config,
};
use hodor_core::watch::{Event, Hub, Start, Watch, WatchRequest};
use hodor_core::{Applied, BackendKind, Contract, Echo, Metadata};

use crate::changelog::{Changelog, parse_entries};
use crate::config::RedisConfig;
use crate::error::BackendError;
use crate::keys::{Namespace, lex_range};
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
            return Err(self.unexpected("a snapshot without its sequence"));
        }
        let seq = std::str::from_utf8(&reply.remove(0))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| self.unexpected("a sequence that is not a number"))?;
        let keys = self.members(reply)?;
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

    fn unexpected(&self, what: &str) -> DriverError {
        DriverError::backend_failure(
            BackendKind::Other,
            Applied::No,
            BackendError::other(format!(
                "{} answered a watch of contract {} with {what}",
                self.pool.server(),
                Echo(&self.name)
            )),
        )
    }

    /// Index members as keys; a member that is not UTF-8 was written by something else.
    fn members(&self, members: Vec<Vec<u8>>) -> DriverResult<Vec<String>> {
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

impl Driver for RedisDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .ttl(true)
            .atomic_bulk(true)
            .persistent(true)
            .watch(self.pool.config.watch_history > 0)
    }

    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> DriverResult<()> {
        let modified = now_nanos();
        let ttl = ttl_arg(ttl);
        let value_key = self.namespace.value_key(key);
        self.pool.run(Op::Write, |conn| {
            let mut invocation = scripts::SET.prepare_invoke();
            invocation
                .key(&value_key)
                .key(self.namespace.index_key())
                .key(self.namespace.expiry_key())
                .arg(key)
                .arg(&value[..])
                .arg(modified)
                .arg(&ttl)
                .arg(pruner::LIMIT);
            scripts::log_args(&mut invocation, &self.namespace, self.keep());
            invocation.invoke::<()>(conn)
        })
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
        let members = self.pool.run(Op::Read, |conn| {
            scripts::LIST
                .key(self.namespace.index_key())
                .key(self.namespace.expiry_key())
                .arg(&min)
                .arg(&max)
                .invoke::<Vec<Vec<u8>>>(conn)
        })?;
        self.members(members)
    }

    fn stat(&self, key: &str) -> DriverResult<Option<Metadata>> {
        let value_key = self.namespace.value_key(key);
        let found = self.pool.run(Op::Read, |conn| {
            scripts::STAT
                .key(&value_key)
                .invoke::<Option<(u64, u64, Option<u64>)>>(conn)
        })?;
        Ok(found.map(|(size, modified_ns, deadline_ms)| Metadata {
            size,
            modified: UNIX_EPOCH + Duration::from_nanos(modified_ns),
            expires_at: deadline_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
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

impl RedisDriver {
    /// The change log's history length (0: changes are counted, not logged).
    fn keep(&self) -> u64 {
        self.pool.config.watch_history
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
