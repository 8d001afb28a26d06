//! Runs every workload of the benchmark for a few milliseconds, so the harness cannot rot.
//! It checks that each part produced sane results, never how fast anything was.

use hodor_bench::memory::CountingAlloc;
use hodor_bench::plan::Plan;
use hodor_bench::results::Workload;
use hodor_bench::stores::Kind;
use hodor_bench::{Progress, chart, report};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn every_workload_runs_and_reports() {
    let plan = Plan::smoke();
    let r = hodor_bench::run(&plan, &Progress::new(true));
    let keys = plan.cells[0].keys;

    for workload in [
        Workload::GetHit,
        Workload::Mix95,
        Workload::Mix50,
        Workload::SetNew,
    ] {
        for kind in Kind::ALL {
            for &threads in &plan.threads {
                let row = r.throughput(workload, keys, 64, threads, kind);
                if threads > 1 && !kind.concurrent() {
                    assert!(row.is_none(), "{kind:?} ran on {threads} threads");
                    continue;
                }
                let row = row.unwrap_or_else(|| panic!("no {workload:?} row for {kind:?}"));
                assert_eq!(row.samples.len(), plan.reps);
                assert!(row.min > 0.0, "{workload:?} {kind:?}: {row:?}");
            }
        }
    }
    for row in &r.throughput {
        assert_eq!(row.misses, 0, "every get targets a loaded key: {row:?}");
        assert_eq!(row.failed, 0, "{row:?}");
    }

    for kind in [Kind::Hodor, Kind::HodorDriver, Kind::BTreeMap] {
        for &matches in &plan.list.sizes {
            let row = r
                .list
                .iter()
                .find(|l| l.store == kind && l.matches == matches);
            assert!(
                row.is_some_and(|l| l.micros.median > 0.0),
                "{kind:?} list {matches}"
            );
        }
    }
    assert!(
        r.notes.iter().all(|n| !n.starts_with("list:")),
        "{:?}",
        r.notes
    );

    let ttl: Vec<Kind> = r.ttl.iter().map(|t| t.store).collect();
    assert_eq!(ttl, [Kind::Hodor, Kind::Moka]);
    for t in &r.ttl {
        assert!(!t.samples.is_empty());
        assert!(t.samples.iter().all(|s| s.resident > 0), "{t:?}");
    }

    assert_eq!(r.churn.len(), 8);
    for c in &r.churn {
        assert!((0.0..=1.0).contains(&c.lru_hit_ratio) && c.lru_hit_ratio > 0.1);
        if let Ok(h) = c.hit_ratio {
            assert!((0.0..=1.0).contains(&h), "{c:?}");
        }
    }
    assert!(
        r.churn
            .iter()
            .filter(|c| matches!(c.store, Kind::Moka | Kind::QuickCache))
            .all(|c| c.hit_ratio.is_ok())
    );

    for kind in Kind::ALL {
        let row = r
            .memory
            .iter()
            .find(|m| m.store == kind && !m.ttl)
            .unwrap_or_else(|| panic!("no memory row for {kind:?}"));
        // Every store needs at least a value handle (a 32-byte Bytes) per entry.
        assert!(
            row.overhead_per_entry > 32.0 && row.overhead_per_entry < 2000.0,
            "{row:?}"
        );
    }
    assert!(r.memory.iter().any(|m| m.store == Kind::Hodor && m.ttl));

    // Every store, and hodor's get_opt, read absent keys on every thread count.
    let miss_columns = 1 + Kind::ALL.len();
    assert_eq!(
        r.misses.len(),
        miss_columns + miss_columns - 1,
        "{:?}",
        r.misses
    );
    for m in &r.misses {
        assert_eq!(m.hits, 0, "{m:?}");
        assert!(m.mops.min > 0.0, "{m:?}");
    }

    // The counting phase built the probe both ways (each build checks which way it went).
    let counting = r
        .counting
        .as_ref()
        .unwrap_or_else(|| panic!("counting not measured: {:?}", r.notes));
    assert_eq!(counting.get_hit_share.samples.len(), plan.counting.rounds);
    assert!(counting.get_hit_ns.min > 0.0 && counting.noop_get_uncounted_ns.min > 0.0);

    // The Redis rows run wherever redis-server is on PATH, and must under
    // HODOR_REQUIRE_REDIS=1 (as in CI).
    match &r.redis {
        Some(redis) => {
            assert_eq!(redis.rows.len(), 3 * plan.redis.threads.len());
            for row in &redis.rows {
                assert_eq!(row.errors, 0, "{row:?}");
                assert!(
                    row.hodor_kops.min > 0.0 && row.plain_kops.min > 0.0,
                    "{row:?}"
                );
            }
        }
        None => {
            assert!(
                std::env::var("HODOR_REQUIRE_REDIS").as_deref() != Ok("1"),
                "HODOR_REQUIRE_REDIS=1 but the Redis phase did not run: {:?}",
                r.notes
            );
            assert!(r.notes.iter().any(|n| n.starts_with("redis rows skipped")));
        }
    }

    let log = r.log.as_ref().expect("the log phase ran");
    assert_eq!(log.layer_ns.samples.len(), plan.reps);
    assert!(
        log.layer_ns.min > 0.0 && log.appender_ns.min > 0.0,
        "{log:?}"
    );
    assert!(
        log.memory_mevents.min > 0.0 && log.memory_batches > 0,
        "{log:?}"
    );

    let watch = r.watch.as_ref().expect("the watch phase ran");
    assert_eq!(watch.watched_ratio.samples.len(), plan.watch.reps);
    assert!(
        watch.set_unwatched.min > 0.0 && watch.set_watched.min > 0.0,
        "{watch:?}"
    );
    assert!(watch.watcher_events > 0, "the watcher received the changes");
    assert_eq!(watch.one_writer_ratio.samples.len(), plan.watch.reps);
    if cfg!(target_os = "linux") {
        // Where the time went comes from the threads' CPU times.
        assert_eq!(watch.consumer_cpu_share.samples.len(), plan.watch.reps);
        assert_eq!(watch.writer_cores_watched.samples.len(), plan.watch.reps);
        assert!(watch.writer_ns_per_set_unwatched.is_finite(), "{watch:?}");
    }
    assert!(watch.latency_p99_us > 0.0, "{watch:?}");

    let summary = report::summary_section(&r, "docs/bench.png");
    assert!(summary.contains("get_opt") && summary.contains("hodor-bench/README.md"));
    let full = report::bench_readme_section(&r, "../docs/bench.png");
    assert!(full.contains("ratio get_opt_miss_vs_get_miss"));

    let md = report::markdown(&r);
    let lines: Vec<&str> = md.lines().collect();
    let ratios = &lines[lines.len() - r.ratios.len()..];
    assert_eq!(r.ratios.len(), 33);
    let names: Vec<&str> = r.ratios.iter().map(|x| x.name).collect();
    for name in [
        "get_opt_miss_vs_get_miss",
        "counting_cost_of_get",
        "redis_set_vs_plain_px",
        "watch_set_unwatched_vs_before",
        "watch_set_one_watcher_vs_none",
        "watch_event_latency_p99_us",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(!names.contains(&"metrics_counting_cost_of_get"));
    if r.redis.is_some() {
        assert!(
            r.ratios.iter().all(|x| x.value.is_some()),
            "every target is measured: {:?}",
            r.ratios
        );
    }
    let p = r.persist.as_ref().expect("the persist phase ran");
    for s in [
        &p.sets_memory,
        &p.sets_interval,
        &p.always_one,
        &p.always_many,
        &p.set_seconds,
        &p.recover_log_seconds,
        &p.recover_snapshot_seconds,
        &p.get_raw,
        &p.get_compressed,
        &p.get_read_raw,
        &p.get_read_compressed,
        &p.copies,
    ] {
        assert!(s.min > 0.0, "{p:?}");
    }
    assert!(p.json_bytes_compressed < p.json_bytes_raw, "{p:?}");
    assert!(ratios.iter().all(|l| l.starts_with("ratio ")), "{ratios:?}");
    assert!(
        ratios
            .iter()
            .all(|l| l.ends_with(" ok") || l.ends_with(" MISS") || l.ends_with(" n/a")),
        "{ratios:?}"
    );

    let dir = std::env::temp_dir().join(format!("hodor-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("bench.png");
    chart::draw(&r, &png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    serde_json::to_string(&r).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
