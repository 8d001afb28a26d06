//! The watch phase (`--only watch`): what watching costs a write, and how soon a watcher
//! hears of it.
//!
//! - **Writes with one watcher:** `plan.watch.threads` threads overwrite random keys of a
//!   memory store loaded with `plan.watch.keys` keys, with nobody watching and with one
//!   prefix watch whose thread receives every change, repetitions interleaved; the ratio of
//!   the medians is the target. Both sides also report where the time went: the CPU time
//!   the writers used per `set` (what publishing costs a write), the cores they got, and
//!   the watcher's share of a core and CPU time per event (what it takes from the writers
//!   when writers and watcher outnumber the cores); and the same ratio with one writer
//!   thread, which leaves a core to the watcher.
//! - **Writes with nobody watching, against the code before watching existed:** the
//!   `hodor-watch-probe` package is built twice, as users get it and with
//!   `--cfg hodor_no_watch` (the memory driver's hooks compiled out), each in a target
//!   directory of its own under `target/hodor-bench/`; the two binaries run in turn, a fresh
//!   process per round, alternating which goes first, and each round's two numbers are
//!   paired, so a shared machine's drift cancels out of the ratio. Each binary says which
//!   way it was built; a flag that did not reach the driver is an error, never a silent 1.0.
//! - **Latency:** one thread sets keys at a steady pace while another waits in `recv`; the
//!   time from the start of each `set` to the `recv` of its event, in microseconds.
//! - **Redis:** with `redis-server` on `PATH`, hodor-redis `set` at `plan.watch.redis_threads`
//!   client threads with the change log (`watch_history` 10,000) and without it (0: the
//!   counter only), against a private server: what logging each change costs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::Progress;
use crate::plan::Plan;
use crate::results::{Goal, Ratio, Summary};

/// The watch phase's settings.
#[derive(Clone, Debug, Serialize)]
pub struct WatchPlan {
    /// Keys loaded into the store the writers overwrite.
    pub keys: usize,
    /// Writer threads.
    pub threads: usize,
    /// One measurement.
    pub duration: Duration,
    /// Interleaved repetitions of the in-process measurements.
    pub reps: usize,
    /// Rounds of the two probe builds (0: not built).
    pub probe_rounds: usize,
    /// Cargo profile of the probe builds.
    pub probe_profile: &'static str,
    /// Events timed for the latency.
    pub latency_events: usize,
    /// Redis client threads (0: no Redis measurement).
    pub redis_threads: usize,
}

/// What the watch phase measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WatchResults {
    /// Million sets per second with nobody watching, per repetition.
    pub set_unwatched: Summary,
    /// The same with one prefix watch receiving every change.
    pub set_watched: Summary,
    /// `set_watched / set_unwatched` per repetition.
    pub watched_ratio: Summary,
    /// Events and lag markers the watcher received, over all repetitions.
    pub watcher_events: u64,
    /// Lag markers the watcher received (its buffer overflowed).
    pub watcher_lagged: u64,
    /// Per watched repetition, the CPU the watcher's thread used over its wall time (1.0 is
    /// a whole core): with the writers on every core, what it took from them.
    pub consumer_cpu_share: Summary,
    /// The watcher's CPU time per event received, nanoseconds, over all repetitions.
    pub consumer_ns_per_event: f64,
    /// Per repetition, the cores the writers' threads got with nobody watching (their CPU
    /// time over their wall time, summed over the threads).
    pub writer_cores_unwatched: Summary,
    /// The same with the watcher.
    pub writer_cores_watched: Summary,
    /// The writers' CPU time per `set`, nanoseconds, nobody watching, over all
    /// repetitions: the cost of a write, whatever the share of the cores it got.
    pub writer_ns_per_set_unwatched: f64,
    /// The same with the watcher: the difference is what publishing costs a write.
    pub writer_ns_per_set_watched: f64,
    /// The watched / unwatched ratio with one writer thread, which leaves a core to the
    /// watcher: `threads` writers and a busy watcher on fewer cores than threads share
    /// them.
    pub one_writer_ratio: Summary,
    /// Probe rounds: million sets per second of the build with the hooks and without.
    pub probe_with_hooks: Summary,
    /// See `probe_with_hooks`.
    pub probe_without_hooks: Summary,
    /// Per round, with hooks / without hooks.
    pub probe_ratio: Summary,
    /// Why the probe did not run, if it did not.
    pub probe_error: Option<String>,
    /// Microseconds from a `set` to the `recv` of its event: median, 99th percentile,
    /// maximum.
    pub latency_p50_us: f64,
    /// See `latency_p50_us`.
    pub latency_p99_us: f64,
    /// See `latency_p50_us`.
    pub latency_max_us: f64,
    /// Thousand hodor-redis sets per second with the change log, per repetition.
    pub redis_logged_kops: Summary,
    /// The same with `watch_history: 0`.
    pub redis_unlogged_kops: Summary,
    /// Per repetition, logged / unlogged.
    pub redis_ratio: Summary,
    /// Why Redis was not measured, if it was not.
    pub redis_error: Option<String>,
}

/// Runs the phase.
pub fn run(plan: &Plan, progress: &Progress) -> WatchResults {
    let p = &plan.watch;
    let mut r = WatchResults::default();
    progress.say(&format!(
        "watch: loading {} keys; set on {} threads with and without a watcher",
        p.keys, p.threads
    ));
    let keys = hodor_watch_probe::keys(p.keys);
    let store = hodor_watch_probe::load(&unique("hodor-bench-watch"), &keys);
    let _ = hodor_watch_probe::set_mops(&store, &keys, p.threads, plan.warmup, plan.warmup);
    let writes = watched_writes(&store, &keys, p.threads, p);
    r.set_unwatched = Summary::of(writes.mops[0].clone());
    r.set_watched = Summary::of(writes.mops[1].clone());
    r.watched_ratio = Summary::of(writes.ratio.clone());
    r.watcher_events = writes.consumed.events;
    r.watcher_lagged = writes.consumed.lagged;
    r.consumer_cpu_share = Summary::of(writes.consumer_share.clone());
    r.consumer_ns_per_event = writes.consumed.cpu.map_or(f64::NAN, |cpu| {
        cpu.as_secs_f64() * 1e9 / writes.consumed.events.max(1) as f64
    });
    r.writer_cores_unwatched = Summary::of(writes.cores[0].clone());
    r.writer_cores_watched = Summary::of(writes.cores[1].clone());
    r.writer_ns_per_set_unwatched = writes.ns_per_set(0);
    r.writer_ns_per_set_watched = writes.ns_per_set(1);
    if p.threads > 1 {
        progress.say("watch: the same with one writer thread");
        r.one_writer_ratio = Summary::of(watched_writes(&store, &keys, 1, p).ratio);
    }

    progress.say(&format!("watch: latency of {} events", p.latency_events));
    let mut lat: Vec<f64> =
        hodor_watch_probe::latency(&store, p.latency_events, Duration::from_micros(50))
            .iter()
            .map(|d| d.as_secs_f64() * 1e6)
            .collect();
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (r.latency_p50_us, r.latency_p99_us, r.latency_max_us) = (at(0.5), at(0.99), at(1.0));
    // Freeing the loaded store takes a while; the phase does not need it any more.
    std::mem::forget(store);

    if p.probe_rounds > 0 {
        if let Err(e) = probe(plan, &mut r, progress) {
            r.probe_error = Some(e);
        }
    } else {
        r.probe_error = Some("not run in this plan".to_owned());
    }
    if p.redis_threads > 0 {
        if let Err(e) = redis(plan, &mut r, progress) {
            r.redis_error = Some(e);
        }
    } else {
        r.redis_error = Some("not run in this plan".to_owned());
    }
    r
}

/// Interleaved repetitions of `set` on `threads` threads with nobody watching (index 0)
/// and with a watcher consuming every change (index 1).
#[derive(Default)]
struct Writes {
    mops: [Vec<f64>; 2],
    ratio: Vec<f64>,
    /// The writers' CPU time over their wall time, per repetition.
    cores: [Vec<f64>; 2],
    /// Over all repetitions: sets counted and their CPU time (`None`: not told).
    sets: [u64; 2],
    cpu: [Option<Duration>; 2],
    consumed: hodor_watch_probe::Consumed,
    consumer_share: Vec<f64>,
}

impl Writes {
    fn ns_per_set(&self, which: usize) -> f64 {
        self.cpu[which].map_or(f64::NAN, |cpu| {
            cpu.as_secs_f64() * 1e9 / self.sets[which].max(1) as f64
        })
    }
}

fn watched_writes(
    store: &hodor_core::Contract,
    keys: &[String],
    threads: usize,
    p: &WatchPlan,
) -> Writes {
    let mut w = Writes {
        cpu: [Some(Duration::ZERO); 2],
        consumed: hodor_watch_probe::Consumed {
            cpu: Some(Duration::ZERO),
            ..Default::default()
        },
        ..Writes::default()
    };
    for rep in 0..p.reps {
        // Alternate which goes first.
        let mut pair = [0.0; 2];
        for second in [false, true] {
            let with_watch = second == (rep % 2 == 0);
            let i = usize::from(with_watch);
            let consumer = with_watch.then(|| hodor_watch_probe::Consumer::start(store, "k/"));
            let run = hodor_watch_probe::set_run(
                store,
                keys,
                threads,
                Duration::from_millis(20),
                p.duration,
            );
            if let Some(consumer) = consumer {
                let c = consumer.stop();
                w.consumed.events += c.events;
                w.consumed.lagged += c.lagged;
                w.consumed.cpu = w.consumed.cpu.zip(c.cpu).map(|(a, b)| a + b);
                if let Some(cpu) = c.cpu.filter(|_| c.wall > Duration::ZERO) {
                    w.consumer_share
                        .push(cpu.as_secs_f64() / c.wall.as_secs_f64());
                }
            }
            pair[i] = run.mops;
            w.mops[i].push(run.mops);
            w.sets[i] += run.sets;
            w.cpu[i] = w.cpu[i].zip(run.cpu).map(|(a, b)| a + b);
            if let Some(cpu) = run.cpu.filter(|_| run.wall > Duration::ZERO) {
                // Summed walls of `threads` threads: times `threads` gives cores.
                w.cores[i].push(cpu.as_secs_f64() / run.wall.as_secs_f64() * threads as f64);
            }
        }
        if pair[0] > 0.0 {
            w.ratio.push(pair[1] / pair[0]);
        }
    }
    w
}

fn unique(base: &str) -> String {
    format!(
        "{base}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

/// One round of one probe binary: its Mops.
fn round(binary: &Path, plan: &Plan, hooks: bool) -> Result<f64, String> {
    let p = &plan.watch;
    let output = Command::new(binary)
        .arg(p.keys.to_string())
        .arg(p.threads.to_string())
        .arg(plan.warmup.as_millis().max(1).to_string())
        .arg(p.duration.as_millis().max(1).to_string())
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("{} printed {:?}: {e}", binary.display(), stdout.trim()))?;
    if json["hooks"].as_bool() != Some(hooks) {
        return Err(format!(
            "the probe built {} the hooks reports hooks = {}: the --cfg did not reach \
             hodor-memory",
            if hooks { "with" } else { "without" },
            json["hooks"]
        ));
    }
    json["mops"]
        .as_f64()
        .ok_or_else(|| format!("no mops in {json}"))
}

fn probe(plan: &Plan, r: &mut WatchResults, progress: &Progress) -> Result<(), String> {
    let p = &plan.watch;
    progress.say(&format!(
        "watch: building the probe with and without the hooks ({} profile; the first time \
         compiles its dependencies twice)",
        p.probe_profile
    ));
    let root = crate::workspace_root();
    let build =
        |cfg| crate::counting::build_probe(&root, "hodor-watch-probe", p.probe_profile, cfg);
    let with = build(None)?;
    let without = build(Some("hodor_no_watch"))?;
    progress.say(&format!(
        "watch: {} rounds of set with nobody watching, {} keys, {} threads, each build in turn",
        p.probe_rounds, p.keys, p.threads
    ));
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..p.probe_rounds {
        let (x, y) = if i % 2 == 0 {
            let x = round(&with, plan, true)?;
            (x, round(&without, plan, false)?)
        } else {
            let y = round(&without, plan, false)?;
            (round(&with, plan, true)?, y)
        };
        a.push(x);
        b.push(y);
        if y > 0.0 {
            ratio.push(x / y);
        }
    }
    r.probe_with_hooks = Summary::of(a);
    r.probe_without_hooks = Summary::of(b);
    r.probe_ratio = Summary::of(ratio);
    Ok(())
}

/// Thousand sets per second of hodor-redis with `history` (0: no change log).
fn redis_kops(port: u16, history: u64, threads: usize, duration: Duration) -> Result<f64, String> {
    let config = serde_json::json!({
        "url": format!("redis://127.0.0.1:{port}/0"),
        "pool_size": threads,
        "watch_history": history,
    });
    let name = unique("bench-watch");
    let c = hodor_core::Contract::new("redis", &name, Some(config)).map_err(|e| e.to_string())?;
    let value = bytes::Bytes::from(vec![b'v'; 64]);
    let done = std::sync::atomic::AtomicBool::new(false);
    let total = std::sync::atomic::AtomicU64::new(0);
    let failed = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (c, value, done, total, failed) = (&c, &value, &done, &total, &failed);
            scope.spawn(move || {
                let mut i = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("k/{t}/{}", i % 10_000);
                    if c.set(&key, value.clone(), Some(Duration::from_secs(600)))
                        .is_err()
                    {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    i += 1;
                }
                total.fetch_add(i, std::sync::atomic::Ordering::Relaxed);
            });
        }
        std::thread::sleep(duration);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let _ = c.close();
    if failed.load(std::sync::atomic::Ordering::Relaxed) > 0 {
        return Err("some sets failed".to_owned());
    }
    Ok(total.load(std::sync::atomic::Ordering::Relaxed) as f64 / duration.as_secs_f64() / 1e3)
}

fn redis(plan: &Plan, r: &mut WatchResults, progress: &Progress) -> Result<(), String> {
    let p = &plan.watch;
    let server = crate::redis_phase::Server::start()?;
    progress.say(&format!(
        "watch: hodor-redis set with and without the change log, {} client threads",
        p.redis_threads
    ));
    let (mut logged, mut unlogged, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let _ = redis_kops(server.port(), 10_000, p.redis_threads, plan.warmup)?;
    for rep in 0..p.reps {
        let mut pair = [0.0; 2];
        for second in [false, true] {
            let log = second == (rep % 2 == 0);
            let history = if log { 10_000 } else { 0 };
            pair[usize::from(log)] =
                redis_kops(server.port(), history, p.redis_threads, p.duration)?;
        }
        unlogged.push(pair[0]);
        logged.push(pair[1]);
        if pair[0] > 0.0 {
            ratio.push(pair[1] / pair[0]);
        }
    }
    r.redis_logged_kops = Summary::of(logged);
    r.redis_unlogged_kops = Summary::of(unlogged);
    r.redis_ratio = Summary::of(ratio);
    Ok(())
}

/// The phase's targets.
pub fn ratios(plan: &Plan, r: Option<&WatchResults>) -> Vec<Ratio> {
    let p = &plan.watch;
    let ratio = |name, value, goal, target, detail| Ratio {
        name,
        value,
        target,
        goal,
        detail,
    };
    let measured = |s: &Summary| (!s.samples.is_empty()).then_some(s.median);
    vec![
        ratio(
            "watch_set_unwatched_vs_before",
            r.and_then(|r| measured(&r.probe_ratio)),
            Goal::AtLeast,
            0.98,
            match r {
                Some(r) if r.probe_error.is_none() => format!(
                    "set with nobody watching, {} keys, {} threads: the build as users get it / \
                     the build with the watch hooks compiled out (`--cfg hodor_no_watch`), median \
                     of {} paired rounds ({:.3} vs {:.3} Mops/s)",
                    p.keys,
                    p.threads,
                    r.probe_ratio.samples.len(),
                    r.probe_with_hooks.median,
                    r.probe_without_hooks.median
                ),
                Some(r) => format!("not measured: {}", r.probe_error.as_deref().unwrap_or("")),
                None => "watch phase not run".to_owned(),
            },
        ),
        ratio(
            "watch_set_one_watcher_vs_none",
            r.and_then(|r| measured(&r.watched_ratio)),
            Goal::AtLeast,
            0.8,
            match r {
                Some(r) => format!(
                    "set, {} keys, {} threads: with one prefix watch receiving every change / \
                     with none, median of {} interleaved pairs ({:.3} vs {:.3} Mops/s; the \
                     watcher received {} events, lagged {} times, used {:.2} of a core, {:.0} \
                     ns CPU per event; the writers got {:.2} vs {:.2} cores of {}, {:.0} vs \
                     {:.0} ns CPU per set; 1 writer thread: {:.2})",
                    p.keys,
                    p.threads,
                    r.watched_ratio.samples.len(),
                    r.set_watched.median,
                    r.set_unwatched.median,
                    r.watcher_events,
                    r.watcher_lagged,
                    r.consumer_cpu_share.median,
                    r.consumer_ns_per_event,
                    r.writer_cores_watched.median,
                    r.writer_cores_unwatched.median,
                    std::thread::available_parallelism().map_or(0, |n| n.get()),
                    r.writer_ns_per_set_watched,
                    r.writer_ns_per_set_unwatched,
                    r.one_writer_ratio.median,
                ),
                None => "watch phase not run".to_owned(),
            },
        ),
        ratio(
            "watch_event_latency_p99_us",
            r.map(|r| r.latency_p99_us),
            Goal::AtMost,
            1000.0,
            match r {
                Some(r) => format!(
                    "microseconds from the start of a set to the recv of its event, memory \
                     driver, one set every 50 µs, {} events (median {:.1}, max {:.0})",
                    p.latency_events, r.latency_p50_us, r.latency_max_us
                ),
                None => "watch phase not run".to_owned(),
            },
        ),
        ratio(
            "watch_redis_set_logged_vs_unlogged",
            r.and_then(|r| measured(&r.redis_ratio)),
            Goal::AtLeast,
            0.8,
            match r {
                Some(r) if r.redis_error.is_none() => format!(
                    "hodor-redis set with a TTL, {} client threads, private redis-server: with \
                     the change log (INCR + XADD) / with watch_history 0 (INCR only), median of \
                     {} interleaved pairs ({:.1} vs {:.1} k sets/s)",
                    p.redis_threads,
                    r.redis_ratio.samples.len(),
                    r.redis_logged_kops.median,
                    r.redis_unlogged_kops.median
                ),
                Some(r) => format!("not measured: {}", r.redis_error.as_deref().unwrap_or("")),
                None => "watch phase not run".to_owned(),
            },
        ),
    ]
}

/// The phase's section of the report.
pub fn markdown(plan: &Plan, r: &WatchResults, h: &str) -> String {
    let p = &plan.watch;
    let cell = |s: &Summary| {
        if s.samples.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.3} ({:.3}–{:.3})", s.median, s.min, s.max)
        }
    };
    format!(
        "\n{h} Watch: what watching costs a write ({} keys, {} threads)\n\n\
         | measurement | value |\n|---|---|\n\
         | set, nobody watching, M/s | {} |\n\
         | set, one prefix watch receiving every change, M/s | {} |\n\
         | ratio, watched / unwatched | {} |\n\
         | the same with 1 writer thread | {} |\n\
         | watcher: CPU share of a core / ns CPU per event | {} / {:.0} |\n\
         | writers: cores they got, unwatched / watched | {} / {} |\n\
         | writers: ns CPU per set, unwatched / watched | {:.0} / {:.0} |\n\
         | probe: set, nobody watching, as users get it, M/s | {} |\n\
         | probe: set, watch hooks compiled out, M/s | {} |\n\
         | probe ratio | {} |\n\
         | set → recv latency, µs (p50 / p99 / max) | {:.1} / {:.1} / {:.0} |\n\
         | hodor-redis set with the change log, k/s | {} |\n\
         | hodor-redis set, `watch_history: 0`, k/s | {} |\n",
        p.keys,
        p.threads,
        cell(&r.set_unwatched),
        cell(&r.set_watched),
        cell(&r.watched_ratio),
        cell(&r.one_writer_ratio),
        cell(&r.consumer_cpu_share),
        r.consumer_ns_per_event,
        cell(&r.writer_cores_unwatched),
        cell(&r.writer_cores_watched),
        r.writer_ns_per_set_unwatched,
        r.writer_ns_per_set_watched,
        cell(&r.probe_with_hooks),
        cell(&r.probe_without_hooks),
        cell(&r.probe_ratio),
        r.latency_p50_us,
        r.latency_p99_us,
        r.latency_max_us,
        cell(&r.redis_logged_kops),
        cell(&r.redis_unlogged_kops),
    )
}
