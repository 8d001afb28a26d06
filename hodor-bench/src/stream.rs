//! Pre-generated operation streams.
//!
//! A stream holds its keys' bytes inline, one after another, so replaying it reads memory
//! sequentially: the harness adds no cache misses of its own, and the timed loop does
//! nothing but call the store.

use std::time::Duration;

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `get`; the value is cloned out.
    Get,
    /// `set`, with the op's value and TTL.
    Set,
    /// `delete`.
    Delete,
}

/// One operation.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    start: u32,
    len: u16,
    /// TTL in milliseconds, 0 for none.
    ttl_ms: u32,
    /// The key's number, for workloads that track keys.
    pub key: u32,
    /// Which value of the pool a `set` stores.
    pub value: u32,
    /// What it does.
    pub kind: OpKind,
}

impl Op {
    /// The TTL a `set` passes.
    #[inline]
    pub fn ttl(&self) -> Option<Duration> {
        (self.ttl_ms != 0).then(|| Duration::from_millis(u64::from(self.ttl_ms)))
    }
}

/// A sequence of operations with their keys inline.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    text: String,
    ops: Vec<Op>,
}

impl Stream {
    /// An empty stream with room for `ops` operations.
    pub fn with_capacity(ops: usize) -> Stream {
        Stream {
            text: String::with_capacity(ops * 24),
            ops: Vec::with_capacity(ops),
        }
    }

    /// Appends an operation on `key` (number `key_no`).
    pub fn push(&mut self, kind: OpKind, key: &str, key_no: u64, value: usize, ttl_ms: u32) {
        let start = self.text.len();
        self.text.push_str(key);
        self.ops.push(Op {
            start: u32::try_from(start).expect("streams stay below 4 GiB of keys"),
            len: u16::try_from(key.len()).expect("keys are short"),
            ttl_ms,
            key: key_no as u32,
            value: value as u32,
            kind,
        });
    }

    /// The operations.
    #[inline]
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The key of `op`, which must come from this stream.
    #[inline]
    pub fn key(&self, op: &Op) -> &str {
        let start = op.start as usize;
        self.text
            .get(start..start + usize::from(op.len))
            .unwrap_or_default()
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// `true` when there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Splits the stream round-robin into `parts` streams (one per thread).
    pub fn split(&self, parts: usize) -> Vec<Stream> {
        let parts = parts.max(1);
        let mut out: Vec<Stream> = (0..parts)
            .map(|_| Stream::with_capacity(self.len() / parts + 1))
            .collect();
        for (i, op) in self.ops.iter().enumerate() {
            out[i % parts].push(
                op.kind,
                self.key(op),
                u64::from(op.key),
                op.value as usize,
                op.ttl_ms,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_back_and_split_keeps_every_op() {
        let mut s = Stream::with_capacity(4);
        s.push(OpKind::Get, "alpha", 1, 0, 0);
        s.push(OpKind::Set, "beta", 2, 7, 30);
        s.push(OpKind::Delete, "gamma", 3, 0, 0);
        let keys: Vec<&str> = s.ops().iter().map(|op| s.key(op)).collect();
        assert_eq!(keys, ["alpha", "beta", "gamma"]);
        assert_eq!(s.ops()[1].ttl(), Some(Duration::from_millis(30)));
        assert_eq!(s.ops()[0].ttl(), None);
        let parts = s.split(2);
        assert_eq!(parts[0].len() + parts[1].len(), 3);
        assert_eq!(parts[1].key(&parts[1].ops()[0]), "beta");
        assert_eq!(parts[1].ops()[0].value, 7);
    }
}
