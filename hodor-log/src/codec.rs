//! How a batch's bytes are stored: raw JSON lines, or lz4-compressed (the lz4 frame
//! format, with a content checksum, so `lz4 -d` reads it). The codec is named by the key's
//! suffix and never guessed from the value.

/// The stored form of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// JSON lines as they are: `.jsonl`.
    Raw,
    /// An lz4 frame of JSON lines: `.jsonl.lz4`. Always recognised in keys; written and
    /// read only with the `lz4` feature.
    Lz4,
}

/// How batches are compressed before they are stored.
///
/// Compressed batches are written as lz4 frames under keys ending in `.jsonl.lz4`; a batch
/// that would not get smaller is stored raw (`.jsonl`). [`read`](crate::read) handles both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Store JSON lines as they are.
    #[default]
    None,
    /// lz4 (pure Rust, `lz4_flex`), the lz4 frame format with a content checksum.
    #[cfg(feature = "lz4")]
    Lz4,
}

impl Codec {
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Codec::Raw => ".jsonl",
            Codec::Lz4 => ".jsonl.lz4",
        }
    }

    pub(crate) fn from_suffix(suffix: &str) -> Option<Codec> {
        match suffix {
            ".jsonl" => Some(Codec::Raw),
            ".jsonl.lz4" => Some(Codec::Lz4),
            _ => None,
        }
    }
}

/// Encodes `raw` as `compression` asks; returns the codec actually used and the bytes.
pub(crate) fn encode(compression: Compression, raw: &[u8]) -> (Codec, Vec<u8>) {
    match compression {
        Compression::None => (Codec::Raw, raw.to_vec()),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => match lz4::compress(raw) {
            Some(packed) if packed.len() < raw.len() => (Codec::Lz4, packed),
            _ => (Codec::Raw, raw.to_vec()),
        },
    }
}

/// Decodes a stored batch. Compressed input is never inflated past `max_raw` bytes.
pub(crate) fn decode(codec: Codec, stored: &[u8], max_raw: usize) -> Result<Vec<u8>, String> {
    match codec {
        Codec::Raw => Ok(stored.to_vec()),
        #[cfg(feature = "lz4")]
        Codec::Lz4 => lz4::decompress(stored, max_raw),
        #[cfg(not(feature = "lz4"))]
        Codec::Lz4 => {
            let _ = (stored, max_raw);
            Err(
                "the batch is lz4-compressed; build hodor-log with its `lz4` feature to read it"
                    .to_owned(),
            )
        }
    }
}

#[cfg(feature = "lz4")]
mod lz4 {
    use std::io::{Read, Write};

    pub(super) fn compress(raw: &[u8]) -> Option<Vec<u8>> {
        let info = lz4_flex::frame::FrameInfo::new().content_checksum(true);
        let mut encoder =
            lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::with_capacity(raw.len() / 2));
        encoder.write_all(raw).ok()?;
        encoder.finish().ok()
    }

    pub(super) fn decompress(stored: &[u8], max_raw: usize) -> Result<Vec<u8>, String> {
        let decoder = lz4_flex::frame::FrameDecoder::new(stored);
        let mut out = Vec::new();
        let limit = u64::try_from(max_raw).unwrap_or(u64::MAX).saturating_add(1);
        decoder
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| format!("the lz4 batch is corrupt: {e}"))?;
        if out.len() > max_raw {
            return Err(format!(
                "the lz4 batch inflates past {max_raw} bytes, more than a batch can hold"
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_stored_as_is() {
        let (codec, bytes) = encode(Compression::None, b"{}\n");
        assert_eq!(codec, Codec::Raw);
        assert_eq!(decode(codec, &bytes, 3).unwrap(), b"{}\n");
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_round_trips_and_falls_back_to_raw_when_it_does_not_pay() {
        let lines = b"{\"level\":\"INFO\",\"message\":\"hello\"}\n".repeat(100);
        let (codec, packed) = encode(Compression::Lz4, &lines);
        assert_eq!(codec, Codec::Lz4);
        assert!(packed.len() < lines.len() / 4);
        assert_eq!(decode(codec, &packed, lines.len()).unwrap(), lines);

        let (codec, _) = encode(Compression::Lz4, b"x");
        assert_eq!(codec, Codec::Raw);
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_rejects_corruption_and_bombs() {
        let lines = b"{\"message\":\"hello\"}\n".repeat(1000);
        let (_, packed) = encode(Compression::Lz4, &lines);
        assert!(decode(Codec::Lz4, &packed, lines.len() - 1).is_err());
        let mut broken = packed.clone();
        let middle = broken.len() / 2;
        broken[middle] ^= 0xff;
        assert!(decode(Codec::Lz4, &broken, lines.len()).is_err());
        assert!(decode(Codec::Lz4, b"not lz4 at all", 1 << 20).is_err());
    }

    #[cfg(not(feature = "lz4"))]
    #[test]
    fn without_the_feature_lz4_is_a_clear_error() {
        let e = decode(Codec::Lz4, b"", 10).unwrap_err();
        assert!(e.contains("`lz4` feature"), "{e}");
    }
}
