//! Every `set` with a random short TTL: how many expired entries stay resident.
//!
//! Worker threads do 50% `get` / 50% `set` on uniformly random keys, each set with a TTL
//! drawn uniformly from 1 ms to `max_ttl_ms`. Before each set a worker notes the instant the
//! entry will expire (taken before the call, so the store's own deadline is never earlier:
//! the count of live entries can only err low, which makes expired entries err high). To
//! sample, the main thread parks the workers, reads the store's resident count and counts
//! the keys that were live at the instant the last worker stopped writing, then lets them
//! go on: the difference is expired-but-resident, from one consistent snapshot. (Counting
//! at the instant of reading instead would blame the store for entries that expired while
//! the workers were parked, when no write could reclaim them.) Parked time is not counted in
//! the throughput.
//!
//! On a shared machine the OS sometimes takes the CPU from a worker for milliseconds; while
//! a worker cannot write, entries expire that its writes would have reclaimed, so a
//! snapshot shortly after such a stall measures the machine, not the store. Each worker
//! reads how long it waited for a CPU while runnable (the kernel's run-queue wait in
//! `/proc/thread-self/schedstat`; waiting on a lock inside the store is sleeping and does
//! not count). A snapshot where a worker waited more than [`STALL`] within the
//! [`STALL_SHADOW`] before it is marked `disturbed`. The statistics and the target use every
//! snapshot; the report adds how many were disturbed and the 90th percentile of the others,
//! to tell a noisy machine from a slow store. (The two cannot be separated perfectly: a
//! contended `parking_lot` lock yields the CPU before it sleeps, which also shows up as
//! run-queue wait when a third thread is runnable; so the undisturbed figure is a
//! diagnosis, never the target.) Parked workers and the sampler sleep rather than spin, so
//! they take no CPU from anyone.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::keys::Values;
use crate::plan::Plan;
use crate::results::{Summary, TtlRow, TtlSample};
use crate::rng::Rng;
use crate::stores::{Built, Kind, Limit, Spec, Store};
use crate::stream::{OpKind, Stream};
use crate::{Progress, with_store};

fn streams(plan: &Plan, keys: &[String]) -> Vec<Stream> {
    let n = plan.ttl.keys;
    (0..plan.ttl.threads)
        .map(|t| {
            let mut rng = Rng::new(0x77e1 + t as u64);
            let mut s = Stream::with_capacity(plan.stream_ops);
            for _ in 0..plan.stream_ops {
                let i = rng.below(n as u64);
                if rng.below(2) == 0 {
                    s.push(OpKind::Get, &keys[i as usize], i, 0, 0);
                } else {
                    let ttl = 1 + rng.below(u64::from(plan.ttl.max_ttl_ms)) as u32;
                    s.push(OpKind::Set, &keys[i as usize], i, i as usize, ttl);
                }
            }
            s
        })
        .collect()
}

/// A worker that waited this long for a CPU was stalled by the machine.
pub const STALL: Duration = Duration::from_millis(1);
/// How long after a stall a snapshot still reflects it.
pub const STALL_SHADOW: Duration = Duration::from_millis(20);
/// Operations between looks at the gate.
const BATCH: usize = 64;
/// Batches between readings of the run-queue wait.
const READ_WAIT_EVERY: u32 = 16;
/// How long parked workers and the waiting sampler sleep between looks.
const POLL: Duration = Duration::from_micros(20);

/// This thread's total run-queue wait in nanoseconds, if the kernel reports it.
fn runqueue_wait() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().nth(1)?.parse().ok()
}

/// A worker's recent run-queue wait readings, to tell how long it waited lately.
struct WaitLog {
    readings: std::collections::VecDeque<(u64, u64)>,
}

impl WaitLog {
    fn new() -> WaitLog {
        WaitLog {
            readings: std::collections::VecDeque::new(),
        }
    }

    fn read(&mut self, now: u64) {
        if let Some(wait) = runqueue_wait() {
            self.readings.push_back((now, wait));
        }
        let horizon = now.saturating_sub(2 * STALL_SHADOW.as_nanos() as u64);
        while self.readings.len() > 2 && self.readings.front().is_some_and(|&(t, _)| t < horizon) {
            self.readings.pop_front();
        }
    }

    /// Run-queue wait over (about) the last [`STALL_SHADOW`], reading now.
    fn recent(&mut self, now: u64) -> u64 {
        self.read(now);
        let Some(&(_, last)) = self.readings.back() else {
            return 0;
        };
        let since = now.saturating_sub(STALL_SHADOW.as_nanos() as u64);
        let base = self
            .readings
            .iter()
            .rev()
            .find(|&&(t, _)| t <= since)
            .or(self.readings.front())
            .map_or(last, |&(_, w)| w);
        last.saturating_sub(base)
    }

    /// Forgets everything: time spent parked is not a stall.
    fn restart(&mut self, now: u64) {
        self.readings.clear();
        self.read(now);
    }
}

/// Tells workers to park so the sampler can take a consistent snapshot.
struct Gate {
    /// The longest recent run-queue wait the parked workers report, in nanoseconds.
    waited: AtomicU64,
    pause: AtomicBool,
    parked: AtomicUsize,
    /// When the last worker parked, in nanoseconds since the epoch: writes stopped then.
    stopped_writing: AtomicU64,
    stop: AtomicBool,
}

impl Gate {
    /// Parks the calling worker while a snapshot is being taken; returns the time parked.
    fn wait(&self, epoch: Instant, log: &mut WaitLog) -> Duration {
        if !self.pause.load(Ordering::Acquire) {
            return Duration::ZERO;
        }
        let start = Instant::now();
        let now = epoch.elapsed().as_nanos() as u64;
        self.stopped_writing.fetch_max(now, Ordering::AcqRel);
        self.waited.fetch_max(log.recent(now), Ordering::AcqRel);
        self.parked.fetch_add(1, Ordering::AcqRel);
        while self.pause.load(Ordering::Acquire) {
            std::thread::sleep(POLL);
        }
        self.parked.fetch_sub(1, Ordering::AcqRel);
        log.restart(epoch.elapsed().as_nanos() as u64);
        start.elapsed()
    }
}

/// One worker: replays its stream until stopped, noting each set's deadline. Returns the
/// operations done and the seconds spent running (parked time excluded).
fn worker<S: Store + ?Sized>(
    store: &S,
    stream: &Stream,
    values: &Values,
    deadlines: &[AtomicU64],
    epoch: Instant,
    gate: &Gate,
) -> (u64, f64) {
    let ops = stream.ops();
    let start = Instant::now();
    let mut parked = Duration::ZERO;
    let mut done = 0u64;
    let mut at = 0;
    let mut log = WaitLog::new();
    log.restart(epoch.elapsed().as_nanos() as u64);
    let mut batches = 0u32;
    while !gate.stop.load(Ordering::Relaxed) {
        parked += gate.wait(epoch, &mut log);
        let end = (at + BATCH).min(ops.len());
        for op in &ops[at..end] {
            let key = stream.key(op);
            match op.kind {
                OpKind::Set => {
                    let ttl = op.ttl().unwrap_or_default();
                    let deadline = (epoch.elapsed() + ttl).as_nanos() as u64;
                    deadlines[op.key as usize].store(deadline, Ordering::Relaxed);
                    store.set(key, values.get(op.value as usize).clone(), op.ttl());
                }
                _ => {
                    black_box(store.get(key));
                }
            }
        }
        done += (end - at) as u64;
        at = if end == ops.len() { 0 } else { end };
        batches += 1;
        if batches.is_multiple_of(READ_WAIT_EVERY) {
            log.read(epoch.elapsed().as_nanos() as u64);
        }
    }
    (done, (start.elapsed() - parked).as_secs_f64())
}

struct Rep {
    samples: Vec<TtlSample>,
    mops: f64,
}

fn one_rep<S: Store + Sync + ?Sized>(
    store: &S,
    streams: &[Stream],
    values: &Values,
    plan: &Plan,
) -> Rep {
    let deadlines: Vec<AtomicU64> = (0..plan.ttl.keys).map(|_| AtomicU64::new(0)).collect();
    let gate = Gate {
        pause: AtomicBool::new(false),
        parked: AtomicUsize::new(0),
        stopped_writing: AtomicU64::new(0),
        waited: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let barrier = Barrier::new(streams.len() + 1);
    let epoch = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|stream| {
                let (barrier, deadlines, gate) = (&barrier, &deadlines, &gate);
                scope.spawn(move || {
                    barrier.wait();
                    worker(store, stream, values, deadlines, epoch, gate)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut samples = Vec::new();
        let mut next = start + plan.ttl.warmup;
        while next < start + plan.ttl.duration {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            gate.pause.store(true, Ordering::Release);
            while gate.parked.load(Ordering::Acquire) < streams.len() {
                std::thread::sleep(POLL);
            }
            let resident = store.resident();
            let now = gate.stopped_writing.load(Ordering::Acquire);
            let live = deadlines
                .iter()
                .filter(|d| d.load(Ordering::Relaxed) > now)
                .count() as u64;
            gate.stopped_writing.store(0, Ordering::Release);
            gate.pause.store(false, Ordering::Release);
            // Every worker must be running again before the next pause, or a late one
            // would still count as parked and the next snapshot would not wait for it.
            while gate.parked.load(Ordering::Acquire) > 0 {
                std::thread::sleep(POLL);
            }
            let listed = store.list("").map(|keys| keys.len() as u64);
            let disturbed = gate.waited.swap(0, Ordering::AcqRel) > STALL.as_nanos() as u64;
            samples.push(TtlSample {
                at_ms: start.elapsed().as_millis() as u64,
                resident,
                live,
                listed,
                disturbed,
            });
            next += plan.ttl.sample_every;
        }
        gate.stop.store(true, Ordering::Relaxed);
        let mops = handles
            .into_iter()
            .map(|h| h.join().expect("a TTL worker panicked"))
            .map(|(ops, secs)| ops as f64 / secs / 1e6)
            .sum();
        Rep { samples, mops }
    })
}

/// The 90th percentile (nearest rank).
fn p90(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let rank = (xs.len() * 9).div_ceil(10).max(1);
    xs[rank - 1]
}

fn expired_share(s: &TtlSample) -> f64 {
    if s.resident == 0 {
        0.0
    } else {
        s.resident.saturating_sub(s.live) as f64 / s.resident as f64
    }
}

/// Runs the TTL workload on the stores that expire entries (hodor through `Contract`, moka).
pub fn run(
    plan: &Plan,
    keys: &[String],
    rows: &mut Vec<TtlRow>,
    notes: &mut Vec<String>,
    progress: &Progress,
) {
    progress.say(&format!(
        "random TTL 1-{} ms on every set, {} keys, {} threads",
        plan.ttl.max_ttl_ms, plan.ttl.keys, plan.ttl.threads
    ));
    let values = Values::new(64, plan.ttl.keys, 0x77);
    let streams = streams(plan, keys);
    let kinds = [Kind::Hodor, Kind::Moka];
    let spec = Spec {
        entries: plan.ttl.keys,
        limit: Limit::None,
    };
    let mut reps: BTreeMap<Kind, Vec<Rep>> = BTreeMap::new();
    for rep in 0..plan.ttl.reps {
        for j in 0..kinds.len() {
            let kind = kinds[(j + rep) % kinds.len()];
            let built = match Built::open(kind, spec) {
                Ok(b) => b,
                Err(e) => {
                    notes.push(format!("ttl: {} could not be built: {e}", kind.label()));
                    continue;
                }
            };
            let result = with_store!(
                &built,
                s => Some(one_rep(s, &streams, &values, plan)),
                _l => None
            );
            if let Some(result) = result {
                reps.entry(kind).or_default().push(result);
            }
        }
    }
    for (store, reps) in reps {
        let all: Vec<&[TtlSample]> = reps.iter().map(|r| r.samples.as_slice()).collect();
        let per = |f: &dyn Fn(&[TtlSample]) -> f64| Summary::of(all.iter().map(|s| f(s)).collect());
        let undisturbed: Vec<f64> = reps
            .iter()
            .map(|r| {
                p90(r
                    .samples
                    .iter()
                    .filter(|s| !s.disturbed)
                    .map(expired_share)
                    .collect())
            })
            .collect();
        let mean = |s: &[TtlSample], f: &dyn Fn(&TtlSample) -> f64| {
            s.iter().map(f).sum::<f64>() / s.len().max(1) as f64
        };
        let total: usize = reps.iter().map(|r| r.samples.len()).sum();
        let disturbed = reps
            .iter()
            .flat_map(|r| &r.samples)
            .filter(|s| s.disturbed)
            .count();
        rows.push(TtlRow {
            store,
            expired_mean: per(&|s| mean(s, &expired_share)),
            expired_p90: per(&|s| p90(s.iter().map(expired_share).collect())),
            expired_p90_undisturbed: Summary::of(undisturbed),
            expired_max: per(&|s| s.iter().map(expired_share).fold(0.0, f64::max)),
            resident_mean: per(&|s| mean(s, &|x| x.resident as f64)),
            live_mean: per(&|s| mean(s, &|x| x.live as f64)),
            mops: Summary::of(reps.iter().map(|r| r.mops).collect()),
            samples_total: total,
            samples_disturbed: disturbed,
            samples: reps.last().map(|r| r.samples.clone()).unwrap_or_default(),
        });
    }
}
