//! Persistence and compression of the memory driver, each against the same store without
//! it, side by side in one run:
//!
//! - `set` of new keys from several threads into a fresh store, with `fsync = interval`
//!   and without persistence;
//! - `set` with `fsync = always` from many threads (group commit) and from one (one sync
//!   per write);
//! - recovery of a store from its log and from a snapshot, against `set` of the same
//!   entries into a fresh store on one thread (recovery runs on one thread);
//! - LZ4 compression of JSON documents: bytes held, and `get` throughput, with what a `get`
//!   that must build a new buffer costs at least (an allocation and a copy, no decoding).
//!
//! Everything goes through [`Contract`], as applications call it. Each value is its own
//! allocation (`Bytes::copy_from_slice`), since recovery allocates every value too.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hodor_core::{Contract, Driver};
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, MemoryDriver, PersistConfig};
use serde::Serialize;

use crate::Progress;
use crate::results::Summary;
use crate::rng::Rng;

/// The persistence phase's settings.
#[derive(Clone, Debug, Serialize)]
pub struct PersistPlan {
    /// Entries set, and recovered.
    pub keys: usize,
    /// Threads setting them.
    pub threads: usize,
    /// Interleaved repetitions of each measurement.
    pub reps: usize,
    /// Writer threads for group commit.
    pub always_threads: usize,
    /// How long each `fsync = always` measurement runs.
    pub always_duration: Duration,
    /// Interleaved repetitions of the `fsync = always` measurements.
    pub always_reps: usize,
    /// JSON documents in the compression stores.
    pub json_keys: usize,
    /// Bytes per JSON document.
    pub json_bytes: usize,
    /// How long each `get` measurement runs.
    pub get_duration: Duration,
}

/// What the persistence phase measured.
#[derive(Clone, Debug, Serialize)]
pub struct PersistResults {
    /// Million `set`s per second of new keys, without persistence.
    pub sets_memory: Summary,
    /// The same with `fsync = interval`.
    pub sets_interval: Summary,
    /// Thousand acknowledged `set`s per second with `fsync = always`, one thread.
    pub always_one: Summary,
    /// The same from `always_threads` threads.
    pub always_many: Summary,
    /// Writes per `fsync` in the many-thread runs.
    pub writes_per_fsync: f64,
    /// Seconds to `set` the entries into a fresh store, one thread.
    pub set_seconds: Summary,
    /// Seconds to open the store from its log alone.
    pub recover_log_seconds: Summary,
    /// Seconds to open the store from a snapshot.
    pub recover_snapshot_seconds: Summary,
    /// Bytes of log the log recovery replayed.
    pub log_bytes: u64,
    /// Average bytes per JSON document.
    pub json_value_bytes: f64,
    /// `metrics().bytes` of the store holding the documents as given.
    pub json_bytes_raw: u64,
    /// `metrics().bytes` of the store holding them compressed.
    pub json_bytes_compressed: u64,
    /// Million `get`s per second, documents as given, one thread.
    pub get_raw: Summary,
    /// Million `get`s per second, documents compressed, one thread.
    pub get_compressed: Summary,
    /// Million `get`s per second, each value then read through, documents as given.
    pub get_read_raw: Summary,
    /// The same, documents compressed.
    pub get_read_compressed: Summary,
    /// Million new buffers per second, each a copy of one document held in the CPU's
    /// cache, one thread: what a `get` that cannot hand out the stored buffer adds at
    /// least, whatever its codec (a decoder writes as many bytes, and reads its input
    /// besides).
    pub copies: Summary,
}

impl PersistResults {
    /// Why `compression_get_vs_raw` is what it is, in nanoseconds per `get`: one that hands
    /// out the stored buffer, one that decompresses, and the least one that builds a new
    /// buffer costs (an allocation and a copy); the ratio that least would leave, and how
    /// fast decoding would have to be to reach `target`.
    pub fn get_costs(&self, target: f64) -> Option<GetCosts> {
        let ns = |mops: f64| (mops > 0.0).then(|| 1000.0 / mops);
        let raw = ns(self.get_raw.median)?;
        let compressed = ns(self.get_compressed.median)?;
        let copy = ns(self.copies.median)?;
        Some(GetCosts {
            raw,
            compressed,
            copy,
            ceiling: raw / (raw + copy),
            decode_gbps: self.json_value_bytes / (compressed - raw).max(1.0),
            needed_gbps: self.json_value_bytes / (raw / target - raw).max(1.0),
        })
    }
}

/// See [`PersistResults::get_costs`].
#[derive(Clone, Copy, Debug)]
pub struct GetCosts {
    /// ns per `get` of a document stored as given.
    pub raw: f64,
    /// ns per `get` of a compressed document.
    pub compressed: f64,
    /// ns per new buffer holding a copy of a document.
    pub copy: f64,
    /// `raw / (raw + copy)`: the `compression_get_vs_raw` of a codec that decodes as fast
    /// as memory copies.
    pub ceiling: f64,
    /// What a compressed `get` adds, as decoded bytes per nanosecond (GB/s).
    pub decode_gbps: f64,
    /// The same, as fast as it would have to be for the target.
    pub needed_gbps: f64,
}

/// A directory for the stores, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("hodor-bench-persist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.0.join(name);
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store name unique in this process.
fn name(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("bench-persist-{what}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn persistent(dir: &Path, fsync: Fsync) -> MemoryConfig {
    MemoryConfig::default().persist(PersistConfig::new(dir).fsync(fsync))
}

fn open(config: &MemoryConfig) -> Contract {
    hodor_memory::open(&name("store"), config.clone()).expect("open a bench store")
}

/// A 64-byte value for entry `i`.
fn value64(i: usize) -> [u8; 64] {
    let mut v = [0u8; 64];
    let mut rng = Rng::new(i as u64);
    for chunk in v.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    v
}

/// Sets entries `0..keys` from `threads` threads (thread `t` takes every `threads`th);
/// returns the seconds from the start signal to the last set.
fn load(c: &Contract, keys: &[String], threads: usize) -> f64 {
    let barrier = Barrier::new(threads + 1);
    let mut started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for (i, key) in keys.iter().enumerate().skip(t).step_by(threads) {
                    c.set(key, Bytes::copy_from_slice(&value64(i)), None)
                        .expect("set");
                }
            });
        }
        barrier.wait();
        started = Instant::now();
    });
    started.elapsed().as_secs_f64()
}

/// Acknowledged sets per second with `fsync = always` from `threads` threads for
/// `duration`; also returns the writes and syncs.
fn always(dir: &Path, keys: &[String], threads: usize, duration: Duration) -> (f64, u64, u64) {
    let c = open(&persistent(dir, Fsync::Always));
    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let barrier = Barrier::new(threads + 1);
    let fsyncs_before = c.metrics().fsyncs.unwrap_or(0);
    let mut started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (c, stop, writes, barrier) = (&c, &stop, &writes, &barrier);
            s.spawn(move || {
                barrier.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = (t * 7919 + n as usize * threads) % keys.len();
                    c.set(&keys[i], Bytes::copy_from_slice(&value64(i)), None)
                        .expect("set");
                    n += 1;
                }
                writes.fetch_add(n, Ordering::Relaxed);
            });
        }
        barrier.wait();
        started = Instant::now();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    // Until every writer's last write returned.
    let elapsed = started.elapsed().as_secs_f64();
    let fsyncs = c.metrics().fsyncs.unwrap_or(0) - fsyncs_before;
    c.close().expect("close");
    let writes = writes.into_inner();
    (writes as f64 / elapsed, writes, fsyncs)
}

const WORDS: [&str; 48] = [
    "alpha", "bravo", "cargo", "delta", "ember", "fable", "glide", "harbor", "ivory", "jungle",
    "karma", "lemon", "mango", "nectar", "orbit", "pixel", "quartz", "raven", "sierra", "tango",
    "umbra", "velvet", "willow", "xenon", "yonder", "zephyr", "amber", "basil", "cedar", "dune",
    "echo", "fjord", "garnet", "hazel", "indigo", "jasper", "kelp", "lotus", "maple", "nova",
    "olive", "pearl", "quill", "rust", "sage", "thyme", "umber", "vista",
];
const FIRST: [&str; 16] = [
    "Ada", "Alan", "Barbara", "Dennis", "Edsger", "Frances", "Grace", "Ken", "Leslie", "Margaret",
    "Niklaus", "Radia", "Robin", "Shafi", "Tony", "Yukihiro",
];
const LAST: [&str; 16] = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Ritchie",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Thompson",
    "Lamport",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Milner",
    "Goldwasser",
    "Hoare",
    "Matsumoto",
];
const STATUS: [&str; 5] = ["pending", "paid", "packed", "shipped", "delivered"];
const COUNTRY: [&str; 10] = ["DE", "FR", "US", "JP", "BR", "IN", "NG", "SE", "CA", "AU"];

/// A JSON order document of exactly `bytes` bytes, shaped like a REST API response: a
/// customer, line items with their links, and notes, with ids, prices, dates and words
/// drawn at random. Under LZ4 these compress to about a third, in the middle of what
/// real JSON cut into 4 KiB pieces does (from under a fifth for endpoint catalogs to
/// nearly half for schema documents).
pub fn json_document(i: u64, bytes: usize) -> Vec<u8> {
    let mut r = Rng::new(i ^ 0x6a73_6f6e);
    let mut pick = |n: usize| r.below(n as u64) as usize;
    let mut s = String::with_capacity(bytes + 512);
    let order = format!("ord_{:012x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16);
    let (first, last) = (FIRST[pick(16)], LAST[pick(16)]);
    let _ = write!(
        s,
        r#"{{"id":"{order}","status":"{}","created_at":"2025-{:02}-{:02}T{:02}:{:02}:{:02}Z","customer":{{"id":{},"name":"{first} {last}","email":"{}.{}@example.com","country":"{}","loyalty_points":{}}},"currency":"EUR","items":["#,
        STATUS[pick(5)],
        1 + pick(12),
        1 + pick(28),
        pick(24),
        pick(60),
        pick(60),
        100_000 + pick(900_000),
        first.to_lowercase(),
        last.to_lowercase(),
        COUNTRY[pick(10)],
        pick(50_000),
    );
    let mut item = 0;
    while s.len() < bytes.saturating_sub(500) {
        if item > 0 {
            s.push(',');
        }
        let sku = pick(1_000_000);
        let n = item;
        item += 1;
        let _ = write!(
            s,
            r#"{{"line":{n},"sku":"SKU-{sku:06}","name":"{} {}","quantity":{},"unit_price":{{"amount":"{}.{:02}","currency":"EUR"}},"discount":"0.{:02}","warehouse":"WH-{}","tags":["{}","{}"],"gift_wrap":{},"links":{{"self":"https://api.shop.example/v2/orders/{order}/items/{n}","product":"https://api.shop.example/v2/products/SKU-{sku:06}","image":"https://cdn.shop.example/img/products/SKU-{sku:06}/large.jpg"}}}}"#,
            WORDS[pick(48)],
            WORDS[pick(48)],
            1 + pick(9),
            1 + pick(400),
            pick(100),
            pick(30),
            1 + pick(6),
            WORDS[pick(48)],
            WORDS[pick(48)],
            pick(2) == 1,
        );
    }
    s.push_str(r#"],"notes":""#);
    while s.len() + 2 < bytes {
        s.push_str(WORDS[pick(48)]);
        s.push(' ');
    }
    s.truncate(bytes.saturating_sub(2));
    s.push_str("\"}");
    s.into_bytes()
}

/// Adds up the value's bytes eight at a time: the least any caller that uses the value
/// (parses it, copies it to a socket) pays to read it.
fn read_all(value: &[u8]) -> u64 {
    value
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
        .fold(0, u64::wrapping_add)
}

/// Million gets per second over `keys` in a fixed random order, one thread; with `read`,
/// each value is also read through once.
fn gets(c: &Contract, keys: &[String], order: &[u32], duration: Duration, read: bool) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    'run: loop {
        for chunk in order.chunks(256) {
            for &i in chunk {
                let value = c.get(&keys[i as usize]).expect("get");
                if read {
                    black_box(read_all(&value));
                }
                black_box(value);
            }
            n += chunk.len() as u64;
            if started.elapsed() >= duration {
                break 'run;
            }
        }
    }
    n as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// Runs every measurement.
pub fn run(plan: &PersistPlan, keys: &[String], progress: &Progress) -> PersistResults {
    let scratch = Scratch::new();
    let n = plan.keys.min(keys.len());
    let keys_n = &keys[..n];

    progress.say(&format!(
        "persist: set {n} new keys from {} threads, without persistence and with fsync = interval",
        plan.threads
    ));
    let (mut memory, mut interval) = (Vec::new(), Vec::new());
    for rep in 0..plan.reps {
        for persist in [rep % 2 == 1, rep % 2 == 0] {
            let config = if persist {
                persistent(&scratch.dir("interval"), Fsync::Interval)
            } else {
                MemoryConfig::default()
            };
            let c = open(&config);
            let secs = load(&c, keys_n, plan.threads);
            c.close().expect("close");
            let mops = n as f64 / secs / 1e6;
            if persist {
                interval.push(mops);
            } else {
                memory.push(mops);
            }
        }
    }

    progress.say(&format!(
        "persist: fsync = always, {} writer threads and one",
        plan.always_threads
    ));
    let (mut one, mut many) = (Vec::new(), Vec::new());
    let (mut writes, mut fsyncs) = (0u64, 0u64);
    let always_keys = &keys[..keys.len().min(100_000)];
    // The sync latency of a shared disk moves from one moment to the next: more, shorter
    // repetitions, the one-writer and many-writer runs alternating.
    for _ in 0..plan.always_reps {
        let (rate, ..) = always(
            &scratch.dir("always1"),
            always_keys,
            1,
            plan.always_duration,
        );
        one.push(rate / 1e3);
        let (rate, w, f) = always(
            &scratch.dir("always8"),
            always_keys,
            plan.always_threads,
            plan.always_duration,
        );
        many.push(rate / 1e3);
        writes += w;
        fsyncs += f;
    }

    progress.say(&format!("persist: recovery of {n} entries of 64 B"));
    let dir = scratch.dir("recovery");
    // No snapshot while loading: the log alone holds the store.
    let config = MemoryConfig::default().persist(
        PersistConfig::new(&dir)
            .fsync(Fsync::Never)
            .snapshot_log_bytes(1 << 40),
    );
    let store = name("recovery");
    {
        let c = hodor_memory::open(&store, config.clone()).expect("open");
        load(&c, keys_n, plan.threads);
        c.close().expect("close");
    }
    let (mut set_seconds, mut from_log, mut from_snapshot) = (Vec::new(), Vec::new(), Vec::new());
    let mut log_bytes = 0;
    let reopen = |samples: &mut Vec<f64>| {
        let started = Instant::now();
        let c = hodor_memory::open(&store, config.clone()).expect("recover");
        samples.push(started.elapsed().as_secs_f64());
        let m = c.metrics();
        assert_eq!(m.entries, Some(n as u64), "recovery restored every entry");
        let bytes = m.log_bytes.unwrap_or(0);
        c.close().expect("close");
        bytes
    };
    for _ in 0..plan.reps {
        let c = open(&MemoryConfig::default());
        set_seconds.push(load(&c, keys_n, 1));
        c.close().expect("close");
        log_bytes = reopen(&mut from_log);
    }
    {
        let d = MemoryDriver::open(&store, config.clone(), Default::default()).expect("open");
        d.snapshot().expect("snapshot");
        d.close().expect("close");
    }
    for _ in 0..plan.reps {
        reopen(&mut from_snapshot);
    }

    progress.say(&format!(
        "persist: LZ4 compression of {} JSON documents of {} B",
        plan.json_keys, plan.json_bytes
    ));
    let json_keys = &keys[..plan.json_keys.min(keys.len())];
    let docs: Vec<Bytes> = (0..json_keys.len())
        .map(|i| Bytes::from(json_document(i as u64, plan.json_bytes)))
        .collect();
    let raw = open(&MemoryConfig::default());
    let compressed = open(&MemoryConfig::default().compression(CompressionConfig::lz4(1024)));
    for (key, doc) in json_keys.iter().zip(&docs) {
        raw.set(key, doc.clone(), None).expect("set");
        compressed.set(key, doc.clone(), None).expect("set");
    }
    let mut order: Vec<u32> = (0..json_keys.len() as u32).collect();
    Rng::new(0x9e7).shuffle(&mut order);
    let (mut get_raw, mut get_compressed) = (Vec::new(), Vec::new());
    let (mut read_raw, mut read_compressed) = (Vec::new(), Vec::new());
    let mut copies = Vec::new();
    gets(&raw, json_keys, &order, plan.get_duration / 4, false);
    gets(&compressed, json_keys, &order, plan.get_duration / 4, false);
    for _ in 0..plan.reps {
        get_raw.push(gets(&raw, json_keys, &order, plan.get_duration, false));
        get_compressed.push(gets(
            &compressed,
            json_keys,
            &order,
            plan.get_duration,
            false,
        ));
        read_raw.push(gets(&raw, json_keys, &order, plan.get_duration, true));
        read_compressed.push(gets(
            &compressed,
            json_keys,
            &order,
            plan.get_duration,
            true,
        ));
        copies.push(copies_of(&docs[0], plan.get_duration));
    }
    drop(docs);
    let json_bytes_raw = raw.metrics().bytes.unwrap_or(0);
    let json_bytes_compressed = compressed.metrics().bytes.unwrap_or(0);
    raw.close().expect("close");
    compressed.close().expect("close");

    PersistResults {
        sets_memory: Summary::of(memory),
        sets_interval: Summary::of(interval),
        always_one: Summary::of(one),
        always_many: Summary::of(many),
        writes_per_fsync: writes as f64 / fsyncs.max(1) as f64,
        set_seconds: Summary::of(set_seconds),
        recover_log_seconds: Summary::of(from_log),
        recover_snapshot_seconds: Summary::of(from_snapshot),
        log_bytes,
        json_value_bytes: plan.json_bytes as f64,
        json_bytes_raw,
        json_bytes_compressed,
        get_raw: Summary::of(get_raw),
        get_compressed: Summary::of(get_compressed),
        get_read_raw: Summary::of(read_raw),
        get_read_compressed: Summary::of(read_compressed),
        copies: Summary::of(copies),
    }
}

/// Million new buffers per second, each a copy of `doc`, one thread: an allocation and a
/// copy from the cache, as `Bytes::copy_from_slice` makes them.
fn copies_of(doc: &Bytes, duration: Duration) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        for _ in 0..256 {
            black_box(Bytes::copy_from_slice(black_box(doc)));
        }
        n += 256;
    }
    n as f64 / started.elapsed().as_secs_f64() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_documents_are_valid_distinct_and_exactly_sized() {
        for i in 0..50 {
            let doc = json_document(i, 4096);
            assert_eq!(doc.len(), 4096);
            let parsed: serde_json::Value = serde_json::from_slice(&doc).unwrap();
            assert!(parsed["items"].as_array().unwrap().len() > 5);
        }
        assert_ne!(json_document(1, 4096), json_document(2, 4096));
    }
}
