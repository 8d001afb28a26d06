//! The Markdown report. Its last lines are the `ratio ...` lines, one per target.

use std::fmt::Write;

use crate::results::{Results, Summary, Workload};
use crate::stores::{Kind, Limit};

/// `1M`, `10k` or the plain number.
pub fn count(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn bytes(n: usize) -> String {
    if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(s: &Summary) -> String {
    format!("{} ({}–{})", num(s.median), num(s.min), num(s.max))
}

/// A store's name as Markdown code, so `RwLock<BTreeMap>` is not taken for an HTML tag.
fn store(kind: Kind) -> String {
    format!("`{}`", kind.label())
}

fn header(out: &mut String, first: &[&str], kinds: &[Kind]) {
    let titles: Vec<String> = first
        .iter()
        .map(|s| s.to_string())
        .chain(kinds.iter().map(|&k| store(k)))
        .collect();
    let _ = writeln!(out, "| {} |", titles.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(titles.len()));
}

/// The report as Markdown, ending with the ratio lines.
pub fn markdown(r: &Results) -> String {
    let mut out = format!("# hodor-bench ({} run)\n\n", r.plan.name);
    out.push_str(&body(r, 2));
    let _ = writeln!(out);
    for ratio in &r.ratios {
        let _ = writeln!(out, "{}", ratio.line());
    }
    out
}

/// The README's Performance section: how to reproduce it, then the report with its ratio
/// lines in a code block, then the chart.
pub fn readme_section(r: &Results, chart: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Reproduce with `cargo run --release -p hodor-bench` (about {} minutes; `-- --quick` \
         takes under one). `-- --update-readme` also rewrites this section and `{chart}`. \
         The machine was shared with other work, so absolute numbers are noisy; the ratios \
         between stores measured side by side in one run are what the targets use.\n",
        (r.seconds / 60.0).ceil()
    );
    let _ = writeln!(out, "![throughput by store and thread count]({chart})\n");
    out.push_str(&body(r, 3));
    let _ = writeln!(out, "\n```text");
    for ratio in &r.ratios {
        let _ = writeln!(out, "{}", ratio.line());
    }
    let _ = writeln!(out, "```");
    out
}

/// Every section, with headings at `level`.
fn body(r: &Results, level: usize) -> String {
    let h = "#".repeat(level);
    let mut out = String::new();
    let m = &r.machine;
    let _ = writeln!(
        out,
        "CPU: {} ({} threads). {}. The run took {:.0} s. Each number is the median of {} \
         interleaved repetitions, with the min–max in parentheses.\n",
        m.cpu, m.cpus, m.rustc, r.seconds, r.plan.reps
    );

    let _ = writeln!(out, "{h} Throughput, million operations per second\n");
    header(
        &mut out,
        &["workload", "keys", "value", "threads"],
        &Kind::ALL,
    );
    let mut configs: Vec<(Workload, usize, usize, usize)> = Vec::new();
    for row in &r.throughput {
        let c = (row.workload, row.keys, row.value_bytes, row.threads);
        if !configs.contains(&c) {
            configs.push(c);
        }
    }
    for (w, keys, value, threads) in configs {
        let cells: Vec<String> = Kind::ALL
            .iter()
            .map(|&k| match r.throughput(w, keys, value, threads, k) {
                Some(s) => cell(s),
                None if !k.concurrent() && threads > 1 => "1 thread only".to_owned(),
                None => "N/A".to_owned(),
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            w.label(),
            count(keys),
            bytes(value),
            threads,
            cells.join(" | ")
        );
    }

    if !r.list.is_empty() {
        let _ = writeln!(
            out,
            "\n{h} `list(prefix)`, microseconds per call, out of {} keys, with a concurrent writer \
             ({} writes/s)\n",
            count(r.plan.list.keys),
            r.plan.list.writes_per_ms * 1000
        );
        header(&mut out, &["keys returned"], &Kind::ALL);
        for &matches in &r.plan.list.sizes {
            let cells: Vec<String> = Kind::ALL
                .iter()
                .map(|&k| {
                    r.list
                        .iter()
                        .find(|l| l.store == k && l.matches == matches)
                        .map_or_else(
                            || {
                                if k.ordered() {
                                    "not run".to_owned()
                                } else {
                                    "N/A (no order)".to_owned()
                                }
                            },
                            |l| cell(&l.micros),
                        )
                })
                .collect();
            let _ = writeln!(out, "| {matches} | {} |", cells.join(" | "));
        }
    }

    if !r.ttl.is_empty() {
        let _ = writeln!(
            out,
            "\n{h} Expiry: a random 1–{} ms TTL on every set, {} keys, {} threads, 50% get / 50% set\n",
            r.plan.ttl.max_ttl_ms,
            count(r.plan.ttl.keys),
            r.plan.ttl.threads
        );
        let _ = writeln!(
            out,
            "| store | expired but resident: mean | 90th percentile | max | resident entries | live entries | Mops/s | snapshots after a worker waited > 1 ms for a CPU | 90th percentile without those |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        for t in &r.ttl {
            let pct = |s: &Summary| {
                format!(
                    "{:.2}% ({:.2}–{:.2})",
                    s.median * 100.0,
                    s.min * 100.0,
                    s.max * 100.0
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {} | {} of {} | {} |",
                store(t.store),
                pct(&t.expired_mean),
                pct(&t.expired_p90),
                pct(&t.expired_max),
                t.resident_mean.median,
                t.live_mean.median,
                cell(&t.mops),
                t.samples_disturbed,
                t.samples_total,
                pct(&t.expired_p90_undisturbed)
            );
        }
        let others: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| !k.ttl())
            .map(|&k| store(k))
            .collect();
        let _ = writeln!(
            out,
            "| {} | N/A (no TTL) | | | | | | | |",
            others.join(", ")
        );
    }

    if !r.churn.is_empty() {
        let _ = writeln!(
            out,
            "\n{h} Churn: hit ratio with a working set 3× the limit, cache-aside, one thread\n\n\
             Every store (and the exact LRU) charges an entry its key and value plus {} bytes, \
             hodor's own rule.\n",
            r.entry_overhead
        );
        let _ = writeln!(
            out,
            "| trace | store | limit | hit ratio | exact LRU | difference | M accesses/s |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for c in &r.churn {
            let limit = match c.limit {
                Limit::Bytes(n) => format!("max_bytes {n}"),
                Limit::Entries(n) => format!("max_entries {n}"),
                Limit::None => "none".to_owned(),
            };
            let (hit, diff) = match &c.hit_ratio {
                Ok(h) => (
                    format!("{:.2}%", h * 100.0),
                    format!("{:+.2} pp", (h - c.lru_hit_ratio) * 100.0),
                ),
                Err(e) => (format!("N/A ({})", e.replace('|', "/")), String::new()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {limit} | {hit} | {:.2}% | {diff} | {} |",
                c.trace,
                store(c.store),
                c.lru_hit_ratio * 100.0,
                c.mops.map_or_else(String::new, num)
            );
        }
    }

    if !r.memory.is_empty() {
        let _ = writeln!(
            out,
            "\n{h} Memory: heap bytes per entry beyond the key and value bytes\n"
        );
        let _ = writeln!(
            out,
            "| store | entries | no TTL | every entry with a TTL | heap blocks per entry (no TTL) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for &n in &r.plan.memory_entries {
            for kind in Kind::ALL {
                let row = |ttl| {
                    r.memory
                        .iter()
                        .find(|m| m.store == kind && m.entries == n && m.ttl == ttl)
                };
                let Some(plain) = row(false) else { continue };
                let with_ttl = row(true).map_or_else(
                    || "N/A".to_owned(),
                    |m| format!("{:.1}", m.overhead_per_entry),
                );
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} | {with_ttl} | {:.2} |",
                    store(kind),
                    count(n),
                    plain.overhead_per_entry,
                    plain.blocks_per_entry
                );
            }
        }
    }

    if let Some(c) = &r.metrics_cost {
        let _ = writeln!(
            out,
            "\n{h} Counting cost\n\n`Contract::get` on a no-op driver: {} ns; `Contract::exists`: {} ns \
             (the same work without the hit/miss counter).",
            cell(&c.get_ns),
            cell(&c.exists_ns)
        );
    }

    if let Some(l) = &r.log {
        let _ = writeln!(
            out,
            "\n{h} hodor-log\n\nOne event in one span with three fields, one thread; each side hands its \
             line to a worker thread that discards it.\n\n\
             | measurement | hodor-log (JSON) | tracing-appender, `fmt().json()` | tracing-appender, `fmt()` text |\n\
             |---|---|---|---|\n\
             | ns per event on the calling thread | {} | {} | {} |\n\
             | events dropped during those runs | {} | {} | |\n\n\
             Stored into the memory driver by one thread (blocking mode, until the last batch is \
             written): {} million events per second, {} batches per run.",
            cell(&l.layer_ns),
            cell(&l.appender_ns),
            cell(&l.appender_text_ns),
            l.layer_dropped,
            l.appender_dropped,
            cell(&l.memory_mevents),
            l.memory_batches
        );
    }

    if let Some(w) = &r.watch {
        out.push_str(&crate::watch::markdown(&r.plan, w, &h));
    }

    if !r.notes.is_empty() {
        let _ = writeln!(out, "\n{h} Notes\n");
        for n in &r.notes {
            let _ = writeln!(out, "- {n}");
        }
    }

    let _ = writeln!(out, "\n{h} Targets\n");
    for ratio in &r.ratios {
        let _ = writeln!(out, "- `{}`: {}", ratio.name, ratio.detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(count(1_000_000), "1M");
        assert_eq!(count(10_000), "10k");
        assert_eq!(count(1500), "1500");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(64), "64 B");
        assert_eq!(num(123.4), "123");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
    }
}
