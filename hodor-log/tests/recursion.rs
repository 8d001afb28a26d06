//! The sink never feeds itself: a driver that logs (through `tracing` and `log`, under
//! targets the sink does not filter) and even flushes the logger from inside its storage
//! calls leaves the stored log as the application wrote it.
//!
//! Its own test binary: it installs the process-wide subscriber and logger.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hodor_log::Sink;
use tracing_subscriber::prelude::*;

#[test]
fn storage_calls_that_log_never_come_back_into_the_sink() {
    let sets = Arc::new(AtomicUsize::new(0));
    let counted = sets.clone();
    // A store that logs every write, the way a driver might one day.
    let logs = support::hooked(
        "recursion",
        true,
        Box::new(move |key| {
            tracing::warn!(target: "hodor_memory", key, "storing a value");
            log::warn!(target: "hodor_core", "stored {key}");
            // Waiting for the sink from inside the sink would never end: it must not wait.
            log::logger().flush();
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }),
    );
    let batch_age = Duration::from_millis(20);
    let (sink, guard) = Sink::builder(logs.clone())
        .prefix("app/")
        .batch_age(batch_age)
        .flush_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(sink.layer()))
        .unwrap();
    sink.logger().install(log::LevelFilter::Trace).unwrap();

    tracing::info!("from tracing");
    log::info!("from log");
    assert!(
        sink.flush(Duration::from_secs(60)),
        "the driver's flush did not wait"
    );
    assert_eq!(sets.load(Ordering::SeqCst), 1);

    // Had the driver's events been recorded, each batch would queue another one, written
    // a batch age later, for ever. Give that loop ten chances to show.
    std::thread::sleep(batch_age * 10);
    assert!(sink.flush(Duration::from_secs(60)));
    assert_eq!(sets.load(Ordering::SeqCst), 1, "one batch, written once");
    let messages: Vec<String> = hodor_log::read(&logs, "app/", std::time::UNIX_EPOCH)
        .unwrap()
        .map(|r| r.unwrap().message)
        .collect();
    assert_eq!(messages, ["from tracing", "from log"]);
    drop(guard);
}
