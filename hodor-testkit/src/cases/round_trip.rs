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
