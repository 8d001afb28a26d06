//! A capped cache: `max_bytes` and `max_entries` bound the memory driver, entries are evicted
//! (expired first, then least recently used), and `metrics()` shows what happened.
//!
//! Run with `cargo run --example bounded_cache`.

use std::time::Duration;

use hodor_core::{Contract, Error};
use hodor_memory as _;
use serde_json::json;

fn main() -> Result<(), Error> {
    let cache = Contract::new(
        "memory",
        "thumbnails",
        Some(json!({ "max_bytes": 4 * 1024 * 1024, "max_entries": 1_000 })),
    )?;

    // A few thumbnails everybody looks at.
    for id in 0..10 {
        cache.set(&format!("thumb/popular/{id}"), vec![0u8; 6 * 1024], None)?;
    }
    // Far more distinct images than fit: 3,000 x 6 KiB against a 4 MiB cap.
    for round in 0..3 {
        for id in 0..1_000 {
            // The popular ones are read all the time, so they stay.
            cache.get(&format!("thumb/popular/{}", id % 10))?;
            let key = format!("thumb/{round}/{id}");
            cache.set(&key, vec![0u8; 6 * 1024], Some(Duration::from_secs(300)))?;
        }
    }
    // A hit, a miss and a read-through.
    let _ = cache.get("thumb/2/999")?;
    if cache.get_opt("thumb/0/0")?.is_none() {
        cache.set("thumb/0/0", vec![0u8; 6 * 1024], None)?;
    }

    let m = cache.metrics();
    println!(
        "metrics: {}",
        serde_json::to_string_pretty(&m).unwrap_or_default()
    );
    println!(
        "resident: {} entries, {} of {} bytes; {} evicted; hit ratio {:.1}%",
        m.entries.unwrap_or(0),
        m.bytes.unwrap_or(0),
        m.max_bytes.unwrap_or(0),
        m.evictions.unwrap_or(0),
        100.0 * m.hits as f64 / m.gets.max(1) as f64
    );
    let popular = cache.list("thumb/popular/")?.len();
    println!("popular thumbnails still cached: {popular} of 10");

    // A value bigger than the whole cache is refused, and nothing is evicted for it.
    match cache.set("thumb/huge", vec![0u8; 5 * 1024 * 1024], None) {
        Err(e @ Error::CapacityExceeded { .. }) => println!("refused: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    cache.close()
}
