//! What counting operations costs a `Contract` call, measured as the difference of the same
//! call built with counting compiled in and out.
//!
//! `hodor-core` counts through one private function that `--cfg hodor_no_counters` turns
//! into nothing. A cfg cannot be switched inside one build (and a cargo feature could not do
//! it either: features are unified across a build, so this benchmark, which depends on
//! `hodor-core` through every driver, could not hold a second copy without counting). So
//! this phase builds the small `hodor-bench-probe` package twice with cargo, each in a
//! target directory of its own under `target/hodor-bench/` (the first run compiles its few
//! dependencies twice; later runs reuse them), the second build with the cfg added to the
//! flags the benchmark itself was given. It then runs the two binaries in turn, a fresh
//! process per round, alternating which goes first, and pairs each round's two numbers, so
//! the drift of a shared machine over a run cancels out of the difference.
//!
//! Each probe binary reports whether its build counts (a `get` shows in `metrics()` or not):
//! a flag that did not reach `hodor-core` is an error here, never a silent zero.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use hodor_bench_probe::Round;

use crate::Progress;
use crate::plan::Plan;
use crate::results::{CountingCost, Summary};

/// The flags cargo would pass to rustc for this build, as `CARGO_ENCODED_RUSTFLAGS` holds
/// them (separated by 0x1f): the environment's, which both probe builds share.
fn base_flags() -> Vec<String> {
    if let Ok(encoded) = std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        return encoded
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
    }
    std::env::var("RUSTFLAGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The directory cargo puts a profile's binaries in.
fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// Builds the probe, with counting or without; returns its binary.
fn build(root: &Path, profile: &str, counted: bool) -> Result<PathBuf, String> {
    let cfg = (!counted).then_some("hodor_no_counters");
    build_probe(root, "hodor-bench-probe", profile, cfg)
}

/// Builds the binary of `package` in the cargo `profile` with `--cfg cfg` added to the flags
/// the benchmark was given; returns the binary. Each cfg has a target directory of its own
/// under `target/hodor-bench/` (`probe-default` without one), shared by every probe built
/// with it: the watch phase's probe and this phase's have the same dependencies.
pub(crate) fn build_probe(
    root: &Path,
    package: &str,
    profile: &str,
    cfg: Option<&str>,
) -> Result<PathBuf, String> {
    let variant = format!("probe-{}", cfg.unwrap_or("default"));
    let target = root.join("target").join("hodor-bench").join(&variant);
    let mut flags = base_flags();
    if let Some(cfg) = cfg {
        flags.extend(["--cfg".to_owned(), cfg.to_owned()]);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let output = Command::new(&cargo)
        .args(["build", "--quiet", "--profile", profile, "-p", package])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        // Set even when empty, so both builds ignore any rustflags from cargo's config
        // alike.
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("running {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "building {package} ({variant}) failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    Ok(target
        .join(profile_dir(profile))
        .join(format!("{package}{}", std::env::consts::EXE_SUFFIX)))
}

/// Runs one round of one probe binary.
fn round(binary: &Path, plan: &Plan, counted: bool) -> Result<Round, String> {
    let p = &plan.counting;
    let warmup = plan.warmup.as_millis().max(1);
    let output = Command::new(binary)
        .arg(p.keys.to_string())
        .arg(warmup.to_string())
        .arg(p.duration.as_millis().max(1).to_string())
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let round = Round::from_json(&stdout).ok_or_else(|| {
        format!(
            "{} printed {:?} ({})",
            binary.display(),
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    if round.counting != counted {
        return Err(format!(
            "the probe built {} counting reports that it {} count: the --cfg did not reach \
             hodor-core",
            if counted { "with" } else { "without" },
            if round.counting { "does" } else { "does not" }
        ));
    }
    Ok(round)
}

/// Builds both probes and runs `plan.counting.rounds` paired rounds.
pub fn run(plan: &Plan, root: &Path, progress: &Progress) -> Result<CountingCost, String> {
    let p = &plan.counting;
    progress.say(&format!(
        "counting cost: building the probe with and without counting ({} profile; the first \
         time compiles its dependencies twice)",
        p.profile
    ));
    let counted = build(root, p.profile, true)?;
    let uncounted = build(root, p.profile, false)?;
    progress.say(&format!(
        "counting cost: {} rounds of get hit, get_opt miss and get on a no-op driver, {} keys",
        p.rounds, p.keys
    ));
    let mut pairs = Vec::with_capacity(p.rounds);
    for r in 0..p.rounds {
        let (with, without) = if r % 2 == 0 {
            let with = round(&counted, plan, true)?;
            (with, round(&uncounted, plan, false)?)
        } else {
            let without = round(&uncounted, plan, false)?;
            (round(&counted, plan, true)?, without)
        };
        pairs.push((with, without));
    }
    let of = |f: fn(&(Round, Round)) -> f64| Summary::of(pairs.iter().map(f).collect());
    Ok(CountingCost {
        keys: p.keys,
        get_hit_ns: of(|(c, _)| c.get_hit_ns),
        get_hit_uncounted_ns: of(|(_, u)| u.get_hit_ns),
        get_hit_share: of(|(c, u)| (c.get_hit_ns - u.get_hit_ns) / c.get_hit_ns),
        get_opt_miss_ns: of(|(c, _)| c.get_opt_miss_ns),
        get_opt_miss_uncounted_ns: of(|(_, u)| u.get_opt_miss_ns),
        noop_get_ns: of(|(c, _)| c.noop_get_ns),
        noop_get_uncounted_ns: of(|(_, u)| u.noop_get_ns),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_map_to_their_directories() {
        assert_eq!(profile_dir("dev"), "debug");
        assert_eq!(profile_dir("release"), "release");
        assert_eq!(profile_dir("bench"), "release");
        assert_eq!(profile_dir("custom"), "custom");
    }
}
