//! Bytes per entry, counted by a global allocator.
//!
//! The benchmark binary installs [`CountingAlloc`]. It passes every call to the system
//! allocator and, only while a measurement is running, adds up the bytes requested and
//! released, so the rest of the run pays one relaxed load per allocation.

#![allow(unsafe_code)] // GlobalAlloc is an unsafe trait; this module only forwards to System.

use serde::Serialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::keys::Values;
use crate::runner::{Until, replay};
use crate::stores::{Built, Kind, Spec};
use crate::stream::Stream;

static COUNTING: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicI64 = AtomicI64::new(0);
static BLOCKS: AtomicI64 = AtomicI64::new(0);

/// Size classes of the histogram: 8-byte steps up to 256 bytes, then powers of two.
const CLASSES: usize = 32 + 40;
#[allow(clippy::declare_interior_mutable_const)] // only used to initialize the arrays below
const ZERO: AtomicI64 = AtomicI64::new(0);
static CLASS_BLOCKS: [AtomicI64; CLASSES] = [ZERO; CLASSES];
static CLASS_BYTES: [AtomicI64; CLASSES] = [ZERO; CLASSES];

fn class(size: usize) -> usize {
    if size <= 256 {
        size.saturating_sub(1) / 8
    } else {
        (32 + size.ilog2() as usize - 8).min(CLASSES - 1)
    }
}

/// The largest size in a class.
fn class_limit(class: usize) -> usize {
    if class < 32 {
        (class + 1) * 8
    } else {
        1 << (class - 32 + 9)
    }
}

#[inline]
fn record(size: usize, sign: i64) {
    BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    BLOCKS.fetch_add(sign, Ordering::Relaxed);
    let c = class(size);
    CLASS_BLOCKS[c].fetch_add(sign, Ordering::Relaxed);
    CLASS_BYTES[c].fetch_add(sign * size as i64, Ordering::Relaxed);
}

/// A global allocator that counts live bytes and blocks while [`build_and_load`] counts.
#[derive(Debug)]
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the same arguments; the counters are
// plain atomics and never affect what is returned.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            record(layout.size(), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            record(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            record(layout.size(), -1);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            record(layout.size(), -1);
            record(new_size, 1);
        }
        p
    }
}

/// Live bytes and blocks allocated since counting started.
#[derive(Clone, Copy, Debug, Default)]
struct Counted {
    bytes: i64,
    blocks: i64,
}

/// Starts counting from zero.
pub fn start_counting() {
    BYTES.store(0, Ordering::SeqCst);
    BLOCKS.store(0, Ordering::SeqCst);
    for c in 0..CLASSES {
        CLASS_BLOCKS[c].store(0, Ordering::SeqCst);
        CLASS_BYTES[c].store(0, Ordering::SeqCst);
    }
    COUNTING.store(true, Ordering::SeqCst);
}

/// Live blocks and bytes by size class since counting started: `(largest size in the
/// class, blocks, bytes)` for every class with live blocks.
pub fn histogram() -> Vec<(usize, i64, i64)> {
    (0..CLASSES)
        .map(|c| {
            (
                class_limit(c),
                CLASS_BLOCKS[c].load(Ordering::SeqCst),
                CLASS_BYTES[c].load(Ordering::SeqCst),
            )
        })
        .filter(|&(_, blocks, bytes)| blocks != 0 || bytes != 0)
        .collect()
}

/// Stops counting and returns the totals.
fn stop_counting() -> Counted {
    COUNTING.store(false, Ordering::SeqCst);
    Counted {
        bytes: BYTES.load(Ordering::SeqCst),
        blocks: BLOCKS.load(Ordering::SeqCst),
    }
}

/// Whether [`CountingAlloc`] is this program's global allocator.
pub fn installed() -> bool {
    start_counting();
    let probe = std::hint::black_box(vec![0u8; 4096]);
    drop(probe);
    let probe = std::hint::black_box(Box::new(0u64));
    let counted = stop_counting();
    drop(probe);
    counted.bytes == 8
}

/// Live heap blocks of one size class, per entry.
#[derive(Clone, Debug, Serialize)]
pub struct SizeClass {
    /// The largest block size in the class.
    pub up_to: usize,
    /// Blocks per entry.
    pub blocks_per_entry: f64,
    /// Bytes per entry.
    pub bytes_per_entry: f64,
}

/// One store's memory use.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryRow {
    /// The store.
    pub store: Kind,
    /// Whether every entry was set with a TTL.
    pub ttl: bool,
    /// Entries stored.
    pub entries: usize,
    /// Mean key length in bytes.
    pub key_bytes: f64,
    /// Bytes allocated per entry beyond the key's bytes (values are shared with the
    /// benchmark's pool, so they are not in the count).
    pub overhead_per_entry: f64,
    /// Heap blocks per entry (each also costs the allocator's own header, not counted).
    pub blocks_per_entry: f64,
    /// Where the bytes are, by block size: which structure holds them.
    pub by_block_size: Vec<SizeClass>,
}

/// How long an entry's TTL is when memory is measured with TTLs: long enough that nothing
/// expires during the measurement.
pub const MEMORY_TTL_MS: u32 = 3_600_000;

/// Builds `kind` and replays `load` (sets of distinct keys) into it. With `count`, the
/// counting allocator measures everything the store allocates for it, construction
/// included; the row is `None` when the allocator is not installed or the store did not
/// keep every entry.
pub fn build_and_load(
    kind: Kind,
    spec: Spec,
    load: &Stream,
    values: &Values,
    count: bool,
) -> Result<(Built, Option<MemoryRow>), String> {
    if count {
        start_counting();
    }
    let built = Built::open(kind, spec);
    if let Ok(built) = &built {
        let store = built.as_dyn();
        replay(store, load, values, Until::Once);
        store.settle();
    }
    let counted = count.then(stop_counting);
    let built = built?;
    let n = load.len();
    let row = counted
        .filter(|c| c.blocks > 0 && n > 0 && built.as_dyn().resident() == n as u64)
        .map(|c| {
            let per = n as f64;
            let key_bytes = load
                .ops()
                .iter()
                .map(|op| load.key(op).len())
                .sum::<usize>() as f64
                / per;
            MemoryRow {
                store: kind,
                ttl: load.ops().first().is_some_and(|op| op.ttl().is_some()),
                entries: n,
                key_bytes,
                overhead_per_entry: c.bytes as f64 / per - key_bytes,
                blocks_per_entry: c.blocks as f64 / per,
                by_block_size: histogram()
                    .into_iter()
                    .map(|(up_to, blocks, bytes)| SizeClass {
                        up_to,
                        blocks_per_entry: blocks as f64 / per,
                        bytes_per_entry: bytes as f64 / per,
                    })
                    .collect(),
            }
        });
    Ok((built, row))
}
