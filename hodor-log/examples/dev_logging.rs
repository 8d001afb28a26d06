//! Development logging into a hodor contract: `tracing` events go through hodor-log into
//! the memory driver, and are then read back and printed in order.
//!
//! `cargo run --example dev_logging`

use std::time::{Duration, UNIX_EPOCH};

use hodor_core::Contract;
use hodor_memory as _; // link the "memory" driver
use tracing_subscriber::prelude::*;

#[tracing::instrument]
fn handle_request(id: u32, user: &str) {
    tracing::info!(path = "/api/items", "request received");
    if user == "mallory" {
        tracing::warn!(attempts = 3, "too many attempts");
        return;
    }
    let err = std::io::Error::other("connection reset");
    tracing::error!(
        error = &err as &dyn std::error::Error,
        retry_in_ms = 250,
        "upstream failed"
    );
    tracing::debug!(rows = 42, "served from cache instead");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logs = Contract::new("memory", "dev-logs", None)?;
    let (layer, guard) = hodor_log::Sink::builder(logs.clone())
        .prefix("logs/dev/")
        .retention(Duration::from_secs(24 * 3600))
        .layer()?;
    tracing_subscriber::registry().with(layer).init();

    tracing::info!(version = env!("CARGO_PKG_VERSION"), "service starting");
    handle_request(1, "alice");
    handle_request(2, "mallory");
    tracing::info!("service stopping");

    // Dropping the guard writes what is still queued (waiting a few seconds at most).
    drop(guard);

    let batches = logs.list("logs/dev/")?;
    println!(
        "{} records in {} batch(es) under logs/dev/:",
        count(&logs)?,
        batches.len()
    );
    for record in hodor_log::read(&logs, "logs/dev/", UNIX_EPOCH)? {
        println!("{}", record?);
    }
    Ok(())
}

fn count(logs: &Contract) -> Result<usize, hodor_core::Error> {
    Ok(hodor_log::read(logs, "logs/dev/", UNIX_EPOCH)?.count())
}
