//! Conditional writes (`create`, `set_if_version`, `increment`): each a decision about the
//! key's live entry, made and written in one step by [`Store::write_if`], the write path
//! `set` takes.

use std::time::Duration;

use bytes::Bytes;
use hodor_core::Version;
use hodor_core::driver::{DriverResult, increment_counter};

use crate::store::{Decision, NewTtl, Store};

impl Store {
    /// Writes only if the key has no live entry; `true` if it wrote.
    pub(crate) fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> DriverResult<bool> {
        self.write_if(key, |live| {
            Ok(match live {
                Some(_) => Decision::Keep(false),
                None => Decision::Write {
                    value: value.clone(),
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
        self.write_if(key, |live| {
            Ok(match live {
                Some(slot) if self.version(slot) == expected => Decision::Write {
                    value: value.clone(),
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
            let sum = increment_counter(live.map(|s| &s.value[..]), delta)?;
            Ok(Decision::Write {
                value: Bytes::from(sum.to_string()),
                ttl: NewTtl::KeepCurrent,
                answer: sum,
            })
        })
    }
}
