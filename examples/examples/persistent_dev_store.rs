//! A development store that survives restarts, without a server: the memory driver with
//! `persist`. Run it twice: the second run finds what the first one stored.
//!
//! ```sh
//! cargo run --example persistent_dev_store
//! cargo run --example persistent_dev_store
//! ```
//!
//! The data lives in `hodor-examples/persistent_dev_store` under the system's temporary
//! directory; delete that directory to start over.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hodor_core::{Contract, Error};
use hodor_memory as _; // registers the "memory" driver
use serde_json::json;

fn open(config: &serde_json::Value) -> Result<Contract, Error> {
    Contract::new("memory", "dev", Some(config.clone()))
}

fn main() -> Result<(), Error> {
    let dir = std::env::temp_dir()
        .join("hodor-examples")
        .join("persistent_dev_store");
    // Every write is on disk before `set` returns; large values are stored compressed.
    let config = json!({
        "persist": {"dir": dir, "fsync": "always"},
        "compression": {"algorithm": "lz4", "min_size": 1024},
    });

    let store = open(&config)?;
    let runs: u64 = match store.get_json("runs") {
        Ok(runs) => runs,
        Err(e) if e.is_not_found() => 0,
        Err(e) => return Err(e),
    };
    if runs == 0 {
        println!("first run: nothing stored yet in {}", dir.display());
    } else {
        let last = String::from_utf8_lossy(&store.get("last_run")?).into_owned();
        println!(
            "found {runs} earlier run(s) in {}; the last one at {last}",
            dir.display()
        );
        println!("keys restored from disk: {:?}", store.list("")?);
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    store.set_json("runs", &(runs + 1), None)?;
    store.set("last_run", format!("{now} s since the Unix epoch"), None)?;
    // A TTL is kept as a wall-clock deadline: a restart never extends it.
    store.set(
        "session/demo",
        "expires in a minute",
        Some(Duration::from_secs(60)),
    )?;
    let page = "<li>a compressible line of HTML</li>\n".repeat(200);
    store.set("page/home", page.clone(), None)?;

    // A restart inside this run: close (the log is synced, the memory released) and open
    // the same directory again.
    store.close()?;
    let store = open(&config)?;
    assert_eq!(
        store.get("page/home")?,
        page,
        "the page survived the restart"
    );
    let m = store.metrics();
    println!(
        "reopened: {} entries, {} bytes held for a {}-byte page and a few small values \
         (compressed), {} records recovered in {} µs",
        m.entries.unwrap_or(0),
        m.bytes.unwrap_or(0),
        page.len(),
        m.recovery_records.unwrap_or(0),
        m.recovery_micros.unwrap_or(0),
    );
    store.close()?;
    println!("run it again: run {} will find this run's data", runs + 2);
    Ok(())
}
