//! A small, bounded connection pool, shared by every contract opened with one config.
//!
//! Why not r2d2: its connections are opened by a background thread pool with the redis
//! crate's `get_connection()`, which has no connect timeout, and it runs a `PING` on every
//! checkout unless told not to. This pool opens connections on the calling thread with
//! the configured connect timeout, sets the read and write timeouts on each connection,
//! never waits longer than `timeout_ms` for a free one, and throws away any connection an
//! operation failed on (a timed-out request may still be answered later, and that answer
//! must never be read as the reply to the next request). It needs no extra dependency
//! and no threads.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use hodor_core::driver::{DriverError, DriverResult};
use hodor_core::{Applied, BackendKind, Echo};
use parking_lot::{Condvar, Mutex};
use redis::{Client, Connection, RedisConnectionInfo, RedisResult};

use crate::changelog::Changelog;
use crate::config::RedisConfig;
use crate::error::{BackendError, Stage, refused_before_running};
use crate::keys::Namespace;
use crate::pruner;
use crate::secret::Secrets;

/// What an operation does to the data: whether it may be sent again after its connection
/// dropped mid-call, and what its failure says about the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Reads: sent again after a dropped connection; a failure changed nothing.
    Read,
    /// A write that has the same effect sent twice (`set`, `set_many`): sent again after
    /// a dropped connection. Once its request may have left, a failure may or may not
    /// have applied it.
    Write,
    /// A write whose reply depends on whether an earlier attempt ran (`delete` reports
    /// what it removed): a dropped connection is reported, not retried.
    WriteOnce,
}

impl Op {
    /// What a failure of this operation after its request may have left says about it.
    fn applied_once_sent(self) -> Applied {
        match self {
            Op::Read => Applied::No,
            Op::Write | Op::WriteOnce => Applied::Unknown,
        }
    }
}

/// Why a connection could not be had; nothing was sent.
enum NoConnection {
    /// Opening one failed.
    Connect(redis::RedisError),
    /// All were busy for the whole wait.
    Busy,
}

pub(crate) struct Pool {
    /// A client that only opens the socket: the handshake is ours, see [`Pool::connect`].
    client: Client,
    handshake: Handshake,
    pub(crate) config: RedisConfig,
    server: String,
    /// What must never appear in a message: see [`Secrets`].
    secrets: Secrets,
    state: Mutex<State>,
    freed: Condvar,
    /// The contracts open on this pool, by index key, with their handle counts: what the
    /// pruner visits.
    namespaces: Mutex<HashMap<Vec<u8>, (Namespace, usize)>>,
    /// The pruning thread, started by the first contract that opens on this pool; the
    /// thread ends when this is dropped with the pool.
    pruner: Mutex<Option<pruner::Stop>>,
    /// The watched contracts' hubs and the thread that reads their change logs.
    pub(crate) changelog: Changelog,
}

/// The time limits of one call.
#[derive(Clone, Copy, Debug)]
enum Budget {
    /// An ordinary call: `timeout_ms` to wait for a free connection and for each reply,
    /// `connect_timeout_ms` to open a connection.
    Call,
    /// Opening a contract: everything by this deadline, `connect_timeout_ms` after the open
    /// began.
    Open(Instant),
}

impl Budget {
    /// What bounded a request that failed, for the message.
    fn stage_of_request(self) -> Stage {
        match self {
            Budget::Call => Stage::Request,
            Budget::Open(_) => Stage::Opening,
        }
    }

    /// The setting that bounds waiting for a free connection, and its value.
    fn wait_limit(self, config: &RedisConfig) -> (&'static str, u64) {
        match self {
            Budget::Open(_) if config.connect_timeout_ms < config.timeout_ms => {
                ("connect_timeout_ms", config.connect_timeout_ms)
            }
            _ => ("timeout_ms", config.timeout_ms),
        }
    }
}

/// What is left until `deadline`, or a timeout error if nothing is.
fn remaining(deadline: Instant) -> RedisResult<std::time::Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the deadline passed",
            ))
        })
}

/// What a new connection must send before it is used.
struct Handshake {
    username: Option<String>,
    password: Option<String>,
    database: i64,
}

#[derive(Default)]
struct State {
    idle: Vec<Connection>,
    /// Connections that exist: idle plus checked out plus being opened.
    open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.server)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The client's refusal of `info`, with its message scrubbed.
fn refused(secrets: &Secrets, e: &redis::RedisError) -> DriverError {
    let why = secrets.scrub(&e.to_string());
    DriverError::invalid_config(
        Some("url"),
        format!("the redis client refused it: {}", Echo::prose(&why)),
    )
}

#[cfg(not(feature = "tls"))]
fn client(
    _config: &RedisConfig,
    secrets: &Secrets,
    info: redis::ConnectionInfo,
) -> DriverResult<Client> {
    Client::open(info).map_err(|e| refused(secrets, &e))
}

/// A client for `info`; for a `rediss://` URL, with the configured certificates.
#[cfg(feature = "tls")]
fn client(
    config: &RedisConfig,
    secrets: &Secrets,
    info: redis::ConnectionInfo,
) -> DriverResult<Client> {
    if !matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
        return Client::open(info).map_err(|e| refused(secrets, &e));
    }
    // rustls uses the process-wide crypto provider. Install ring unless the program chose
    // one already, so that building a TLS config can never panic for want of one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |field: &'static str, path: &Option<String>| -> DriverResult<Option<Vec<u8>>> {
        path.as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|e| {
                    DriverError::invalid_config(
                        Some(field),
                        format!("cannot read {}: {e}", Echo(path)),
                    )
                })
            })
            .transpose()
    };
    let root_cert = read("tls_ca_file", &config.tls_ca_file)?;
    let client_tls = match (
        read("tls_cert_file", &config.tls_cert_file)?,
        read("tls_key_file", &config.tls_key_file)?,
    ) {
        (Some(client_cert), Some(client_key)) => Some(redis::ClientTlsConfig {
            client_cert,
            client_key,
        }),
        _ => None,
    };
    let field = if config.tls_cert_file.is_some() {
        "tls_cert_file"
    } else {
        "tls_ca_file"
    };
    Client::build_with_tls(
        info,
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|e| {
        let why = secrets.scrub(&e.to_string());
        DriverError::invalid_config(
            Some(field),
            format!("the TLS certificates are unusable: {}", Echo::prose(&why)),
        )
    })
}

/// Pools by config: contracts opened with equal configs share one pool.
fn pools() -> &'static Mutex<HashMap<RedisConfig, Weak<Pool>>> {
    static POOLS: OnceLock<Mutex<HashMap<RedisConfig, Weak<Pool>>>> = OnceLock::new();
    POOLS.get_or_init(Mutex::default)
}

impl Pool {
    /// The pool for `config`, shared with every open contract that uses an equal config.
    pub(crate) fn shared(config: &RedisConfig) -> DriverResult<Arc<Pool>> {
        let mut pools = pools().lock();
        if let Some(pool) = pools.get(config).and_then(Weak::upgrade) {
            return Ok(pool);
        }
        let info = config.connection_info()?;
        let settings = info.redis_settings();
        let handshake = Handshake {
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            database: settings.db(),
        };
        let secrets = Secrets::of(&config.url, handshake.password.as_deref());
        let bare = RedisConnectionInfo::default().set_skip_set_lib_name();
        let client = client(config, &secrets, info.set_redis_settings(bare))?;
        let pool = Arc::new(Pool {
            client,
            handshake,
            config: config.clone(),
            server: config.display_url(),
            secrets,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            namespaces: Mutex::default(),
            pruner: Mutex::new(None),
            changelog: Changelog::default(),
        });
        pools.retain(|_, weak| weak.strong_count() > 0);
        pools.insert(config.clone(), Arc::downgrade(&pool));
        Ok(pool)
    }

    /// The server as shown in messages (no password).
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// Adds a handle on `namespace` to what the pruner visits, starting the pruner with
    /// the pool's first contract. Called only once an open has succeeded, so a failed open
    /// leaves neither a registration nor a thread.
    pub(crate) fn register(self: &Arc<Self>, namespace: &Namespace) -> DriverResult<()> {
        {
            let mut pruner = self.pruner.lock();
            if pruner.is_none() {
                *pruner = Some(pruner::start(self)?);
            }
        }
        let mut namespaces = self.namespaces.lock();
        namespaces
            .entry(namespace.index_key().to_vec())
            .or_insert_with(|| (namespace.clone(), 0))
            .1 += 1;
        Ok(())
    }

    pub(crate) fn unregister(&self, namespace: &Namespace) {
        let mut namespaces = self.namespaces.lock();
        if let Some(entry) = namespaces.get_mut(namespace.index_key()) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                namespaces.remove(namespace.index_key());
            }
        }
    }

    pub(crate) fn namespaces(&self) -> Vec<Namespace> {
        self.namespaces
            .lock()
            .values()
            .map(|(ns, _)| ns.clone())
            .collect()
    }

    /// Runs `f` on a pooled connection, within the limits of an ordinary call.
    ///
    /// A connection whose operation failed is closed, never reused. If it failed because
    /// the connection had dropped (the server restarted or closed it while it sat idle),
    /// the other idle connections are closed too, since they most likely dropped the same
    /// way, and an operation other than [`Op::WriteOnce`] is sent once more on a new
    /// connection.
    ///
    /// A failure says what it may have changed: nothing if no request left (no connection
    /// could be had), and for a write, possibly everything once one did.
    pub(crate) fn run<T>(
        &self,
        op: Op,
        f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> DriverResult<T> {
        self.run_within(Budget::Call, op, f)
    }

    /// Runs `f` like [`Pool::run`], but all of it (waiting for a connection, opening one,
    /// the request and its reply) by `deadline`: opening a contract is part of connecting,
    /// so it is bounded by `connect_timeout_ms`, not by `timeout_ms`.
    pub(crate) fn run_by<T>(
        &self,
        deadline: Instant,
        op: Op,
        f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> DriverResult<T> {
        self.run_within(Budget::Open(deadline), op, f)
    }

    fn run_within<T>(
        &self,
        budget: Budget,
        op: Op,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> DriverResult<T> {
        let (conn, reused) = self
            .checkout(budget)
            .map_err(|failure| self.no_connection(budget, failure, Applied::No))?;
        let error = match self.attempt(budget, conn, &mut f) {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        // From here on the request may have reached the server, unless the server's own
        // answer says it ran none of it.
        let applied = if refused_before_running(&error) {
            Applied::No
        } else {
            op.applied_once_sent()
        };
        let stage = budget.stage_of_request();
        if !error.is_connection_dropped() {
            return Err(self.error(stage, &error, applied));
        }
        self.discard_idle();
        if !(reused && op != Op::WriteOnce) {
            return Err(self.error(stage, &error, applied));
        }
        let (conn, _) = self
            .checkout(budget)
            .map_err(|failure| self.no_connection(budget, failure, applied))?;
        self.attempt(budget, conn, &mut f)
            .map_err(|error| self.error(stage, &error, applied))
    }

    /// Runs `op` on `conn`, then returns the connection to the pool, or drops it if the
    /// operation failed (its state is unknown).
    fn attempt<T>(
        &self,
        budget: Budget,
        mut conn: Connection,
        op: &mut impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let result = match budget {
            Budget::Call => op(&mut conn),
            Budget::Open(deadline) => (|| {
                // A reused connection has the call timeout; this request gets what is
                // left of the open's, and the connection goes back with the call timeout.
                let left = Some(remaining(deadline)?);
                conn.set_read_timeout(left)?;
                conn.set_write_timeout(left)?;
                let value = op(&mut conn)?;
                let timeout = Some(self.config.timeout());
                conn.set_read_timeout(timeout)?;
                conn.set_write_timeout(timeout)?;
                Ok(value)
            })(),
        };
        match result {
            Ok(_) => self.checkin(conn),
            Err(_) => self.discard(conn),
        }
        result
    }

    fn error(&self, stage: Stage, error: &redis::RedisError, applied: Applied) -> DriverError {
        let (kind, error) =
            BackendError::redis(&self.server, &self.config, &self.secrets, stage, error);
        DriverError::backend_failure(kind, applied, error)
    }

    fn no_connection(
        &self,
        budget: Budget,
        failure: NoConnection,
        applied: Applied,
    ) -> DriverError {
        match failure {
            NoConnection::Connect(error) => self.error(Stage::Connect, &error, applied),
            NoConnection::Busy => {
                let (setting, ms) = budget.wait_limit(&self.config);
                DriverError::backend_failure(
                    BackendKind::Timeout,
                    applied,
                    BackendError::other(format!(
                        "all {} connections to {} stayed busy for {ms} ms (the {setting} \
                         setting); raise pool_size or look for slow calls",
                        self.config.pool_size, self.server
                    )),
                )
            }
        }
    }

    /// An idle connection (`true`: reused), or a new one if fewer than `pool_size` exist;
    /// otherwise waits up to `timeout_ms` (and never past an open's deadline) for one to be
    /// returned.
    fn checkout(&self, budget: Budget) -> Result<(Connection, bool), NoConnection> {
        let mut deadline = Instant::now() + self.config.timeout();
        if let Budget::Open(open) = budget {
            deadline = deadline.min(open);
        }
        let mut state = self.state.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok((conn, true));
            }
            if state.open < self.config.pool_size as usize {
                state.open += 1;
                drop(state);
                return match self.connect(budget) {
                    Ok(conn) => Ok((conn, false)),
                    Err(error) => {
                        self.release_slot();
                        Err(NoConnection::Connect(error))
                    }
                };
            }
            if self.freed.wait_until(&mut state, deadline).timed_out() {
                return Err(NoConnection::Busy);
            }
        }
    }

    /// Opens a connection within `connect_timeout_ms` (and never past an open's deadline),
    /// all of it: the TCP connect, the TLS handshake, authentication, `SELECT`, and the
    /// server's first answer.
    ///
    /// The redis client can authenticate and select the database itself, but it sends those
    /// commands as one pipeline and then waits the full timeout for each reply in turn, so a
    /// server that accepts connections but does not answer would hold a connect for a
    /// multiple of the timeout. Here each handshake command gets what is left of one
    /// deadline. A connection that needs neither command sends a `PING`, so that a TLS
    /// handshake and a listener that accepts but never answers are caught here too, not by
    /// the first request's `timeout_ms`.
    fn connect(&self, budget: Budget) -> RedisResult<Connection> {
        let mut deadline = Instant::now() + self.config.connect_timeout();
        if let Budget::Open(open) = budget {
            deadline = deadline.min(open);
        }
        let mut conn = self
            .client
            .get_connection_with_timeout(remaining(deadline)?)?;
        let mut send = |cmd: &redis::Cmd| -> RedisResult<()> {
            let left = Some(remaining(deadline)?);
            conn.set_read_timeout(left)?;
            conn.set_write_timeout(left)?;
            cmd.query::<redis::Value>(&mut conn).map(drop)
        };
        let handshake = &self.handshake;
        let mut answered = false;
        if let Some(password) = &handshake.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = &handshake.username {
                auth.arg(username);
            }
            auth.arg(password);
            // Any answer but OK to AUTH is a refusal of the credentials, whatever its code
            // (WRONGPASS, or ERR from a server that has no password set).
            send(&auth).map_err(|e| {
                if e.is_io_error() {
                    e
                } else {
                    redis::RedisError::from((
                        redis::ErrorKind::AuthenticationFailed,
                        "the server refused the credentials",
                        e.to_string(),
                    ))
                }
            })?;
            answered = true;
        }
        if handshake.database != 0 {
            send(redis::cmd("SELECT").arg(handshake.database))?;
            answered = true;
        }
        if !answered {
            send(&redis::cmd("PING"))?;
        }
        let timeout = Some(self.config.timeout());
        conn.set_read_timeout(timeout)?;
        conn.set_write_timeout(timeout)?;
        Ok(conn)
    }

    /// A connection of its own for a blocking reader (not one of the pool's `pool_size`):
    /// opened like the pool's, with replies allowed to take `block` longer.
    pub(crate) fn dedicated(&self, block: std::time::Duration) -> RedisResult<Connection> {
        let conn = self.connect(Budget::Call)?;
        conn.set_read_timeout(Some(self.config.timeout() + block))?;
        Ok(conn)
    }

    fn checkin(&self, conn: Connection) {
        let mut state = self.state.lock();
        state.idle.push(conn);
        drop(state);
        self.freed.notify_one();
    }

    fn discard(&self, conn: Connection) {
        drop(conn);
        self.release_slot();
    }

    fn release_slot(&self) {
        let mut state = self.state.lock();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.freed.notify_one();
    }

    fn discard_idle(&self) {
        let mut state = self.state.lock();
        let dropped = std::mem::take(&mut state.idle);
        state.open = state.open.saturating_sub(dropped.len());
        drop(state);
        drop(dropped);
        self.freed.notify_all();
    }
}
