//! # hodor-watch-probe: what watching costs a write
//!
//! The workloads of hodor-bench's watch phase, in a package small enough to build twice:
//!
//! - [`set_mops`]: threads overwriting random keys of a loaded memory store, with or
//!   without a watch consuming every change ([`Consumer`]);
//! - [`latency`]: the time from the start of a `set` to the `recv` of its event;
//! - the binary (`src/main.rs`) runs [`set_mops`] with nobody watching and prints the
//!   result. hodor-bench builds it as users get it and with `RUSTFLAGS="--cfg
//!   hodor_no_watch"`, which compiles the memory driver's watch hooks out of the write
//!   path, and runs the two in turn: the difference is what the hooks cost a write while
//!   nobody watches. [`hooks_compiled_in`] tells which build is running, so a flag that did
//!   not reach the driver cannot pass unnoticed.

#![deny(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hodor_core::Contract;
use hodor_core::watch::{Item, WatchOptions};
use hodor_memory::MemoryConfig;

/// The keys a store is loaded with: `k/0000000`, `k/0000001`, ...
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k/{i:07}")).collect()
}

/// A fresh memory store called `name`, every key of `keys` set to a 64-byte value.
pub fn load(name: &str, keys: &[String]) -> Contract {
    let c = hodor_memory::open(name, MemoryConfig::default()).expect("a memory store opens");
    let value = Bytes::from(vec![b'v'; 64]);
    for chunk in keys.chunks(4096) {
        c.set_many(chunk.iter().map(|k| (k.as_str(), value.clone())), None)
            .expect("loading succeeds");
    }
    c
}

/// SplitMix64, for picking keys without a shared generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((u128::from(z) * n as u128) >> 64) as usize
    }
}

/// Million `set`s per second of `threads` threads overwriting uniformly random keys of
/// `keys` (all loaded) with one shared 64-byte value, for `duration` after `warmup`. Each
/// thread times its own share of the window, so a slow start or end is not counted as work.
pub fn set_mops(
    c: &Contract,
    keys: &[String],
    threads: usize,
    warmup: Duration,
    duration: Duration,
) -> f64 {
    set_run(c, keys, threads, warmup, duration).mops
}

/// What [`set_run`] measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SetRun {
    /// Million `set`s per second, all threads together.
    pub mops: f64,
    /// The `set`s counted.
    pub sets: u64,
    /// The writers' wall time (each thread's own window, summed).
    pub wall: Duration,
    /// The CPU time the writers got in their windows, summed ([`thread_cpu`] granularity);
    /// `None` where the system does not tell.
    pub cpu: Option<Duration>,
}

/// [`set_mops`], also reporting how much CPU the writers got: with a watcher competing
/// for the cores, what the writers lost to it.
pub fn set_run(
    c: &Contract,
    keys: &[String],
    threads: usize,
    warmup: Duration,
    duration: Duration,
) -> SetRun {
    let value = Bytes::from(vec![b'w'; 64]);
    let start = std::sync::Barrier::new(threads);
    let timed = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (start, timed, done, value) = (&start, &timed, &done, &value);
                scope.spawn(move || {
                    let mut rng = Rng(0xfeed + t as u64);
                    start.wait();
                    let mut counted = 0u64;
                    let mut began = None;
                    let mut cpu_began = None;
                    // At least one timed chunk per thread, however late it sees the start.
                    loop {
                        for _ in 0..16 {
                            let key = &keys[rng.below(keys.len())];
                            c.set(key, value.clone(), None).expect("set succeeds");
                        }
                        if began.is_some() {
                            counted += 16;
                            if done.load(Ordering::Relaxed) {
                                break;
                            }
                        } else if timed.load(Ordering::Relaxed) {
                            began = Some(Instant::now());
                            cpu_began = thread_cpu();
                        }
                    }
                    let wall = began.map_or(Duration::ZERO, |b| b.elapsed());
                    let cpu = thread_cpu()
                        .zip(cpu_began)
                        .map(|(end, start)| end.saturating_sub(start));
                    (counted, wall, cpu)
                })
            })
            .collect();
        std::thread::sleep(warmup);
        timed.store(true, Ordering::Relaxed);
        std::thread::sleep(duration);
        done.store(true, Ordering::Relaxed);
        let mut run = SetRun {
            cpu: Some(Duration::ZERO),
            ..SetRun::default()
        };
        for w in workers {
            let (counted, wall, cpu) = w.join().unwrap_or((0, Duration::ZERO, None));
            if wall > Duration::ZERO {
                run.mops += counted as f64 / wall.as_secs_f64() / 1e6;
            }
            run.sets += counted;
            run.wall += wall;
            run.cpu = run.cpu.zip(cpu).map(|(a, b)| a + b);
        }
        run
    })
}

/// The CPU time the calling thread has used (user and system), from
/// `/proc/thread-self/stat`; `None` where there is no such file. Its unit is the kernel's
/// clock tick (10 ms): sum it over a long enough window.
pub fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The fields after the command name (which may hold spaces) in parentheses: state is
    // the first, utime and stime the 12th and 13th.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux the bench runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A thread that receives every event of a prefix watch until stopped.
#[derive(Debug)]
pub struct Consumer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Consumed>>,
}

/// What a [`Consumer`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Consumed {
    /// Events received.
    pub events: u64,
    /// Lag markers received (its buffer overflowed).
    pub lagged: u64,
    /// The CPU time its thread used ([`thread_cpu`]); `None` where the system does not
    /// tell.
    pub cpu: Option<Duration>,
    /// How long it ran.
    pub wall: Duration,
}

impl Consumer {
    /// Starts consuming the changes under `prefix` of `c`.
    pub fn start(c: &Contract, prefix: &str) -> Consumer {
        let mut watch = c
            .watch_with(prefix, WatchOptions::new())
            .expect("the memory driver watches");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut events, mut lagged) = (0u64, 0u64);
            let (began, cpu_began) = (Instant::now(), thread_cpu());
            while !stopped.load(Ordering::Relaxed) {
                match watch.recv_timeout(Duration::from_millis(5)) {
                    Ok(Some(Item::Event(e))) => {
                        std::hint::black_box(&e);
                        events += 1;
                    }
                    Ok(Some(Item::Lagged { .. })) => lagged += 1,
                    Ok(Some(_) | None) => {}
                    Err(_) => break,
                }
            }
            Consumed {
                events,
                lagged,
                cpu: thread_cpu()
                    .zip(cpu_began)
                    .map(|(end, start)| end.saturating_sub(start)),
                wall: began.elapsed(),
            }
        });
        Consumer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; returns what it received and the CPU it used.
    pub fn stop(mut self) -> Consumed {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The time from the start of a `set` to the `recv` of its event, for `events` sets made
/// `spacing` apart while a thread waits in `recv` on a watch of their key.
pub fn latency(c: &Contract, events: usize, spacing: Duration) -> Vec<Duration> {
    let mut watch = c.watch("lat/").expect("the memory driver watches");
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
    let origin = Instant::now();
    let since = move || u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let receiver = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let mut out = Vec::with_capacity(events);
            while out.len() < events {
                match watch.recv_timeout(Duration::from_secs(5)) {
                    Ok(Some(Item::Event(e))) => {
                        let at = since();
                        let i: usize = e
                            .key
                            .strip_prefix("lat/")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let from = sent.get(i).map_or(at, |s| s.load(Ordering::Acquire));
                        out.push(Duration::from_nanos(at.saturating_sub(from)));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            out
        })
    };
    let value = Bytes::from_static(b"v");
    let keys: Vec<String> = (0..events).map(|i| format!("lat/{i}")).collect();
    let mut next = Instant::now();
    for (i, key) in keys.iter().enumerate() {
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += spacing;
        if let Some(s) = sent.get(i) {
            s.store(since(), Ordering::Release);
        }
        c.set(key, value.clone(), None).expect("set succeeds");
    }
    receiver.join().unwrap_or_default()
}

/// Whether this build publishes changes: `false` when built with `--cfg hodor_no_watch`.
pub fn hooks_compiled_in() -> bool {
    let c = hodor_memory::open("hodor-watch-probe-check", MemoryConfig::default())
        .expect("a memory store opens");
    let mut w = c.watch("").expect("the memory driver watches");
    c.set("k", "v", None).expect("set succeeds");
    matches!(w.try_recv(), Ok(Some(Item::Event(_))))
}
