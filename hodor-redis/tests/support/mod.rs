//! The Redis server the tests run against.
//!
//! `HODOR_REDIS_URL` names a server to use. Without it, the tests start `redis-server` from
//! `PATH` on a free loopback port with persistence off, one per test binary. If neither is
//! available, each test prints a loud skip line and passes, unless `HODOR_REQUIRE_REDIS=1`,
//! where it fails.
//!
//! No server outlives the test process: `redis-server` runs under a small `sh` wrapper that
//! reads its standard input from this process and kills the server (`SIGKILL`, which also
//! ends a server a test had frozen with `SIGSTOP`) as soon as that input closes, which the
//! kernel does when this process exits, however it exits.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

mod server;
// Each test binary compiles this module and uses a part of it.
#[allow(unused_imports)]
pub use server::{Server, free_port};

fn required() -> bool {
    std::env::var("HODOR_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// Skips the calling test (or fails it under `HODOR_REQUIRE_REDIS=1`).
pub fn skip(test: &str, why: &str) {
    if required() {
        panic!("HODOR_REQUIRE_REDIS=1 but {test} cannot run: {why}");
    }
    // Straight to the process's stderr: the test harness captures eprintln! output of
    // passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPED {test}: {why}. Set HODOR_REDIS_URL or install redis-server \
         (apt-get install redis-server) to run it. !!!!!\n"
    );
}

/// The URL of the shared test server: `HODOR_REDIS_URL`, or a server started for this test
/// binary. `None` (after a loud skip line) when there is neither.
pub fn url(test: &str) -> Option<String> {
    static SHARED: OnceLock<Option<(String, Option<Server>)>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        if let Ok(url) = std::env::var("HODOR_REDIS_URL") {
            return Some((url, None));
        }
        let server = Server::start()?;
        Some((server.url(), Some(server)))
    });
    match shared {
        Some((url, _)) => Some(url.clone()),
        None => {
            skip(
                test,
                "HODOR_REDIS_URL is not set and redis-server could not be started from PATH",
            );
            None
        }
    }
}

/// A contract name no other test or run uses, so tests can share one server.
pub fn unique(base: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("test-{}-{nanos}-{n}/{base}", std::process::id())
}

/// The JSON config for `url`.
pub fn config(url: &str) -> serde_json::Value {
    json!({ "url": url })
}

/// A raw connection, to look behind the driver.
pub fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap()
}

/// What a [`Proxy`] does with the bytes it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Passes everything both ways.
    Forward = 0,
    /// Accepts connections and reads nothing, answers nothing: a hung server, or a port
    /// that some other program holds. Connections already open stop carrying bytes too.
    Silent = 1,
    /// Carries requests to the server but throws its replies away: the server applies a
    /// write, the client never hears of it.
    DropReplies = 2,
    /// Passes requests, then closes the client's connection in the middle of the next
    /// reply, after sending part of it.
    CloseMidReply = 3,
}

/// A TCP proxy in front of a server, whose behaviour a test switches at any moment: the
/// faults a network or a sick server produces, on demand.
pub struct Proxy {
    pub port: u16,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on a free loopback port in front of `upstream` (`host:port`), in `mode`.
    pub fn start(upstream: String, mode: Mode) -> Proxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU8};
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mode.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        if m.load(Ordering::Relaxed) == Mode::Silent as u8 {
                            held.push(client);
                            continue;
                        }
                        let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                            continue; // the client sees its connection closed
                        };
                        pump(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            &m,
                            &s,
                            false,
                        );
                        pump(server, client, &m, &s, true);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Proxy {
            port,
            mode,
            stop,
            accept: Some(accept),
        }
    }

    /// A listener that accepts and never answers, with no server behind it.
    pub fn silent() -> Proxy {
        Proxy::start("127.0.0.1:9".to_owned(), Mode::Silent)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// `redis://` URL of the proxy, database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Copies `from` to `to` on a thread until either side closes or the proxy stops, doing
/// what the current mode says; `replies` marks the server-to-client direction.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    mode: &std::sync::Arc<std::sync::atomic::AtomicU8>,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    replies: bool,
) {
    use std::io::Read;
    let (mode, stop) = (mode.clone(), stop.clone());
    std::thread::spawn(move || {
        from.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        // Bytes read just as the proxy went silent: carried once it speaks again, as a
        // network that stalls delivers late rather than never.
        let mut pending: Vec<u8> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if mode.load(Ordering::Relaxed) == Mode::Silent as u8 {
                // Carry nothing, read nothing; keep both sockets open.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let chunk = if pending.is_empty() {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => buf[..n].to_vec(),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue;
                    }
                    Err(_) => break,
                }
            } else {
                std::mem::take(&mut pending)
            };
            let current = mode.load(Ordering::Relaxed);
            if current == Mode::Silent as u8 {
                pending = chunk;
                continue;
            }
            if replies && current == Mode::DropReplies as u8 {
                continue;
            }
            if replies && current == Mode::CloseMidReply as u8 {
                // Part of the reply (none of a one-byte reply), then the connection ends.
                let _ = to.write_all(&chunk[..chunk.len() / 2]);
                let _ = to.flush();
                break;
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}
