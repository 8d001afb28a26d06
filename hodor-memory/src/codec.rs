//! Value compression: the stored form of a value, and the tag that says which form it is.
//!
//! A compressed value is stored as its raw length (`u32`, little endian) followed by one LZ4
//! block. Which form an entry holds is recorded beside it ([`Codec`]), never guessed from
//! the bytes, so a value that happens to look like a compressed one is returned as given.

use std::cell::RefCell;

use bytes::Bytes;

use crate::config::CompressionConfig;

/// How an entry's value is stored. The discriminants are the byte persisted in log records
/// and snapshots, so they never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Codec {
    /// The value as given.
    Raw = 0,
    /// `raw length (u32 LE) ++ LZ4 block`.
    Lz4 = 1,
}

impl Codec {
    pub(crate) fn from_byte(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Lz4),
            _ => None,
        }
    }
}

/// Length of the raw-length prefix of a compressed value.
const PREFIX: usize = 4;

/// LZ4 cannot expand a block by more than this factor (a 255-byte run per length byte);
/// a stored raw length beyond it is corrupt, and is refused before anything is allocated.
const MAX_RATIO: usize = 255;

/// Why a stored value could not be decompressed.
#[derive(Debug, thiserror::Error)]
#[error("a compressed value is corrupt: {0}")]
pub(crate) struct CorruptValue(String);

/// Compresses values of a store configured with [`CompressionConfig`].
#[derive(Debug)]
pub(crate) struct Compressor {
    min_size: usize,
}

thread_local! {
    /// Compression output, reused: the stored value is then copied out at its exact length,
    /// so no entry keeps a worst-case-sized allocation.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Compressor {
    pub(crate) fn new(config: &CompressionConfig) -> Compressor {
        Compressor {
            min_size: usize::try_from(config.min_size).unwrap_or(usize::MAX),
        }
    }

    /// The stored form of `value`: compressed when it is at least `min_size` bytes and
    /// compression saves at least an eighth, as given otherwise.
    pub(crate) fn encode(&self, value: Bytes) -> (Bytes, Codec) {
        let raw = value.len();
        if raw < self.min_size || raw == 0 || u32::try_from(raw).is_err() {
            return (value, Codec::Raw);
        }
        let budget = raw - raw / 8;
        let stored = SCRATCH.with(|scratch| {
            let mut out = scratch.borrow_mut();
            let bound = PREFIX + lz4_flex::block::get_maximum_output_size(raw);
            out.clear();
            out.resize(bound, 0);
            let (prefix, block) = out.split_at_mut(PREFIX);
            prefix.copy_from_slice(&(raw as u32).to_le_bytes());
            let n = lz4_flex::block::compress_into(&value, block).ok()?;
            let total = PREFIX + n;
            if total > budget {
                return None;
            }
            let stored = out.get(..total).map(Bytes::copy_from_slice);
            // Keep the scratch buffer from pinning a huge allocation after one big value.
            if out.capacity() > 1 << 20 {
                *out = Vec::new();
            }
            stored
        });
        match stored {
            Some(stored) => (stored, Codec::Lz4),
            None => (value, Codec::Raw),
        }
    }
}

/// The value's own length, whatever form it is stored in.
pub(crate) fn logical_len(stored: &[u8], codec: Codec) -> u64 {
    match codec {
        Codec::Raw => stored.len() as u64,
        Codec::Lz4 => raw_len(stored).map_or(0, |n| n as u64),
    }
}

fn raw_len(stored: &[u8]) -> Option<usize> {
    let prefix: [u8; PREFIX] = stored.get(..PREFIX)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(prefix)).ok()
}

/// The value as it was given: the stored buffer itself when raw, a new buffer otherwise.
pub(crate) fn decode(stored: Bytes, codec: Codec) -> Result<Bytes, CorruptValue> {
    match codec {
        Codec::Raw => Ok(stored),
        Codec::Lz4 => decompress(&stored).map(Bytes::from),
    }
}

/// Decompresses a stored LZ4 value, checking its raw length against what the block can
/// expand to before allocating.
pub(crate) fn decompress(stored: &[u8]) -> Result<Vec<u8>, CorruptValue> {
    let raw = raw_len(stored).ok_or_else(|| CorruptValue("shorter than its header".into()))?;
    let block = stored.get(PREFIX..).unwrap_or_default();
    if raw > block.len().saturating_mul(MAX_RATIO) {
        return Err(CorruptValue(format!(
            "it claims {raw} bytes from a {}-byte block",
            block.len()
        )));
    }
    let mut out = vec![0; raw];
    match lz4_flex::block::decompress_into(block, &mut out) {
        Ok(n) if n == raw => Ok(out),
        Ok(n) => Err(CorruptValue(format!("{n} bytes decoded, {raw} expected"))),
        Err(e) => Err(CorruptValue(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lz4(min: u64) -> Compressor {
        Compressor::new(&CompressionConfig::lz4(min))
    }

    #[test]
    fn compressible_values_at_or_over_min_size_are_compressed_and_round_trip() {
        let c = lz4(100);
        let value = Bytes::from("abcd".repeat(25));
        let (stored, codec) = c.encode(value.clone());
        assert_eq!(codec, Codec::Lz4);
        assert!(stored.len() < 50, "{} bytes stored", stored.len());
        assert_eq!(logical_len(&stored, codec), 100);
        assert_eq!(decode(stored, codec).unwrap(), value);
    }

    #[test]
    fn small_empty_and_incompressible_values_stay_raw() {
        let c = lz4(100);
        let short = Bytes::from("abcd".repeat(24));
        assert_eq!(c.encode(short.clone()), (short, Codec::Raw));
        assert_eq!(lz4(0).encode(Bytes::new()).1, Codec::Raw);
        // Pseudo-random bytes: LZ4 saves nothing.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let noise = Bytes::from(noise);
        let (stored, codec) = c.encode(noise.clone());
        assert_eq!(codec, Codec::Raw);
        assert_eq!(stored, noise, "kept as given, the same buffer");
        assert_eq!(stored.as_ptr(), noise.as_ptr());
    }

    #[test]
    fn a_saving_under_an_eighth_keeps_the_value_raw() {
        // Half repetitive, half noise: LZ4 saves a little under half; with most of it noise
        // the saving falls under an eighth.
        let mut x = 7u64;
        let mut v: Vec<u8> = (0..1000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        v.extend(std::iter::repeat_n(b'a', 100));
        let (_, codec) = lz4(1).encode(Bytes::from(v.clone()));
        assert_eq!(
            codec,
            Codec::Raw,
            "a saving of about 9% is not worth a copy per get"
        );
        v.extend(std::iter::repeat_n(b'a', 400));
        let (_, codec) = lz4(1).encode(Bytes::from(v));
        assert_eq!(codec, Codec::Lz4);
    }

    #[test]
    fn a_raw_length_the_block_cannot_hold_is_refused_before_allocating() {
        let mut stored = u32::MAX.to_le_bytes().to_vec();
        stored.extend_from_slice(&[0x10, b'a']);
        let err = decompress(&stored).unwrap_err();
        assert!(err.to_string().contains("4294967295"), "{err}");
        assert!(decompress(&[1, 0]).is_err());
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        let (stored, _) = lz4(1).encode(Bytes::from("hello hello hello hello hello".repeat(9)));
        for cut in 0..stored.len() {
            let _ = decompress(&stored[..cut]);
        }
        for at in PREFIX..stored.len() {
            let mut bad = stored.to_vec();
            bad[at] ^= 0xff;
            if let Ok(v) = decompress(&bad) {
                assert_eq!(v.len(), raw_len(&stored).unwrap());
            }
        }
        // A raw length one short of what the block holds is refused too.
        let mut short = stored.to_vec();
        let n = raw_len(&stored).unwrap() as u32 - 1;
        short[..4].copy_from_slice(&n.to_le_bytes());
        assert!(decompress(&short).is_err());
    }
}
