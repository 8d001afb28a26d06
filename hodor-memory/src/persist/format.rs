//! The on-disk format: one record framing for log segments and snapshots.
//!
//! ```text
//! record  = crc32c:u32 | payload_len:u32 | seq:u64 | kind:u8 | payload
//! ```
//!
//! All integers are little endian. The CRC-32C covers everything after itself (length,
//! sequence number, kind and payload), so a torn write, a bit flip or a stale tail shows as
//! a mismatch. It starts from a seed derived from a random salt kept in the file's first
//! record (which itself uses seed 0): a record stored inside a user's value, or copied from
//! another file, never passes for a record of this file. A reader checks the length against
//! what is left of the file before it allocates. Payloads by kind:
//!
//! | kind | payload |
//! |---|---|
//! | `SegmentHeader` | `"hodor-log"`, version:u32, segment:u64, salt:u64 |
//! | `Put` | codec:u8, modified:u64, expires:u64, key_len:u16, key, value |
//! | `Delete`, `Expire`, `Evict` | key |
//! | `Clear` | nothing |
//! | `BatchPart`, `Batch` | ops: (kind:u8, seq:u64, len:u32, payload)* |
//! | `SnapshotHeader` | `"hodor-snapshot"`, version:u32, first_segment:u64, created:u64, salt:u64 |
//! | `SnapshotEnd` | entries:u64 |
//!
//! A `set_many` or `delete_many` is one `Batch` record, or `BatchPart` records ending in a
//! `Batch` when it is too large for one: recovery applies a batch only once its `Batch`
//! record is read, so a crash never leaves part of one. Times are nanoseconds since the
//! Unix epoch; `expires` 0 means never. A value's `codec` says how it is stored (see
//! `crate::codec`).
//!
//! LevelDB frames its log the same way (length, type and a CRC-32C per record, a batch as
//! one record); fjall brackets a batch with start and end markers instead.

use hodor_core::MAX_KEY_LEN;

use crate::codec::Codec;

/// Bytes before a record's payload.
pub(crate) const HEADER_LEN: usize = 17;
/// Bytes of a `Put` payload before the key.
pub(crate) const PUT_META_LEN: usize = 19;
/// Bytes of a batch op before its payload.
const OP_HEADER_LEN: usize = 13;
/// The largest payload the length field holds.
pub(crate) const MAX_PAYLOAD: u64 = u32::MAX as u64;
/// A batch larger than this is written as several `BatchPart` records.
pub(crate) const BATCH_PART_BYTES: usize = 16 << 20;

const LOG_MAGIC: &[u8] = b"hodor-log";
/// Bytes of a segment's header record.
pub(crate) const SEGMENT_HEADER_LEN: u64 = (HEADER_LEN + LOG_MAGIC.len() + 4 + 8 + 8) as u64;
const SNAPSHOT_MAGIC: &[u8] = b"hodor-snapshot";
/// Version of both file formats; a reader refuses any other.
pub(crate) const VERSION: u32 = 1;

/// A record's kind. The discriminants are on disk, so they never change; 0 is not a kind,
/// so a zero-filled region (a common shape of a torn write) never parses as a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    SegmentHeader = 1,
    Put = 2,
    Delete = 3,
    Expire = 4,
    Evict = 5,
    Clear = 6,
    BatchPart = 7,
    Batch = 8,
    SnapshotHeader = 9,
    SnapshotEnd = 10,
}

impl Kind {
    pub(crate) fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::SegmentHeader,
            2 => Kind::Put,
            3 => Kind::Delete,
            4 => Kind::Expire,
            5 => Kind::Evict,
            6 => Kind::Clear,
            7 => Kind::BatchPart,
            8 => Kind::Batch,
            9 => Kind::SnapshotHeader,
            10 => Kind::SnapshotEnd,
            _ => return None,
        })
    }
}

/// A record's fixed header, parsed but not yet checked against its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    crc: u32,
    pub(crate) len: u32,
    pub(crate) seq: u64,
    pub(crate) kind: Kind,
}

impl Header {
    /// Parses a header; `None` when the kind is unknown.
    pub(crate) fn parse(bytes: &[u8; HEADER_LEN]) -> Option<Header> {
        let [
            c0,
            c1,
            c2,
            c3,
            l0,
            l1,
            l2,
            l3,
            s0,
            s1,
            s2,
            s3,
            s4,
            s5,
            s6,
            s7,
            kind,
        ] = *bytes;
        Some(Header {
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            seq: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            kind: Kind::from_byte(kind)?,
        })
    }

    /// Whether `payload` is the one this header was written with, in a file with `seed`.
    pub(crate) fn matches(&self, seed: u32, bytes: &[u8; HEADER_LEN], payload: &[u8]) -> bool {
        let crc = crc32c::crc32c_append(seed, bytes.get(4..).unwrap_or_default());
        crc32c::crc32c_append(crc, payload) == self.crc
    }
}

/// The CRC seed of a file with this salt.
pub(crate) fn seed(salt: u64) -> u32 {
    crc32c::crc32c(&salt.to_le_bytes())
}

/// A fresh random salt for a new file.
pub(crate) fn new_salt() -> u64 {
    use std::hash::BuildHasher;
    // RandomState is keyed from the OS's randomness once per process and varied per
    // instance; mixing in the time keeps two files of one instant apart.
    std::hash::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// The header of a record with the given payload pieces, CRC included. Computed before the
/// caller takes the log's lock, so only a copy happens under it.
pub(crate) fn frame(seed: u32, kind: Kind, seq: u64, parts: &[&[u8]]) -> Option<[u8; HEADER_LEN]> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len).ok()?;
    let mut h = [0u8; HEADER_LEN];
    let [_, _, _, _, rest @ ..] = &mut h;
    let (l, rest) = rest.split_at_mut(4);
    let (s, k) = rest.split_at_mut(8);
    l.copy_from_slice(&len.to_le_bytes());
    s.copy_from_slice(&seq.to_le_bytes());
    if let [k] = k {
        *k = kind as u8;
    }
    let mut crc = crc32c::crc32c_append(seed, h.get(4..).unwrap_or_default());
    for part in parts {
        crc = crc32c::crc32c_append(crc, part);
    }
    if let Some(c) = h.get_mut(..4) {
        c.copy_from_slice(&crc.to_le_bytes());
    }
    Some(h)
}

/// Appends a whole record to `out`; `false` if the payload is too large for the format.
pub(crate) fn append(out: &mut Vec<u8>, seed: u32, kind: Kind, seq: u64, parts: &[&[u8]]) -> bool {
    let Some(header) = frame(seed, kind, seq, parts) else {
        return false;
    };
    out.extend_from_slice(&header);
    for part in parts {
        out.extend_from_slice(part);
    }
    true
}

/// The bytes of a `Put` payload before the key.
pub(crate) fn put_meta(
    codec: Codec,
    modified: u64,
    expires: u64,
    key_len: usize,
) -> [u8; PUT_META_LEN] {
    let mut m = [0u8; PUT_META_LEN];
    let (c, rest) = m.split_at_mut(1);
    let (md, rest) = rest.split_at_mut(8);
    let (ex, kl) = rest.split_at_mut(8);
    if let [c] = c {
        *c = codec as u8;
    }
    md.copy_from_slice(&modified.to_le_bytes());
    ex.copy_from_slice(&expires.to_le_bytes());
    // Keys are at most 1024 bytes (checked by the Contract).
    kl.copy_from_slice(&(key_len.min(u16::MAX as usize) as u16).to_le_bytes());
    m
}

/// Appends one op of a batch to `out`.
pub(crate) fn append_op(out: &mut Vec<u8>, kind: Kind, seq: u64, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(kind as u8);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(len.min(u32::MAX as usize) as u32).to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}

pub(crate) fn segment_header_payload(segment: u64, salt: u64) -> Vec<u8> {
    let mut p = LOG_MAGIC.to_vec();
    p.extend_from_slice(&VERSION.to_le_bytes());
    p.extend_from_slice(&segment.to_le_bytes());
    p.extend_from_slice(&salt.to_le_bytes());
    p
}

pub(crate) fn snapshot_header_payload(first_segment: u64, created: u64, salt: u64) -> Vec<u8> {
    let mut p = SNAPSHOT_MAGIC.to_vec();
    p.extend_from_slice(&VERSION.to_le_bytes());
    p.extend_from_slice(&first_segment.to_le_bytes());
    p.extend_from_slice(&created.to_le_bytes());
    p.extend_from_slice(&salt.to_le_bytes());
    p
}

/// A `Put` as read from disk, borrowing the record's payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PutRef<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: &'a [u8],
    pub(crate) codec: Codec,
    pub(crate) modified: u64,
    pub(crate) expires: u64,
}

/// A decoded record payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Payload<'a> {
    SegmentHeader {
        segment: u64,
        salt: u64,
    },
    Put(PutRef<'a>),
    /// `Delete`, `Expire` or `Evict`.
    Remove {
        kind: Kind,
        key: &'a str,
    },
    Clear,
    /// `Batch` (`last`) or `BatchPart`; iterate the ops with [`ops`].
    Batch {
        last: bool,
        ops: &'a [u8],
    },
    SnapshotHeader {
        first_segment: u64,
        created: u64,
        salt: u64,
    },
    SnapshotEnd {
        entries: u64,
    },
}

/// One op of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Op<'a> {
    pub(crate) seq: u64,
    pub(crate) payload: Payload<'a>,
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn key(bytes: &[u8]) -> Result<&str, String> {
    let key = std::str::from_utf8(bytes).map_err(|_| "a key is not UTF-8".to_owned())?;
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('\0') {
        return Err(format!("a key of {} bytes breaks the key rules", key.len()));
    }
    Ok(key)
}

/// Decodes a payload whose CRC matched; `Err` says why it still makes no sense.
pub(crate) fn decode(kind: Kind, p: &[u8]) -> Result<Payload<'_>, String> {
    let short = || format!("a {kind:?} record is too short");
    Ok(match kind {
        Kind::SegmentHeader => {
            if p.get(..LOG_MAGIC.len()) != Some(LOG_MAGIC) {
                return Err("not a hodor log segment".to_owned());
            }
            let version = u32_at(p, LOG_MAGIC.len()).ok_or_else(short)?;
            if version != VERSION {
                return Err(format!(
                    "log format version {version}, this build reads {VERSION}"
                ));
            }
            Payload::SegmentHeader {
                segment: u64_at(p, LOG_MAGIC.len() + 4).ok_or_else(short)?,
                salt: u64_at(p, LOG_MAGIC.len() + 12).ok_or_else(short)?,
            }
        }
        Kind::Put => {
            let meta = p.get(..PUT_META_LEN).ok_or_else(short)?;
            let codec = meta
                .first()
                .and_then(|&c| Codec::from_byte(c))
                .ok_or_else(|| "unknown value codec".to_owned())?;
            let key_len = meta
                .get(17..19)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_le_bytes)
                .ok_or_else(short)? as usize;
            let key_bytes = p
                .get(PUT_META_LEN..PUT_META_LEN + key_len)
                .ok_or_else(short)?;
            Payload::Put(PutRef {
                key: key(key_bytes)?,
                value: p.get(PUT_META_LEN + key_len..).unwrap_or_default(),
                codec,
                modified: u64_at(meta, 1).ok_or_else(short)?,
                expires: u64_at(meta, 9).ok_or_else(short)?,
            })
        }
        Kind::Delete | Kind::Expire | Kind::Evict => Payload::Remove { kind, key: key(p)? },
        Kind::Clear => Payload::Clear,
        Kind::BatchPart | Kind::Batch => {
            // Check the op framing now, so applying a batch can never fail half-way.
            for op in ops(p) {
                op?;
            }
            Payload::Batch {
                last: kind == Kind::Batch,
                ops: p,
            }
        }
        Kind::SnapshotHeader => {
            if p.get(..SNAPSHOT_MAGIC.len()) != Some(SNAPSHOT_MAGIC) {
                return Err("not a hodor snapshot".to_owned());
            }
            let version = u32_at(p, SNAPSHOT_MAGIC.len()).ok_or_else(short)?;
            if version != VERSION {
                return Err(format!(
                    "snapshot format version {version}, this build reads {VERSION}"
                ));
            }
            let at = SNAPSHOT_MAGIC.len() + 4;
            Payload::SnapshotHeader {
                first_segment: u64_at(p, at).ok_or_else(short)?,
                created: u64_at(p, at + 8).ok_or_else(short)?,
                salt: u64_at(p, at + 16).ok_or_else(short)?,
            }
        }
        Kind::SnapshotEnd => Payload::SnapshotEnd {
            entries: u64_at(p, 0).ok_or_else(short)?,
        },
    })
}

/// The ops of a batch payload, each decoded; only `Put` and `Delete` may appear.
pub(crate) fn ops(mut p: &[u8]) -> impl Iterator<Item = Result<Op<'_>, String>> {
    std::iter::from_fn(move || {
        if p.is_empty() {
            return None;
        }
        let step = (|| {
            let kind = p
                .first()
                .and_then(|&k| Kind::from_byte(k))
                .filter(|k| matches!(k, Kind::Put | Kind::Delete))
                .ok_or_else(|| "a batch holds an op of unknown kind".to_owned())?;
            let seq = u64_at(p, 1).ok_or("a batch op is cut short")?;
            let len = u32_at(p, 9).ok_or("a batch op is cut short")? as usize;
            let body = p
                .get(OP_HEADER_LEN..OP_HEADER_LEN.saturating_add(len))
                .ok_or("a batch op is longer than its batch")?;
            let rest = p.get(OP_HEADER_LEN + len..).unwrap_or_default();
            Ok::<_, String>((
                Op {
                    seq,
                    payload: decode(kind, body)?,
                },
                rest,
            ))
        })();
        match step {
            Ok((op, rest)) => {
                p = rest;
                Some(Ok(op))
            }
            Err(e) => {
                p = &[];
                Some(Err(e))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: u32 = 0x1234_5678;

    fn parse(bytes: &[u8]) -> (Header, &[u8]) {
        let h: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
        let header = Header::parse(&h).unwrap();
        let payload = &bytes[HEADER_LEN..];
        assert_eq!(payload.len(), header.len as usize);
        assert!(header.matches(SEED, &h, payload));
        (header, payload)
    }

    #[test]
    fn a_put_round_trips_and_any_flipped_bit_breaks_its_crc() {
        let mut out = Vec::new();
        let meta = put_meta(Codec::Lz4, 11, 22, 3);
        assert!(append(
            &mut out,
            SEED,
            Kind::Put,
            7,
            &[&meta, b"key", b"value"]
        ));
        let (h, payload) = parse(&out);
        assert_eq!((h.seq, h.kind), (7, Kind::Put));
        assert_eq!(
            decode(h.kind, payload).unwrap(),
            Payload::Put(PutRef {
                key: "key",
                value: b"value",
                codec: Codec::Lz4,
                modified: 11,
                expires: 22
            })
        );
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let h: [u8; HEADER_LEN] = bad[..HEADER_LEN].try_into().unwrap();
            let ok = Header::parse(&h).is_some_and(|header| {
                header.len as usize == bad.len() - HEADER_LEN
                    && header.matches(SEED, &h, &bad[HEADER_LEN..])
            });
            assert!(!ok, "flipping bit {bit} went unnoticed");
        }
        // The same bytes in a file with another salt are not a record of that file.
        let h: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().unwrap();
        let header = Header::parse(&h).unwrap();
        assert!(!header.matches(seed(1), &h, &out[HEADER_LEN..]));
        assert_ne!(seed(new_salt()), seed(new_salt()));
    }

    #[test]
    fn batches_hold_puts_and_deletes_with_their_own_sequence_numbers() {
        let mut ops_bytes = Vec::new();
        let meta = put_meta(Codec::Raw, 1, 0, 1);
        append_op(&mut ops_bytes, Kind::Put, 10, &[&meta, b"a", b"1"]);
        append_op(&mut ops_bytes, Kind::Delete, 11, &[b"b"]);
        let mut out = Vec::new();
        append(&mut out, SEED, Kind::Batch, 10, &[&ops_bytes]);
        let (h, payload) = parse(&out);
        let Payload::Batch { last: true, ops: o } = decode(h.kind, payload).unwrap() else {
            panic!()
        };
        let decoded: Vec<Op> = ops(o).map(Result::unwrap).collect();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[1].seq, 11);
        assert_eq!(
            decoded[1].payload,
            Payload::Remove {
                kind: Kind::Delete,
                key: "b"
            }
        );
        // A cut op framing is refused when the batch is decoded, before anything applies.
        assert!(decode(Kind::Batch, &ops_bytes[..ops_bytes.len() - 1]).is_err());
        let mut bad_kind = ops_bytes.clone();
        bad_kind[0] = Kind::Clear as u8;
        assert!(decode(Kind::Batch, &bad_kind).is_err());
    }

    #[test]
    fn invalid_keys_codecs_and_headers_are_refused() {
        assert!(decode(Kind::Delete, b"").is_err());
        assert!(decode(Kind::Delete, b"a\0b").is_err());
        assert!(decode(Kind::Delete, &[0xff, 0xfe]).is_err());
        assert!(decode(Kind::Delete, &vec![b'k'; MAX_KEY_LEN + 1]).is_err());
        let mut meta = put_meta(Codec::Raw, 0, 0, 1).to_vec();
        meta[0] = 9;
        meta.push(b'k');
        assert!(decode(Kind::Put, &meta).is_err());
        assert!(decode(Kind::Put, &put_meta(Codec::Raw, 0, 0, 5)).is_err());
        assert!(decode(Kind::SegmentHeader, b"hodor-lag\x01\0\0\0").is_err());
        let mut wrong_version = segment_header_payload(3, 9);
        wrong_version[LOG_MAGIC.len()] = 2;
        assert!(decode(Kind::SegmentHeader, &wrong_version).is_err());
        assert_eq!(
            decode(Kind::SegmentHeader, &segment_header_payload(3, 9)).unwrap(),
            Payload::SegmentHeader {
                segment: 3,
                salt: 9
            }
        );
        assert_eq!(
            decode(Kind::SnapshotHeader, &snapshot_header_payload(4, 5, 6)).unwrap(),
            Payload::SnapshotHeader {
                first_segment: 4,
                created: 5,
                salt: 6
            }
        );
        assert!(
            Header::parse(&[0; HEADER_LEN]).is_none(),
            "zeros are not a record"
        );
        let mut header = Vec::new();
        append(
            &mut header,
            0,
            Kind::SegmentHeader,
            0,
            &[&segment_header_payload(1, 2)],
        );
        assert_eq!(header.len() as u64, SEGMENT_HEADER_LEN);
    }
}
