//! Values come back exactly as stored.

use hodor_core::Bytes;

use crate::ctx::{Ctx, Must, show};

/// Stores `value`, reads it back through get, get_many, stat and exists.
fn round_trip(t: &Ctx, value: Vec<u8>) {
    let c = t.open();
    let value = Bytes::from(value);
    c.set("k", value.clone(), None).must("set k");
    let got = c.get("k").must("get k");
    assert!(
        got == value,
        "get returned {}, stored {}",
        show(&got),
        show(&value)
    );
    let many = c.get_many(&["k"]).must("get_many [k]");
    assert!(
        many == [Some(value.clone())],
        "get_many returned a different value"
    );
    assert_eq!(
        c.stat("k").must("stat k").size,
        value.len() as u64,
        "stat size"
    );
    assert!(c.exists("k").must("exists k"), "exists after set");
    c.close().must("close");
}

pub(crate) fn round_trip_empty_value(t: &Ctx) {
    round_trip(t, Vec::new());
}

pub(crate) fn round_trip_one_byte_value(t: &Ctx) {
    round_trip(t, vec![0x5a]);
}

/// A pattern whose period (4093, a prime) divides no buffer size, with every 64 KiB chunk
/// numbered, so a dropped, repeated or reordered chunk shows up as a mismatch.
fn pattern(len: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..4093u32).map(|i| (i % 251) as u8).collect();
    let mut value = Vec::with_capacity(len);
    while value.len() < len {
        let n = block.len().min(len - value.len());
        value.extend(block.iter().take(n));
    }
    for (i, chunk) in value.chunks_mut(1 << 16).enumerate() {
        for (byte, mark) in chunk.iter_mut().zip((i as u32).to_le_bytes()) {
            *byte = mark;
        }
    }
    value
}

pub(crate) fn round_trip_one_mebibyte_value(t: &Ctx) {
    round_trip(t, pattern(1 << 20));
}

pub(crate) fn round_trip_sixteen_mebibyte_value(t: &Ctx) {
    round_trip(t, pattern(16 << 20));
}

pub(crate) fn round_trip_every_byte_value(t: &Ctx) {
    // Every byte, then every byte backwards: NUL, invalid UTF-8 (0x80, 0xff), CR and LF.
    let mut value: Vec<u8> = (0..=255).collect();
    value.extend((0..=255u8).rev());
    round_trip(t, value);
}

pub(crate) fn overwrite_replaces_the_value(t: &Ctx) {
    let c = t.open();
    c.set("k", "first", None).must("set k");
    c.set("k", "second", None).must("overwrite k");
    assert_eq!(c.get("k").must("get k"), "second");
    c.set("k", "third", None).must("overwrite k again");
    assert_eq!(c.get("k").must("get k"), "third");
    assert_eq!(c.list("").must("list"), ["k"], "one key after overwrites");
}

pub(crate) fn overwrite_with_a_shorter_value_leaves_no_tail(t: &Ctx) {
    let c = t.open();
    c.set("k", vec![b'x'; 1000], None).must("set k");
    c.set("k", "short", None).must("overwrite k");
    let got = c.get("k").must("get k");
    assert!(got == "short", "got {}", show(&got));
    assert_eq!(c.stat("k").must("stat k").size, 5, "stat size");
    c.set("k", "", None).must("overwrite k with empty");
    assert_eq!(c.get("k").must("get k"), "", "empty after overwrite");
    assert_eq!(c.stat("k").must("stat k").size, 0, "stat size");
}

pub(crate) fn json_values_round_trip(t: &Ctx) {
    let c = t.open();
    let value: (String, Vec<u32>, Option<bool>) = ("é \"q\" \u{0}".to_owned(), vec![1, 2], None);
    c.set_json("k", &value, None).must("set_json k");
    let back: (String, Vec<u32>, Option<bool>) = c.get_json("k").must("get_json k");
    assert_eq!(back, value);
    c.set("raw", "not json", None).must("set raw");
    crate::ctx::assert_err!(
        c.get_json::<u32>("raw"),
        hodor_core::Error::InvalidInput { .. },
        "get_json of a value that is not JSON"
    );
}

/// Values that text-mode code damages: line endings converted, trailing newlines or spaces
/// trimmed, a BOM or Ctrl-Z eaten, numbers and JSON re-encoded, NUL ending a C string.
const TEXT_VALUES: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\r\n",
    b"\n\r",
    b"line\n",
    b"line\r\n",
    b"line\n\n",
    b"a\r\nb",
    b"a\nb\r\nc\rd",
    b"\n\nleading",
    b" ",
    b"  padded  ",
    b"\t",
    b"tab\t",
    b"\x0b\x0c",
    b"\xef\xbb\xbfbom",
    b"\x1a",
    b"text\x1a",
    b"\0",
    b"nul\0after",
    b"\0\0\0",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\xff\xfe\x00a",
    b"007",
    b"+7",
    b"-0",
    b"0.10",
    b"1e3",
    b"0x1F",
    b"NaN",
    b"null",
    b"true",
    b"\"quoted\"",
    b"{}",
    b"[1, 2]",
    b"\\n",
    b"%0A",
    b"&#10;",
];

pub(crate) fn text_values_round_trip_unchanged(t: &Ctx) {
    let c = t.open();
    let keys: Vec<String> = (0..TEXT_VALUES.len())
        .map(|i| format!("text/{i:02}"))
        .collect();
    // Half through set, half through set_many.
    let (by_set, by_many) = keys.split_at(keys.len() / 2);
    for (key, value) in by_set.iter().zip(TEXT_VALUES) {
        c.set(key, Bytes::from_static(value), None)
            .must(format_args!("set {key}"));
    }
    let rest = TEXT_VALUES.iter().skip(by_set.len());
    c.set_many(
        by_many
            .iter()
            .zip(rest)
            .map(|(k, v)| (k.as_str(), Bytes::from_static(v))),
        None,
    )
    .must("set_many");
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let many = c.get_many(&refs).must("get_many");
    for ((key, value), got_many) in keys.iter().zip(TEXT_VALUES).zip(&many) {
        let got = c.get(key).must(format_args!("get {key}"));
        assert!(
            got == *value,
            "get {key}: stored {}, read back {}",
            show(value),
            show(&got)
        );
        assert!(
            got_many.as_deref() == Some(*value),
            "get_many, {key}: stored {}, read back {:?}",
            show(value),
            got_many.as_deref().map(show)
        );
        assert_eq!(
            c.stat(key).must("stat").size,
            value.len() as u64,
            "stat size of {key}, holding {}",
            show(value)
        );
    }
}
