//! A server that goes away, or stops answering, makes every call fail with `Backend` within
//! the configured timeouts, never a hang or a panic; when it comes back, the same contract
//! works again without being reopened.
//!
//! These tests start and stop their own `redis-server`, so they need one on `PATH` (even
//! when `HODOR_REDIS_URL` is set).

mod support;

use std::time::{Duration, Instant};

use hodor_core::{Applied, BackendKind, Contract, Error};
use hodor_redis as _;
use serde_json::json;
use support::{Mode, Proxy, Server};

const TIMEOUT_MS: u64 = 300;
const CONNECT_TIMEOUT_MS: u64 = 300;

/// What one call may take at most: a wait for a connection, a connect and one read, for two
/// attempts, plus scheduling slack for a loaded CI machine.
fn bound() -> Duration {
    Duration::from_millis(2 * (2 * TIMEOUT_MS + CONNECT_TIMEOUT_MS) + 1000)
}

fn start(test: &str) -> Option<Server> {
    let server = Server::start();
    if server.is_none() {
        support::skip(test, "redis-server could not be started from PATH");
    }
    server
}

fn open(server: &Server) -> Contract {
    Contract::new(
        "redis",
        &support::unique("faults"),
        Some(json!({
            "url": server.url(),
            "timeout_ms": TIMEOUT_MS,
            "connect_timeout_ms": CONNECT_TIMEOUT_MS,
            "pool_size": 4,
            // Not 0, so every new connection also runs the SELECT handshake.
            "database": 1,
        })),
    )
    .unwrap()
}

type Op = (&'static str, fn(&Contract) -> Result<(), Error>);

/// Every operation of the contract, each as one call.
fn operations() -> Vec<Op> {
    vec![
        ("set", |c| c.set("k", "v", None)),
        ("set ttl", |c| {
            c.set("k", "v", Some(Duration::from_secs(60)))
        }),
        ("get", |c| c.get("k").map(drop)),
        ("exists", |c| c.exists("k").map(drop)),
        ("list", |c| c.list("").map(drop)),
        ("stat", |c| c.stat("k").map(drop)),
        ("get_many", |c| c.get_many(&["k", "j"]).map(drop)),
        ("set_many", |c| c.set_many([("k", "v"), ("j", "w")], None)),
        ("delete", |c| c.delete("k").map(drop)),
        ("delete_many", |c| c.delete_many(&["k", "j"]).map(drop)),
    ]
}

/// Runs every operation, asserting each is `Backend` within the bound; returns the slowest.
fn all_fail_in_time(c: &Contract, phase: &str) -> Duration {
    let mut slowest = Duration::ZERO;
    for (name, op) in operations() {
        let started = Instant::now();
        let result = op(c);
        let took = started.elapsed();
        eprintln!("{phase}: {name} -> {took:?}");
        match result {
            Err(Error::Backend { .. }) => {}
            other => panic!("{phase}: {name} returned {other:?}, expected Backend"),
        }
        assert!(took < bound(), "{phase}: {name} took {took:?}");
        slowest = slowest.max(took);
    }
    // Gauges cannot fail; they say "unknown" instead.
    assert_eq!(c.metrics().entries, None);
    slowest
}

fn all_succeed(c: &Contract, phase: &str) {
    for (name, op) in operations() {
        if let Err(e) = op(c) {
            panic!("{phase}: {name} failed: {e}");
        }
    }
    c.set("after", "ok", None).unwrap();
    assert_eq!(c.get("after").unwrap(), "ok");
}

#[test]
fn a_stopped_server_fails_every_call_in_time_and_a_restarted_one_works_again() {
    let Some(mut server) = start("a_stopped_server_fails_every_call_in_time") else {
        return;
    };
    let port = server.port;
    let c = open(&server);
    all_succeed(&c, "before stop");

    server.stop();
    let slowest = all_fail_in_time(&c, "server stopped");
    // A second round finds no pooled connections left and fails just as cleanly.
    all_fail_in_time(&c, "server still stopped");
    eprintln!("server stopped: slowest call {slowest:?}");

    let server = Server::start_on(port).expect("restart on the same port");
    all_succeed(&c, "after restart");
    drop(server);
}

#[test]
fn a_frozen_server_times_out_every_call_and_recovers_when_thawed() {
    let Some(server) = start("a_frozen_server_times_out_every_call") else {
        return;
    };
    let c = open(&server);
    all_succeed(&c, "before freeze");

    // The process is stopped, its sockets stay open: connects succeed and reads never
    // return, so only the timeouts end the calls.
    server.freeze();
    let slowest = all_fail_in_time(&c, "server frozen");
    eprintln!("server frozen: slowest call {slowest:?}");
    assert!(
        slowest >= Duration::from_millis(TIMEOUT_MS.min(CONNECT_TIMEOUT_MS)),
        "the calls must have waited for a timeout, not failed at once"
    );

    server.thaw();
    all_succeed(&c, "after thaw");
}

#[test]
fn a_server_restarted_while_idle_is_invisible_to_reads_and_sets() {
    let Some(mut server) = start("a_server_restarted_while_idle") else {
        return;
    };
    let port = server.port;
    let c = open(&server);
    // Fill the pool with idle connections that the restart will break.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || c.set(&format!("warm{i}"), "v", None).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server.stop();
    let _server = Server::start_on(port).expect("restart on the same port");
    // Each pooled connection is dead; the first call finds out, drops them all, and
    // retries on a new connection.
    assert!(matches!(c.get("warm0"), Err(Error::NotFound { .. })));
    c.set("k", "v", None).unwrap();
    assert_eq!(c.get("k").unwrap(), "v");
    assert_eq!(c.list("").unwrap(), ["k"]);
}

#[test]
fn opening_against_a_frozen_server_fails_within_the_connect_timeout() {
    let Some(server) = start("opening_against_a_frozen_server") else {
        return;
    };
    server.freeze();
    let started = Instant::now();
    let result = Contract::new(
        "redis",
        "frozen",
        Some(
            json!({"url": server.url(), "connect_timeout_ms": CONNECT_TIMEOUT_MS, "timeout_ms": TIMEOUT_MS}),
        ),
    );
    let took = started.elapsed();
    server.thaw();
    eprintln!("open against frozen server -> {took:?}");
    assert!(matches!(result, Err(Error::Backend { .. })), "{result:?}");
    assert!(took < bound(), "{took:?}");
}

/// The most a connect-bounded call may take: the connect timeout plus slack for a loaded
/// machine, far below the read timeout the tests set beside it.
fn connect_bound(connect_timeout_ms: u64) -> Duration {
    Duration::from_millis(connect_timeout_ms + 1500)
}

#[test]
fn opening_against_a_silent_listener_fails_within_the_connect_timeout() {
    let silent = Proxy::silent();
    let port = silent.port;
    let mut urls = vec![
        ("no handshake", format!("redis://127.0.0.1:{port}/0")),
        ("AUTH", format!("redis://:pw@127.0.0.1:{port}/0")),
        (
            "AUTH and SELECT",
            format!("redis://user:pw@127.0.0.1:{port}/3"),
        ),
    ];
    if cfg!(feature = "tls") {
        urls.push(("TLS handshake", format!("rediss://127.0.0.1:{port}/0")));
    }
    for (what, url) in urls {
        let started = Instant::now();
        let result = Contract::new(
            "redis",
            "silent",
            Some(json!({"url": url, "connect_timeout_ms": 200, "timeout_ms": 10_000})),
        );
        let took = started.elapsed();
        eprintln!("open, silent listener, {what} -> {took:?}");
        assert!(
            matches!(result, Err(Error::Backend { .. })),
            "{what}: {result:?}"
        );
        assert!(took < connect_bound(200), "{what}: open took {took:?}");
    }
}

/// A contract on `server` through `proxy`, with the fault tests' timeouts.
fn open_via(proxy: &Proxy, name: &str) -> Contract {
    Contract::new(
        "redis",
        name,
        Some(json!({
            "url": proxy.url(),
            "timeout_ms": TIMEOUT_MS,
            "connect_timeout_ms": CONNECT_TIMEOUT_MS,
            "pool_size": 2,
        })),
    )
    .unwrap()
}

#[test]
fn a_write_whose_reply_is_lost_says_it_may_have_been_applied() {
    let Some(server) = start("a_write_whose_reply_is_lost") else {
        return;
    };
    let proxy = Proxy::start(format!("127.0.0.1:{}", server.port), Mode::Forward);
    let name = support::unique("lost-reply");
    let c = open_via(&proxy, &name);
    c.set("before", "v", None).unwrap();

    // The server applies the write; its reply never arrives.
    proxy.set(Mode::DropReplies);
    let started = Instant::now();
    let e = c.set("k", "applied", None).unwrap_err();
    assert!(started.elapsed() < bound(), "{:?}", started.elapsed());
    let text = e.to_string();
    eprintln!("lost reply: {text}");
    assert!(text.contains("may or may not have been applied"), "{text}");
    assert!(!text.contains("did not complete"), "{text}");
    assert!(
        matches!(
            e,
            Error::Backend {
                kind: BackendKind::Timeout,
                applied: Applied::Unknown,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let direct = Contract::new("redis", &name, Some(json!({"url": server.url()}))).unwrap();
    assert_eq!(
        direct.get("k").unwrap(),
        "applied",
        "the server did apply it"
    );

    // A read that times out changed nothing, and says nothing about applying.
    let e = c.get("k").unwrap_err();
    assert!(!e.to_string().contains("applied"), "{e}");
    assert!(
        matches!(
            e,
            Error::Backend {
                applied: Applied::No,
                ..
            }
        ),
        "{e:?}"
    );

    // With nothing listening, a write fails before it is sent: it was not applied.
    drop(proxy);
    let _ = c.set("k", "first try", None); // may meet a pooled connection that just broke
    let e = c.set("k", "not sent", None).unwrap_err();
    let text = e.to_string();
    eprintln!("refused: {text}");
    assert!(text.contains("it was not applied"), "{text}");
    assert!(!text.contains("may or may not"), "{text}");
    assert!(
        matches!(
            e,
            Error::Backend {
                kind: BackendKind::Unavailable,
                applied: Applied::No,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(direct.get("k").unwrap(), "applied");
}
