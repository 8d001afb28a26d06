//! hodor-redis against the plain `redis` crate doing the same work, on one local server.
//!
//! The phase starts its own `redis-server` from `PATH` on a free loopback port, persistence
//! off, and stops it when it is done (or when the benchmark exits, however it exits). Without
//! `redis-server` it is skipped, and the report says so.
//!
//! Both clients use the synchronous redis crate over TCP and a pool of connections, taken
//! and given back per call: hodor-redis its own pool (`pool_size` 8, the default), the
//! plain client a mutex-guarded stack of connections opened on demand. Both hold the same
//! keys with the same 64-byte values:
//!
//! | row | hodor-redis, through `Contract` | plain redis crate |
//! |---|---|---|
//! | get (hit) | `get(key)`: `HGET` of the entry's hash | `GET key` |
//! | set with a TTL | `set(key, value, Some(ttl))`: one script that writes the entry, its index and its deadline | `SET key value PX ttl` |
//! | list 100 keys | `list(prefix)`: one `MULTI` of `TIME`, the earliest deadline and `ZRANGE ... BYLEX` (a script that checks each member's deadline only when one has passed) | `ZRANGE index [prefix [prefix\xff BYLEX` on a sorted set of the same keys |
//!
//! Every key is loaded with the TTL the set rows use, so `list` pays for the deadline check
//! its correctness needs (none of those deadlines passes during the run). Rows run on 1 and
//! 8 client threads; hodor and plain alternate, the one going first swapping every
//! repetition. After each measurement the server's `INFO commandstats` gives the server
//! time per operation, which tells the server's work apart from the client's and the
//! network's.

use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hodor_core::Contract;
use parking_lot::Mutex;
use redis::{Client, Connection, RedisResult};
use serde_json::json;

use crate::Progress;
use crate::keys::{Values, keys, prefix};
use crate::plan::Plan;
use crate::results::{RedisOp, RedisResults, RedisRow, Summary};
use crate::rng::Rng;

#[path = "../../hodor-redis/tests/support/server.rs"]
mod launcher;

/// A `redis-server` this phase started (the watch phase starts one too): the launcher
/// hodor-redis's tests use, so the server runs with the same settings and dies with the
/// benchmark however it exits.
pub(crate) struct Server(launcher::Server);

impl Server {
    /// Starts a server on a free port, or says why it could not.
    pub(crate) fn start() -> Result<Server, String> {
        if !Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Err("redis-server is not on PATH (apt-get install redis-server)".to_owned());
        }
        launcher::Server::start()
            .map(Server)
            .ok_or_else(|| "redis-server did not start".to_owned())
    }

    pub(crate) fn port(&self) -> u16 {
        self.0.port
    }

    fn url(&self) -> String {
        self.0.url()
    }

    /// A connection of its own, for loading data and reading statistics.
    fn admin(&self) -> RedisResult<Connection> {
        let mut conn =
            Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))?;
        redis::cmd("PING").query::<String>(&mut conn)?;
        Ok(conn)
    }
}

/// The plain client's pool: idle connections on a stack, a new one opened when none is idle,
/// a connection whose call failed dropped rather than reused.
struct PlainPool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
}

impl PlainPool {
    fn run<T>(&self, op: impl FnOnce(&mut Connection) -> RedisResult<T>) -> RedisResult<T> {
        let popped = self.idle.lock().pop();
        let mut conn = match popped {
            Some(conn) => conn,
            None => self.client.get_connection()?,
        };
        let result = op(&mut conn);
        if result.is_ok() {
            self.idle.lock().push(conn);
        }
        result
    }
}

/// One side of a row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Hodor,
    Plain,
}

/// What both sides work on.
struct Setup<'a> {
    hodor: &'a Contract,
    plain: &'a PlainPool,
    keys: &'a [String],
    values: &'a Values,
    ttl: Duration,
    matches: u64,
}

const PLAIN_INDEX: &str = "plain:index";

impl Setup<'_> {
    /// Runs one operation on key number `i`; `false` if it failed or answered wrongly.
    fn call(&self, side: Side, op: RedisOp, i: usize) -> bool {
        let key = self.keys[i].as_str();
        match (side, op) {
            (Side::Hodor, RedisOp::Get) => self.hodor.get(key).is_ok(),
            (Side::Plain, RedisOp::Get) => matches!(
                self.plain
                    .run(|c| redis::cmd("GET").arg(key).query::<Option<Vec<u8>>>(c)),
                Ok(Some(_))
            ),
            (Side::Hodor, RedisOp::Set) => self
                .hodor
                .set(key, Bytes::clone(self.values.get(i)), Some(self.ttl))
                .is_ok(),
            (Side::Plain, RedisOp::Set) => self
                .plain
                .run(|c| {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(&self.values.get(i)[..])
                        .arg("PX")
                        .arg(self.ttl.as_millis() as u64)
                        .query::<()>(c)
                })
                .is_ok(),
            (side, RedisOp::List) => {
                let n = self.keys.len() as u64 / self.matches;
                let p = prefix(i as u64 % n.max(1) * self.matches, self.matches);
                let found = match side {
                    Side::Hodor => self.hodor.list(&p).map(|k| k.len()).ok(),
                    Side::Plain => {
                        let mut max = p.clone().into_bytes();
                        max.push(0xff);
                        self.plain
                            .run(|c| {
                                redis::cmd("ZRANGE")
                                    .arg(PLAIN_INDEX)
                                    .arg(format!("[{p}"))
                                    .arg([&b"["[..], &max].concat())
                                    .arg("BYLEX")
                                    .query::<Vec<Vec<u8>>>(c)
                            })
                            .map(|k| k.len())
                            .ok()
                    }
                };
                found == Some(self.matches as usize)
            }
        }
    }

    /// Runs `op` on `threads` threads for `duration`; thousand operations per second and
    /// failed calls.
    fn measure(&self, side: Side, op: RedisOp, threads: usize, duration: Duration) -> (f64, u64) {
        let barrier = Barrier::new(threads);
        let per_thread: Vec<(u64, u64, Duration)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut rng = Rng::new(0x4ed1 ^ t as u64);
                        barrier.wait();
                        let start = Instant::now();
                        let (mut ops, mut errors) = (0u64, 0u64);
                        while start.elapsed() < duration {
                            let i = rng.below(self.keys.len() as u64) as usize;
                            if !self.call(side, op, i) {
                                errors += 1;
                            }
                            ops += 1;
                        }
                        (ops, errors, start.elapsed())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a Redis benchmark thread panicked"))
                .collect()
        });
        let kops = per_thread
            .iter()
            .map(|(ops, _, t)| *ops as f64 / t.as_secs_f64().max(1e-9) / 1e3)
            .sum();
        (kops, per_thread.iter().map(|(_, e, _)| e).sum())
    }
}

/// Microseconds the server spent in `commands` since the last `CONFIG RESETSTAT`, from
/// `INFO commandstats` (a script's time includes the commands it ran).
fn server_usec(admin: &mut Connection, commands: &[&str]) -> Option<f64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(admin).ok()?;
    usec_of(&info, commands)
}

/// The `usec` of `commands` in the text of `INFO commandstats`, summed.
fn usec_of(info: &str, commands: &[&str]) -> Option<f64> {
    let mut total = 0.0;
    for line in info.lines() {
        let Some((name, stats)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if commands.contains(&name) {
            total += stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("usec="))?
                .parse::<f64>()
                .ok()?;
        }
    }
    Some(total)
}

/// The commands a side's operation arrives as (not those a script runs inside).
fn top_level(side: Side, op: RedisOp) -> &'static [&'static str] {
    match (side, op) {
        (Side::Hodor, RedisOp::Get) => &["hget"],
        (Side::Hodor, RedisOp::Set) => &["evalsha", "eval"],
        // A transaction's time is in its EXEC; the script runs when a deadline has passed.
        (Side::Hodor, RedisOp::List) => &["multi", "exec", "evalsha", "eval"],
        (Side::Plain, RedisOp::Get) => &["get"],
        (Side::Plain, RedisOp::Set) => &["set"],
        (Side::Plain, RedisOp::List) => &["zrange"],
    }
}

/// Loads the keys into both sides: hodor-redis entries, plain strings and a plain sorted
/// set, all with the TTL of the set rows (the sorted set has none: a plain client has
/// nowhere to keep one per member).
fn load(setup: &Setup<'_>, admin: &mut Connection) -> Result<(), String> {
    let keys = setup.keys;
    for (c, chunk) in keys.chunks(1000).enumerate() {
        let entries: Vec<(&str, Bytes)> = chunk
            .iter()
            .enumerate()
            .map(|(j, k)| (k.as_str(), Bytes::clone(setup.values.get(c * 1000 + j))))
            .collect();
        setup
            .hodor
            .set_many(entries, Some(setup.ttl))
            .map_err(|e| format!("loading hodor-redis: {e}"))?;
        let mut pipe = redis::pipe();
        for (j, k) in chunk.iter().enumerate() {
            pipe.cmd("SET")
                .arg(k)
                .arg(&setup.values.get(c * 1000 + j)[..])
                .arg("PX")
                .arg(setup.ttl.as_millis() as u64)
                .ignore();
            pipe.cmd("ZADD").arg(PLAIN_INDEX).arg(0).arg(k).ignore();
        }
        pipe.query::<()>(admin)
            .map_err(|e| format!("loading the plain keys: {e}"))?;
    }
    Ok(())
}

/// Runs the Redis phase: `Err` says why it could not.
pub fn run(plan: &Plan, progress: &Progress) -> Result<RedisResults, String> {
    let p = &plan.redis;
    let version = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let server = Server::start()?;
    progress.say(&format!(
        "redis: started redis-server on 127.0.0.1:{} ({version})",
        server.port()
    ));
    let mut admin = server.admin().map_err(|e| e.to_string())?;
    let hodor = Contract::new("redis", "bench", Some(json!({ "url": server.url() })))
        .map_err(|e| e.to_string())?;
    let plain = PlainPool {
        client: Client::open(server.url()).map_err(|e| e.to_string())?,
        idle: Mutex::new(Vec::new()),
    };
    let keys = keys(p.keys);
    let values = Values::new(64, p.keys, 0x4ed);
    let setup = Setup {
        hodor: &hodor,
        plain: &plain,
        keys: &keys,
        values: &values,
        ttl: Duration::from_millis(p.ttl_ms),
        matches: p.list_matches,
    };
    load(&setup, &mut admin)?;

    let mut rows = Vec::new();
    for op in [RedisOp::Get, RedisOp::Set, RedisOp::List] {
        for &threads in &p.threads {
            progress.say(&format!(
                "redis: {} | {} keys | {threads} client thread(s)",
                op.label(),
                p.keys
            ));
            for side in [Side::Hodor, Side::Plain] {
                setup.measure(side, op, threads, plan.warmup);
            }
            let mut kops = [Vec::new(), Vec::new()];
            let mut server_us = [Vec::new(), Vec::new()];
            let mut errors = 0;
            for rep in 0..plan.reps {
                let order = if rep % 2 == 0 {
                    [Side::Hodor, Side::Plain]
                } else {
                    [Side::Plain, Side::Hodor]
                };
                for side in order {
                    let _ = redis::cmd("CONFIG")
                        .arg("RESETSTAT")
                        .query::<()>(&mut admin);
                    let (k, e) = setup.measure(side, op, threads, p.duration);
                    let ops = k * 1e3 * p.duration.as_secs_f64();
                    let at = usize::from(side == Side::Plain);
                    if let Some(usec) = server_usec(&mut admin, top_level(side, op)) {
                        server_us[at].push(usec / ops.max(1.0));
                    }
                    kops[at].push(k);
                    errors += e;
                }
            }
            let [hodor_kops, plain_kops] = kops.map(Summary::of);
            let [hodor_server_us, plain_server_us] = server_us.map(Summary::of);
            rows.push(RedisRow {
                op,
                threads,
                hodor_kops,
                plain_kops,
                hodor_server_us,
                plain_server_us,
                errors,
            });
        }
    }
    let _ = hodor.close();
    Ok(RedisResults {
        server: version,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_are_summed_for_the_named_commands_only() {
        let info = "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=250,usec_per_call=25.00\r\n\
                    cmdstat_hset:calls=10,usec=40,usec_per_call=4.00\r\n\
                    cmdstat_eval:calls=1,usec=7,usec_per_call=7.00\r\n";
        assert_eq!(
            usec_of(info, top_level(Side::Hodor, RedisOp::Set)),
            Some(257.0)
        );
        assert_eq!(
            usec_of(info, top_level(Side::Plain, RedisOp::Set)),
            Some(0.0)
        );
        let listed = "cmdstat_multi:calls=2,usec=1\r\ncmdstat_exec:calls=2,usec=30\r\n\
                      cmdstat_zrange:calls=4,usec=20\r\n";
        assert_eq!(
            usec_of(listed, top_level(Side::Hodor, RedisOp::List)),
            Some(31.0)
        );
        assert_eq!(usec_of("cmdstat_get:calls=1,usec=x", &["get"]), None);
    }
}
