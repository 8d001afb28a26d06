//! How a contract's entries are laid out in the Redis keyspace.
//!
//! A contract named `N` owns exactly these Redis keys:
//!
//! | Redis key | type | holds |
//! |---|---|---|
//! | `hodor:{E}:v:<key>` | hash | the entry: `v` value, `m` modified (ns since the epoch), `e` deadline (ms, only with a TTL), `r` version |
//! | `hodor:{E}:i` | sorted set | every key of the contract, score 0, so the set is ordered by bytes |
//! | `hodor:{E}:x` | sorted set | the keys that have a TTL, scored by their deadline in ms |
//! | `hodor:{E}:n` | string | the contract's write counter: every write script takes the next number as the version (`r`) of what it writes |
//! | `hodor:{E}:s` | string | the change log's sequence: the `seq` of the last change |
//! | `hodor:{E}:w` | stream | the change log: one entry per change, id `<seq>-0`, fields `k` (the key) and `t` (`p`ut, `d`elete, `e`xpired) |
//!
//! `E` is the contract name with `%`, `{` and `}` percent-encoded. Because `E` contains no
//! `}`, the first `}` of a Redis key ends the name, so no two (name, key) pairs map to one
//! Redis key and no key, whatever its bytes, can reach into another contract's keys: the key
//! is only ever appended after the fixed `:v:` part. `{E}` is a Redis Cluster hash tag,
//! which puts all of one contract's keys in one slot, so its multi-key scripts are legal on
//! a cluster.

/// The Redis keys of one contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Namespace {
    value_prefix: Vec<u8>,
    index: Vec<u8>,
    expiry: Vec<u8>,
    versions: Vec<u8>,
    seq: Vec<u8>,
    log: Vec<u8>,
}

impl Namespace {
    pub(crate) fn new(name: &str) -> Namespace {
        let mut base = String::with_capacity(name.len() + 8);
        base.push_str("hodor:{");
        for c in name.chars() {
            match c {
                '%' => base.push_str("%25"),
                '{' => base.push_str("%7B"),
                '}' => base.push_str("%7D"),
                c => base.push(c),
            }
        }
        base.push('}');
        let with = |suffix: &str| {
            let mut key = Vec::with_capacity(base.len() + suffix.len());
            key.extend_from_slice(base.as_bytes());
            key.extend_from_slice(suffix.as_bytes());
            key
        };
        Namespace {
            value_prefix: with(":v:"),
            index: with(":i"),
            expiry: with(":x"),
            versions: with(":n"),
            seq: with(":s"),
            log: with(":w"),
        }
    }

    /// The Redis key of the hash holding `key`'s entry.
    pub(crate) fn value_key(&self, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value_prefix.len() + key.len());
        out.extend_from_slice(&self.value_prefix);
        out.extend_from_slice(key.as_bytes());
        out
    }

    /// The sorted set of all keys (score 0, ordered by bytes).
    pub(crate) fn index_key(&self) -> &[u8] {
        &self.index
    }

    /// The sorted set of keys with a TTL, scored by deadline.
    pub(crate) fn expiry_key(&self) -> &[u8] {
        &self.expiry
    }

    /// The change log's sequence counter.
    pub(crate) fn seq_key(&self) -> &[u8] {
        &self.seq
    }

    /// The change log, a stream.
    pub(crate) fn log_key(&self) -> &[u8] {
        &self.log
    }

    /// The counter that numbers the contract's writes: the versions of its entries. Never
    /// reset, so a key deleted and written again never gets an old version back.
    pub(crate) fn version_key(&self) -> &[u8] {
        &self.versions
    }
}

/// The `ZRANGE ... BYLEX` bounds selecting every member that starts with `prefix` and
/// comes strictly after `start_after` (when given): a page's range.
pub(crate) fn page_range(prefix: &str, start_after: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let (min, max) = lex_range(prefix);
    match start_after {
        Some(after) if after >= prefix => {
            let mut min = Vec::with_capacity(after.len() + 1);
            min.push(b'(');
            min.extend_from_slice(after.as_bytes());
            (min, max)
        }
        _ => (min, max),
    }
}

/// The `ZRANGE ... BYLEX` bounds selecting every member that starts with `prefix`.
///
/// Members are compared as bytes. Keys are UTF-8, which never contains the byte `0xFF`, so
/// every key starting with `prefix` sorts before `prefix + 0xFF`, and no other key does
/// between `prefix` and it. Nothing in the prefix is a pattern: `*` is just the byte `*`.
pub(crate) fn lex_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (b"-".to_vec(), b"+".to_vec());
    }
    let mut min = Vec::with_capacity(prefix.len() + 1);
    min.push(b'[');
    min.extend_from_slice(prefix.as_bytes());
    let mut max = Vec::with_capacity(prefix.len() + 2);
    max.push(b'(');
    max.extend_from_slice(prefix.as_bytes());
    max.push(0xFF);
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The name part of a value key: everything up to the first `}`, the cluster hash tag.
    fn tag(key: &[u8]) -> &[u8] {
        let open = key.iter().position(|&b| b == b'{').unwrap();
        let close = open + key[open..].iter().position(|&b| b == b'}').unwrap();
        &key[open + 1..close]
    }

    #[test]
    fn layout() {
        let ns = Namespace::new("sessions");
        assert_eq!(ns.value_key("a/b"), b"hodor:{sessions}:v:a/b");
        assert_eq!(ns.index_key(), b"hodor:{sessions}:i");
        assert_eq!(ns.expiry_key(), b"hodor:{sessions}:x");
        assert_eq!(ns.seq_key(), b"hodor:{sessions}:s");
        assert_eq!(ns.log_key(), b"hodor:{sessions}:w");
        assert_eq!(ns.version_key(), b"hodor:{sessions}:n");
    }

    #[test]
    fn a_page_starts_after_its_cursor_and_stays_in_its_prefix() {
        assert_eq!(page_range("", None), (b"-".to_vec(), b"+".to_vec()));
        assert_eq!(page_range("", Some("k")), (b"(k".to_vec(), b"+".to_vec()));
        assert_eq!(
            page_range("a/", Some("a/x")),
            (b"(a/x".to_vec(), b"(a/\xff".to_vec())
        );
        // A cursor before the prefix starts at the prefix.
        assert_eq!(
            page_range("b/", Some("a")),
            (b"[b/".to_vec(), b"(b/\xff".to_vec())
        );
    }

    #[test]
    fn braces_and_percent_in_names_are_encoded() {
        let ns = Namespace::new("a}b{c%7D");
        assert_eq!(ns.value_key("k"), b"hodor:{a%7Db%7Bc%257D}:v:k");
        assert_ne!(Namespace::new("a}"), Namespace::new("a%7D"));
    }

    #[test]
    fn every_key_of_a_contract_shares_its_hash_tag() {
        let ns = Namespace::new("we}ird{name");
        let tag_of_index = tag(ns.index_key()).to_vec();
        assert_eq!(tag(ns.expiry_key()), &tag_of_index[..]);
        assert_eq!(tag(ns.version_key()), &tag_of_index[..]);
        assert_eq!(tag(ns.seq_key()), &tag_of_index[..]);
        assert_eq!(tag(ns.log_key()), &tag_of_index[..]);
        for key in ["}", "{x}", "}}}{", "plain"] {
            assert_eq!(tag(&ns.value_key(key)), &tag_of_index[..]);
        }
    }

    #[test]
    fn lex_range_of_empty_prefix_is_everything() {
        assert_eq!(lex_range(""), (b"-".to_vec(), b"+".to_vec()));
        assert_eq!(lex_range("a*"), (b"[a*".to_vec(), b"(a*\xff".to_vec()));
    }

    proptest! {
        #[test]
        fn distinct_name_key_pairs_never_collide(
            n1 in "[a-c{}%:v]{1,6}", k1 in "[a-c{}%:vi]{1,6}",
            n2 in "[a-c{}%:v]{1,6}", k2 in "[a-c{}%:vi]{1,6}",
        ) {
            let (a, b) = (Namespace::new(&n1), Namespace::new(&n2));
            let same = (n1 == n2) && (k1 == k2);
            prop_assert_eq!(a.value_key(&k1) == b.value_key(&k2), same);
            // Value keys never equal another contract's (or the same contract's) index sets.
            prop_assert_ne!(a.value_key(&k1), b.index_key().to_vec());
            prop_assert_ne!(a.value_key(&k1), b.expiry_key().to_vec());
            prop_assert_ne!(a.value_key(&k1), b.version_key().to_vec());
            prop_assert_ne!(a.value_key(&k1), b.seq_key().to_vec());
            prop_assert_ne!(a.value_key(&k1), b.log_key().to_vec());
            prop_assert_eq!(a.log_key() == b.log_key(), n1 == n2);
            prop_assert_eq!(a.index_key() == b.index_key(), n1 == n2);
        }

        #[test]
        fn lex_range_selects_exactly_the_prefixed_keys(prefix in "\\PC{0,4}", key in "\\PC{0,6}") {
            let (min, max) = lex_range(&prefix);
            if prefix.is_empty() { return Ok(()); }
            let min = &min[1..];
            let max = &max[1..];
            let k = key.as_bytes();
            let inside = k >= min && k < max;
            prop_assert_eq!(inside, key.starts_with(&prefix));
        }
    }
}
