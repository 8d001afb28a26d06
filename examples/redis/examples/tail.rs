//! Follows the logs that hodor-log sinks write into a contract, like `tail -f`.
//!
//! ```text
//! cargo run -p hodor-redis-examples --example tail     # a demo: a writer thread logs into memory
//! cargo run -p hodor-redis-examples --example tail -- --redis redis://127.0.0.1:6379/0 --contract logs --prefix logs/web/
//! ```
//!
//! With `--redis` it follows that contract until interrupted (or for `--seconds N`).
//!
//! How it follows: every poll reads from a little before the newest record printed, and
//! skips records already printed. A batch that reaches the store more than `LATE` after
//! its first record (a sink whose store was unreachable for a while) is printed when it
//! arrives, after newer records, or not at all if it is older than `LATE` by then.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hodor_core::Contract;
use hodor_memory as _;
use hodor_redis as _;
use tracing_subscriber::prelude::*;

/// How far behind the newest printed record each poll looks again for late batches.
const LATE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(200);

struct Args {
    redis: Option<String>,
    contract: String,
    prefix: String,
    seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        redis: None,
        contract: "logs".to_owned(),
        prefix: "logs/".to_owned(),
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--redis" => args.redis = Some(value()?),
            "--contract" => args.contract = value()?,
            "--prefix" => args.prefix = value()?,
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: tail [--redis URL] [--contract NAME] \
                     [--prefix PREFIX] [--seconds N]"
                ));
            }
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (contract, demo) = match &args.redis {
        Some(url) => {
            let config = serde_json::json!({ "url": url });
            (Contract::new("redis", &args.contract, Some(config))?, None)
        }
        None => {
            let contract = Contract::new("memory", &args.contract, None)?;
            (
                contract.clone(),
                Some(demo_writer(contract, args.prefix.clone())),
            )
        }
    };
    let stop = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));

    let mut since = UNIX_EPOCH;
    let mut printed: HashMap<(String, usize), SystemTime> = HashMap::new();
    let mut count = 0u64;
    loop {
        // The demo stops after one more poll once its writer is done; a real tail runs
        // until interrupted.
        let last_poll = demo.as_ref().is_some_and(|w| w.is_finished())
            || stop.is_some_and(|stop| Instant::now() >= stop);
        let mut newest = since;
        for record in hodor_log::read(&contract, &args.prefix, since)? {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    eprintln!("tail: {e}");
                    continue;
                }
            };
            newest = newest.max(record.timestamp);
            if printed
                .insert((record.batch.clone(), record.line), record.timestamp)
                .is_none()
            {
                println!("{record}");
                count += 1;
            }
        }
        since = newest.checked_sub(LATE).unwrap_or(UNIX_EPOCH).max(since);
        printed.retain(|_, ts| *ts >= since);
        if last_poll {
            break;
        }
        std::thread::sleep(POLL);
    }
    if let Some(writer) = demo {
        let sent = writer.join().map_err(|_| "the demo writer panicked")?;
        println!("tail: printed {count} records; the demo wrote {sent}");
        if count != sent {
            return Err("the demo's records were not all printed".into());
        }
    }
    Ok(())
}

/// Logs a line every 50 ms for about two seconds through a sink of its own, as another
/// process would; returns how many.
fn demo_writer(contract: Contract, prefix: String) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let Ok((layer, guard)) = hodor_log::Sink::builder(contract)
            .prefix(prefix)
            .batch_age(Duration::from_millis(100))
            .layer()
        else {
            return 0;
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        let sent = tracing::subscriber::with_default(subscriber, || {
            for i in 0..40 {
                tracing::info!(tick = i, "the demo writer is alive");
                std::thread::sleep(Duration::from_millis(50));
            }
            40
        });
        drop(guard);
        sent
    })
}
