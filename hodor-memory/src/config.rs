//! The memory driver's configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Configuration of a memory store, given as JSON to `Contract::new("memory", name, config)`.
///
/// Every field is optional; `None` and `{}` give the defaults. Unknown fields are rejected.
///
/// ```
/// # use hodor_memory as _;
/// use serde_json::json;
/// let cache = hodor_core::Contract::new(
///     "memory",
///     "bounded",
///     Some(json!({"max_bytes": 64 * 1024 * 1024, "max_entries": 100_000, "sweep_interval_ms": 50})),
/// )?;
/// assert_eq!(cache.metrics().max_bytes, Some(64 * 1024 * 1024));
/// # Ok::<(), hodor_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// The most bytes the store may hold, counting each entry as its key length plus its
    /// value length plus a fixed 120-byte overhead, 16 more with a TTL (see the crate
    /// docs), so the limit tracks real memory. `None` (the default): no limit. When a `set` would exceed it, entries
    /// are evicted first (expired ones, then by CLOCK); a single entry larger than the limit
    /// is `CapacityExceeded`. With [`MemoryConfig::compression`], a compressed value counts
    /// its compressed length.
    pub max_bytes: Option<u64>,
    /// The most entries the store may hold. `None` (the default): no limit.
    pub max_entries: Option<u64>,
    /// How often, in milliseconds, expired entries that nobody reads are reclaimed
    /// (default 100, at least 1). An expired entry is never returned either way; this bounds
    /// how long its memory stays in use: at most one interval plus the time of one sweep.
    pub sweep_interval_ms: u64,
    /// How many shards (each a hash table behind its own lock) the store is split into: a
    /// power of two from 1 to 1024. `None` (the default): 8 per CPU, at least 16 and at
    /// most 1024, and no more than one per 8 entries of `max_entries`. More shards let more
    /// threads write at once; each costs a few hundred bytes and a lock to visit when
    /// sweeping. Eviction does not depend on it (see the crate docs).
    pub shards: Option<usize>,
    /// How many of its latest changes the store keeps, while it is watched, for
    /// `Contract::watch_from` to resume from (default 10,000; up to 10,000,000; 0 keeps
    /// none). While nobody watches, nothing is kept, and resuming from before that is
    /// `Compacted`.
    pub watch_history: usize,
    /// Keep the store on disk: an append-only log plus periodic snapshots in a directory, so
    /// its data outlives the last close and the process (see [`PersistConfig`]). `None`
    /// (the default): the store lives in memory only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist: Option<PersistConfig>,
    /// Compress large values (see [`CompressionConfig`]). `None` (the default): values are
    /// stored as given, and `get` returns the stored buffer without copying it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionConfig>,
}

/// The largest [`MemoryConfig::watch_history`].
pub(crate) const MAX_WATCH_HISTORY: usize = 10_000_000;

/// Where and how durably a persistent memory store keeps its data:
/// `{"persist": {"dir": "data/sessions", "fsync": "always"}}`.
///
/// The directory holds an append-only log of every write (`log-*.hlog`), the latest
/// snapshot (`snapshot-*.hsnap`), an `EPOCH` file (advanced at every open, so versions
/// never repeat across restarts) and a `LOCK` file. One store at a time, in one process,
/// may use a directory; a second opener gets an error naming it. At open the store loads
/// the snapshot, replays the log after it and drops entries whose TTL ran out meanwhile.
///
/// ```
/// # use hodor_memory as _;
/// use serde_json::json;
/// let dir = std::env::temp_dir().join(format!("hodor-doc-persist-{}", std::process::id()));
/// let config = json!({"persist": {"dir": dir, "fsync": "always"}});
/// let c = hodor_core::Contract::new("memory", "doc-persist", Some(config.clone()))?;
/// c.set("greeting", "hello", None)?;
/// c.close()?;
/// // The data outlives the last close (and the process).
/// let again = hodor_core::Contract::new("memory", "doc-persist", Some(config))?;
/// assert_eq!(again.get("greeting")?, "hello");
/// # again.close()?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), hodor_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PersistConfig {
    /// The directory (created if missing). Relative paths are relative to the working
    /// directory at open.
    pub dir: PathBuf,
    /// When a write is made durable; see [`Fsync`]. Default: `interval`.
    #[serde(default)]
    pub fsync: Fsync,
    /// For `interval`: how often, in milliseconds, the log is written out and synced
    /// (default 1000, at least 1); for `never`: how often it is handed to the OS.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// A snapshot is taken once the log has grown by this many bytes since the last one and
    /// by at least the last snapshot's size (default 64 MiB, at least 4096). Only the log
    /// after the latest snapshot is kept.
    #[serde(default = "default_snapshot_log_bytes")]
    pub snapshot_log_bytes: u64,
    /// What to do with a corrupt record that valid ones follow; see [`Recovery`]. Default:
    /// `strict`.
    #[serde(default)]
    pub recovery: Recovery,
}

/// When the log of a persistent store is synced to disk (`fsync`).
///
/// | mode | a write returns | a process crash loses | an OS crash or power loss loses |
/// |---|---|---|---|
/// | `always` | after the `fsync` that covers it | nothing acknowledged | nothing acknowledged |
/// | `interval` | at once | the last `interval_ms` of writes | the last `interval_ms` of writes |
/// | `never` | at once | the last `interval_ms` of writes | what the OS had not written back |
///
/// In every mode a crash loses a suffix of the writes, never a write in the middle, and
/// never part of a `set_many` or `delete_many`; `close` writes and syncs everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fsync {
    /// Every write returns only once the log is synced past it. Concurrent writers share
    /// syncs (group commit).
    Always,
    /// A background thread writes and syncs the log every `interval_ms`.
    #[default]
    Interval,
    /// A background thread hands the log to the OS every `interval_ms` and never syncs it
    /// (except on `close` and before a snapshot replaces it).
    Never,
}

/// How recovery treats a damaged log.
///
/// A torn or corrupt tail (a crash in the middle of an append) is always truncated at the
/// last good record. A corrupt record that valid records follow is damage, not a crash,
/// with one exception recovery cannot tell apart: after a power loss, the log written since
/// its last sync may come back with a hole if the disk wrote its pages out of order.
/// `PointInTime` then keeps everything before the hole, every write `fsync = always`
/// acknowledged included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Recovery {
    /// Refuse to open, naming the file and offset of the corrupt record.
    #[default]
    Strict,
    /// Open with the state just before the first corrupt record: everything after it is
    /// dropped (the damaged files are kept beside the log, their names ending in `.corrupt`).
    PointInTime,
}

/// Compression of large values: `{"compression": {"algorithm": "lz4", "min_size": 1024}}`.
///
/// A value of at least `min_size` bytes is compressed when that saves at least an eighth of
/// it, and kept as given otherwise; each entry records which form it holds. `stat().size`
/// is always the value's own length; `max_bytes` and `metrics().bytes` count the stored,
/// compressed length. A compressed value is decompressed into a new buffer on every `get`
/// (an uncompressed one is returned without copying). A persistent store logs and
/// snapshots the compressed form.
///
/// ```
/// # use hodor_memory as _;
/// use serde_json::json;
/// let c = hodor_core::Contract::new(
///     "memory",
///     "doc-compressed",
///     Some(json!({"compression": {"algorithm": "lz4", "min_size": 1024}})),
/// )?;
/// let page = "<p>hello</p>".repeat(1000);
/// c.set("page", page.clone(), None)?;
/// assert_eq!(c.get("page")?, page);
/// assert_eq!(c.stat("page")?.size, page.len() as u64);
/// assert!(c.metrics().bytes.unwrap() < page.len() as u64 / 4);
/// # Ok::<(), hodor_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CompressionConfig {
    /// The algorithm; only `lz4` (the LZ4 block format) for now.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Values shorter than this are never compressed (default 1024).
    #[serde(default = "default_min_size")]
    pub min_size: u64,
}

/// A compression algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Algorithm {
    /// LZ4 (block format), by the pure-Rust `lz4_flex`: fast to compress and decompress.
    #[default]
    Lz4,
}

fn default_interval_ms() -> u64 {
    1000
}

fn default_snapshot_log_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_min_size() -> u64 {
    1024
}

impl PersistConfig {
    /// Persistence in `dir` with the defaults: `fsync` every second, strict recovery.
    pub fn new(dir: impl Into<PathBuf>) -> PersistConfig {
        PersistConfig {
            dir: dir.into(),
            fsync: Fsync::default(),
            interval_ms: default_interval_ms(),
            snapshot_log_bytes: default_snapshot_log_bytes(),
            recovery: Recovery::default(),
        }
    }

    /// Sets [`PersistConfig::fsync`].
    pub fn fsync(mut self, fsync: Fsync) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets [`PersistConfig::interval_ms`].
    pub fn interval_ms(mut self, ms: u64) -> Self {
        self.interval_ms = ms;
        self
    }

    /// Sets [`PersistConfig::snapshot_log_bytes`].
    pub fn snapshot_log_bytes(mut self, bytes: u64) -> Self {
        self.snapshot_log_bytes = bytes;
        self
    }

    /// Sets [`PersistConfig::recovery`].
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = recovery;
        self
    }
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            algorithm: Algorithm::default(),
            min_size: default_min_size(),
        }
    }
}

impl CompressionConfig {
    /// LZ4 for values of at least `min_size` bytes.
    pub fn lz4(min_size: u64) -> CompressionConfig {
        CompressionConfig {
            algorithm: Algorithm::Lz4,
            min_size,
        }
    }
}

/// The smallest [`PersistConfig::snapshot_log_bytes`]: below it a store would snapshot
/// after every few writes.
const MIN_SNAPSHOT_LOG_BYTES: u64 = 4096;

/// The most shards a store can have.
pub(crate) const MAX_SHARDS: usize = 1024;

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_bytes: None,
            max_entries: None,
            sweep_interval_ms: 100,
            shards: None,
            watch_history: 10_000,
            persist: None,
            compression: None,
        }
    }
}

impl MemoryConfig {
    /// Sets [`MemoryConfig::max_bytes`].
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Sets [`MemoryConfig::max_entries`].
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = Some(entries);
        self
    }

    /// Sets [`MemoryConfig::sweep_interval_ms`].
    pub fn sweep_interval_ms(mut self, ms: u64) -> Self {
        self.sweep_interval_ms = ms;
        self
    }

    /// Sets [`MemoryConfig::shards`].
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Sets [`MemoryConfig::watch_history`].
    pub fn watch_history(mut self, changes: usize) -> Self {
        self.watch_history = changes;
        self
    }

    /// The number of shards to build: [`MemoryConfig::shards`], or the default it
    /// describes.
    pub(crate) fn shard_count(&self) -> usize {
        if let Some(shards) = self.shards {
            return shards.clamp(1, MAX_SHARDS);
        }
        let cpus = std::thread::available_parallelism().map_or(4, usize::from);
        let by_cpus = (cpus * 8).next_power_of_two().clamp(16, MAX_SHARDS);
        let by_entries = self.max_entries.map_or(MAX_SHARDS, |max| {
            let per_eight = usize::try_from(max / 8).unwrap_or(MAX_SHARDS).max(1);
            // The largest power of two not above it.
            1 << per_eight.min(MAX_SHARDS).ilog2()
        });
        by_cpus.min(by_entries)
    }

    /// Sets [`MemoryConfig::persist`].
    pub fn persist(mut self, persist: PersistConfig) -> Self {
        self.persist = Some(persist);
        self
    }

    /// Sets [`MemoryConfig::compression`].
    pub fn compression(mut self, compression: CompressionConfig) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Checks what serde cannot: returns the offending field and why.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        let smallest = crate::shard::charge(1, 0, false);
        if self.max_bytes.is_some_and(|b| b < smallest) {
            return Some((
                "max_bytes",
                format!(
                    "must be at least {smallest}: each entry is charged its key and value plus \
                     {} bytes of overhead",
                    crate::shard::ENTRY_OVERHEAD
                ),
            ));
        }
        if self.max_entries == Some(0) {
            return Some((
                "max_entries",
                "must be at least 1 (leave it out for no limit)".to_owned(),
            ));
        }
        if self.sweep_interval_ms == 0 {
            return Some((
                "sweep_interval_ms",
                "must be at least 1 millisecond".to_owned(),
            ));
        }
        if let Some(shards) = self.shards
            && (!shards.is_power_of_two() || shards > MAX_SHARDS)
        {
            return Some((
                "shards",
                format!("must be a power of two from 1 to {MAX_SHARDS}, not {shards}"),
            ));
        }
        if let Some(persist) = &self.persist {
            if persist.dir.as_os_str().is_empty() {
                return Some((
                    "persist.dir",
                    "must name a directory (it is created if missing)".to_owned(),
                ));
            }
            if persist.interval_ms == 0 {
                return Some((
                    "persist.interval_ms",
                    "must be at least 1 millisecond".to_owned(),
                ));
            }
            if persist.snapshot_log_bytes < MIN_SNAPSHOT_LOG_BYTES {
                return Some((
                    "persist.snapshot_log_bytes",
                    format!("must be at least {MIN_SNAPSHOT_LOG_BYTES}"),
                ));
            }
        }
        if self.watch_history > MAX_WATCH_HISTORY {
            return Some((
                "watch_history",
                format!("must be at most {MAX_WATCH_HISTORY} changes"),
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_unbounded_with_a_100ms_sweep() {
        let c = MemoryConfig::default();
        assert_eq!(
            (c.max_bytes, c.max_entries, c.sweep_interval_ms, c.shards),
            (None, None, 100, None)
        );
        assert_eq!(c.problem(), None);
    }

    #[test]
    fn limits_too_small_to_hold_anything_are_rejected() {
        let smallest = crate::shard::charge(1, 0, false);
        assert_eq!(MemoryConfig::default().max_bytes(smallest).problem(), None);
        let (field, reason) = MemoryConfig::default()
            .max_bytes(smallest - 1)
            .problem()
            .unwrap();
        assert_eq!(field, "max_bytes");
        assert!(reason.contains(&smallest.to_string()), "{reason}");
        assert_eq!(
            MemoryConfig::default().max_entries(0).problem().unwrap().0,
            "max_entries"
        );
        assert_eq!(
            MemoryConfig::default()
                .sweep_interval_ms(0)
                .problem()
                .unwrap()
                .0,
            "sweep_interval_ms"
        );
        assert_eq!(
            MemoryConfig::default()
                .watch_history(MAX_WATCH_HISTORY + 1)
                .problem()
                .unwrap()
                .0,
            "watch_history"
        );
    }

    #[test]
    fn shard_counts_are_powers_of_two_and_follow_small_entry_limits() {
        for bad in [0, 3, 2048] {
            assert_eq!(
                MemoryConfig::default().shards(bad).problem().unwrap().0,
                "shards"
            );
        }
        assert_eq!(MemoryConfig::default().shards(1).shard_count(), 1);
        assert_eq!(MemoryConfig::default().shards(1024).shard_count(), 1024);
        let default = MemoryConfig::default().shard_count();
        assert!(default.is_power_of_two() && (16..=MAX_SHARDS).contains(&default));
        for (max, at_most) in [(1, 1), (8, 1), (64, 8), (100, 8), (1000, 64)] {
            let n = MemoryConfig::default().max_entries(max).shard_count();
            assert!(n.is_power_of_two() && n <= at_most, "{max}: {n}");
        }
        assert_eq!(
            MemoryConfig::default().max_entries(u64::MAX).shard_count(),
            default
        );
    }

    #[test]
    fn persist_and_compression_parse_with_their_defaults() {
        let c: MemoryConfig = serde_json::from_value(serde_json::json!({
            "persist": {"dir": "data"},
            "compression": {"algorithm": "lz4"},
        }))
        .unwrap();
        assert_eq!(c.persist, Some(PersistConfig::new("data")));
        let p = c.persist.as_ref().unwrap();
        assert_eq!(
            (p.fsync, p.interval_ms, p.recovery),
            (Fsync::Interval, 1000, Recovery::Strict)
        );
        assert_eq!(c.compression, Some(CompressionConfig::lz4(1024)));
        assert_eq!(c.problem(), None);

        let c: MemoryConfig = serde_json::from_value(serde_json::json!({
            "persist": {"dir": "d", "fsync": "always", "interval_ms": 5,
                        "snapshot_log_bytes": 4096, "recovery": "point_in_time"},
            "compression": {"min_size": 0},
        }))
        .unwrap();
        let p = c.persist.unwrap();
        assert_eq!(
            (p.fsync, p.interval_ms, p.snapshot_log_bytes, p.recovery),
            (Fsync::Always, 5, 4096, Recovery::PointInTime)
        );
        assert_eq!(c.compression.unwrap().min_size, 0);
    }

    #[test]
    fn persist_problems_name_the_field() {
        let field = |p: PersistConfig| MemoryConfig::default().persist(p).problem().unwrap().0;
        assert_eq!(field(PersistConfig::new("")), "persist.dir");
        assert_eq!(
            field(PersistConfig::new("d").interval_ms(0)),
            "persist.interval_ms"
        );
        assert_eq!(
            field(PersistConfig::new("d").snapshot_log_bytes(100)),
            "persist.snapshot_log_bytes"
        );
        for bad in [
            serde_json::json!({"persist": {}}),
            serde_json::json!({"persist": {"dir": "d", "fsync": "sometimes"}}),
            serde_json::json!({"persist": {"dir": "d", "fsnyc": "always"}}),
            serde_json::json!({"compression": {"algorithm": "zstd"}}),
        ] {
            let err = hodor_core::driver::parse_config::<MemoryConfig>(Some(bad.clone()));
            match err {
                Err(hodor_core::driver::DriverError::InvalidConfig { field, .. }) => {
                    assert!(
                        field.is_some_and(
                            |f| f.starts_with("persist") || f.starts_with("compression")
                        ),
                        "{bad}"
                    );
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_round_trips_and_unknown_fields_are_refused() {
        let c = MemoryConfig::default().max_entries(5);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(serde_json::from_value::<MemoryConfig>(json).unwrap(), c);
        let c = c
            .persist(PersistConfig::new("d").fsync(Fsync::Never))
            .compression(CompressionConfig::lz4(10));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(serde_json::from_value::<MemoryConfig>(json).unwrap(), c);
        let err = serde_json::from_value::<MemoryConfig>(serde_json::json!({"max_byte": 1}));
        assert!(err.unwrap_err().to_string().contains("max_byte"));
    }
}
