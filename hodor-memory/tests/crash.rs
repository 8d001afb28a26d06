//! Crash tests: a child process writes to a persistent store with `fsync = always` and
//! reports every write that returned; it is killed with SIGKILL at a random moment (while
//! it writes, snapshots or recovers), and the store is reopened. Every acknowledged write
//! must be there, and each writer's keys must hold the state after its last acknowledged
//! write or after the one it had in flight: nothing lost, nothing half-applied (a
//! `set_many` is all there or not at all), no value torn. The writes include conditional
//! ones (`create`, `increment`, `set_if_version`), logged as `set` is.
//!
//! The child is this test binary again, running the ignored test `crash_child`. The
//! number of kills is 120 by default (about 15 s); `HODOR_CRASH_KILLS=N` runs N.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hodor_core::Contract;
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, PersistConfig};

/// Writer threads in the child.
const THREADS: u64 = 4;
/// Keys per writer thread.
const KEYS: u64 = 24;

type State = BTreeMap<String, Vec<u8>>;

/// A deterministic stream of numbers for one writer's op `i`.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[derive(Clone)]
enum Op {
    Set(String, Vec<u8>, bool),
    Delete(String),
    SetMany(Vec<(String, Vec<u8>)>),
    DeleteMany(Vec<String>),
    /// `create`: writes only over no entry.
    Create(String, Vec<u8>),
    /// `increment` of one of the writer's counters, which nothing else writes.
    Increment(String, i64),
    /// `set_if_version` with the version `stat` just read (or `create` when there is no
    /// entry): the writer is the key's only one, so it must succeed.
    Cas(String, Vec<u8>),
}

fn key(thread: u64, r: u64) -> String {
    format!("t{thread}/k{:02}", r % KEYS)
}

/// A value that names its writer and op, so a value from the wrong write or a torn one
/// can never equal the expected one; some are long and compressible.
fn value(thread: u64, i: u64, r: u64) -> Vec<u8> {
    let mut v = format!("{thread}:{i}:").into_bytes();
    let len = if r.is_multiple_of(7) {
        1500 + r % 1500
    } else {
        r % 200
    };
    v.extend((0..len).map(|j| b'a' + ((j / 16 + i) % 26) as u8));
    v
}

/// Writer `thread`'s op `i` in cycle `cycle`.
fn op(cycle: u64, thread: u64, i: u64) -> Op {
    let r = mix(cycle << 40 ^ thread << 32 ^ i);
    let k = |n: u64| key(thread, mix(r ^ n));
    match r % 10 {
        0 => Op::Delete(k(1)),
        1 => Op::SetMany(
            (0..3)
                .map(|n| (k(n + 2), value(thread, i, mix(r + n))))
                .collect(),
        ),
        2 => Op::DeleteMany(vec![k(5), k(6)]),
        3 => Op::Set(k(1), value(thread, i, r >> 8), true),
        4 => Op::Create(k(1), value(thread, i, r >> 8)),
        5 => Op::Increment(
            format!("t{thread}/n{}", r % 4),
            (r >> 8) as i64 % 1000 - 500,
        ),
        6 => Op::Cas(k(1), value(thread, i, r >> 8)),
        _ => Op::Set(k(1), value(thread, i, r >> 8), false),
    }
}

/// The op without its values, for messages.
impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Set(k, v, ttl) => write!(f, "set {k} ({} bytes, ttl: {ttl})", v.len()),
            Op::Delete(k) => write!(f, "delete {k}"),
            Op::SetMany(e) => write!(
                f,
                "set_many {:?}",
                e.iter().map(|(k, _)| k).collect::<Vec<_>>()
            ),
            Op::DeleteMany(k) => write!(f, "delete_many {k:?}"),
            Op::Create(k, v) => write!(f, "create {k} ({} bytes)", v.len()),
            Op::Increment(k, d) => write!(f, "increment {k} by {d}"),
            Op::Cas(k, v) => write!(f, "set_if_version {k} ({} bytes)", v.len()),
        }
    }
}

fn apply(state: &mut State, op: &Op) {
    match op {
        Op::Set(k, v, _) => {
            state.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            state.remove(k);
        }
        Op::SetMany(entries) => {
            for (k, v) in entries {
                state.insert(k.clone(), v.clone());
            }
        }
        Op::DeleteMany(keys) => {
            for k in keys {
                state.remove(k);
            }
        }
        Op::Create(k, v) => {
            state.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Op::Increment(k, delta) => {
            let now = state.get(k).map_or(0, |v| {
                std::str::from_utf8(v).unwrap().parse::<i64>().unwrap()
            });
            state.insert(k.clone(), (now + delta).to_string().into_bytes());
        }
        Op::Cas(k, v) => {
            state.insert(k.clone(), v.clone());
        }
    }
}

fn config(dir: &Path, compress: bool) -> MemoryConfig {
    let config = MemoryConfig::default().persist(
        PersistConfig::new(dir)
            .fsync(Fsync::Always)
            // Small, so kills land in the middle of snapshots too.
            .snapshot_log_bytes(32 * 1024),
    );
    if compress {
        config.compression(CompressionConfig::lz4(512))
    } else {
        config
    }
}

fn run(c: &Contract, op: &Op) -> Result<(), String> {
    let done = |r: hodor_core::Result<()>| r.map_err(|e| e.to_string());
    let sure = |wrote: hodor_core::Result<bool>| match wrote {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "{op:?} did not write, with no other writer of the key"
        )),
        Err(e) => Err(e.to_string()),
    };
    match op {
        Op::Create(k, v) => done(c.create(k, v.clone(), None).map(drop)),
        Op::Increment(k, delta) => done(c.increment(k, *delta).map(drop)),
        Op::Cas(k, v) => match c.stat(k) {
            Err(hodor_core::Error::NotFound { .. }) => sure(c.create(k, v.clone(), None)),
            Err(e) => Err(e.to_string()),
            Ok(m) => sure(c.set_if_version(k, v.clone(), None, m.version)),
        },
        other => done(run_plain(c, other)),
    }
}

fn run_plain(c: &Contract, op: &Op) -> hodor_core::Result<()> {
    match op {
        Op::Set(k, v, ttl) => {
            let ttl = ttl.then(|| Duration::from_secs(3600));
            c.set(k, v.clone(), ttl)
        }
        Op::Delete(k) => c.delete(k).map(drop),
        Op::SetMany(entries) => c.set_many(
            entries
                .iter()
                .map(|(k, v)| (k.as_str(), Bytes::from(v.clone()))),
            None,
        ),
        Op::DeleteMany(keys) => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            c.delete_many(&keys).map(drop)
        }
        Op::Create(..) | Op::Increment(..) | Op::Cas(..) => unreachable!("run handles {op:?}"),
    }
}

/// The child: opens the store, says `ready`, and writes until it is killed, printing
/// `ack THREAD OP` after each write returns.
#[test]
#[ignore = "run by the crash tests as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var("HODOR_CRASH_DIR") else {
        return;
    };
    let cycle: u64 = std::env::var("HODOR_CRASH_CYCLE").unwrap().parse().unwrap();
    let compress = cycle % 2 == 1;
    let out = std::io::stdout();
    // The test harness has written "test crash_child ... " without a line end: start on a
    // line of our own.
    let c = match hodor_memory::open("crash", config(Path::new(&dir), compress)) {
        Ok(c) => c,
        Err(e) => {
            writeln!(out.lock(), "\nerror {e}").unwrap();
            return;
        }
    };
    writeln!(out.lock(), "\nready").unwrap();
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let (c, out) = (&c, &out);
            s.spawn(move || {
                for i in 0.. {
                    if let Err(e) = run(c, &op(cycle, thread, i)) {
                        writeln!(out.lock(), "error {e}").unwrap();
                        return;
                    }
                    writeln!(out.lock(), "ack {thread} {i}").unwrap();
                }
            });
        }
    });
}

/// Where the parent's view of one kill comes from.
struct Killed {
    /// The last acknowledged op of each writer.
    acked: Vec<Option<u64>>,
    errors: Vec<String>,
}

fn spawn(dir: &Path, cycle: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HODOR_CRASH_DIR", dir)
        .env("HODOR_CRASH_CYCLE", cycle.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs one child and kills it `delay` after it is ready (or after it starts, when
/// `before_ready`, so the kill can land in its recovery).
fn kill_child(dir: &Path, cycle: u64, delay: Duration, before_ready: bool) -> Killed {
    let mut child = spawn(dir, cycle);
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                let _ = ready_tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    if !before_ready {
        // A child that fails to open says so and exits; the lines tell.
        let _ = ready_rx.recv_timeout(Duration::from_secs(30));
    }
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    let lines = reader.join().unwrap();
    let mut acked = vec![None; THREADS as usize];
    let mut errors = Vec::new();
    for line in lines {
        let mut words = line.split(' ');
        match words.next() {
            Some("ack") => {
                let (Some(t), Some(i)) = (words.next(), words.next()) else {
                    continue; // a line cut by the kill
                };
                let (Ok(t), Ok(i)) = (t.parse::<usize>(), i.parse::<u64>()) else {
                    continue;
                };
                acked[t] = acked[t].max(Some(i));
            }
            Some("error") => errors.push(line),
            _ => {}
        }
    }
    Killed { acked, errors }
}

fn read_state(c: &Contract) -> State {
    c.list("")
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = c.get(&k).unwrap().to_vec();
            (k, v)
        })
        .collect()
}

fn of_thread(state: &State, thread: u64) -> State {
    let prefix = format!("t{thread}/");
    state
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_at_any_moment() {
    let kills: u64 = std::env::var("HODOR_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(120);
    let dir = TempDir(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&dir.0);
    let started = Instant::now();
    let mut model = State::new();
    let mut checked = 0u64;
    let mut in_flight_applied = 0u64;
    for cycle in 0..kills {
        let r = mix(cycle ^ 0xdead);
        let before_ready = r.is_multiple_of(8);
        let delay = Duration::from_millis(if before_ready { r % 40 } else { r % 120 });
        let killed = kill_child(&dir.0, cycle, delay, before_ready);
        assert!(
            killed.errors.is_empty(),
            "cycle {cycle}: the child failed: {:?}",
            killed.errors
        );
        // Reopen (a plain open: a recovery of its own) and compare each writer's keys.
        let c = hodor_memory::open("crash-check", config(&dir.0, false))
            .unwrap_or_else(|e| panic!("cycle {cycle}: recovery failed: {e}"));
        let recovered = read_state(&c);
        c.close().unwrap();
        for thread in 0..THREADS {
            let acked = killed.acked[thread as usize];
            let mut expected = of_thread(&model, thread);
            let ops = acked.map_or(0, |a| a + 1);
            for i in 0..ops {
                apply(&mut expected, &op(cycle, thread, i));
            }
            checked += ops;
            let got = of_thread(&recovered, thread);
            if got == expected {
                continue;
            }
            // The op in flight at the kill may have been applied too, whole.
            apply(&mut expected, &op(cycle, thread, ops));
            assert!(
                got == expected,
                "cycle {cycle}, writer {thread}: after {ops} acknowledged ops the store holds \
                 neither their state nor that plus the op in flight ({:?})\n got: {:?}\n want: {:?}",
                op(cycle, thread, ops),
                got.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>()
            );
            in_flight_applied += 1;
        }
        model = recovered;
    }
    eprintln!(
        "crash test: {kills} kills, {checked} acknowledged writes checked, lost: 0 \
         ({in_flight_applied} in-flight writes were applied whole), {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        checked > kills,
        "the children wrote almost nothing: {checked} acks"
    );
}

#[test]
fn a_second_process_cannot_open_the_directory() {
    let dir = TempDir(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-lock-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&dir.0);
    let c = hodor_memory::open("holder", config(&dir.0, false)).unwrap();
    c.set("k", "v", None).unwrap();
    let killed = kill_child(&dir.0, 0, Duration::ZERO, false);
    let error = killed.errors.join("\n");
    assert!(
        error.contains(&format!(
            "in use by another process (pid {})",
            std::process::id()
        )) && error.contains(&dir.0.display().to_string()),
        "{error:?}"
    );
    c.close().unwrap();
    // Released: the next process opens it and finds the data (and is killed).
    let killed = kill_child(&dir.0, 0, Duration::from_millis(20), false);
    assert!(killed.errors.is_empty(), "{:?}", killed.errors);
    let c = hodor_memory::open("holder", config(&dir.0, false)).unwrap();
    assert_eq!(c.get("k").unwrap(), "v");
    c.close().unwrap();
}
