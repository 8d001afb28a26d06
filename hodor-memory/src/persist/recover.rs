//! Recovery at open: the latest snapshot, then the log segments after it, in order.
//!
//! - A record is read only after its length is checked against what is left of the file,
//!   so a corrupt length never makes recovery allocate more than the file holds.
//! - A bad record (short, checksum mismatch, nonsense payload) with no valid record after
//!   it in the last segment is a torn tail, left by a crash during an append: the segment
//!   is cut (and synced) at the end of the last good record, or before the first part of
//!   an unfinished batch, and recovery goes on.
//! - A bad record that valid ones follow, in any segment, or a bad record in a segment
//!   that later segments follow, is damage: with [`Recovery::Strict`] the open fails and
//!   names the file and offset; with [`Recovery::PointInTime`] the damaged segment is
//!   copied aside (`.corrupt`), cut there, the later segments are renamed aside, and the
//!   store opens with the state just before the damage. Nothing after a corrupt record is
//!   ever applied.
//! - A snapshot is written whole (temporary file, sync, rename), so any damage in one is an
//!   error in both modes.
//! - Entries whose deadline has passed are not loaded.
//!
//! Records are applied in log order. That is correct because the log holds the records
//! of each key in the order its writes took effect (they are appended under the key's
//! shard lock); records of different keys may be out of sequence-number order, which does
//! not matter since each record states a key's whole new state.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::PersistError;
use super::format::{self, HEADER_LEN, Header, Payload, PutRef};
use super::fs::Fs;
use super::log::{Start, segment_path};
use super::snapshot::snapshot_path;
use crate::config::Recovery;

/// A state change to apply to the store being recovered.
#[derive(Debug)]
pub(crate) enum Replay<'a> {
    /// The key now holds this value (stored form), modification time and deadline.
    Put(PutRef<'a>),
    /// The same, for an entry of the snapshot: the snapshot is loaded first, into an empty
    /// store, and holds each key once, so the key is new (unless the file is damaged).
    Load(PutRef<'a>),
    /// The key is gone.
    Remove(&'a str),
    /// Every key is gone.
    Clear,
    /// About this many entries are coming (from a snapshot): room can be made at once
    /// instead of growing step by step.
    Reserve(u64),
}

/// What recovery found, for the log to continue from.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) start: Start,
    /// Snapshot entries loaded plus log records replayed.
    pub(crate) records: u64,
    /// The snapshot loaded: its creation time (ns since the epoch) and size in bytes.
    pub(crate) snapshot: Option<(u64, u64)>,
}

/// Sequence numbers near the last good one: a candidate record far outside this window is
/// not taken for a valid record when deciding whether damage is a torn tail.
const SEQ_WINDOW: u64 = 1 << 40;

/// Read buffer for segments and snapshots.
const READ_BUFFER: usize = 1 << 20;

#[derive(Debug, Default)]
struct Listing {
    snapshots: Vec<u64>,
    segments: Vec<u64>,
    leftovers: Vec<PathBuf>,
}

fn number(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn list(dir: &Path) -> Result<Listing, PersistError> {
    let mut listing = Listing::default();
    let entries = std::fs::read_dir(dir).map_err(|e| PersistError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PersistError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = number(name, "log-", ".hlog") {
            listing.segments.push(n);
        } else if let Some(n) = number(name, "snapshot-", ".hsnap") {
            listing.snapshots.push(n);
        } else if name.ends_with(".tmp") {
            listing.leftovers.push(entry.path());
        }
    }
    listing.segments.sort_unstable();
    listing.snapshots.sort_unstable();
    Ok(listing)
}

/// A sequential reader of records.
struct Reader {
    file: BufReader<File>,
    path: PathBuf,
    len: u64,
    pos: u64,
    header: [u8; HEADER_LEN],
    payload: Vec<u8>,
}

enum Next {
    Record(Header),
    End,
    Bad(String),
}

impl Reader {
    fn open(path: &Path) -> Result<Reader, PersistError> {
        let file = File::open(path).map_err(|e| PersistError::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| PersistError::io("stat", path, e))?
            .len();
        Ok(Reader {
            file: BufReader::with_capacity(READ_BUFFER, file),
            path: path.to_owned(),
            len,
            pos: 0,
            header: [0; HEADER_LEN],
            payload: Vec::new(),
        })
    }

    /// The next record, its payload in `self.payload`. On `Bad`, `pos` stays at the start
    /// of the bad record.
    fn next(&mut self, seed: u32) -> Result<Next, PersistError> {
        let left = self.len - self.pos;
        if left == 0 {
            return Ok(Next::End);
        }
        if left < HEADER_LEN as u64 {
            return Ok(Next::Bad(format!("{left} bytes are too few for a record")));
        }
        self.file
            .read_exact(&mut self.header)
            .map_err(|e| PersistError::io("read", &self.path, e))?;
        let Some(header) = Header::parse(&self.header) else {
            self.rewind()?;
            return Ok(Next::Bad("unknown record kind".to_owned()));
        };
        let len = u64::from(header.len);
        if len > left - HEADER_LEN as u64 {
            self.rewind()?;
            return Ok(Next::Bad(format!(
                "a record claims {len} bytes, {} are left in the file",
                left - HEADER_LEN as u64
            )));
        }
        // The length is within the file, so this allocation is bounded by the file's size.
        self.payload.resize(len as usize, 0);
        self.file
            .read_exact(&mut self.payload)
            .map_err(|e| PersistError::io("read", &self.path, e))?;
        if !header.matches(seed, &self.header, &self.payload) {
            self.rewind()?;
            return Ok(Next::Bad("checksum mismatch".to_owned()));
        }
        self.pos += HEADER_LEN as u64 + len;
        Ok(Next::Record(header))
    }

    fn rewind(&mut self) -> Result<(), PersistError> {
        self.file
            .seek(SeekFrom::Start(self.pos))
            .map(drop)
            .map_err(|e| PersistError::io("seek", &self.path, e))
    }
}

/// Whether a valid record of this file starts anywhere after `from`.
fn valid_record_after(path: &Path, from: u64, seed: u32, seq: u64) -> Result<bool, PersistError> {
    let mut file = File::open(path).map_err(|e| PersistError::io("open", path, e))?;
    file.seek(SeekFrom::Start(from.saturating_add(1)))
        .map_err(|e| PersistError::io("seek", path, e))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest)
        .map_err(|e| PersistError::io("read", path, e))?;
    for at in 0..rest.len() {
        let Some(bytes) = rest.get(at..at + HEADER_LEN) else {
            break;
        };
        let Ok(bytes) = <[u8; HEADER_LEN]>::try_from(bytes) else {
            break;
        };
        let Some(header) = Header::parse(&bytes) else {
            continue;
        };
        if header.seq.abs_diff(seq) > SEQ_WINDOW {
            continue;
        }
        let body = at + HEADER_LEN;
        let Some(payload) = rest.get(body..body + header.len as usize) else {
            continue;
        };
        if header.matches(seed, &bytes, payload) && format::decode(header.kind, payload).is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Loads the snapshot `number`; returns its first segment, cut sequence number, creation
/// time, and the entries loaded.
fn load_snapshot(
    path: &Path,
    number: u64,
    now: u64,
    apply: &mut dyn FnMut(Replay<'_>),
) -> Result<(u64, u64, u64), PersistError> {
    let mut r = Reader::open(path)?;
    let corrupt = |r: &Reader, reason: String| PersistError::corrupt(path, r.pos, reason);
    let Next::Record(h) = r.next(0)? else {
        return Err(corrupt(&r, "no snapshot header".to_owned()));
    };
    let (first, created, salt) = match format::decode(h.kind, &r.payload) {
        Ok(Payload::SnapshotHeader {
            first_segment,
            created,
            salt,
        }) => (first_segment, created, salt),
        Ok(_) => return Err(corrupt(&r, "no snapshot header".to_owned())),
        Err(e) => return Err(corrupt(&r, e)),
    };
    if first != number {
        return Err(corrupt(
            &r,
            format!("the snapshot is named for segment {number} but starts at {first}"),
        ));
    }
    let cut = h.seq;
    let seed = format::seed(salt);
    if let Some(count) = snapshot_count(path, r.len, seed) {
        apply(Replay::Reserve(count));
    }
    let mut entries = 0u64;
    loop {
        let at = r.pos;
        let h = match r.next(seed)? {
            Next::Record(h) => h,
            Next::End => return Err(PersistError::corrupt(path, at, "the snapshot ends early")),
            Next::Bad(reason) => return Err(PersistError::corrupt(path, at, reason)),
        };
        match format::decode(h.kind, &r.payload) {
            Ok(Payload::Put(put)) => {
                entries += 1;
                if put.expires == 0 || now < put.expires {
                    apply(Replay::Load(put));
                }
            }
            Ok(Payload::SnapshotEnd { entries: count }) => {
                if count != entries {
                    return Err(PersistError::corrupt(
                        path,
                        at,
                        format!("the snapshot ends after {entries} entries but counts {count}"),
                    ));
                }
                if r.pos != r.len {
                    return Err(PersistError::corrupt(
                        path,
                        r.pos,
                        "data after the snapshot's end",
                    ));
                }
                return Ok((cut, created, entries));
            }
            Ok(other) => {
                return Err(PersistError::corrupt(
                    path,
                    at,
                    format!("a snapshot holds a {:?} record", kind_name(&other)),
                ));
            }
            Err(e) => return Err(PersistError::corrupt(path, at, e)),
        }
    }
}

/// The entry count from a snapshot's last record, read ahead so the store can make room
/// for all of them at once; `None` if it cannot be read (the full read then says why).
fn snapshot_count(path: &Path, len: u64, seed: u32) -> Option<u64> {
    const END_LEN: u64 = (HEADER_LEN + 8) as u64;
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::Start(len.checked_sub(END_LEN)?)).ok()?;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header).ok()?;
    let mut payload = [0u8; 8];
    file.read_exact(&mut payload).ok()?;
    let h = Header::parse(&header).filter(|h| h.matches(seed, &header, &payload))?;
    match format::decode(h.kind, &payload) {
        Ok(Payload::SnapshotEnd { entries }) => Some(entries),
        _ => None,
    }
}

fn kind_name(p: &Payload<'_>) -> &'static str {
    match p {
        Payload::SegmentHeader { .. } => "segment header",
        Payload::Put(_) => "put",
        Payload::Remove { .. } => "remove",
        Payload::Clear => "clear",
        Payload::Batch { .. } => "batch",
        Payload::SnapshotHeader { .. } => "snapshot header",
        Payload::SnapshotEnd { .. } => "snapshot end",
    }
}

/// How one segment's replay ended.
struct SegmentEnd {
    /// The segment's length once any torn tail is cut.
    len: u64,
    salt: u64,
    /// Stop here: the rest of the log was set aside (point-in-time recovery).
    stop: bool,
}

/// A bad record found while replaying a segment.
struct Damage<'a> {
    segment: u64,
    /// The segments after this one.
    later: &'a [u64],
    /// Where the bad record starts.
    at: u64,
    /// Where the segment is cut if the damage is a torn tail (or, with point-in-time
    /// recovery, in any case): the end of the last fully applied record.
    cut: u64,
    /// Whether a crash could have left this: false for a record whose checksum matched.
    may_be_torn: bool,
    seed: u32,
    reason: String,
}

struct Ctx<'a> {
    dir: &'a Path,
    fs: &'a Fs,
    mode: Recovery,
    now: u64,
    apply: &'a mut dyn FnMut(Replay<'_>),
    records: u64,
    max_seq: u64,
}

impl Ctx<'_> {
    fn apply_put(&mut self, put: PutRef<'_>) {
        if put.expires != 0 && put.expires <= self.now {
            // The put replaced whatever the key held, and is itself dead by now.
            (self.apply)(Replay::Remove(put.key));
        } else {
            (self.apply)(Replay::Put(put));
        }
    }

    fn apply(&mut self, payload: Payload<'_>) {
        match payload {
            Payload::Put(put) => self.apply_put(put),
            Payload::Remove { key, .. } => (self.apply)(Replay::Remove(key)),
            Payload::Clear => (self.apply)(Replay::Clear),
            _ => {}
        }
    }

    /// Handles damage: a torn tail is cut; anything else is an error, or with point-in-time
    /// recovery the end of the log. `Ok(true)`: stop replaying.
    fn damage(&mut self, d: Damage<'_>) -> Result<bool, PersistError> {
        let path = segment_path(self.dir, d.segment);
        // A rotation makes the new segment (its header synced) before it writes the last
        // records of the old one, so a crash can leave a torn tail before segments that
        // hold no record yet: still the end of the log.
        let is_last = d.later.iter().all(|&n| {
            std::fs::metadata(segment_path(self.dir, n))
                .is_ok_and(|m| m.len() <= format::SEGMENT_HEADER_LEN)
        });
        let torn =
            d.may_be_torn && is_last && !valid_record_after(&path, d.at, d.seed, self.max_seq)?;
        if torn {
            self.fs
                .truncate(&path, d.cut)
                .map_err(|e| PersistError::io("truncate", &path, e))?;
            return Ok(false);
        }
        let reason = if !d.may_be_torn {
            d.reason
        } else if is_last {
            format!("{}, and valid records follow it", d.reason)
        } else {
            format!("{}, in a segment that later segments follow", d.reason)
        };
        if self.mode == Recovery::Strict {
            return Err(PersistError::corrupt(&path, d.at, reason));
        }
        // Point-in-time: keep the damaged data beside the log (named for this recovery, so
        // an earlier one's is never overwritten), then cut it off.
        let aside = |p: &Path| {
            let mut name = p.as_os_str().to_owned();
            name.push(format!(".{}.corrupt", self.now));
            PathBuf::from(name)
        };
        std::fs::copy(&path, aside(&path)).map_err(|e| PersistError::io("copy", &path, e))?;
        self.fs
            .truncate(&path, d.cut)
            .map_err(|e| PersistError::io("truncate", &path, e))?;
        for &n in d.later {
            let p = segment_path(self.dir, n);
            self.fs
                .rename(&p, &aside(&p))
                .map_err(|e| PersistError::io("rename", &p, e))?;
        }
        self.fs
            .sync_dir(self.dir)
            .map_err(|e| PersistError::io("fsync directory", self.dir, e))?;
        Ok(true)
    }

    /// Ends a segment's replay at damage: where it is cut, and whether to stop.
    fn end_at(&mut self, damage: Damage<'_>, salt: u64) -> Result<SegmentEnd, PersistError> {
        let len = damage.cut;
        let stop = self.damage(damage)?;
        Ok(SegmentEnd { len, salt, stop })
    }

    fn replay_segment(&mut self, segment: u64, later: &[u64]) -> Result<SegmentEnd, PersistError> {
        let path = segment_path(self.dir, segment);
        let mut r = Reader::open(&path)?;
        let empty = SegmentEnd {
            len: 0,
            salt: 0,
            stop: false,
        };
        // The segment header, unsalted: it carries the salt.
        let header = match r.next(0)? {
            Next::End => return Ok(empty),
            Next::Record(h) => format::decode(h.kind, &r.payload),
            Next::Bad(reason) => Err(reason),
        };
        let salt = match header {
            Ok(Payload::SegmentHeader { segment: n, salt }) if n == segment => salt,
            Ok(Payload::SegmentHeader { segment: n, .. }) => {
                return Err(PersistError::corrupt(
                    &path,
                    0,
                    format!("the file is named for segment {segment} but holds segment {n}"),
                ));
            }
            Ok(_) => return Err(PersistError::corrupt(&path, 0, "no segment header")),
            Err(reason) => {
                // A crash right after the file was created leaves a torn header and nothing
                // else (the header is synced before any record is appended); a bad header
                // with more after it is damage.
                let stop = self.damage(Damage {
                    segment,
                    later,
                    at: 0,
                    cut: 0,
                    may_be_torn: r.len <= format::SEGMENT_HEADER_LEN,
                    seed: 0,
                    reason,
                })?;
                return Ok(SegmentEnd { stop, ..empty });
            }
        };
        let seed = format::seed(salt);
        // Ops of a batch whose `Batch` record is not read yet, and where its first part began.
        let mut pending: Vec<u8> = Vec::new();
        let mut batch_start: Option<u64> = None;
        let mut good_end = r.pos;
        loop {
            let at = r.pos;
            let bad = |reason: String, may_be_torn: bool| Damage {
                segment,
                later,
                at,
                cut: batch_start.unwrap_or(good_end),
                may_be_torn,
                seed,
                reason,
            };
            let h = match r.next(seed)? {
                Next::Record(h) => h,
                Next::End if batch_start.is_none() => {
                    return Ok(SegmentEnd {
                        len: r.len,
                        salt,
                        stop: false,
                    });
                }
                Next::End => return self.end_at(bad("a batch is cut off".to_owned(), true), salt),
                Next::Bad(reason) => return self.end_at(bad(reason, true), salt),
            };
            // The checksum matched, so anything wrong from here on was written that way: a
            // bug or a foreign file, never a torn write.
            let payload = match format::decode(h.kind, &r.payload) {
                Ok(Payload::Batch { last, ops }) => {
                    batch_start.get_or_insert(at);
                    pending.extend_from_slice(ops);
                    if last {
                        let bytes = std::mem::take(&mut pending);
                        for op in format::ops(&bytes) {
                            // Each part's ops were checked when it was decoded.
                            let Ok(op) = op else { break };
                            self.max_seq = self.max_seq.max(op.seq);
                            self.records += 1;
                            self.apply(op.payload);
                        }
                        batch_start = None;
                        good_end = r.pos;
                    }
                    continue;
                }
                Ok(_) if batch_start.is_some() => Err("a batch is interrupted".to_owned()),
                Ok(p @ (Payload::Put(_) | Payload::Remove { .. } | Payload::Clear)) => Ok(p),
                Ok(other) => Err(format!(
                    "a log segment holds a {} record",
                    kind_name(&other)
                )),
                Err(reason) => Err(reason),
            };
            match payload {
                Ok(p) => {
                    self.max_seq = self.max_seq.max(h.seq);
                    self.records += 1;
                    self.apply(p);
                    good_end = r.pos;
                }
                Err(reason) => return self.end_at(bad(reason, false), salt),
            }
        }
    }
}

/// Recovers the store in `dir`, feeding every surviving state change to `apply`.
pub(crate) fn recover(
    dir: &Path,
    fs: &Fs,
    mode: Recovery,
    now: u64,
    apply: &mut dyn FnMut(Replay<'_>),
) -> Result<Recovered, PersistError> {
    let listing = list(dir)?;
    for leftover in &listing.leftovers {
        // An unfinished snapshot: never renamed into place, so never part of the state.
        let _ = fs.remove(leftover);
    }
    let mut ctx = Ctx {
        dir,
        fs,
        mode,
        now,
        apply,
        records: 0,
        max_seq: 0,
    };
    let mut snapshot = None;
    let first = match listing.snapshots.last() {
        Some(&n) => {
            let path = snapshot_path(dir, n);
            let (cut, created, entries) = load_snapshot(&path, n, now, ctx.apply)?;
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            snapshot = Some((created, size));
            ctx.records += entries;
            ctx.max_seq = cut;
            // Replaced by this one; a crash stopped the snapshot before it removed them.
            for &old in listing.snapshots.iter().filter(|&&s| s < n) {
                let _ = fs.remove(&snapshot_path(dir, old));
            }
            for &old in listing.segments.iter().filter(|&&s| s < n) {
                let _ = fs.remove(&segment_path(dir, old));
            }
            n
        }
        None => 1,
    };
    let segments: Vec<u64> = listing
        .segments
        .iter()
        .copied()
        .filter(|&s| s >= first)
        .collect();
    if let Some(&lowest) = segments.first()
        && lowest != first
    {
        return Err(PersistError::corrupt(
            &segment_path(dir, lowest),
            0,
            format!(
                "the log starts at segment {lowest}, but segment {first} is missing{}",
                if snapshot.is_none() {
                    " (and no snapshot covers the earlier ones)"
                } else {
                    ""
                }
            ),
        ));
    }
    for pair in segments.windows(2) {
        if let [a, b] = *pair
            && b != a + 1
        {
            return Err(PersistError::corrupt(
                &segment_path(dir, b),
                0,
                format!("segment {} is missing", a + 1),
            ));
        }
    }
    let mut last = (first, 0, 0);
    let mut on_disk = 0;
    for (i, &segment) in segments.iter().enumerate() {
        let later = segments.get(i + 1..).unwrap_or_default();
        let end = ctx.replay_segment(segment, later)?;
        on_disk += end.len;
        last = (segment, end.len, end.salt);
        if end.stop {
            break;
        }
    }
    let (segment, len, salt) = last;
    Ok(Recovered {
        start: Start {
            segment,
            len,
            salt,
            max_seq: ctx.max_seq,
            on_disk,
            snapshot_after: 0,
        },
        records: ctx.records,
        snapshot,
    })
}
