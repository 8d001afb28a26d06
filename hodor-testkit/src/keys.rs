//! Keys that break naive drivers: path-like, glob-like, escaped, Unicode, long. Every one is
//! valid and must round-trip on every driver; reuse the table in a driver's own tests.

use hodor_core::MAX_KEY_LEN;

/// Valid keys that a driver built on paths, URLs, globs, shells, key-value namespaces or
/// Unicode normalization tends to mangle. Every one must be stored, read, listed and
/// deleted as the exact bytes given. No key is a prefix-free special case: several are
/// prefixes of others, which the listing cases rely on.
///
/// ```
/// assert!(hodor_testkit::AWKWARD_KEYS.contains(&"a/../b"));
/// assert!(hodor_testkit::AWKWARD_KEYS.iter().any(|k| k.len() == hodor_core::MAX_KEY_LEN));
/// ```
pub const AWKWARD_KEYS: &[&str] = &[
    // Paths: a driver that normalizes or splits paths loses these.
    "/",
    "//",
    "///",
    "/a",
    "a/",
    "a//b",
    "a/b",
    "a/./b",
    "a/../b",
    ".",
    "..",
    "...",
    "./a",
    "../a",
    "a.",
    "~",
    "~user",
    "C:\\",
    "\\\\?\\C:\\x",
    // Whitespace and control characters (only NUL is forbidden).
    " ",
    "  ",
    " a",
    "a ",
    "a b",
    "\t",
    "a\tb",
    "\n",
    "a\r\nb",
    "\u{1}",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    // Globs, regexes, shells, URLs and escapes: all data.
    "*",
    "**/*",
    "?",
    "*?[]\\",
    "[a-z]",
    "[!a]",
    "{a,b}",
    "^a$",
    "a|b",
    "(a)",
    "$HOME",
    "${x}",
    "`ls`",
    "%",
    "%2F",
    "%2f",
    "%00",
    "%%",
    "+",
    "a+b",
    "?a=b&c=d",
    "#frag",
    "a:b",
    "::",
    ";",
    "\\",
    "\\n",
    "\"",
    "'",
    "\"'\"",
    "<&>",
    "<script>",
    "&amp;",
    // Namespacing: a driver that prefixes keys with the store name must not let these
    // escape it.
    "*:*",
    "-",
    "--",
    "_",
    // Unicode: stored as given, never normalized, sorted by bytes.
    "é",
    "e\u{301}",
    "Å",
    "A\u{30a}",
    "ß",
    "SS",
    "İ",
    "ﬀ",
    "😀",
    "👩‍👩‍👧",
    "🇺🇳",
    "שלום",
    "مرحبا",
    "\u{202e}abc",
    "\u{feff}",
    "\u{200b}",
    "\u{fffd}",
    "\u{10ffff}",
    "日本語のキー",
    // Every printable ASCII character, in order.
    PRINTABLE_ASCII,
    // The longest key: 1024 bytes, ending in a four-byte character.
    LONGEST_KEY,
];

/// Every printable ASCII character, space to tilde, as one key.
pub const PRINTABLE_ASCII: &str = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ\
                                   [\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// A key of exactly [`MAX_KEY_LEN`] bytes: 1020 ASCII characters and an emoji, so a
/// driver that counts characters, or cuts at a byte limit, is caught.
pub const LONGEST_KEY: &str = match std::str::from_utf8(&LONGEST_KEY_BYTES) {
    Ok(key) => key,
    Err(_) => panic!("the longest key is built from valid UTF-8"),
};

// Evaluated at compile time: an index out of range fails the build, never a caller.
#[allow(clippy::indexing_slicing)]
const LONGEST_KEY_BYTES: [u8; MAX_KEY_LEN] = {
    let mut bytes = [b'k'; MAX_KEY_LEN];
    let emoji = "😀".as_bytes();
    let mut i = 0;
    while i < emoji.len() {
        bytes[MAX_KEY_LEN - emoji.len() + i] = emoji[i];
        i += 1;
    }
    // A few path and glob characters inside the long key too.
    bytes[100] = b'/';
    bytes[200] = b'*';
    bytes[300] = b' ';
    bytes
};

/// Keys the `Contract` rejects with `InvalidKey`, each with the rule it breaks.
pub const INVALID_KEYS: &[(&str, &str)] = &[
    ("", "empty"),
    (TOO_LONG_KEY, "1025 bytes, one over the limit"),
    ("a\0b", "contains NUL"),
    ("\0", "only NUL"),
];

/// One byte over the limit.
const TOO_LONG_KEY: &str = match std::str::from_utf8(&[b'x'; MAX_KEY_LEN + 1]) {
    Ok(key) => key,
    Err(_) => panic!("ASCII is valid UTF-8"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_hold_what_they_promise() {
        assert_eq!(LONGEST_KEY.len(), MAX_KEY_LEN);
        assert!(LONGEST_KEY.ends_with('😀'));
        assert_eq!(TOO_LONG_KEY.len(), MAX_KEY_LEN + 1);
        assert_eq!(PRINTABLE_ASCII.len(), 95);
        assert!(
            PRINTABLE_ASCII
                .bytes()
                .zip(b' '..=b'~')
                .all(|(a, b)| a == b)
        );
        let mut unique = AWKWARD_KEYS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), AWKWARD_KEYS.len(), "no key is listed twice");
        for key in AWKWARD_KEYS {
            assert!(
                !key.is_empty() && key.len() <= MAX_KEY_LEN && !key.contains('\0'),
                "{key:?}"
            );
        }
    }
}
