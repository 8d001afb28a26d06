//! `hodor-bench-probe KEYS WARMUP_MS MS`: one round of the counting probe, printed as one
//! JSON line. hodor-bench runs it; see the library's documentation.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    let [keys, warmup_ms, ms] = args[..] else {
        eprintln!("usage: hodor-bench-probe KEYS WARMUP_MS MS");
        return ExitCode::from(2);
    };
    match hodor_bench_probe::measure(
        keys as usize,
        Duration::from_millis(warmup_ms),
        Duration::from_millis(ms),
    ) {
        Ok(round) => {
            println!("{}", round.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hodor-bench-probe: {e}");
            ExitCode::FAILURE
        }
    }
}
