//! Damage and failure: torn tails cut at every byte, flipped bits, a failure injected at
//! every file operation of a snapshot, a failed fsync. Stores here are opened without
//! their background threads, so every snapshot happens exactly where a test takes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hodor_core::Applied;
use hodor_core::clock::{Clock, ManualClock};
use hodor_core::driver::DriverError;

use super::fs::{Faults, Fs, Op};
use super::log::segment_path;
use super::snapshot::snapshot_path;
use crate::config::{CompressionConfig, Fsync, MemoryConfig, PersistConfig, Recovery};
use crate::store::Store;

type State = BTreeMap<String, Vec<u8>>;
type Step<'a> = Box<dyn Fn(&Store) + 'a>;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("hodor-persist-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Dir(d)
    }

    fn reset(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
        std::fs::create_dir_all(&self.0).unwrap();
    }

    fn names(&self, suffix: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(suffix))
            .collect();
        v.sort();
        v
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &Path, recovery: Recovery) -> MemoryConfig {
    MemoryConfig::default()
        .persist(
            PersistConfig::new(dir)
                .fsync(Fsync::Always)
                .recovery(recovery)
                .snapshot_log_bytes(1 << 30),
        )
        .compression(CompressionConfig::lz4(32))
}

fn open_with(
    dir: &Path,
    recovery: Recovery,
    clock: &ManualClock,
    fs: Fs,
) -> Result<Store, DriverError> {
    Store::open_with(
        "unit",
        config(dir, recovery),
        Clock::from(clock.clone()),
        fs,
    )
}

fn open(dir: &Path, clock: &ManualClock) -> Store {
    open_with(dir, Recovery::Strict, clock, Fs::default()).unwrap()
}

fn state(s: &Store) -> State {
    s.list("")
        .into_iter()
        .map(|k| {
            let v = s.get_decoded(&k).unwrap().unwrap().to_vec();
            (k, v)
        })
        .collect()
}

fn log_len(dir: &Path, segment: u64) -> u64 {
    std::fs::metadata(segment_path(dir, segment)).map_or(0, |m| m.len())
}

/// A sequence of writes of every kind; returns the state and log length after each.
fn write_history(s: &Store, dir: &Path) -> Vec<(State, u64)> {
    let b = |v: &str| Bytes::from(v.to_owned());
    let big = "compressible ".repeat(20);
    let mut history = vec![(state(s), log_len(dir, 1))];
    let steps: Vec<Step<'_>> = vec![
        Box::new(|s| s.set("a", b("1"), None).unwrap()),
        Box::new(move |s| s.set("big", Bytes::from(big.clone()), None).unwrap()),
        Box::new(|s| s.set("t", b("ttl"), Some(Duration::from_secs(60))).unwrap()),
        Box::new(|s| {
            s.set_many(&[("m/1", b("x")), ("m/2", b("y")), ("a", b("2"))], None)
                .unwrap()
        }),
        Box::new(|s| assert!(s.delete("m/1").unwrap())),
        Box::new(|s| assert_eq!(s.delete_many(&["m/2", "nothing"]).unwrap(), 1)),
        Box::new(|s| s.set("z", b("last"), None).unwrap()),
    ];
    for step in steps {
        step(s);
        history.push((state(s), log_len(dir, 1)));
    }
    history
}

/// A closed store's whole log after [`write_history`]: the history and the log's bytes.
fn recorded(dir: &Dir, clock: &ManualClock) -> (Vec<(State, u64)>, Vec<u8>) {
    dir.reset();
    let s = open(&dir.0, clock);
    let history = write_history(&s, &dir.0);
    s.close_persist().unwrap();
    drop(s);
    let full = std::fs::read(segment_path(&dir.0, 1)).unwrap();
    assert_eq!(full.len() as u64, history.last().unwrap().1);
    (history, full)
}

#[test]
fn a_log_cut_at_any_byte_of_its_last_records_recovers_the_last_whole_record() {
    let dir = Dir::new("torn");
    let clock = ManualClock::new();
    let (history, full) = recorded(&dir, &clock);
    // Every byte of the last four records (a batch among them), and the segment header.
    let from = history[history.len() - 5].1;
    let cuts = (0..=super::format::SEGMENT_HEADER_LEN).chain(from..=full.len() as u64);
    let mut checked = 0;
    for cut in cuts {
        dir.reset();
        std::fs::write(segment_path(&dir.0, 1), &full[..cut as usize]).unwrap();
        let s = open(&dir.0, &clock);
        let (expected, len) = history
            .iter()
            .rev()
            .find(|(_, len)| *len <= cut)
            .cloned()
            .unwrap_or_default();
        assert_eq!(state(&s), expected, "cut at {cut}");
        let len = if cut < super::format::SEGMENT_HEADER_LEN {
            0
        } else {
            len
        };
        let after = log_len(&dir.0, 1);
        assert!(
            after == len || (len == 0 && after == super::format::SEGMENT_HEADER_LEN),
            "cut at {cut}: the tail is cut at the last good record ({len}), the file is {after}"
        );
        // The log goes on after the cut, and what is appended survives.
        s.set("after", Bytes::from_static(b"cut"), None).unwrap();
        s.close_persist().unwrap();
        drop(s);
        let s = open(&dir.0, &clock);
        let mut with_after = expected.clone();
        with_after.insert("after".into(), b"cut".to_vec());
        assert_eq!(state(&s), with_after, "cut at {cut}, reopened");
        s.close_persist().unwrap();
        checked += 1;
    }
    assert!(checked > 100, "{checked} cuts checked");
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_flipped_bit_is_an_error_unless_it_is_in_the_last_record_or_recovery_is_point_in_time() {
    let dir = Dir::new("flip");
    let clock = ManualClock::new();
    let (history, full) = recorded(&dir, &clock);
    let mut rng = Rng(0x5eed);
    for _ in 0..300 {
        let at = rng.below(full.len() as u64);
        let bit = rng.below(8);
        let mut bad = full.clone();
        bad[at as usize] ^= 1 << bit;
        // The record the flip lands in, and the state before it.
        // Record 0 is the segment header.
        let record = history.iter().position(|(_, len)| *len > at).unwrap();
        let (before, record_start) = match record {
            0 => (State::new(), 0),
            n => history[n - 1].clone(),
        };
        let in_last = record == history.len() - 1;
        for mode in [Recovery::Strict, Recovery::PointInTime] {
            dir.reset();
            std::fs::write(segment_path(&dir.0, 1), &bad).unwrap();
            let opened = open_with(&dir.0, mode, &clock, Fs::default());
            match opened {
                Ok(s) if in_last || mode == Recovery::PointInTime => {
                    assert_eq!(state(&s), before, "bit {bit} of byte {at} ({mode:?})");
                    if !in_last {
                        assert_eq!(dir.names(".corrupt").len(), 1, "the damage is kept aside");
                    }
                    s.close_persist().unwrap();
                }
                Ok(_) => panic!("bit {bit} of byte {at}: a corrupt middle record was skipped"),
                Err(e) => {
                    assert!(!in_last && mode == Recovery::Strict, "byte {at}: {e}");
                    let text = e.to_string();
                    assert!(
                        text.contains("log-00000000000000000001.hlog")
                            && text.contains(&format!("at byte {record_start}:")),
                        "byte {at}: {text}"
                    );
                }
            }
        }
    }
}

#[test]
fn any_damage_in_a_snapshot_is_an_error() {
    let dir = Dir::new("snapflip");
    dir.reset();
    let clock = ManualClock::new();
    let s = open(&dir.0, &clock);
    write_history(&s, &dir.0);
    assert!(s.snapshot().unwrap());
    let expected = state(&s);
    s.close_persist().unwrap();
    drop(s);
    let path = snapshot_path(&dir.0, 2);
    let full = std::fs::read(&path).unwrap();
    let s = open(&dir.0, &clock);
    assert_eq!(state(&s), expected);
    s.close_persist().unwrap();
    drop(s);
    for cut in [full.len() - 1, full.len() / 2, 10] {
        std::fs::write(&path, &full[..cut]).unwrap();
        for mode in [Recovery::Strict, Recovery::PointInTime] {
            let Err(e) = open_with(&dir.0, mode, &clock, Fs::default()) else {
                panic!("a cut snapshot (at {cut}) was accepted");
            };
            assert!(e.to_string().contains("snapshot-"), "{e}");
        }
    }
    let mut rng = Rng(77);
    for _ in 0..50 {
        let mut bad = full.clone();
        let at = rng.below(full.len() as u64) as usize;
        bad[at] ^= 1 << rng.below(8);
        std::fs::write(&path, &bad).unwrap();
        assert!(
            open_with(&dir.0, Recovery::PointInTime, &clock, Fs::default()).is_err(),
            "a flip at byte {at} of the snapshot went unnoticed"
        );
    }
}

/// A fresh store on a file system that fails where told, holding [`write_history`].
fn faulty(dir: &Dir, clock: &ManualClock) -> (Store, Arc<Faults>) {
    dir.reset();
    let faults = Arc::new(Faults::default());
    let fs = Fs::with_faults(faults.clone());
    let s = open_with(&dir.0, Recovery::Strict, clock, fs).unwrap();
    write_history(&s, &dir.0);
    (s, faults)
}

#[test]
fn a_failure_at_any_step_of_a_snapshot_loses_nothing() {
    let dir = Dir::new("snapfault");
    let clock = ManualClock::new();
    // Learn the steps of a snapshot.
    let (s, faults) = faulty(&dir, &clock);
    let before = faults.journal().len();
    assert!(s.snapshot().unwrap());
    let steps: Vec<(Op, PathBuf)> = faults.journal()[before..].to_vec();
    s.close_persist().unwrap();
    drop(s);
    let kinds: Vec<Op> = steps.iter().map(|(op, _)| *op).collect();
    for op in [
        Op::Create,
        Op::Write,
        Op::Sync,
        Op::SyncDir,
        Op::Rename,
        Op::Remove,
    ] {
        assert!(
            kinds.contains(&op),
            "a snapshot has a {op:?} step: {kinds:?}"
        );
    }

    for (step, (op, path)) in steps.iter().enumerate() {
        let what = format!("failure at step {step}, {op:?} {}", path.display());
        let (s, faults) = faulty(&dir, &clock);
        let expected = state(&s);
        faults.fail_at(faults.journal().len() + step);
        let outcome = s.snapshot();
        faults.heal();
        assert_eq!(state(&s), expected, "{what}: memory is untouched");
        // With `fsync = always` every write was synced before the snapshot began, so no
        // step of it writes or syncs the log: no failure can stop writes.
        assert!(!s.persist_failed(), "{what}: outcome {outcome:?}");
        let mut expected = expected;
        s.set("later", Bytes::from_static(b"v"), None).unwrap();
        expected.insert("later".into(), b"v".to_vec());
        // A crash now: nothing more is written (always mode synced every acknowledged write).
        let _ = s.close_persist();
        drop(s);
        let s = open(&dir.0, &clock);
        assert_eq!(state(&s), expected, "{what}: recovered");
        assert!(
            dir.names(".tmp").is_empty(),
            "{what}: a temporary file was left"
        );
        // And the next snapshot works and replaces whatever the failed one left.
        assert!(s.snapshot().unwrap(), "{what}");
        s.close_persist().unwrap();
        drop(s);
        let s = open(&dir.0, &clock);
        assert_eq!(state(&s), expected, "{what}: after the next snapshot");
        assert_eq!(dir.names(".hsnap").len(), 1, "{what}: {:?}", dir.names(""));
        s.close_persist().unwrap();
    }
}

#[test]
fn a_failed_fsync_makes_the_store_read_only_and_is_never_retried() {
    let dir = Dir::new("fsyncgate");
    dir.reset();
    let clock = ManualClock::new();
    let faults = Arc::new(Faults::default());
    let s = open_with(
        &dir.0,
        Recovery::Strict,
        &clock,
        Fs::with_faults(faults.clone()),
    )
    .unwrap();
    s.set("acked", Bytes::from_static(b"1"), None).unwrap();
    faults.fail_all(Op::Sync);
    let e = s.set("failed", Bytes::from_static(b"2"), None).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("read-only") && text.contains("fsync"),
        "{text}"
    );
    // The write took effect in memory before its sync failed: it may or may not be on
    // disk. The writes refused after it changed nothing.
    let applied = |e: &DriverError| match e {
        DriverError::Backend { applied, .. } => *applied,
        other => panic!("not a backend failure: {other:?}"),
    };
    assert_eq!(applied(&e), Applied::Unknown);
    assert_eq!(
        s.get_decoded("failed").unwrap().unwrap(),
        "2",
        "readers see it"
    );
    faults.heal();
    let syncs = |f: &Faults| f.journal().iter().filter(|(op, _)| *op == Op::Sync).count();
    let before = syncs(&faults);
    for attempt in [
        s.set("again", Bytes::new(), None).map(drop),
        s.delete("acked").map(drop),
        s.set_many(&[("x", Bytes::new())], None),
        s.delete_many(&["acked"]).map(drop),
    ] {
        let e = attempt.unwrap_err();
        assert!(e.to_string().contains("read-only"));
        assert_eq!(applied(&e), Applied::No, "{e}");
    }
    assert_eq!(s.get_decoded("acked").unwrap().unwrap(), "1", "reads go on");
    assert!(s.close_persist().is_err(), "close reports the failure");
    assert_eq!(
        syncs(&faults),
        before,
        "nothing was synced after the failure"
    );
    drop(s);
    let s = open(&dir.0, &clock);
    assert_eq!(s.get_decoded("acked").unwrap().unwrap(), "1");
    s.close_persist().unwrap();
}

#[test]
fn a_batch_split_into_parts_is_applied_whole_or_not_at_all() {
    let dir = Dir::new("parts");
    dir.reset();
    let clock = ManualClock::new();
    let s = open(&dir.0, &clock);
    s.set("before", Bytes::from_static(b"v"), None).unwrap();
    let len_before = log_len(&dir.0, 1);
    // Incompressible values, about 20 MiB: more than one part.
    let mut rng = Rng(3);
    let entries: Vec<(String, Bytes)> = (0..20)
        .map(|i| {
            let v: Vec<u8> = (0..1 << 20).map(|_| rng.below(256) as u8).collect();
            (format!("big/{i:02}"), Bytes::from(v))
        })
        .collect();
    let refs: Vec<(&str, Bytes)> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    s.set_many(&refs, None).unwrap();
    s.close_persist().unwrap();
    drop(s);
    let full = std::fs::read(segment_path(&dir.0, 1)).unwrap();
    for cut in [
        len_before + 1,
        len_before + (17 << 20),
        full.len() as u64 - 1,
    ] {
        dir.reset();
        std::fs::write(segment_path(&dir.0, 1), &full[..cut as usize]).unwrap();
        let s = open(&dir.0, &clock);
        assert_eq!(
            s.list(""),
            ["before"],
            "cut at {cut}: no part of the batch applies"
        );
        assert_eq!(
            log_len(&dir.0, 1),
            len_before,
            "cut back to the batch's start"
        );
        s.close_persist().unwrap();
    }
    dir.reset();
    std::fs::write(segment_path(&dir.0, 1), &full).unwrap();
    let s = open(&dir.0, &clock);
    assert_eq!(s.list("").len(), 21);
    assert_eq!(s.get_decoded("big/07").unwrap().unwrap(), entries[7].1);
    s.close_persist().unwrap();
}

#[test]
fn missing_segments_are_an_error() {
    let dir = Dir::new("gap");
    dir.reset();
    let clock = ManualClock::new();
    let s = open(&dir.0, &clock);
    s.set("a", Bytes::from_static(b"1"), None).unwrap();
    s.close_persist().unwrap();
    drop(s);
    std::fs::rename(segment_path(&dir.0, 1), segment_path(&dir.0, 2)).unwrap();
    let Err(e) = open_with(&dir.0, Recovery::Strict, &clock, Fs::default()) else {
        panic!("a log without its first segment was accepted");
    };
    assert!(e.to_string().contains("segment 1 is missing"), "{e}");
}

#[test]
fn a_snapshot_holding_a_key_twice_keeps_one_entry_the_last() {
    use super::format::{self, Kind};
    use crate::codec::Codec;
    let dir = Dir::new("dupsnap");
    dir.reset();
    let salt = 7;
    let seed = format::seed(salt);
    let mut bytes = Vec::new();
    let header = format::snapshot_header_payload(1, 0, salt);
    format::append(&mut bytes, 0, Kind::SnapshotHeader, 0, &[&header]);
    for value in [b"first".as_slice(), b"second", b"third"] {
        let key: &[u8] = if value == b"second" {
            b"other"
        } else {
            b"twice"
        };
        let meta = format::put_meta(Codec::Raw, 1, 0, key.len());
        format::append(&mut bytes, seed, Kind::Put, 0, &[&meta, key, value]);
    }
    format::append(
        &mut bytes,
        seed,
        Kind::SnapshotEnd,
        0,
        &[&3u64.to_le_bytes()],
    );
    std::fs::write(snapshot_path(&dir.0, 1), bytes).unwrap();
    let clock = ManualClock::new();
    let s = open(&dir.0, &clock);
    assert_eq!(s.list(""), ["other", "twice"]);
    assert_eq!(s.get_decoded("twice").unwrap().unwrap(), "third");
    assert_eq!(s.gauges().entries, Some(2));
    assert_eq!(
        s.gauges().bytes,
        Some(crate::shard::charge(5, 5, false) + crate::shard::charge(5, 6, false))
    );
    s.close_persist().unwrap();
}

#[test]
fn a_torn_tail_before_a_segment_that_holds_no_record_yet_is_still_a_torn_tail() {
    // A process killed while a rotation writes the old segment's last records: the new
    // segment exists (its header synced first), the old one ends in a torn record.
    use super::format::{self, Kind};
    let dir = Dir::new("tornrotation");
    let clock = ManualClock::new();
    let (history, full) = recorded(&dir, &clock);
    let (before, last_start) = history[history.len() - 2].clone();
    let cut = last_start as usize + 3;
    std::fs::write(segment_path(&dir.0, 1), &full[..cut]).unwrap();
    let mut header = Vec::new();
    let payload = format::segment_header_payload(2, 99);
    format::append(&mut header, 0, Kind::SegmentHeader, 0, &[&payload]);
    std::fs::write(segment_path(&dir.0, 2), &header).unwrap();
    let s = open(&dir.0, &clock);
    assert_eq!(state(&s), before);
    assert_eq!(log_len(&dir.0, 1), last_start, "the torn record is cut");
    s.set("after", Bytes::from_static(b"v"), None).unwrap();
    s.close_persist().unwrap();
    drop(s);
    let s = open(&dir.0, &clock);
    let mut expected = before;
    expected.insert("after".into(), b"v".to_vec());
    assert_eq!(state(&s), expected);
    s.close_persist().unwrap();
    // A torn record before a segment that does hold records is damage.
    drop(s);
    let full2 = std::fs::read(segment_path(&dir.0, 1)).unwrap();
    std::fs::write(segment_path(&dir.0, 1), &full2[..full2.len() - 3]).unwrap();
    assert!(log_len(&dir.0, 2) > format::SEGMENT_HEADER_LEN);
    let Err(e) = open_with(&dir.0, Recovery::Strict, &clock, Fs::default()) else {
        panic!("a torn record in the middle of the log was taken for its end");
    };
    assert!(e.to_string().contains("later segments follow"), "{e}");
}
