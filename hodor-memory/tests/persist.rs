//! Persistence through the public API: data outlives the last close, recovery restores
//! values, TTLs, times and codecs, a directory has one user, and snapshots replace the log.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hodor_core::clock::ManualClock;
use hodor_core::{Contract, Error, Metadata};
use hodor_memory::{CompressionConfig, Fsync, MemoryConfig, PersistConfig, PersistError};
use serde_json::json;

/// A fresh directory under the target directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("persist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn files(&self, suffix: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(suffix))
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What of an entry's metadata a restart keeps: all but the version (a persistent store's
/// versions carry the epoch of its opening).
fn restored(m: &Metadata) -> (u64, SystemTime, Option<SystemTime>) {
    (m.size, m.modified, m.expires_at)
}

fn config(dir: &TempDir, fsync: Fsync) -> MemoryConfig {
    MemoryConfig::default().persist(PersistConfig::new(&dir.0).fsync(fsync))
}

fn open(name: &str, config: &MemoryConfig, clock: &ManualClock) -> Contract {
    hodor_memory::open_with_clock(name, config.clone(), clock.clone().into()).unwrap()
}

#[test]
fn data_outlives_the_last_close_in_every_fsync_mode() {
    for fsync in [Fsync::Always, Fsync::Interval, Fsync::Never] {
        let dir = TempDir::new(&format!("modes-{fsync:?}"));
        let clock = ManualClock::new();
        let cfg = config(&dir, fsync);
        let c = open("modes", &cfg, &clock);
        assert!(c.capabilities().persistent);
        c.set("plain", "v1", None).unwrap();
        c.set("ttl", "v2", Some(Duration::from_secs(60))).unwrap();
        c.set("gone", "x", None).unwrap();
        c.delete("gone").unwrap();
        c.set_many([("b/1", "1"), ("b/2", "2"), ("b/3", "3")], None)
            .unwrap();
        c.delete_many(&["b/2", "missing"]).unwrap();
        let before = (c.stat("plain").unwrap(), c.stat("ttl").unwrap());
        clock.advance(Duration::from_secs(5));
        c.close().unwrap();

        let c = open("modes", &cfg, &clock);
        assert_eq!(
            c.list("").unwrap(),
            ["b/1", "b/3", "plain", "ttl"],
            "{fsync:?}"
        );
        assert_eq!(c.get("plain").unwrap(), "v1");
        assert_eq!(c.get("ttl").unwrap(), "v2");
        assert_eq!(
            (
                restored(&c.stat("plain").unwrap()),
                restored(&c.stat("ttl").unwrap())
            ),
            (restored(&before.0), restored(&before.1)),
            "modified and expires_at are restored exactly"
        );
        assert_ne!(
            c.stat("plain").unwrap().version,
            before.0.version,
            "versions do not survive a restart"
        );
        let m = c.metrics();
        assert_eq!(m.recovery_records, Some(8), "{m:?}");
        assert!(m.recovery_micros.is_some() && m.log_bytes.unwrap() > 0);
        c.close().unwrap();
    }
}

#[test]
fn dropping_the_last_contract_keeps_the_data_too() {
    let dir = TempDir::new("drop");
    let cfg = config(&dir, Fsync::Never);
    let json_cfg = serde_json::to_value(&cfg).unwrap();
    let c = Contract::new("memory", "dropped", Some(json_cfg.clone())).unwrap();
    c.set("k", "v", None).unwrap();
    drop(c);
    let c = Contract::new("memory", "dropped", Some(json_cfg)).unwrap();
    assert_eq!(c.get("k").unwrap(), "v");
}

#[test]
fn entries_that_expired_while_closed_are_not_loaded() {
    let dir = TempDir::new("expired");
    let clock = ManualClock::new();
    let cfg = config(&dir, Fsync::Always);
    let c = open("expired", &cfg, &clock);
    c.set("short", "v", Some(Duration::from_secs(1))).unwrap();
    c.set("long", "v", Some(Duration::from_secs(100))).unwrap();
    c.close().unwrap();
    clock.advance(Duration::from_secs(1));
    let c = open("expired", &cfg, &clock);
    assert_eq!(c.list("").unwrap(), ["long"]);
    assert_eq!(
        c.metrics().entries,
        Some(1),
        "the expired entry is not resident"
    );
    c.close().unwrap();
}

#[test]
fn a_directory_has_one_user_at_a_time() {
    let dir = TempDir::new("locked");
    let clock = ManualClock::new();
    let cfg = config(&dir, Fsync::Never);
    let a = open("first", &cfg, &clock);
    let err =
        hodor_memory::open_with_clock("second", cfg.clone(), clock.clone().into()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(
        text.contains("persist-locked-") && text.contains("\"first\""),
        "{text}"
    );
    let source = std::error::Error::source(&err).unwrap();
    assert!(matches!(
        source.downcast_ref::<PersistError>(),
        Some(PersistError::Locked { .. })
    ));
    // The same name and config joins the open store instead.
    let joined = open("first", &cfg, &clock);
    a.set("k", "v", None).unwrap();
    assert_eq!(joined.get("k").unwrap(), "v");
    a.close().unwrap();
    joined.close().unwrap();
    // Once the last contract is closed, another store may take the directory, and finds
    // the data.
    let b = open("second", &cfg, &clock);
    assert_eq!(b.get("k").unwrap(), "v");
    b.close().unwrap();
}

#[test]
fn snapshots_replace_the_log_and_recovery_uses_both() {
    let dir = TempDir::new("snapshots");
    let clock = ManualClock::new();
    let cfg = MemoryConfig::default().persist(
        PersistConfig::new(&dir.0)
            .fsync(Fsync::Never)
            .snapshot_log_bytes(64 * 1024),
    );
    let c = open("snap", &cfg, &clock);
    let value = vec![b'x'; 200];
    for round in 0..20u8 {
        for i in 0..100 {
            c.set(
                &format!("k{i:03}"),
                [value.as_slice(), &[round]].concat(),
                None,
            )
            .unwrap();
        }
    }
    // The snapshot thread runs in the background; wait until one has been taken.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.metrics().snapshot_age_ms.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot was taken"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..50 {
        c.delete(&format!("k{i:03}")).unwrap();
    }
    c.close().unwrap();
    let snapshots = dir.files(".hsnap");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let logs = dir.files(".hlog");
    let first_log = logs.first().unwrap();
    assert!(
        first_log.as_str()
            >= snapshots[0]
                .replace("snapshot-", "log-")
                .replace(".hsnap", ".hlog")
                .as_str(),
        "segments before the snapshot are removed: {logs:?} {snapshots:?}"
    );
    let c = open("snap", &cfg, &clock);
    let keys = c.list("").unwrap();
    assert_eq!(keys.len(), 50);
    assert_eq!(keys[0], "k050");
    assert_eq!(
        c.get("k099").unwrap(),
        [value.as_slice(), &[19]].concat(),
        "the last round wins"
    );
    assert!(c.metrics().snapshot_age_ms.is_some());
    c.close().unwrap();
}

#[test]
fn compressed_values_persist_compressed_and_read_back_whole() {
    let dir = TempDir::new("compressed");
    let clock = ManualClock::new();
    let cfg = config(&dir, Fsync::Always).compression(CompressionConfig::lz4(64));
    let c = open("compressed", &cfg, &clock);
    let page = "<li>item</li>".repeat(500);
    c.set("page", page.clone(), None).unwrap();
    c.set("small", "tiny", None).unwrap();
    let bytes = c.metrics().bytes.unwrap();
    assert!(bytes < 1000, "{bytes} bytes charged for a 6.5 KB page");
    c.close().unwrap();
    let log: u64 = dir
        .files(".hlog")
        .iter()
        .map(|f| std::fs::metadata(dir.0.join(f)).unwrap().len())
        .sum();
    assert!(log < 1500, "the log holds the compressed form: {log} bytes");

    // Reopened without compression, the store still reads the compressed values.
    let plain = config(&dir, Fsync::Always);
    let c = open("compressed", &plain, &clock);
    assert_eq!(c.get("page").unwrap(), page);
    assert_eq!(c.stat("page").unwrap().size, page.len() as u64);
    assert_eq!(
        c.get_many(&["page", "small"]).unwrap(),
        [Some(page.clone().into()), Some("tiny".into())]
    );
    c.close().unwrap();
}

#[test]
fn recovery_respects_a_lowered_limit() {
    let dir = TempDir::new("limits");
    let clock = ManualClock::new();
    let c = open("limited", &config(&dir, Fsync::Never), &clock);
    for i in 0..100 {
        c.set(&format!("k{i:03}"), "v", None).unwrap();
    }
    c.close().unwrap();
    let small = config(&dir, Fsync::Never).max_entries(10);
    let c = open("limited", &small, &clock);
    assert_eq!(c.list("").unwrap().len(), 10);
    c.set("new", "v", None).unwrap();
    let kept = c.list("").unwrap();
    c.close().unwrap();
    // What the limit evicted at recovery does not come back.
    let c = open("limited", &small, &clock);
    assert_eq!(c.list("").unwrap(), kept);
    c.close().unwrap();
}

#[test]
fn config_errors_name_the_persist_fields() {
    for (config, field) in [
        (json!({"persist": {}}), "persist"),
        (
            json!({"persist": {"dir": "x", "fsync": "sometimes"}}),
            "persist.fsync",
        ),
        (
            json!({"persist": {"dir": "x", "interval_ms": 0}}),
            "persist.interval_ms",
        ),
        (
            json!({"compression": {"algorithm": "zstd"}}),
            "compression.algorithm",
        ),
    ] {
        match Contract::new("memory", "bad-config", Some(config.clone())) {
            Err(Error::InvalidConfig { field: Some(f), .. }) => {
                assert!(f.starts_with(field), "{config}: field {f}")
            }
            other => panic!("{config}: {other:?}"),
        }
    }
}

/// Present for exactly `left` more: there 1 ms before it, gone at it.
fn lives_exactly(c: &Contract, clock: &ManualClock, key: &str, left: Duration) {
    clock.advance(left - Duration::from_millis(1));
    assert!(c.exists(key).unwrap(), "{key} expired before its deadline");
    clock.advance(Duration::from_millis(1));
    assert!(!c.exists(key).unwrap(), "{key} outlived its deadline");
}

#[test]
fn a_wall_clock_step_while_the_store_is_open_neither_extends_nor_shortens_a_ttl_across_a_restart() {
    // TTLs run on the monotonic clock while the store is open. A record carries its
    // deadline as wall-clock time: the remaining time counted from the wall clock when it
    // is logged, so a step before the write (here, the store's whole life so far) moves
    // nothing. Counted from the wall clock of the store's opening instead, a step back
    // added its length to the TTL after the restart, and a step forward took it off.
    for step in [-3600i64, 3600] {
        let dir = TempDir::new(&format!("step-open-{step}"));
        let clock = ManualClock::new();
        let cfg = config(&dir, Fsync::Always);
        let c = open("step-open", &cfg, &clock);
        let t0 = clock.now();
        let stepped = if step < 0 {
            t0 - Duration::from_secs(step.unsigned_abs())
        } else {
            t0 + Duration::from_secs(step.unsigned_abs())
        };
        clock.set(stepped);
        c.set("k", "v", Some(Duration::from_secs(10))).unwrap();
        clock.advance(Duration::from_secs(3));
        c.close().unwrap();
        let c = open("step-open", &cfg, &clock);
        lives_exactly(&c, &clock, "k", Duration::from_secs(7));
        c.close().unwrap();
    }
}

#[test]
fn persisted_deadlines_are_wall_clock_so_a_step_between_runs_moves_them() {
    // While the store is closed only the wall clock tells how much time passed: an entry
    // lives until the wall clock reads the `expires_at` it was written with. A step forward
    // between runs expires what it passes; a step back leaves the entry its deadline, which
    // is then further away.
    let dir = TempDir::new("step-closed");
    let clock = ManualClock::new();
    let cfg = config(&dir, Fsync::Always);
    let c = open("step-closed", &cfg, &clock);
    c.set("short", "v", Some(Duration::from_secs(60))).unwrap();
    c.set("long", "v", Some(Duration::from_secs(7200))).unwrap();
    let before = c.stat("long").unwrap();
    c.close().unwrap();

    clock.set(clock.now() + Duration::from_secs(3600));
    let c = open("step-closed", &cfg, &clock);
    assert_eq!(
        c.list("").unwrap(),
        ["long"],
        "the step forward expired short"
    );
    assert_eq!(
        restored(&c.stat("long").unwrap()),
        restored(&before),
        "the deadline is absolute"
    );
    c.close().unwrap();

    clock.set(clock.now() - Duration::from_secs(2 * 3600));
    let c = open("step-closed", &cfg, &clock);
    assert_eq!(restored(&c.stat("long").unwrap()), restored(&before));
    // From the wall clock at this open, the deadline is 3 hours away (the TTL's 2 hours,
    // plus the hour the wall clock went back beyond where it started).
    lives_exactly(&c, &clock, "long", Duration::from_secs(3 * 3600));
    c.close().unwrap();
}

#[test]
fn recovered_times_far_in_the_past_stay_in_the_past() {
    // A persistent store's timeline reaches about 73 years before its opening: an older
    // `modified` is reported as that old, and never as later than it was.
    let dir = TempDir::new("old-times");
    let clock = ManualClock::new();
    let cfg = config(&dir, Fsync::Always);
    let c = open("old-times", &cfg, &clock);
    c.set("old", "v", None).unwrap();
    let written = c.stat("old").unwrap().modified;
    c.close().unwrap();
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    clock.set(clock.now() + century);
    let c = open("old-times", &cfg, &clock);
    let meta = c.stat("old").unwrap();
    assert!(meta.modified <= written + century, "{meta:?}");
    assert!(meta.modified >= written, "{meta:?}");
    assert!(meta.modified <= clock.now() - Duration::from_secs(72 * 365 * 24 * 3600));
    // The store's clock runs on from there.
    c.set("new", "v", Some(Duration::from_secs(1))).unwrap();
    assert_eq!(c.stat("new").unwrap().modified, clock.now());
    lives_exactly(&c, &clock, "new", Duration::from_secs(1));
    c.close().unwrap();
}
