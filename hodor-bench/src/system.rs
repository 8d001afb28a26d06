//! What machine a run is on.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::results::Machine;

/// The CPU model from /proc/cpuinfo, or "unknown".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// This machine.
pub fn machine(counting_allocator: bool) -> Machine {
    Machine {
        cpu: cpu_model(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        rustc: option_env!("HODOR_BENCH_RUSTC")
            .unwrap_or("unknown")
            .to_owned(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        counting_allocator,
    }
}
