//! The key rules, checked once in the `Contract` layer so no driver repeats them.

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Whether `key` follows the key rules: the hot-path check, with the explanation left to
/// [`problem`].
#[inline(always)]
pub(crate) fn is_valid(key: &str) -> bool {
    // 1..=MAX_KEY_LEN in one comparison: an empty key wraps around to usize::MAX.
    key.len().wrapping_sub(1) < MAX_KEY_LEN && !has_nul(key.as_bytes())
}

/// Why a key is rejected; `None` when it is valid.
///
/// A key is 1 to [`MAX_KEY_LEN`] bytes with no NUL. Everything else, `/`, `..`, spaces,
/// glob characters, `%`, emoji, is data and must round-trip on every driver.
pub(crate) fn problem(key: &str) -> Option<String> {
    let len = key.len();
    if len == 0 {
        return Some("the key is empty".to_owned());
    }
    if len > MAX_KEY_LEN {
        return Some(format!(
            "the key is {len} bytes, longer than the limit of {MAX_KEY_LEN} bytes"
        ));
    }
    if has_nul(key.as_bytes()) {
        let at = key.bytes().position(|b| b == 0).unwrap_or(0);
        return Some(format!("the key contains a NUL character at byte {at}"));
    }
    None
}

/// The reason an invalid contract name is rejected, from the key rule it breaks.
pub(crate) fn name_reason(problem: &str) -> String {
    format!("invalid contract name: {problem}; a contract name follows the key rules")
}

/// Whether `bytes` contains a NUL.
///
/// Every call checks its key before the driver runs, and at a million entries a `get` is
/// bound by how well the CPU overlaps consecutive calls' cache misses, which every extra
/// instruction on the path erodes. So the common lengths take one branch each and no loop:
/// from 16 bytes on, the first and the last 16 (overlapping for keys under 32) are folded
/// byte-wise with `min` and compared with zero, which compiles to one SSE2/NEON compare and
/// mask; longer keys add one such step per further 16 bytes. Shorter keys use the
/// "has a zero byte" word trick on two overlapping words.
///
/// Always inlined, with the loop for keys over 32 bytes out of line: left to itself, the
/// compiler put the whole function out of line in the benchmark's build, which cost a `get`
/// the call and gave back most of what the shorter check saved.
#[inline(always)]
fn has_nul(bytes: &[u8]) -> bool {
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<16>(), bytes.last_chunk::<16>()) {
        zero_in(head, tail) || (bytes.len() > 32 && middle_has_nul(bytes))
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (zero_bytes(u64::from_le_bytes(*head)) | zero_bytes(u64::from_le_bytes(*tail))) != 0
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // Two overlapping four-byte words cover four to seven bytes.
        let both =
            u64::from(u32::from_le_bytes(*head)) | (u64::from(u32::from_le_bytes(*tail)) << 32);
        zero_bytes(both) != 0
    } else {
        bytes.contains(&0)
    }
}

/// Whether bytes 16.. of a key over 32 bytes hold a NUL, 16 bytes a step (the last 16,
/// which the steps may not reach, were checked by the caller).
#[inline(never)]
fn middle_has_nul(bytes: &[u8]) -> bool {
    let mut rest = bytes.get(16..).unwrap_or_default();
    while let Some((chunk, after)) = rest.split_first_chunk::<16>() {
        if zero_in(chunk, chunk) {
            return true;
        }
        rest = after;
    }
    false
}

/// Whether `a` or `b` holds a zero byte. Written as a byte-wise `min` and a compare folded
/// into a bit mask, the shape the compiler turns into `pminub`, `pcmpeqb` and `pmovmskb`
/// (a fold with `min` alone became a chain of shuffles, and the word trick on two `u64`
/// halves twice as many instructions).
#[inline(always)]
fn zero_in(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let mut mask = 0u32;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        mask |= u32::from((*x).min(*y) == 0) << i;
    }
    mask != 0
}

/// The classic "has a zero byte" trick: nonzero exactly when a byte of `word` is 0.
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    word.wrapping_sub(ONES) & !word & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_is_found_anywhere() {
        for len in (1..=80).chain([127, 128, 129, 1024]) {
            for at in 0..len {
                let mut key = vec![b'a'; len];
                assert!(!has_nul(&key));
                key[at] = 0;
                assert!(has_nul(&key), "len {len} at {at}");
            }
        }
    }

    #[test]
    fn boundaries() {
        assert!(problem("").is_some());
        assert!(problem("a").is_none());
        assert!(problem(&"x".repeat(MAX_KEY_LEN)).is_none());
        assert!(problem(&"x".repeat(MAX_KEY_LEN + 1)).is_some());
        assert!(problem("a\0b").unwrap().contains("byte 1"));
    }

    #[test]
    fn the_limit_counts_bytes_not_characters() {
        // 256 four-byte characters are exactly 1024 bytes; one more is over.
        assert!(problem(&"😀".repeat(256)).is_none());
        assert!(problem(&"😀".repeat(257)).is_some());
    }

    #[test]
    fn awkward_but_valid_keys_pass() {
        for key in [
            "/", "//", "..", "a/../b", " ", "\t", "*?[]\\", "%2F", "\"'", "<&>", "e\u{301}",
        ] {
            assert_eq!(problem(key), None, "{key:?}");
        }
    }

    proptest! {
        #[test]
        fn a_key_is_valid_exactly_when_the_rules_say(key in ".{0,1100}") {
            let valid = !key.is_empty() && key.len() <= MAX_KEY_LEN && !key.contains('\0');
            prop_assert_eq!(problem(&key).is_none(), valid);
            prop_assert_eq!(is_valid(&key), valid);
        }
    }
}
