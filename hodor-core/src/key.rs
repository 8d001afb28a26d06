//! The key rules, checked once in the `Contract` layer so no driver repeats them.

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Whether `key` follows the key rules: the hot-path check, with the explanation left to
/// [`problem`].
#[inline]
pub(crate) fn is_valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && !has_nul(key.as_bytes())
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
/// instruction on the path erodes. So: eight bytes per step with the classic "has a zero
/// byte" bit trick, straight-line code for keys up to 32 bytes (the usual case), and
/// overlapping reads of the first and last words instead of a byte loop for the rest.
#[inline]
fn has_nul(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    // Reads eight bytes at `at`; callers keep `at + 8 <= len`. The fallback (no zero byte)
    // is unreachable.
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(u64::MAX, u64::from_le_bytes)
    };
    let len = bytes.len();
    match len {
        0 => false,
        1..=3 => bytes.contains(&0),
        4..=7 => {
            // Two overlapping four-byte words cover four to seven bytes.
            let half = |at: usize| {
                bytes
                    .get(at..at + 4)
                    .and_then(|w| <[u8; 4]>::try_from(w).ok())
                    .map_or(u32::MAX, u32::from_le_bytes)
            };
            let both = u64::from(half(0)) | (u64::from(half(len - 4)) << 32);
            zero_byte(both) != 0
        }
        8..=16 => zero_byte(word(0)) != 0 || zero_byte(word(len - 8)) != 0,
        17..=32 => {
            (zero_byte(word(0))
                | zero_byte(word(8))
                | zero_byte(word(len - 16))
                | zero_byte(word(len - 8)))
                != 0
        }
        _ => {
            let chunks = bytes.chunks_exact(8);
            let tail = zero_byte(word(len - 8));
            chunks.fold(tail, |acc, chunk| {
                acc | <[u8; 8]>::try_from(chunk).map_or(0, |w| zero_byte(u64::from_le_bytes(w)))
            }) != 0
        }
    }
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
