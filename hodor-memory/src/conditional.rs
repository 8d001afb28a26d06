//! Conditional writes (`create`, `set_if_version`, `increment`): each a decision about the
//! key's live entry, made and written in one step by [`Store::write_if`], the write path
//! `set` takes.

use std::time::Duration;

use bytes::Bytes;
use hodor_core::Version;
use hodor_core::driver::{DriverError, DriverResult, increment_counter};

use crate::codec::{self, Codec};
use crate::shard::Slot;
use crate::store::{Decision, NewTtl, Store};

/// The longest canonical counter: `-9223372036854775808`.
const MAX_COUNTER_LEN: u64 = 20;

impl Store {
    /// Writes only if the key has no live entry; `true` if it wrote.
    pub(crate) fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> DriverResult<bool> {
        // COMPRESSION HOOK: CPU work, done before any lock is taken, as `set` does.
        let (value, codec) = self.encode(value);
        self.write_if(key, |live| {
            Ok(match live {
                Some(_) => Decision::Keep(false),
                None => Decision::Write {
                    value: value.clone(),
                    codec,
                    ttl: NewTtl::Set(ttl),
                    answer: true,
                },
            })
        })
    }

    /// Writes only if the key's live entry has the version `expected`; `true` if it wrote.
    pub(crate) fn set_if_version(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Version,
    ) -> DriverResult<bool> {
        let (value, codec) = self.encode(value);
        self.write_if(key, |live| {
            Ok(match live {
                Some(slot) if self.version(slot) == expected => Decision::Write {
                    value: value.clone(),
                    codec,
                    ttl: NewTtl::Set(ttl),
                    answer: true,
                },
                _ => Decision::Keep(false),
            })
        })
    }

    /// Adds `delta` to the decimal counter under `key` (0 when missing or expired), keeping
    /// its TTL; returns the sum.
    pub(crate) fn increment(&self, key: &str, delta: i64) -> DriverResult<i64> {
        self.write_if(key, |live| {
            let sum = match live {
                None => increment_counter(None, delta)?,
                Some(slot) => increment_counter(Some(&counter_text(slot)?[..]), delta)?,
            };
            // At most 20 bytes: compressing would not pay, but `encode` says so, as for
            // any value.
            let (value, codec) = self.encode(Bytes::from(sum.to_string()));
            Ok(Decision::Write {
                value,
                codec,
                ttl: NewTtl::KeepCurrent,
                answer: sum,
            })
        })
    }
}

/// The value of a live entry as `increment` reads it: a compressed one decompressed (under
/// the shard lock, so only when it is short enough to be a counter at all).
fn counter_text(slot: &Slot) -> DriverResult<Bytes> {
    if slot.codec() == Codec::Raw {
        return Ok(slot.value.clone());
    }
    let len = codec::logical_len(&slot.value, slot.codec());
    if len > MAX_COUNTER_LEN {
        return Err(DriverError::InvalidInput(format!(
            "the stored value ({len} bytes) is not a decimal integer; increment needs the \
             canonical decimal form of a 64-bit signed integer"
        )));
    }
    codec::decode(slot.value.clone(), slot.codec()).map_err(|e| {
        DriverError::backend_failure(hodor_core::BackendKind::Other, hodor_core::Applied::No, e)
    })
}
