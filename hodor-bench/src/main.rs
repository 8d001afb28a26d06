//! `cargo run --release -p hodor-bench -- [--quick] [--out DIR] [--update-readme]`
//!
//! Prints the Markdown report (ending in one `ratio ...` line per target) and writes
//! `results.json`, `results.md` and `bench.png` to `DIR` (default `target/hodor-bench/`).
//! `--update-readme` also copies the chart to `docs/bench.png` and rewrites what lies
//! between the `<!-- bench:start -->` and `<!-- bench:end -->` markers of two files:
//! `hodor-bench/README.md` gets every table and the ratio lines, the main `README.md` the
//! chart and a short summary table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hodor_bench::memory::CountingAlloc;
use hodor_bench::plan::{Phases, Plan};
use hodor_bench::{Progress, chart, report, workspace_root};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "usage: hodor-bench [--quick] [--only PHASES] [--out DIR] [--update-readme]
       hodor-bench --profile STORE WORKLOAD KEYS THREADS SECONDS

  --quick          the cells the targets need, in under a minute
  --only PHASES    run only some of throughput,list,ttl,churn,memory,log,redis,counting,
                   watch,persist (comma-separated)
  --out DIR        where results.json, results.md and bench.png go (default target/hodor-bench)
  --update-readme  also rewrite the generated parts of hodor-bench/README.md and README.md,
                   and docs/bench.png
  --profile        run one store and workload (get, mix95, mix50, set-new) for perf or
                   callgrind; STORE is hodor, driver, moka, quick_cache, dashmap, btreemap
                   or hashbrown";

const START: &str = "<!-- bench:start -->";
const END: &str = "<!-- bench:end -->";

struct Args {
    quick: bool,
    only: Option<String>,
    out: PathBuf,
    update_readme: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        only: None,
        out: workspace_root().join("target").join("hodor-bench"),
        update_readme: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--update-readme" => args.update_readme = true,
            "--only" => args.only = Some(it.next().ok_or("--only needs a list of phases")?),
            "--out" => {
                args.out = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--out needs a directory")?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(args)
}

/// Replaces what lies between the bench markers of the Markdown file at `path`.
fn replace_generated(path: &Path, section: &str) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        return Err(format!(
            "{} has no {START} ... {END} markers to replace",
            path.display()
        ));
    };
    if end < start {
        return Err(format!(
            "{}'s bench markers are out of order",
            path.display()
        ));
    }
    let updated = format!("{}{START}\n{section}{}", &text[..start], &text[end..]);
    std::fs::write(path, updated).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Copies the chart to `docs/bench.png` and rewrites the generated parts of both READMEs.
fn update_readme(results: &hodor_bench::results::Results, png: &Path) -> Result<(), String> {
    let root = workspace_root();
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    std::fs::copy(png, docs.join("bench.png")).map_err(|e| format!("copying the chart: {e}"))?;
    replace_generated(
        &root.join("hodor-bench").join("README.md"),
        &report::bench_readme_section(results, "../docs/bench.png"),
    )?;
    replace_generated(
        &root.join("README.md"),
        &report::summary_section(results, "docs/bench.png"),
    )
}

fn profile(args: &[String]) -> Result<(), String> {
    let [store, workload, keys, threads, seconds] = args else {
        return Err(USAGE.to_owned());
    };
    let kind = hodor_bench::profile::kind(store).ok_or(format!("unknown store {store:?}"))?;
    let workload =
        hodor_bench::profile::workload(workload).ok_or(format!("unknown workload {workload:?}"))?;
    let number = |s: &String| s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
    let (keys, threads, seconds) = (number(keys)?, number(threads)?, number(seconds)?);
    if threads > 1.0 && !kind.concurrent() {
        return Err(format!("{} runs on one thread only", kind.label()));
    }
    let mops = hodor_bench::profile::run(kind, workload, keys as usize, threads as usize, seconds);
    println!("{} {}: {mops:.3} Mops/s", kind.label(), workload.label());
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "--profile") {
        return match profile(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful numbers");
    }
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(only) = &args.only {
        if args.update_readme {
            eprintln!("--update-readme needs the whole run, not --only");
            return ExitCode::from(2);
        }
        match Phases::parse(only) {
            Ok(phases) => plan.phases = phases,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    let progress = Progress::new(false);
    let results = hodor_bench::run(&plan, &progress);

    let written = (|| -> Result<PathBuf, String> {
        std::fs::create_dir_all(&args.out)
            .map_err(|e| format!("creating {}: {e}", args.out.display()))?;
        let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
        std::fs::write(args.out.join("results.json"), json).map_err(|e| e.to_string())?;
        std::fs::write(args.out.join("results.md"), report::markdown(&results))
            .map_err(|e| e.to_string())?;
        let png = args.out.join("bench.png");
        chart::draw(&results, &png)?;
        if args.update_readme {
            update_readme(&results, &png)?;
            progress.say("hodor-bench/README.md, README.md and docs/bench.png updated");
        }
        Ok(args.out.clone())
    })();
    let status = match written {
        Ok(dir) => {
            progress.say(&format!(
                "wrote results.json, results.md and bench.png to {}",
                dir.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    print!("{}", report::markdown(&results));
    status
}
