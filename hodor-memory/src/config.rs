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
    /// value length plus a fixed 120-byte overhead (see the crate docs), so the limit tracks
    /// real memory. `None` (the default): no limit. When a `set` would exceed it, entries
    /// are evicted first (expired ones, then by CLOCK); a single entry larger than the limit
    /// is `CapacityExceeded`.
    pub max_bytes: Option<u64>,
    /// The most entries the store may hold. `None` (the default): no limit.
    pub max_entries: Option<u64>,
    /// How often, in milliseconds, expired entries that nobody reads are reclaimed
    /// (default 100, at least 1). An expired entry is never returned either way; this bounds
    /// how long its memory stays in use: at most one interval plus the time of one sweep.
    pub sweep_interval_ms: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_bytes: None,
            max_entries: None,
            sweep_interval_ms: 100,
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

    /// Checks what serde cannot: returns the offending field and why.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        let smallest = crate::shard::charge(1, 0);
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
            (c.max_bytes, c.max_entries, c.sweep_interval_ms),
            (None, None, 100)
        );
        assert_eq!(c.problem(), None);
    }

    #[test]
    fn limits_too_small_to_hold_anything_are_rejected() {
        let smallest = crate::shard::charge(1, 0);
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
