//! Writing JSON text by hand: records are formatted on the application's threads, where
//! every nanosecond counts, and their shape is fixed.

use std::fmt;

/// Whether `b` must be escaped inside a JSON string.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends `s` escaped for the inside of a JSON string (no quotes).
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                let hex = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
                out.extend_from_slice(b"\\u00");
                out.push(hex(b >> 4));
                out.push(hex(b & 0xf));
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn string_into(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// A `fmt::Write` that escapes what it is given into a buffer and stops storing once the
/// buffer reaches `limit` bytes, so a huge `Debug` output costs bounded memory.
pub(crate) struct Escaper<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) limit: usize,
    /// Set once something was left out.
    pub(crate) overflowed: bool,
}

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.len() >= self.limit {
            self.overflowed |= !s.is_empty();
            return Ok(());
        }
        escape_into(self.out, s);
        Ok(())
    }
}

/// The longest prefix of escaped JSON string content `text` that is at most `max` bytes and
/// ends neither inside an escape sequence nor inside a UTF-8 character.
pub(crate) fn safe_cut(text: &[u8], max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut i = 0;
    let mut cut = 0;
    while i < text.len() {
        let len = match text.get(i) {
            Some(b'\\') if text.get(i + 1) == Some(&b'u') => 6,
            Some(b'\\') => 2,
            Some(&b) if b < 0x80 => 1,
            Some(&b) if b >= 0xf0 => 4,
            Some(&b) if b >= 0xe0 => 3,
            Some(_) => 2,
            None => 1,
        };
        if i + len > max {
            break;
        }
        i += len;
        cut = i;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        string_into(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_what_json_requires_and_round_trips() {
        for s in [
            "plain",
            "",
            "quote \" backslash \\ slash /",
            "new\nline\r\ttab",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "emoji 🦀 and ü",
        ] {
            let text = escaped(s);
            let back: String = serde_json::from_str(&text).unwrap();
            assert_eq!(back, s, "{text}");
        }
        assert_eq!(escaped("a\u{1}"), r#""a\u0001""#);
    }

    #[test]
    fn the_escaper_stops_at_its_limit() {
        let mut out = Vec::new();
        let mut e = Escaper {
            out: &mut out,
            limit: 10,
            overflowed: false,
        };
        for _ in 0..1000 {
            write!(e, "0123456789").unwrap();
        }
        assert!(e.overflowed);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn cuts_never_split_escapes_or_characters() {
        let mut text = Vec::new();
        escape_into(&mut text, "ab\ncd\u{1}é🦀x");
        let full = String::from_utf8(text.clone()).unwrap();
        for max in 0..=text.len() {
            let cut = safe_cut(&text, max);
            assert!(cut <= max);
            let part = std::str::from_utf8(&text[..cut]).expect("a char boundary");
            let json = format!("\"{part}\"");
            let decoded: String =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            let original: String = serde_json::from_str(&format!("\"{full}\"")).unwrap();
            assert!(original.starts_with(&decoded));
        }
    }
}
