//! The memory driver's configuration.

use serde::{Deserialize, Serialize};

/// Configuration of a memory store, given as JSON to `Contract::new("memory", name, config)`.
///
/// Every field is optional; `None` and `{}` give the defaults. Unknown fields are rejected.
///
/// ```
/// # use hodor_memory as _;
/// use serde_json::json;
/// let c = hodor_core::Contract::new("memory", "fast-sweep", Some(json!({"sweep_interval_ms": 10})))?;
/// # Ok::<(), hodor_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// How often, in milliseconds, expired entries that nobody reads are reclaimed
    /// (default 100, at least 1). An expired entry is never returned either way; this bounds
    /// how long its memory stays in use: at most one interval plus the time of one sweep.
    pub sweep_interval_ms: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            sweep_interval_ms: 100,
        }
    }
}

impl MemoryConfig {
    /// Sets [`MemoryConfig::sweep_interval_ms`].
    pub fn sweep_interval_ms(mut self, ms: u64) -> Self {
        self.sweep_interval_ms = ms;
        self
    }

    /// Checks what serde cannot: returns the offending field and why.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        if self.sweep_interval_ms == 0 {
            return Some((
                "sweep_interval_ms",
                "must be at least 1 millisecond".to_owned(),
            ));
        }
        None
    }
}
