//! A throwaway `redis-server` on a loopback port, persistence off.
//!
//! The one launcher of the project: hodor-redis's tests use it through `tests/support`, and
//! hodor-bench includes this file by path for its Redis and watch phases, so a fix to how a
//! server is started or stopped reaches both.
//!
//! No server outlives the process that started it: `redis-server` runs under a small `sh`
//! wrapper that reads its standard input from this process and kills the server
//! (`SIGKILL`, which also ends a server frozen with `SIGSTOP`) as soon as that input closes,
//! which the kernel does when this process exits, however it exits.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const WRAPPER: &str = r#"
command -v redis-server >/dev/null 2>&1 || exit 127
port=$1
shift
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --protected-mode no \
    --logfile "" "$@" >/dev/null 2>&1 &
srv=$!
echo "$srv"
read -r _
kill -9 "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
"#;

/// A `redis-server` this process started.
pub struct Server {
    /// The loopback port it listens on.
    pub port: u16,
    pid: u32,
    wrapper: Child,
    stdin: Option<ChildStdin>,
}

impl Server {
    /// Starts a server on a free port.
    pub fn start() -> Option<Server> {
        for _ in 0..5 {
            let port = free_port();
            if let Some(server) = Server::start_on(port) {
                return Some(server);
            }
        }
        None
    }

    /// Starts a server on a free port with more `redis-server` arguments.
    pub fn start_with(args: &[String]) -> Option<Server> {
        (0..5).find_map(|_| Server::start_on_with(free_port(), args))
    }

    /// Starts a server on `port`; `None` if `redis-server` is missing or does not come up.
    pub fn start_on(port: u16) -> Option<Server> {
        Server::start_on_with(port, &[])
    }

    /// Starts a server on `port` with more `redis-server` arguments.
    pub fn start_on_with(port: u16, args: &[String]) -> Option<Server> {
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(port.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = wrapper.stdin.take();
        let mut line = String::new();
        BufReader::new(wrapper.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        let pid: u32 = line.trim().parse().ok()?;
        let mut server = Server {
            port,
            pid,
            wrapper,
            stdin,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(&server.url()) {
                return Some(server);
            }
            if matches!(Command::new("kill").arg("-0").arg(pid.to_string()).status(), Ok(s) if !s.success())
            {
                break; // redis-server exited: missing, or the port was taken
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server.stop();
        None
    }

    /// `redis://127.0.0.1:{port}/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server and waits until it is gone.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }

    /// Freezes the server (`SIGSTOP`): connections stay open but nothing is answered.
    pub fn freeze(&self) {
        signal("-STOP", self.pid);
    }

    /// Undoes [`Server::freeze`].
    pub fn thaw(&self) {
        signal("-CONT", self.pid);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `sig` to `pid`; a test that froze or thawed a server relies on it, so a failure
/// panics there.
fn signal(sig: &str, pid: u32) {
    let sent = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(sent, "kill {sig} {pid} failed");
}

/// A loopback port nobody listens on right now (the OS picks it); 0 if none could be found,
/// which makes the start that uses it fail.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// Whether a server answers at `url`; a server that wants a password answers too.
fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
        return false;
    };
    match redis::cmd("PING").query::<String>(&mut conn) {
        Ok(_) => true,
        Err(e) => e.code() == Some("NOAUTH"),
    }
}
