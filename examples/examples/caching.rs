//! A read-through cache in front of a slow lookup, shared by name between two parts of a
//! program, with a TTL so stale entries go away on their own.
//!
//! Run with `cargo run --example caching`.

use std::time::{Duration, Instant};

use hodor_core::{Bytes, Contract, Error};
use hodor_memory as _;

/// Stands in for a database or an HTTP call.
fn slow_profile_lookup(user: &str) -> String {
    std::thread::sleep(Duration::from_millis(50));
    format!("{{\"user\":\"{user}\",\"plan\":\"pro\"}}")
}

/// Cache-aside: a miss is an everyday outcome, so `get_opt` reports it as `None` (and
/// builds no error); a real failure (the store is closed, a backend is down) is still `Err`.
fn cached_profile(cache: &Contract, user: &str) -> Result<Bytes, Error> {
    let key = format!("profile/{user}");
    if let Some(hit) = cache.get_opt(&key)? {
        return Ok(hit);
    }
    let fresh = Bytes::from(slow_profile_lookup(user));
    cache.set(&key, fresh.clone(), Some(Duration::from_secs(60)))?;
    Ok(fresh)
}

fn main() -> Result<(), Error> {
    // Two components open the cache by the same name and share its entries.
    let web = Contract::new("memory", "profile-cache", None)?;
    let worker = Contract::new("memory", "profile-cache", None)?;

    for (who, cache) in [("web", &web), ("web", &web), ("worker", &worker)] {
        let start = Instant::now();
        let profile = cached_profile(cache, "alice")?;
        println!(
            "{who:>6}: {} in {:?}",
            String::from_utf8_lossy(&profile),
            start.elapsed()
        );
    }

    let m = web.metrics();
    println!(
        "web handle: {} gets, {} hits, {} misses",
        m.gets, m.hits, m.misses
    );
    println!("store: {:?} entries", m.entries);
    web.close()?;
    // The store lives on while the worker's contract is open.
    println!(
        "worker still sees alice: {}",
        worker.exists("profile/alice")?
    );
    worker.close()
}
