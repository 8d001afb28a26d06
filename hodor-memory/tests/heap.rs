//! What the store really holds in memory, counted by a global allocator: its own test binary,
//! so the count is this binary's alone. Tests run one at a time (a lock) so they do not
//! count each other's allocations.
//!
//! `HODOR_TORTURE=1` runs the issue-sized variants (200,000 deleted 1 KiB keys, a longer
//! churn).

// GlobalAlloc is an unsafe trait; the allocator below only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hodor_core::Bytes;
use hodor_core::clock::ManualClock;
use hodor_core::driver::Driver;
use hodor_memory::{CompressionConfig, MemoryConfig, MemoryDriver};

mod common;
use common::{Rng, heavy};

/// Counts the bytes allocated and not yet freed, by every thread.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` unchanged; the counter never affects what is
// returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn live() -> i64 {
    LIVE.load(Ordering::SeqCst)
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn deleted_and_evicted_ttl_entries_free_their_keys_at_removal() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = if heavy() { 200_000 } else { 20_000 };
    let day = Some(Duration::from_secs(24 * 3600));
    let clock = ManualClock::new();
    let before = live();
    let d = MemoryDriver::open("heap-deleted", MemoryConfig::default(), clock.into()).unwrap();
    let key = |i: usize| format!("{i:08}/{}", "k".repeat(1015));
    for i in 0..n {
        d.set(&key(i), Bytes::from_static(b"v"), day).unwrap();
    }
    let full = live() - before;
    for i in 0..n {
        assert!(d.delete(&key(i)).unwrap());
    }
    let after = live() - before;
    println!(
        "{n} entries with 1 KiB keys and a 24 h TTL: {:.1} MiB; after deleting them all: {:.2} MiB",
        full as f64 / MIB,
        after as f64 / MIB
    );
    assert_eq!(d.gauges().bytes, Some(0));
    assert!(
        after < full / 20,
        "{after} bytes still held after deleting every entry (of {full}): the deadline \
         records keep the keys"
    );

    // Evicted entries too: a store that keeps room for a tenth of them.
    let limit = n as u64 / 10 * (1024 + 1 + 200);
    let clock = ManualClock::new();
    let before = live();
    let d = MemoryDriver::open(
        "heap-evicted",
        MemoryConfig::default().max_bytes(limit),
        clock.into(),
    )
    .unwrap();
    for i in 0..n {
        d.set(&key(i), Bytes::from_static(b"v"), day).unwrap();
    }
    let held = live() - before;
    println!(
        "the same through max_bytes = {:.1} MiB: {:.1} MiB held",
        limit as f64 / MIB,
        held as f64 / MIB
    );
    assert!(
        (held as f64) < 1.1 * limit as f64 + 2.0 * MIB,
        "{held} bytes held for max_bytes = {limit}: evicted entries keep their keys"
    );
}

/// The churn: entries with TTLs written, overwritten, read, deleted and expired
/// through a 32 MiB store, sizes changing over time. The live heap must stay within 1.1 x
/// max_bytes plus a fixed overhead.
#[test]
fn ttl_churn_keeps_the_heap_within_a_tenth_over_max_bytes() {
    churn("heap-churn", MemoryConfig::default(), DAY_TTLS);
}

/// The same with TTLs of a few milliseconds and a clock that moves by as much: most
/// deadlines fall in the expiry queue's current unit, whose records are the larger exact
/// ones (see `deadlines`), and the charge must still cover them.
#[test]
fn short_ttl_churn_keeps_the_heap_within_a_tenth_over_max_bytes() {
    churn(
        "heap-churn-short",
        MemoryConfig::default(),
        Ttls {
            longest_ms: 100,
            step_ms: 30,
        },
    );
}

/// The TTLs a churn sets, and how far its clock moves every 10,000 operations.
struct Ttls {
    longest_ms: u64,
    step_ms: u64,
}

const DAY_TTLS: Ttls = Ttls {
    longest_ms: 24 * 3600 * 1000,
    step_ms: 60_000,
};

/// The same with compression: `max_bytes` counts what is stored, compressed or not, so it
/// still tracks the store's real memory (its values compress to a few dozen bytes).
#[test]
fn ttl_churn_of_compressed_values_keeps_the_heap_within_a_tenth_over_max_bytes() {
    churn(
        "heap-churn-compressed",
        MemoryConfig::default().compression(CompressionConfig::lz4(256)),
        DAY_TTLS,
    );
}

fn churn(name: &str, config: MemoryConfig, ttls: Ttls) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const MAX_BYTES: u64 = 32 << 20;
    const FIXED: f64 = 2.0 * MIB;
    let ops: u64 = if heavy() { 6_000_000 } else { 600_000 };
    let clock = ManualClock::new();
    let before = live();
    let d = MemoryDriver::open(name, config.max_bytes(MAX_BYTES), clock.clone().into()).unwrap();
    let empty = live() - before;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut worst = 0.0f64;
    for op in 0..ops {
        // Phases move the value size, so the shape of the store keeps changing: small
        // entries (overhead-heavy), then large ones, then mixed.
        let phase = (op * 4 / ops) as usize;
        let value_len = match phase {
            0 => rng.below(64),
            1 => 256 + rng.below(4096),
            2 => rng.below(32),
            _ => rng.below(1024),
        } as usize;
        let key = format!("churn/{:x}", rng.below(400_000));
        let ttl = Some(Duration::from_millis(1 + rng.below(ttls.longest_ms)));
        match rng.below(10) {
            0..=5 => d
                .set(&key, Bytes::from(vec![b'v'; value_len]), ttl)
                .unwrap(),
            6 => {
                let batch: Vec<(String, Bytes)> = (0..8)
                    .map(|_| {
                        let k = format!("churn/{:x}", rng.below(400_000));
                        (k, Bytes::from(vec![b'b'; value_len]))
                    })
                    .collect();
                let refs: Vec<(&str, Bytes)> =
                    batch.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                d.set_many(&refs, ttl).unwrap();
            }
            7 => {
                let _ = d.get(&key).unwrap();
            }
            _ => {
                d.delete(&key).unwrap();
            }
        }
        if op % 10_000 == 9_999 {
            clock.advance(Duration::from_millis(rng.below(ttls.step_ms)));
            let held = (live() - before) as f64;
            worst = worst.max(held / MAX_BYTES as f64);
            assert!(
                held <= 1.1 * MAX_BYTES as f64 + FIXED,
                "after {op} operations the store holds {:.1} MiB for max_bytes = 32 MiB \
                 (phase {phase}; gauges {:?})",
                held / MIB,
                d.gauges()
            );
        }
    }
    println!(
        "{name}: TTL churn through max_bytes = 32 MiB, {ops} operations: empty store {:.0} KiB, \
         largest live heap {:.3} x max_bytes (bound: 1.1 x + {:.0} MiB)",
        empty as f64 / 1024.0,
        worst,
        FIXED / MIB
    );
}

#[test]
fn refused_opens_leave_nothing_behind() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let long = "n".repeat(1 << 20);
    let clock = hodor_core::clock::Clock::system();
    // Warm up whatever the first open allocates once per process.
    drop(MemoryDriver::open("heap-warm-up", MemoryConfig::default(), clock.clone()).unwrap());
    let before = live();
    for _ in 0..300 {
        assert!(MemoryDriver::open(&long, MemoryConfig::default(), clock.clone()).is_err());
        assert!(hodor_memory::open(&long, MemoryConfig::default()).is_err());
        assert!(MemoryDriver::open("bad\0name", MemoryConfig::default(), clock.clone()).is_err());
    }
    let leaked = live() - before;
    assert!(
        leaked < 64 * 1024,
        "{leaked} bytes left behind by 900 refused opens"
    );
}
