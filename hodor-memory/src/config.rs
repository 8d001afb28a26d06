//! The memory driver's configuration.

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
    /// value length plus a fixed 120-byte overhead, 32 more with a TTL (see the crate
    /// docs), so the limit tracks real memory. `None` (the default): no limit. When a `set` would exceed it, entries
    /// are evicted first (expired ones, then by CLOCK); a single entry larger than the limit
    /// is `CapacityExceeded`.
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
}

/// The largest [`MemoryConfig::watch_history`].
pub(crate) const MAX_WATCH_HISTORY: usize = 10_000_000;

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
        if let Some(shards) = self.shards {
            if !shards.is_power_of_two() || shards > MAX_SHARDS {
                return Some((
                    "shards",
                    format!("must be a power of two from 1 to {MAX_SHARDS}, not {shards}"),
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
    fn json_round_trips_and_unknown_fields_are_refused() {
        let c = MemoryConfig::default().max_entries(5);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(serde_json::from_value::<MemoryConfig>(json).unwrap(), c);
        let err = serde_json::from_value::<MemoryConfig>(serde_json::json!({"max_byte": 1}));
        assert!(err.unwrap_err().to_string().contains("max_byte"));
    }
}
