//! Fault injection: a server that goes away, hangs, restarts, refuses the credentials, or a
//! network that goes silent, loses replies or cuts them in half. Every call must fail with
//! `Backend` within the configured timeouts (never a hang, never a panic), say truthfully
//! whether a write may have been applied, never show the password, and once the fault is
//! gone the same contract must work again without being reopened.
//!
//! The servers here run with a password holding URL delimiters (`/ # ? @ %`), so every
//! error of every test is also checked for it.
//!
//! These tests start and stop their own `redis-server`, so they need one on `PATH` (even
//! when `HODOR_REDIS_URL` is set). The last test injects faults at random while threads
//! work; it runs for 3 seconds, or for `HODOR_FAULT_SECONDS` seconds when set (the heavy
//! variant: `HODOR_FAULT_SECONDS=120 cargo test -p hodor-redis --test faults`).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hodor_core::{Applied, BackendKind, Contract, Error, Version};
use hodor_redis as _;
use serde_json::json;
use support::{Mode, Proxy, Server};

const TIMEOUT_MS: u64 = 300;
const CONNECT_TIMEOUT_MS: u64 = 300;

/// The servers' password, and as the URLs carry it.
const SECRET: &str = "s3cr/t#pa?ss@w%rd";
const SECRET_IN_URL: &str = "s3cr%2Ft%23pa%3Fss%40w%25rd";

/// What one call may take at most: a wait for a connection, a connect and one read, for two
/// attempts, plus scheduling slack for a loaded CI machine.
fn bound() -> Duration {
    Duration::from_millis(2 * (2 * TIMEOUT_MS + CONNECT_TIMEOUT_MS) + 1000)
}

/// The most a connect-bounded call may take: the connect timeout plus slack for a loaded
/// machine, far below the read timeout the tests set beside it.
fn connect_bound(connect_timeout_ms: u64) -> Duration {
    Duration::from_millis(connect_timeout_ms + 1500)
}

fn server_args() -> Vec<String> {
    vec!["--requirepass".to_owned(), SECRET.to_owned()]
}

/// A password-protected server on a free port, or a loud skip.
fn start(test: &str) -> Option<Server> {
    let server = Server::start_with(&server_args());
    if server.is_none() {
        support::skip(test, "redis-server could not be started from PATH");
    }
    server
}

/// A server on `port` again, as [`start`] made it.
fn restart_on(port: u16) -> Server {
    Server::start_on_with(port, &server_args()).expect("restart on the same port")
}

/// The URL of `port` with the password.
fn url_of(port: u16) -> String {
    format!("redis://:{SECRET_IN_URL}@127.0.0.1:{port}/0")
}

/// An admin connection to `server`.
fn admin(server: &Server) -> redis::Connection {
    support::raw(&url_of(server.port))
}

/// A contract on `port` (a server's or a proxy's) with the fault tests' timeouts.
fn open_on(port: u16, name: &str) -> Contract {
    Contract::new(
        "redis",
        name,
        Some(json!({
            "url": url_of(port),
            "timeout_ms": TIMEOUT_MS,
            "connect_timeout_ms": CONNECT_TIMEOUT_MS,
            "pool_size": 4,
            // Not 0, so every new connection runs AUTH and SELECT.
            "database": 1,
        })),
    )
    .unwrap()
}

fn open(server: &Server) -> Contract {
    open_on(server.port, &support::unique("faults"))
}

/// A proxy in front of `server`, forwarding.
fn proxy_for(server: &Server) -> Proxy {
    Proxy::start(format!("127.0.0.1:{}", server.port), Mode::Forward)
}

/// Display, Debug and the source chain of `e`.
fn texts(e: &Error) -> Vec<String> {
    let mut texts = vec![e.to_string(), format!("{e:?}")];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    texts
}

/// `e` shows no password, in no form.
fn assert_no_secret(what: &str, e: &Error) {
    for text in texts(e) {
        for secret in [SECRET, SECRET_IN_URL, "s3cr"] {
            assert!(!text.contains(secret), "{what}: the password shows: {text}");
        }
    }
}

/// The `(kind, applied)` of a Backend error; panics on any other error.
fn backend(what: &str, e: &Error) -> (BackendKind, Applied) {
    assert_no_secret(what, e);
    match e {
        Error::Backend { kind, applied, .. } => (*kind, *applied),
        other => panic!("{what}: expected Backend, got {other:?}"),
    }
}

type Call = (&'static str, bool, fn(&Contract) -> Result<(), Error>);

/// Every operation of the contract, each as one call, and whether it writes.
fn operations() -> Vec<Call> {
    vec![
        ("set", true, |c| c.set("k", "v", None)),
        ("set ttl", true, |c| {
            c.set("k", "v", Some(Duration::from_secs(60)))
        }),
        ("get", false, |c| c.get("k").map(drop)),
        ("exists", false, |c| c.exists("k").map(drop)),
        ("list", false, |c| c.list("").map(drop)),
        ("stat", false, |c| c.stat("k").map(drop)),
        ("get_many", false, |c| c.get_many(&["k", "j"]).map(drop)),
        ("set_many", true, |c| {
            c.set_many([("k", "v"), ("j", "w")], None)
        }),
        ("delete", true, |c| c.delete("k").map(drop)),
        ("delete_many", true, |c| {
            c.delete_many(&["k", "j"]).map(drop)
        }),
        ("create", true, |c| c.create("c", "v", None).map(drop)),
        ("set_if_version", true, |c| {
            c.set_if_version("k", "v", None, Version::from_raw(1))
                .map(drop)
        }),
        ("increment", true, |c| c.increment("n", 1).map(drop)),
        ("list_page", false, |c| c.list_page("", None, 10).map(drop)),
        // Its first step is a read: a failure there changed nothing.
        ("get_or_insert_with", false, |c| {
            c.get_or_insert_with("g", None, || Ok::<_, Error>("v"))
                .map(drop)
        }),
    ]
}

/// Runs every operation, asserting each is `Backend` of one of `kinds` within the bound
/// and keeps the password to itself; returns the slowest call and every write's `applied`.
fn all_fail_in_time(c: &Contract, phase: &str, kinds: &[BackendKind]) -> (Duration, Vec<Applied>) {
    let mut slowest = Duration::ZERO;
    let mut applied = Vec::new();
    for (name, writes, op) in operations() {
        let started = Instant::now();
        let result = op(c);
        let took = started.elapsed();
        eprintln!("{phase}: {name} -> {took:?}");
        let Err(e) = result else {
            panic!("{phase}: {name} succeeded");
        };
        let (kind, outcome) = backend(&format!("{phase}: {name}"), &e);
        assert!(kinds.contains(&kind), "{phase}: {name}: {kind:?}: {e}");
        if writes {
            applied.push(outcome);
        } else {
            assert_eq!(
                outcome,
                Applied::No,
                "{phase}: {name}: a read changes nothing"
            );
        }
        assert!(took < bound(), "{phase}: {name} took {took:?}");
        slowest = slowest.max(took);
    }
    // Gauges cannot fail; they say "unknown" instead, in time too.
    let started = Instant::now();
    assert_eq!(c.metrics().entries, None);
    assert!(started.elapsed() < bound());
    (slowest, applied)
}

fn all_succeed(c: &Contract, phase: &str) {
    for (name, _, op) in operations() {
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
    let unavailable = [BackendKind::Unavailable];
    let (slowest, _) = all_fail_in_time(&c, "server stopped", &unavailable);
    // A second round finds no pooled connection left: every write fails before its request
    // leaves, and says so.
    let (_, applied) = all_fail_in_time(&c, "server still stopped", &unavailable);
    assert!(applied.iter().all(|a| *a == Applied::No), "{applied:?}");
    eprintln!("server stopped: slowest call {slowest:?}");
    let e = c.get("k").unwrap_err();
    assert!(e.is_retryable(), "{e}");

    let server = restart_on(port);
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
    let (slowest, _) = all_fail_in_time(&c, "server frozen", &[BackendKind::Timeout]);
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
    let _server = restart_on(port);
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
        Some(json!({
            "url": url_of(server.port),
            "connect_timeout_ms": CONNECT_TIMEOUT_MS,
            "timeout_ms": 10_000,
        })),
    );
    let took = started.elapsed();
    server.thaw();
    eprintln!("open against frozen server -> {took:?}");
    let e = result.unwrap_err();
    assert_eq!(backend("open", &e), (BackendKind::Timeout, Applied::No));
    assert!(took < connect_bound(CONNECT_TIMEOUT_MS), "{took:?}");
}

#[test]
fn opening_on_a_warm_pool_of_a_frozen_server_fails_within_the_connect_timeout() {
    let Some(server) = start("opening_on_a_warm_pool_of_a_frozen_server") else {
        return;
    };
    // A read timeout far above the connect timeout, so the two bounds differ.
    let config = json!({
        "url": url_of(server.port),
        "connect_timeout_ms": CONNECT_TIMEOUT_MS,
        "timeout_ms": 10_000,
    });
    let first = Contract::new("redis", &support::unique("warm"), Some(config.clone())).unwrap();
    first.set("k", "v", None).unwrap(); // leaves an idle connection in the shared pool
    server.freeze();
    let started = Instant::now();
    let second = Contract::new("redis", &support::unique("warm"), Some(config));
    let took = started.elapsed();
    server.thaw();
    let e = second.unwrap_err();
    assert_eq!(backend("open", &e), (BackendKind::Timeout, Applied::No));
    assert!(took < connect_bound(CONNECT_TIMEOUT_MS), "{took:?}");
    assert_eq!(first.get("k").unwrap(), "v");
}

#[test]
fn opening_against_a_refused_port_fails_at_once() {
    let port = support::free_port();
    let started = Instant::now();
    let result = Contract::new(
        "redis",
        "refused",
        Some(json!({"url": url_of(port), "connect_timeout_ms": 10_000})),
    );
    let e = result.unwrap_err();
    assert_eq!(backend("open", &e).0, BackendKind::Unavailable);
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
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
        let e = result.unwrap_err();
        assert_eq!(backend(what, &e).0, BackendKind::Timeout, "{what}: {e}");
        assert!(took < connect_bound(200), "{what}: open took {took:?}");
    }
}

#[test]
fn a_listener_that_goes_silent_mid_use_times_out_every_call_and_recovers() {
    let Some(server) = start("a_listener_that_goes_silent_mid_use") else {
        return;
    };
    let proxy = proxy_for(&server);
    let c = open_on(proxy.port, &support::unique("silent"));
    all_succeed(&c, "before silence");

    // Pooled connections stop carrying bytes, new ones are accepted and never answered.
    proxy.set(Mode::Silent);
    let (slowest, applied) = all_fail_in_time(&c, "silent", &[BackendKind::Timeout]);
    assert!(slowest >= Duration::from_millis(TIMEOUT_MS.min(CONNECT_TIMEOUT_MS)));
    // The first write went out on a pooled connection and may have been applied.
    assert_eq!(applied.first(), Some(&Applied::Unknown));

    proxy.set(Mode::Forward);
    all_succeed(&c, "after silence");
}

#[test]
fn a_server_that_cuts_its_replies_fails_cleanly_and_recovers() {
    let Some(server) = start("a_server_that_cuts_its_replies") else {
        return;
    };
    let proxy = proxy_for(&server);
    let c = open_on(proxy.port, &support::unique("cut"));
    all_succeed(&c, "before cuts");

    // Every connection is closed in the middle of the next reply it carries: the request
    // was carried out, its answer is lost half-way.
    proxy.set(Mode::CloseMidReply);
    let (_, applied) = all_fail_in_time(&c, "cut replies", &[BackendKind::Unavailable]);
    assert_eq!(applied.first(), Some(&Applied::Unknown), "{applied:?}");

    proxy.set(Mode::Forward);
    all_succeed(&c, "after cuts");
}

#[test]
fn a_write_whose_reply_is_lost_says_it_may_have_been_applied() {
    let Some(server) = start("a_write_whose_reply_is_lost") else {
        return;
    };
    let proxy = proxy_for(&server);
    let name = support::unique("lost-reply");
    let c = open_on(proxy.port, &name);
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
    assert_eq!(backend("set", &e), (BackendKind::Timeout, Applied::Unknown));
    assert!(e.is_retryable());
    let direct = open_on(server.port, &name);
    assert_eq!(
        direct.get("k").unwrap(),
        "applied",
        "the server did apply it"
    );

    // A read that times out changed nothing, and says nothing about applying.
    let e = c.get("k").unwrap_err();
    assert!(!e.to_string().contains("applied"), "{e}");
    assert_eq!(backend("get", &e).1, Applied::No);

    // With nothing listening, a write fails before it is sent: it was not applied.
    drop(proxy);
    let _ = c.set("k", "first try", None); // may meet a pooled connection that just broke
    let e = c.set("k", "not sent", None).unwrap_err();
    let text = e.to_string();
    eprintln!("refused: {text}");
    assert!(text.contains("it was not applied"), "{text}");
    assert!(!text.contains("may or may not"), "{text}");
    assert_eq!(backend("set", &e), (BackendKind::Unavailable, Applied::No));
    assert_eq!(direct.get("k").unwrap(), "applied");

    // An increment whose reply is lost may have counted, and says so; it is not sent a
    // second time, which could count twice. (Its own proxy: a pooled connection must
    // carry it, the one above was thrown away with its timeout.)
    let proxy = proxy_for(&server);
    let c = open_on(proxy.port, &name);
    // Loads the script, so the server has it when the request arrives alone.
    c.increment("warm", 1).unwrap();
    proxy.set(Mode::DropReplies);
    let e = c.increment("n", 1).unwrap_err();
    assert_eq!(
        backend("increment", &e),
        (BackendKind::Timeout, Applied::Unknown)
    );
    assert!(
        e.to_string().contains("may or may not have been applied"),
        "{e}"
    );
    proxy.set(Mode::Forward);
    assert_eq!(direct.get("n").unwrap(), "1", "the server counted it, once");
}

#[test]
fn a_busy_server_refuses_before_running_and_the_refusal_is_passing() {
    // A script that runs past the time limit makes the server answer BUSY to everyone else.
    let mut args = server_args();
    args.extend(["--lua-time-limit".to_owned(), "50".to_owned()]);
    let Some(server) = Server::start_with(&args) else {
        support::skip("a_busy_server_refuses_before_running", "no redis-server");
        return;
    };
    let c = open(&server);
    c.set("k", "before", None).unwrap();
    let busy = std::thread::spawn({
        let mut conn = admin(&server);
        move || {
            // Reads only, so SCRIPT KILL may end it.
            let _: redis::RedisResult<()> = redis::cmd("EVAL")
                .arg("while true do redis.call('TIME') end")
                .arg(0)
                .query(&mut conn);
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    type Op = fn(&Contract) -> Result<(), Error>;
    let calls: [(&str, Op); 4] = [
        ("set", |c| c.set("k", "during", None)),
        ("increment", |c| c.increment("n", 1).map(drop)),
        ("create", |c| c.create("new", "v", None).map(drop)),
        ("get", |c| c.get("k").map(drop)),
    ];
    for (what, call) in calls {
        let e = call(&c).unwrap_err();
        assert_eq!(
            backend(what, &e),
            (BackendKind::Unavailable, Applied::No),
            "{what}: {e}"
        );
        assert!(
            e.is_retryable(),
            "{what}: a busy server is a passing state: {e}"
        );
        if what != "get" {
            assert!(e.to_string().contains("it was not applied"), "{what}: {e}");
        }
    }
    let _: () = redis::cmd("SCRIPT")
        .arg("KILL")
        .query(&mut admin(&server))
        .unwrap();
    busy.join().unwrap();
    assert_eq!(c.get("k").unwrap(), "before", "nothing was applied");
    assert!(!c.exists("n").unwrap() && !c.exists("new").unwrap());
    all_succeed(&c, "after the busy script");
}

#[test]
fn wrong_passwords_say_authentication_failed_and_never_show() {
    let Some(server) = start("wrong_passwords_say_authentication_failed") else {
        return;
    };
    let port = server.port;
    let wrong = "wr0ng/p#ss?w@rd";
    let wrong_in_url = "wr0ng%2Fp%23ss%3Fw%40rd";
    for (what, url) in [
        (
            "wrong password",
            format!("redis://:{wrong_in_url}@127.0.0.1:{port}/0"),
        ),
        (
            "wrong user",
            format!("redis://nobody:{SECRET_IN_URL}@127.0.0.1:{port}/0"),
        ),
        ("no password", format!("redis://127.0.0.1:{port}/0")),
    ] {
        let started = Instant::now();
        let e = Contract::new("redis", "auth", Some(json!({ "url": url }))).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let (kind, _) = backend(what, &e);
        assert_eq!(kind, BackendKind::Unauthenticated, "{what}: {e}");
        assert!(!e.is_retryable(), "{what}");
        let text = e.to_string();
        assert!(text.contains("authentication"), "{what}: {text}");
        for t in texts(&e) {
            assert!(
                !t.contains(wrong) && !t.contains(wrong_in_url),
                "{what}: {t}"
            );
        }
    }

    // The password changes while a contract is open: its connections stay authenticated
    // until they drop; then every call says the credentials are refused.
    let c = open(&server);
    all_succeed(&c, "before the change");
    let mut admin = admin(&server);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("an0ther/secret")
        .query::<()>(&mut admin)
        .unwrap();
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query::<u64>(&mut admin)
        .unwrap();
    let _ = c.get("k"); // meets the killed connections, drops them all
    all_fail_in_time(&c, "password changed", &[BackendKind::Unauthenticated]);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(SECRET)
        .query::<()>(&mut admin)
        .unwrap();
    all_succeed(&c, "password restored");
}

/// One worker's record of its writes to its own keys: the value each key may hold.
#[derive(Default)]
struct Ledger {
    /// The last write acknowledged per key, `None` for a delete.
    acked: HashMap<String, Option<String>>,
    /// Values of writes that failed with `Applied::Unknown`: the server may hold them.
    maybe: HashMap<String, HashSet<String>>,
    /// Values of writes that failed with `Applied::No`: the server must never hold them.
    never: HashSet<String>,
    /// Keys a delete that failed with `Applied::Unknown` may have removed.
    maybe_deleted: HashSet<String>,
    /// Every value ever written per key, to check reads against.
    written: HashMap<String, HashSet<String>>,
}

/// Faults at random (silence, lost replies, cut replies, a frozen server) while threads
/// read and write. Every call ends within the bound with a value or a clean error that
/// keeps the password to itself; afterwards every key holds what its writes' outcomes
/// allow, and never the value of a write that said it was not applied.
#[test]
fn faults_at_random_never_hang_panic_leak_or_lie() {
    let Some(server) = start("faults_at_random") else {
        return;
    };
    let seconds = std::env::var("HODOR_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u64);
    let server = Arc::new(server);
    let proxy = Arc::new(proxy_for(&server));
    let name = support::unique("chaos");
    let c = open_on(proxy.port, &name);
    let stop = Arc::new(AtomicBool::new(false));
    let faults = {
        let (server, proxy, stop) = (server.clone(), proxy.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            let mut next = move |n: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % n
            };
            let mut counts = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                let fault = next(6);
                *counts.entry(fault).or_insert(0) += 1;
                match fault {
                    0 => proxy.set(Mode::Silent),
                    1 => proxy.set(Mode::DropReplies),
                    2 => proxy.set(Mode::CloseMidReply),
                    3 => server.freeze(),
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(50 + next(400)));
                server.thaw();
                proxy.set(Mode::Forward);
                std::thread::sleep(Duration::from_millis(50 + next(300)));
            }
            server.thaw();
            proxy.set(Mode::Forward);
            counts
        })
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut ledger = Ledger::default();
                let mut seq = 0u64;
                let (mut ok, mut failed) = (0u64, 0u64);
                while Instant::now() < deadline {
                    seq += 1;
                    let key = format!("w{w}/k{}", seq % 5);
                    let value = format!("w{w}-v{seq}");
                    let started = Instant::now();
                    let what = match seq % 4 {
                        0 | 1 => "set",
                        2 => "get",
                        _ => "delete",
                    };
                    let result = match what {
                        "set" => c.set(&key, value.clone(), None).map(|()| None),
                        "get" => c.get(&key).map(|v| {
                            Some(String::from_utf8(v.to_vec()).expect("values are UTF-8"))
                        }),
                        _ => c.delete(&key).map(|_| None),
                    };
                    let took = started.elapsed();
                    assert!(took < bound(), "{what} took {took:?}");
                    match result {
                        Ok(read) => {
                            ok += 1;
                            match what {
                                "set" => {
                                    ledger.acked.insert(key.clone(), Some(value.clone()));
                                    ledger.written.entry(key).or_default().insert(value);
                                }
                                "get" => {
                                    let read = read.expect("a get returns a value");
                                    assert!(
                                        !ledger.never.contains(&read),
                                        "get {key} returned {read:?}, whose set was not applied"
                                    );
                                    assert!(
                                        ledger.written.get(&key).is_some_and(|v| v.contains(&read)),
                                        "get {key} returned {read:?}, never written to it"
                                    );
                                }
                                _ => {
                                    ledger.acked.insert(key, None);
                                }
                            }
                        }
                        Err(Error::NotFound { .. }) if what == "get" => ok += 1,
                        Err(e) => {
                            failed += 1;
                            let (_, applied) = backend(what, &e);
                            if what == "delete" && applied == Applied::Unknown {
                                ledger.maybe_deleted.insert(key.clone());
                            }
                            if what == "set" {
                                ledger
                                    .written
                                    .entry(key.clone())
                                    .or_default()
                                    .insert(value.clone());
                                match applied {
                                    Applied::No => {
                                        ledger.never.insert(value);
                                    }
                                    _ => {
                                        ledger.maybe.entry(key).or_default().insert(value);
                                    }
                                }
                            }
                        }
                    }
                }
                (ledger, ok, failed)
            })
        })
        .collect();
    let ledgers: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let counts = faults.join().unwrap();
    let (ok, failed) = ledgers
        .iter()
        .fold((0, 0), |(o, f), (_, ok, failed)| (o + ok, f + failed));
    eprintln!("{seconds} s of faults {counts:?}: {ok} calls succeeded, {failed} failed cleanly");

    // Late requests that sat in a silenced connection may still be arriving; let them.
    std::thread::sleep(Duration::from_millis(3 * TIMEOUT_MS));
    let direct = open_on(server.port, &name);
    for (ledger, _, _) in &ledgers {
        for key in ledger.written.keys() {
            let acked = ledger.acked.get(key).cloned().flatten();
            let now = match direct.get(key) {
                Ok(v) => Some(String::from_utf8(v.to_vec()).unwrap()),
                Err(Error::NotFound { .. }) => None,
                Err(e) => panic!("{e}"),
            };
            if let Some(value) = &now {
                assert!(
                    !ledger.never.contains(value),
                    "{key} holds {value}, which was not applied"
                );
            }
            let maybe = ledger.maybe.get(key);
            let allowed = now == acked
                || (now.is_none() && ledger.maybe_deleted.contains(key))
                || now
                    .as_ref()
                    .is_some_and(|v| maybe.is_some_and(|m| m.contains(v)));
            assert!(allowed, "{key} holds {now:?}; last acknowledged {acked:?}");
        }
    }
    // The same contract works again.
    all_succeed(&c, "after the faults");
}
