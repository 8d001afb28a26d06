//! The keys and values every store is given.
//!
//! Key `i` is `k/` + `i` as 7 digits + `/` + 6 to 22 letters derived from `i`: 16 to 32 bytes,
//! 24 on average, unique, and sorted by `i`. Because the number comes first, a prefix of the
//! number selects exactly 10, 100 or 1,000 keys (`k/012345` matches `k/0123450/..` to
//! `k/0123459/..`), which is what the `list` workload needs.

use bytes::Bytes;

use crate::rng::{Rng, mix};

/// The shortest key, in bytes.
pub const MIN_KEY_LEN: usize = 16;
/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 32;
/// Keys have this many digits, so indices must stay below 10^7.
const DIGITS: usize = 7;
/// `k/` + the digits + `/`.
const HEAD: usize = DIGITS + 3;

/// Key number `i` (below 10,000,000).
pub fn key(i: u64) -> String {
    let mut key = format!("k/{i:0DIGITS$}/");
    let h = mix(i ^ 0xa076_1d64_78bd_642f);
    let pad = MIN_KEY_LEN - HEAD + (h % (MAX_KEY_LEN - MIN_KEY_LEN + 1) as u64) as usize;
    let mut bits = h >> 8;
    for _ in 0..pad {
        key.push(char::from(b'a' + (bits % 26) as u8));
        bits = mix(bits);
    }
    key
}

/// The prefix matching the `matches` keys (10, 100 or 1,000) whose numbers start at
/// `first`; `first` must be a multiple of `matches`.
pub fn prefix(first: u64, matches: u64) -> String {
    let full = format!("k/{first:0DIGITS$}");
    let drop = matches.max(1).ilog10() as usize;
    full[..full.len() - drop.min(DIGITS)].to_owned()
}

/// Keys `0..n`, in order.
pub fn keys(n: usize) -> Vec<String> {
    (0..n as u64).map(key).collect()
}

/// A pool of distinct values of one size.
///
/// Each value is its own allocation, already in `Bytes`' shared (reference-counted) form, so
/// storing a clone costs every store the same: a reference-count increment, no copy and no
/// allocation. Key `i` gets value `i % len`, so keys share a value only when the pool is
/// smaller than the key set (it is capped at 512 MiB).
#[derive(Debug)]
pub struct Values {
    pool: Vec<Bytes>,
    size: usize,
}

/// The most memory a value pool may take.
const POOL_BYTES: usize = 512 << 20;

impl Values {
    /// Up to `count` distinct values of `size` bytes.
    pub fn new(size: usize, count: usize, seed: u64) -> Values {
        let count = count.clamp(1, (POOL_BYTES / size.max(1)).max(1));
        let mut rng = Rng::new(seed);
        let pool = (0..count)
            .map(|_| {
                let data: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
                let value = Bytes::from(data);
                // The first clone turns a Vec-backed Bytes into the shared representation
                // (one small allocation); do it now, outside any measurement.
                drop(value.clone());
                value
            })
            .collect();
        Values { pool, size }
    }

    /// The value for key or operation number `i`.
    pub fn get(&self, i: usize) -> &Bytes {
        &self.pool[i % self.pool.len()]
    }

    /// The size of every value.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many distinct values there are.
    pub fn len(&self) -> usize {
        self.pool.len()
    }

    /// Never true: a pool holds at least one value.
    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_16_to_32_bytes_unique_and_sorted() {
        let keys = keys(20_000);
        assert!(
            keys.iter()
                .all(|k| (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&k.len()))
        );
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let mean = keys.iter().map(String::len).sum::<usize>() as f64 / keys.len() as f64;
        assert!((22.0..26.0).contains(&mean), "mean key length {mean}");
    }

    #[test]
    fn a_prefix_selects_exactly_the_asked_number_of_keys() {
        let keys = keys(20_000);
        for (first, matches) in [(12_340, 10), (12_300, 100), (12_000, 1000), (0, 10)] {
            let p = prefix(first, matches);
            let hit: Vec<usize> = (0..keys.len())
                .filter(|&i| keys[i].starts_with(&p))
                .collect();
            assert_eq!(hit.len(), matches as usize, "{p}");
            assert_eq!(hit[0], first as usize);
        }
    }

    #[test]
    fn values_are_distinct_allocations_of_the_asked_size() {
        let v = Values::new(64, 10, 1);
        assert_eq!(v.len(), 10);
        assert_eq!(v.get(3).len(), 64);
        assert_ne!(v.get(0).as_ptr(), v.get(1).as_ptr());
        assert_eq!(v.get(0).as_ptr(), v.get(10).as_ptr());
    }
}
