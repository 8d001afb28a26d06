//! `hodor-watch-probe KEYS THREADS WARMUP_MS DURATION_MS [watched]`: loads a memory store
//! with KEYS keys, overwrites random ones on THREADS threads with nobody watching (or, with
//! `watched`, while a thread receives every change: for profiling), and prints
//! `{"mops": M, "hooks": true|false, ...}` (hooks: whether this build publishes changes;
//! then the sets counted, the writers' CPU and wall milliseconds summed over the threads,
//! and with `watched` what the watcher received and its CPU and wall milliseconds).

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let watched = std::env::args().any(|a| a == "watched");
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [keys, threads, warmup, duration] = args[..] else {
        eprintln!("usage: hodor-watch-probe KEYS THREADS WARMUP_MS DURATION_MS [watched]");
        return ExitCode::from(2);
    };
    let hooks = hodor_watch_probe::hooks_compiled_in();
    let keys = hodor_watch_probe::keys(keys as usize);
    let c = hodor_watch_probe::load("hodor-watch-probe", &keys);
    let consumer = watched.then(|| hodor_watch_probe::Consumer::start(&c, "k/"));
    let run = hodor_watch_probe::set_run(
        &c,
        &keys,
        threads as usize,
        Duration::from_millis(warmup),
        Duration::from_millis(duration),
    );
    let ms = |d: Option<Duration>| d.map_or(-1.0, |d| d.as_secs_f64() * 1e3);
    let watcher = consumer.map_or(String::new(), |consumer| {
        let c = consumer.stop();
        format!(
            ", \"events\": {}, \"lagged\": {}, \"watcher_cpu_ms\": {}, \"watcher_wall_ms\": {}",
            c.events,
            c.lagged,
            ms(c.cpu),
            c.wall.as_secs_f64() * 1e3
        )
    });
    println!(
        "{{\"mops\": {}, \"hooks\": {hooks}, \"sets\": {}, \"writer_cpu_ms\": {}, \
         \"writer_wall_ms\": {}{watcher}}}",
        run.mops,
        run.sets,
        ms(run.cpu),
        run.wall.as_secs_f64() * 1e3
    );
    // Freeing a million entries one by one takes a while; the process is ending anyway.
    std::mem::forget(c);
    ExitCode::SUCCESS
}
