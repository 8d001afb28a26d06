//! The key rules, checked once in the `Contract` layer so no driver repeats them.

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

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
    // `contains` on a byte slice is a vectorized memchr; find the position only to report it.
    if key.as_bytes().contains(&0) {
        let at = key.bytes().position(|b| b == 0).unwrap_or(0);
        return Some(format!("the key contains a NUL character at byte {at}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        }
    }
}
