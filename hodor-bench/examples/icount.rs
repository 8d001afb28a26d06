//! Instruction counts of a memory store's `set`, overwrite, `get` and `delete`, for
//! comparing two versions of the store where wall-clock timings are too noisy to tell a few
//! instructions apart. Run each phase under callgrind and subtract the phase before it:
//!
//! ```text
//! cargo build --release -p hodor-bench --example icount
//! for phase in open set overwrite get delete; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         target/release/examples/icount $phase 2>&1 | grep Collected
//! done
//! ```
//!
//! Per operation: set = (set - open) / N, overwrite = (overwrite - set) / N,
//! get = (get - set) / N, delete = (delete - set) / N, with N = 100,000. Add `limited` after
//! the phase for a store with an entry limit (which never evicts here). The counts are
//! deterministic for one build, up to a few instructions from the hasher's random seed.

use std::hint::black_box;

use bytes::Bytes;
use hodor_core::Driver;
use hodor_core::clock::Clock;
use hodor_memory::{MemoryConfig, MemoryDriver};

const N: usize = 100_000;

fn main() {
    let phase = std::env::args().nth(1).unwrap_or_default();
    let limited = std::env::args().nth(2).is_some_and(|a| a == "limited");
    let keys: Vec<String> = (0..N).map(|i| format!("user/{i:08}")).collect();
    let value = Bytes::from(vec![7u8; 64]);
    // No sweeps: the background thread would add instructions of its own.
    let mut config = MemoryConfig::default()
        .shards(16)
        .sweep_interval_ms(3_600_000);
    if limited {
        config = config.max_entries(10 * N as u64);
    }
    let d = MemoryDriver::open("icount", config, Clock::system()).expect("open");
    if phase == "open" {
        return;
    }
    for k in &keys {
        d.set(k, value.clone(), None).expect("set");
    }
    match phase.as_str() {
        "set" => {}
        "overwrite" => {
            for k in &keys {
                d.set(k, value.clone(), None).expect("set");
            }
        }
        "get" => {
            for k in &keys {
                black_box(d.get(k).expect("get"));
            }
        }
        "delete" => {
            for k in &keys {
                black_box(d.delete(k).expect("delete"));
            }
        }
        other => {
            eprintln!("unknown phase {other:?}: use open, set, overwrite, get or delete");
            std::process::exit(2);
        }
    }
}
