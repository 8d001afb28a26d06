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

/// Whether `bytes` contains a NUL. Every call on the hot path checks its key, and typical
/// keys are 16 to 64 bytes, where `memchr`'s alignment prologue and a byte loop both cost
/// several instructions per byte: test eight bytes per step instead (the classic
/// "has a zero byte" bit trick), finishing with the last eight bytes, which may overlap.
#[inline]
fn has_nul(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    // Every chunk passed is exactly eight bytes; the fallback (no zero byte) is unreachable.
    let word_at = |chunk: &[u8]| <[u8; 8]>::try_from(chunk).map_or(u64::MAX, u64::from_le_bytes);
    if bytes.len() < 8 {
        return bytes.contains(&0);
    }
    let chunks = bytes.chunks_exact(8);
    let last = bytes.len() - 8;
    let tail = bytes.get(last..).is_some_and(|t| zero_byte(word_at(t)));
    tail || chunks.fold(false, |found, chunk| found | zero_byte(word_at(chunk)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_is_found_anywhere() {
        for len in [1, 2, 15, 16, 17, 31, 32, 33, 64, 1024] {
            for at in [0, len / 2, len - 1] {
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
