//! hodor-log: what logging an event costs the calling thread, against tracing-appender's
//! non-blocking writer, and how many events per second one thread can store.
//!
//! Every side formats the same event, in the same span, under a `tracing_subscriber`
//! registry, and hands the line to a worker thread: hodor-log's [`Layer`](hodor_log::Layer)
//! (a JSON line) into a driver that discards every batch, and `tracing_subscriber::fmt`
//! writing to `tracing_appender::non_blocking(std::io::sink())`, once with its JSON
//! formatter (the same content) and once with its default text formatter (what most
//! programs use). The target compares with the cheaper of the two. A repetition logs fewer
//! events than any queue holds, and each queue is drained between repetitions, so none
//! drops.

use std::time::{Duration, Instant};

use hodor_core::Contract;
use serde::Serialize;
use tracing_subscriber::prelude::*;

use crate::Progress;
use crate::plan::Plan;
use crate::results::Summary;
use hodor_bench_probe::NoopDriver;

/// The log phase's settings.
#[derive(Clone, Debug, Serialize)]
pub struct LogPlan {
    /// Events per repetition of the calling-thread measurement.
    pub events: usize,
    /// Events per repetition of the throughput measurement.
    pub throughput_events: usize,
}

/// What the log phase measured.
#[derive(Clone, Debug, Serialize)]
pub struct LogResults {
    /// Nanoseconds per event on the calling thread, hodor-log's layer.
    pub layer_ns: Summary,
    /// Nanoseconds per event on the calling thread, `fmt().json()` into tracing-appender.
    pub appender_ns: Summary,
    /// Nanoseconds per event on the calling thread, `fmt()` (text) into tracing-appender.
    pub appender_text_ns: Summary,
    /// Events hodor-log dropped during the calling-thread runs (0 expected).
    pub layer_dropped: u64,
    /// Lines tracing-appender dropped during its runs, both formatters (0 expected).
    pub appender_dropped: u64,
    /// Million events per second stored in the memory driver by one logging thread
    /// (blocking mode, until the last batch is written).
    pub memory_mevents: Summary,
    /// Batches those runs wrote, per repetition.
    pub memory_batches: u64,
}

/// The event both sides log, `n` times, in a span; returns nanoseconds per event.
fn log_events(n: usize) -> f64 {
    let span = tracing::info_span!("request", id = 7u64);
    let _entered = span.enter();
    let started = Instant::now();
    for i in 0..n {
        tracing::info!(
            target: "bench::api",
            user = 42u64,
            item = i as u64,
            path = "/api/items",
            "request handled"
        );
    }
    started.elapsed().as_nanos() as f64 / n.max(1) as f64
}

/// Runs the log phase.
pub fn run(plan: &Plan, progress: &Progress) -> Option<LogResults> {
    progress.say("log: hodor-log layer vs tracing-appender, calling thread");
    let p = &plan.log;
    let discard = Contract::from_driver("discard", "log-bench", NoopDriver).ok()?;
    let (sink, _guard) = hodor_log::Sink::builder(discard)
        .prefix("bench/")
        .build()
        .ok()?;
    let layer_dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(sink.layer()));

    let (writer, _appender_guard) = tracing_appender::non_blocking(std::io::sink());
    let appender_errors = writer.error_counter();
    let appender_dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(writer),
        ),
    );

    let layer = || {
        let ns = tracing::dispatcher::with_default(&layer_dispatch, || log_events(p.events));
        sink.flush(Duration::from_secs(60));
        ns
    };
    let (text_writer, _text_guard) = tracing_appender::non_blocking(std::io::sink());
    let text_errors = text_writer.error_counter();
    let text_dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(text_writer),
        ),
    );
    let appender = |dispatch: &tracing::Dispatch| {
        let ns = tracing::dispatcher::with_default(dispatch, || log_events(p.events));
        // tracing-appender has no flush: give its worker time to drain the channel.
        std::thread::sleep(Duration::from_millis(20));
        ns
    };
    layer();
    appender(&appender_dispatch);
    appender(&text_dispatch);
    let mut layer_ns = Vec::new();
    let mut appender_ns = Vec::new();
    let mut text_ns = Vec::new();
    for rep in 0..plan.reps {
        // Rotate who goes first.
        for i in 0..3 {
            match (rep + i) % 3 {
                0 => layer_ns.push(layer()),
                1 => appender_ns.push(appender(&appender_dispatch)),
                _ => text_ns.push(appender(&text_dispatch)),
            }
        }
    }
    let stats = sink.stats();
    let logged = ((plan.reps + 1) * p.events) as u64;
    if stats.records_written + stats.records_dropped != logged {
        progress.detail(&format!("hodor-log handled {stats:?} of {logged} events"));
        return None;
    }
    let layer_dropped = stats.records_dropped;
    let appender_dropped = (appender_errors.dropped_lines() + text_errors.dropped_lines()) as u64;

    progress.say("log: events per second into the memory driver, one thread");
    let mut mevents = Vec::new();
    let mut batches = 0;
    for rep in 0..plan.reps {
        let store = hodor_memory::open(&format!("log-bench-{rep}"), Default::default()).ok()?;
        let (sink, guard) = hodor_log::Sink::builder(store.clone())
            .prefix("bench/")
            .blocking(true)
            .build()
            .ok()?;
        let subscriber = tracing_subscriber::registry().with(sink.layer());
        let started = Instant::now();
        tracing::subscriber::with_default(subscriber, || log_events(p.throughput_events));
        sink.flush(Duration::from_secs(600));
        let seconds = started.elapsed().as_secs_f64();
        let stats = sink.stats();
        if stats.records_written != p.throughput_events as u64 {
            progress.detail(&format!(
                "hodor-log stored {stats:?} of {}",
                p.throughput_events
            ));
            return None;
        }
        batches = stats.batches_written;
        mevents.push(p.throughput_events as f64 / seconds / 1e6);
        drop(guard);
        let _ = store.close();
    }
    Some(LogResults {
        layer_ns: Summary::of(layer_ns),
        appender_ns: Summary::of(appender_ns),
        appender_text_ns: Summary::of(text_ns),
        layer_dropped,
        appender_dropped,
        memory_mevents: Summary::of(mevents),
        memory_batches: batches,
    })
}
