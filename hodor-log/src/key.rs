//! Batch keys: `{prefix}{first}_{last}_{instance}_{seq}.jsonl[.lz4]`.
//!
//! `first` and `last` are the fixed-width UTC timestamps of the batch's earliest and latest
//! record, `instance` identifies one running sink (16 hex digits, random per sink), `seq`
//! counts that sink's batches (16 hex digits). Because the earliest timestamp comes first
//! and has a fixed width, byte order of keys is the order of the batches' first records,
//! across processes; instance and sequence make two batches' keys differ even when they
//! start at the same microsecond, so no batch overwrites another. The suffix says how the
//! value is stored; it is never guessed from the bytes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::Codec;
use crate::time::{self, TS_LEN};

/// Bytes a batch key adds after the prefix, at most.
pub(crate) const KEY_TAIL_MAX: usize = TS_LEN + 1 + TS_LEN + 1 + 16 + 1 + 16 + LONGEST_SUFFIX;
const LONGEST_SUFFIX: usize = 10; // ".jsonl.lz4"

/// What a batch key says about its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BatchKey {
    /// Microseconds of the earliest record.
    pub(crate) first: u64,
    /// Microseconds of the latest record.
    pub(crate) last: u64,
    /// How the value is stored.
    pub(crate) codec: Codec,
}

/// A sink's instance id: 64 bits from the standard library's randomly keyed SipHash over
/// the process id, the time and a per-process counter. Two sinks, in one process or in
/// many, get the same id with probability about 2^-64 per pair.
pub(crate) fn new_instance() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // RandomState's keys come from the operating system's randomness (once per thread,
    // then varied per RandomState).
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(time::micros(std::time::SystemTime::now()));
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// Writes the key of a batch.
pub(crate) fn write(
    out: &mut String,
    prefix: &str,
    first: u64,
    last: u64,
    instance: u64,
    seq: u64,
    codec: Codec,
) {
    use std::fmt::Write as _;
    out.clear();
    out.push_str(prefix);
    out.push_str(&time::format(first));
    out.push('_');
    out.push_str(&time::format(last));
    let _ = write!(out, "_{instance:016x}_{seq:016x}{}", codec.suffix());
}

/// Parses the part of a key after the prefix; `None` when it is not a batch key (other
/// data under the same prefix is left alone by readers).
pub(crate) fn parse(tail: &str) -> Option<BatchKey> {
    let first = time::parse(tail.get(0..TS_LEN)?)?;
    let rest = tail.get(TS_LEN..)?.strip_prefix('_')?;
    let last = time::parse(rest.get(0..TS_LEN)?)?;
    let rest = rest.get(TS_LEN..)?.strip_prefix('_')?;
    let hex16 =
        |s: &str| s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex16(rest.get(0..16)?) || rest.get(16..17)? != "_" || !hex16(rest.get(17..33)?) {
        return None;
    }
    let codec = Codec::from_suffix(rest.get(33..)?)?;
    (first <= last).then_some(BatchKey { first, last, codec })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_fit_the_tail_budget() {
        let mut key = String::new();
        write(
            &mut key,
            "logs/",
            1,
            u64::MAX,
            u64::MAX,
            u64::MAX,
            Codec::Lz4,
        );
        let tail = key.strip_prefix("logs/").unwrap();
        assert_eq!(tail.len(), KEY_TAIL_MAX);
        assert_eq!(
            parse(tail),
            Some(BatchKey {
                first: 1,
                last: 253_402_300_799_999_999,
                codec: Codec::Lz4
            })
        );
        write(&mut key, "", 5, 7, 0xab, 3, Codec::Raw);
        assert_eq!(
            key,
            "1970-01-01T00:00:00.000005Z_1970-01-01T00:00:00.000007Z_00000000000000ab_0000000000000003.jsonl"
        );
    }

    #[test]
    fn byte_order_is_first_record_order() {
        let mut a = String::new();
        let mut b = String::new();
        for (fa, fb) in [(9, 10), (999_999, 1_000_000), (59_999_999, 60_000_000)] {
            write(&mut a, "p/", fa, fb + 100, u64::MAX, u64::MAX, Codec::Raw);
            write(&mut b, "p/", fb, fb, 0, 0, Codec::Raw);
            assert!(a < b, "{a} !< {b}");
        }
    }

    #[test]
    fn same_instant_different_batches_never_share_a_key() {
        let mut seen = std::collections::HashSet::new();
        let instances = [new_instance(), new_instance()];
        assert_ne!(instances[0], instances[1]);
        let mut key = String::new();
        for instance in instances {
            for seq in 0..100 {
                write(&mut key, "p/", 42, 42, instance, seq, Codec::Raw);
                assert!(seen.insert(key.clone()), "{key}");
            }
        }
    }

    #[test]
    fn other_keys_are_not_batches() {
        for tail in [
            "",
            "readme",
            "1970-01-01T00:00:00.000005Z_1970-01-01T00:00:00.000007Z_00000000000000ab_0000000000000003",
            "1970-01-01T00:00:00.000005Z_1970-01-01T00:00:00.000007Z_00000000000000ab_0000000000000003.json",
            "1970-01-01T00:00:00.000005Z_1970-01-01T00:00:00.000007Z_00000000000000AB_0000000000000003.jsonl",
            "1970-01-01T00:00:00.000009Z_1970-01-01T00:00:00.000007Z_00000000000000ab_0000000000000003.jsonl",
        ] {
            assert_eq!(parse(tail), None, "{tail}");
        }
    }
}
