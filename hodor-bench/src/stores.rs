//! The stores under test, behind one small [`Store`] trait, each called the way its users
//! call it.
//!
//! Every store keeps its own copy of the key (hodor in its key allocation, the others in a
//! `Box<str>`), stores values as [`Bytes`] and hands out a clone on every `get`, so each
//! operation does the same work everywhere. Each library keeps its default hasher and shard
//! count: that is what its users get.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use hodor_core::clock::Clock;
use hodor_core::{Contract, Driver};
use hodor_memory::{MemoryConfig, MemoryDriver};
use parking_lot::RwLock;
use serde::Serialize;
use serde_json::{Value as Json, json};

/// What the workloads call. Methods take `&self`; a store that can be shared between threads
/// is also `Sync`.
pub trait Store {
    /// A clone of the live value under `key`.
    fn get(&self, key: &str) -> Option<Bytes>;
    /// Stores `value` under `key` with an optional TTL; `false` if the store refused it.
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> bool;
    /// Removes `key`; `true` if it was there.
    fn delete(&self, key: &str) -> bool;
    /// Live keys starting with `prefix`, sorted, as owned strings: `None` for stores that
    /// cannot list in order.
    fn list(&self, prefix: &str) -> Option<Vec<String>>;
    /// Entries resident now, as the store reports them (expired ones not yet reclaimed
    /// included).
    fn resident(&self) -> u64;
    /// Lets a store finish deferred bookkeeping (moka applies writes in batches) before it is
    /// measured at rest.
    fn settle(&self) {}
}

/// Which store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// hodor's memory driver through `Contract`, the way applications call it.
    Hodor,
    /// `hodor_memory::MemoryDriver` called directly through the `Driver` trait.
    HodorDriver,
    /// `moka::sync::Cache` with per-entry TTL and a weigher.
    Moka,
    /// `quick_cache::sync::Cache` with the same weigher.
    QuickCache,
    /// `dashmap::DashMap`.
    DashMap,
    /// `parking_lot::RwLock<BTreeMap>`: object_store's and OpenDAL's in-memory backends.
    BTreeMap,
    /// A plain `hashbrown::HashMap` without a lock: the single-threaded physical limit.
    HashBrown,
}

impl Kind {
    /// Every store, in table order.
    pub const ALL: [Kind; 7] = [
        Kind::Hodor,
        Kind::HodorDriver,
        Kind::Moka,
        Kind::QuickCache,
        Kind::DashMap,
        Kind::BTreeMap,
        Kind::HashBrown,
    ];

    /// The column title.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Hodor => "hodor",
            Kind::HodorDriver => "hodor driver",
            Kind::Moka => "moka",
            Kind::QuickCache => "quick_cache",
            Kind::DashMap => "dashmap",
            Kind::BTreeMap => "RwLock<BTreeMap>",
            Kind::HashBrown => "hashbrown",
        }
    }

    /// A shorter title, for the chart.
    pub fn short(self) -> &'static str {
        match self {
            Kind::BTreeMap => "BTreeMap",
            Kind::HodorDriver => "driver",
            other => other.label(),
        }
    }

    /// Can be shared between threads.
    pub fn concurrent(self) -> bool {
        self != Kind::HashBrown
    }

    /// Can list keys by prefix in order.
    pub fn ordered(self) -> bool {
        matches!(self, Kind::Hodor | Kind::HodorDriver | Kind::BTreeMap)
    }

    /// Expires entries by a per-entry TTL.
    pub fn ttl(self) -> bool {
        matches!(self, Kind::Hodor | Kind::HodorDriver | Kind::Moka)
    }
}

/// What every store charges an entry against a byte limit: hodor's own rule, key and value
/// bytes plus a fixed per-entry overhead. The exact-LRU reference, moka's weigher and
/// quick_cache's weighter all use it, so every store holds the same entries under one
/// `max_bytes`.
pub fn charge(key_len: usize, value_len: usize) -> u64 {
    (key_len + value_len) as u64 + entry_overhead()
}

/// The fixed part of hodor's charge, read from the driver itself (the bytes gauge after
/// storing one entry, minus its key and value), so this stays right if hodor changes it.
pub fn entry_overhead() -> u64 {
    static OVERHEAD: OnceLock<u64> = OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        let probe = Contract::new("memory", &unique_name("charge-probe"), None).ok();
        let bytes = probe.and_then(|c| {
            c.set("k", Bytes::from_static(b"v"), None).ok()?;
            c.metrics().bytes
        });
        bytes.map_or(0, |b| b.saturating_sub(2))
    })
}

/// A size limit for the stores that evict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// No limit.
    None,
    /// At most this many bytes, as [`charge`] counts them.
    Bytes(u64),
    /// At most this many entries.
    Entries(u64),
}

/// Everything needed to build a store.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// How many entries the store is expected to hold (pre-sizes quick_cache, which needs it).
    pub entries: usize,
    /// The size limit.
    pub limit: Limit,
}

/// hodor through `Contract`.
#[derive(Debug)]
pub struct HodorStore(pub Contract);

/// hodor's driver, called directly.
#[derive(Debug)]
pub struct DriverStore(pub MemoryDriver);

/// moka's value: the bytes and the TTL they were set with (moka reads per-entry TTLs from
/// the value through its `Expiry` trait).
#[derive(Clone, Debug)]
pub struct MokaValue {
    value: Bytes,
    /// The TTL in nanoseconds, 0 for none.
    ttl_nanos: u64,
}

struct PerEntryTtl;

impl moka::Expiry<Box<str>, MokaValue> for PerEntryTtl {
    fn expire_after_create(&self, _: &Box<str>, v: &MokaValue, _: Instant) -> Option<Duration> {
        (v.ttl_nanos != 0).then(|| Duration::from_nanos(v.ttl_nanos))
    }

    fn expire_after_update(
        &self,
        _: &Box<str>,
        v: &MokaValue,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        // A set replaces the TTL, as in hodor.
        (v.ttl_nanos != 0).then(|| Duration::from_nanos(v.ttl_nanos))
    }
}

/// moka's sync cache.
pub struct MokaStore(moka::sync::Cache<Box<str>, MokaValue>);

impl std::fmt::Debug for MokaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MokaStore")
    }
}

/// quick_cache's weighter: [`charge`], or one per entry for an entry limit.
#[derive(Clone, Copy, Debug)]
pub struct ChargeWeighter {
    unit: bool,
}

impl quick_cache::Weighter<Box<str>, Bytes> for ChargeWeighter {
    fn weight(&self, key: &Box<str>, value: &Bytes) -> u64 {
        if self.unit {
            1
        } else {
            charge(key.len(), value.len())
        }
    }
}

/// quick_cache's sync cache.
pub struct QuickStore(quick_cache::sync::Cache<Box<str>, Bytes, ChargeWeighter>);

impl std::fmt::Debug for QuickStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuickStore")
    }
}

/// dashmap.
#[derive(Debug, Default)]
pub struct DashStore(DashMap<Box<str>, Bytes>);

/// `RwLock<BTreeMap>`.
#[derive(Debug, Default)]
pub struct BTreeStore(RwLock<BTreeMap<Box<str>, Bytes>>);

/// A lock-free single-threaded hash map.
#[derive(Debug, Default)]
pub struct LocalStore(RefCell<hashbrown::HashMap<Box<str>, Bytes>>);

/// One built store.
#[derive(Debug)]
pub enum Built {
    /// [`Kind::Hodor`].
    Hodor(HodorStore),
    /// [`Kind::HodorDriver`].
    HodorDriver(DriverStore),
    /// [`Kind::Moka`].
    Moka(MokaStore),
    /// [`Kind::QuickCache`].
    QuickCache(QuickStore),
    /// [`Kind::DashMap`].
    DashMap(DashStore),
    /// [`Kind::BTreeMap`].
    BTreeMap(BTreeStore),
    /// [`Kind::HashBrown`].
    HashBrown(LocalStore),
}

/// Runs `$body` with `$s` bound to the concrete store, statically dispatched. The
/// single-threaded store takes `$local` instead, with `$l` bound to it.
#[macro_export]
macro_rules! with_store {
    ($built:expr, $s:ident => $body:expr, $l:ident => $local:expr) => {
        match $built {
            $crate::stores::Built::Hodor($s) => $body,
            $crate::stores::Built::HodorDriver($s) => $body,
            $crate::stores::Built::Moka($s) => $body,
            $crate::stores::Built::QuickCache($s) => $body,
            $crate::stores::Built::DashMap($s) => $body,
            $crate::stores::Built::BTreeMap($s) => $body,
            $crate::stores::Built::HashBrown($l) => $local,
        }
    };
}

/// Distinct hodor store names, so no two built stores share data.
fn unique_name(kind: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "hodor-bench-{kind}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The memory driver's JSON config for a limit.
pub fn hodor_config(limit: Limit) -> Option<Json> {
    match limit {
        Limit::None => None,
        Limit::Bytes(n) => Some(json!({ "max_bytes": n })),
        Limit::Entries(n) => Some(json!({ "max_entries": n })),
    }
}

impl Built {
    /// Builds an empty store. `Err` says why it cannot be built (for example a hodor limit
    /// the driver does not support yet), and the workload reports N/A.
    pub fn open(kind: Kind, spec: Spec) -> Result<Built, String> {
        let entries = spec.entries.max(16);
        Ok(match kind {
            Kind::Hodor => Built::Hodor(HodorStore(
                Contract::new("memory", &unique_name("contract"), hodor_config(spec.limit))
                    .map_err(|e| e.to_string())?,
            )),
            Kind::HodorDriver => {
                let config: MemoryConfig =
                    serde_json::from_value(hodor_config(spec.limit).unwrap_or(json!({})))
                        .map_err(|e| e.to_string())?;
                Built::HodorDriver(DriverStore(
                    MemoryDriver::open(&unique_name("driver"), config, Clock::system())
                        .map_err(|e| e.to_string())?,
                ))
            }
            Kind::Moka => {
                #[allow(clippy::borrowed_box)] // moka's weigher takes &K, and K is Box<str>
                let builder = moka::sync::Cache::builder()
                    .weigher(|k: &Box<str>, v: &MokaValue| -> u32 {
                        u32::try_from(charge(k.len(), v.value.len())).unwrap_or(u32::MAX)
                    })
                    .expire_after(PerEntryTtl);
                let cache = match spec.limit {
                    Limit::None => builder.build(),
                    Limit::Bytes(n) => builder.max_capacity(n).build(),
                    Limit::Entries(_) => return Err("moka is measured with a byte limit".into()),
                };
                Built::Moka(MokaStore(cache))
            }
            Kind::QuickCache => {
                let (weight, unit) = match spec.limit {
                    // Unbounded rows: room for every entry, so nothing is evicted.
                    Limit::None => (u64::MAX / 4, false),
                    Limit::Bytes(n) => (n, false),
                    Limit::Entries(n) => (n, true),
                };
                Built::QuickCache(QuickStore(quick_cache::sync::Cache::with_weighter(
                    entries,
                    weight,
                    ChargeWeighter { unit },
                )))
            }
            Kind::DashMap if spec.limit == Limit::None => Built::DashMap(DashStore::default()),
            Kind::BTreeMap if spec.limit == Limit::None => Built::BTreeMap(BTreeStore::default()),
            Kind::HashBrown if spec.limit == Limit::None => Built::HashBrown(LocalStore::default()),
            Kind::DashMap | Kind::BTreeMap | Kind::HashBrown => {
                return Err(format!("{} has no size limit", kind.label()));
            }
        })
    }

    /// Which store this is.
    pub fn kind(&self) -> Kind {
        match self {
            Built::Hodor(_) => Kind::Hodor,
            Built::HodorDriver(_) => Kind::HodorDriver,
            Built::Moka(_) => Kind::Moka,
            Built::QuickCache(_) => Kind::QuickCache,
            Built::DashMap(_) => Kind::DashMap,
            Built::BTreeMap(_) => Kind::BTreeMap,
            Built::HashBrown(_) => Kind::HashBrown,
        }
    }

    /// The store as a trait object, for the untimed paths (loading, sampling, checks).
    pub fn as_dyn(&self) -> &dyn Store {
        with_store!(self, s => s, l => l)
    }
}

impl Store for HodorStore {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get(key).ok()
    }
    #[inline]
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> bool {
        self.0.set(key, value, ttl).is_ok()
    }
    fn delete(&self, key: &str) -> bool {
        self.0.delete(key).unwrap_or(false)
    }
    fn list(&self, prefix: &str) -> Option<Vec<String>> {
        self.0.list(prefix).ok()
    }
    fn resident(&self) -> u64 {
        self.0.metrics().entries.unwrap_or(0)
    }
}

impl Store for DriverStore {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        Driver::get(&self.0, key).ok().flatten()
    }
    #[inline]
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> bool {
        // The driver expects what Contract guarantees: whole milliseconds.
        let ttl = ttl.map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64));
        Driver::set(&self.0, key, value, ttl).is_ok()
    }
    fn delete(&self, key: &str) -> bool {
        Driver::delete(&self.0, key).unwrap_or(false)
    }
    fn list(&self, prefix: &str) -> Option<Vec<String>> {
        Driver::list(&self.0, prefix).ok()
    }
    fn resident(&self) -> u64 {
        Driver::gauges(&self.0).entries.unwrap_or(0)
    }
}

impl Drop for DriverStore {
    fn drop(&mut self) {
        // The Contract closes its driver when dropped; a bare driver must be closed by hand
        // to release the store.
        let _ = Driver::close(&self.0);
    }
}

impl Store for MokaStore {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get(key).map(|v| v.value)
    }
    #[inline]
    fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> bool {
        let ttl_nanos = ttl.map_or(0, |d| d.as_nanos().max(1) as u64);
        self.0.insert(key.into(), MokaValue { value, ttl_nanos });
        true
    }
    fn delete(&self, key: &str) -> bool {
        self.0.remove(key).is_some()
    }
    fn list(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn resident(&self) -> u64 {
        self.0.entry_count()
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
}

impl Store for QuickStore {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get(key)
    }
    #[inline]
    fn set(&self, key: &str, value: Bytes, _: Option<Duration>) -> bool {
        self.0.insert(key.into(), value);
        true
    }
    fn delete(&self, key: &str) -> bool {
        self.0.remove(key).is_some()
    }
    fn list(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn resident(&self) -> u64 {
        self.0.len() as u64
    }
}

impl Store for DashStore {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get(key).map(|r| r.value().clone())
    }
    #[inline]
    fn set(&self, key: &str, value: Bytes, _: Option<Duration>) -> bool {
        // Overwrites reuse the stored key instead of allocating a new one.
        match self.0.get_mut(key) {
            Some(mut slot) => *slot = value,
            None => {
                self.0.insert(key.into(), value);
            }
        }
        true
    }
    fn delete(&self, key: &str) -> bool {
        self.0.remove(key).is_some()
    }
    fn list(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn resident(&self) -> u64 {
        self.0.len() as u64
    }
}

impl Store for BTreeStore {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.read().get(key).cloned()
    }
    #[inline]
    fn set(&self, key: &str, value: Bytes, _: Option<Duration>) -> bool {
        let mut map = self.0.write();
        match map.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                map.insert(key.into(), value);
            }
        }
        true
    }
    fn delete(&self, key: &str) -> bool {
        self.0.write().remove(key).is_some()
    }
    fn list(&self, prefix: &str) -> Option<Vec<String>> {
        let map = self.0.read();
        Some(
            map.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, _)| String::from(&**k))
                .collect(),
        )
    }
    fn resident(&self) -> u64 {
        self.0.read().len() as u64
    }
}

impl Store for LocalStore {
    #[inline]
    fn get(&self, key: &str) -> Option<Bytes> {
        self.0.borrow().get(key).cloned()
    }
    #[inline]
    fn set(&self, key: &str, value: Bytes, _: Option<Duration>) -> bool {
        let mut map = self.0.borrow_mut();
        match map.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                map.insert(key.into(), value);
            }
        }
        true
    }
    fn delete(&self, key: &str) -> bool {
        self.0.borrow_mut().remove(key).is_some()
    }
    fn list(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn resident(&self) -> u64 {
        self.0.borrow().len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            entries: 100,
            limit: Limit::None,
        }
    }

    #[test]
    fn every_store_round_trips_and_reports_what_it_supports() {
        for kind in Kind::ALL {
            let built = Built::open(kind, spec()).unwrap();
            let s = built.as_dyn();
            assert!(s.set("k/1", Bytes::from_static(b"one"), None), "{kind:?}");
            assert!(s.set("k/2", Bytes::from_static(b"two"), None));
            assert!(s.set("j/1", Bytes::from_static(b"j"), None));
            assert!(s.set("k/1", Bytes::from_static(b"uno"), None));
            s.settle();
            assert_eq!(s.get("k/1").as_deref(), Some(&b"uno"[..]), "{kind:?}");
            assert_eq!(s.get("k/3"), None);
            assert_eq!(s.resident(), 3, "{kind:?}");
            match s.list("k/") {
                Some(keys) => {
                    assert!(kind.ordered());
                    assert_eq!(keys, ["k/1", "k/2"]);
                }
                None => assert!(!kind.ordered(), "{kind:?}"),
            }
            assert!(s.delete("k/2"));
            assert!(!s.delete("k/2"));
            assert_eq!(s.get("k/2"), None);
        }
    }

    #[test]
    fn ttl_stores_expire_entries() {
        for kind in Kind::ALL.into_iter().filter(|k| k.ttl()) {
            let built = Built::open(kind, spec()).unwrap();
            let s = built.as_dyn();
            assert!(s.set(
                "gone",
                Bytes::from_static(b"v"),
                Some(Duration::from_millis(1))
            ));
            assert!(s.set("kept", Bytes::from_static(b"v"), None));
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(s.get("gone"), None, "{kind:?}");
            assert!(s.get("kept").is_some());
        }
    }

    #[test]
    fn stores_without_a_limit_refuse_one() {
        let bounded = Spec {
            entries: 10,
            limit: Limit::Bytes(1000),
        };
        assert!(Built::open(Kind::DashMap, bounded).is_err());
        assert!(Built::open(Kind::BTreeMap, bounded).is_err());
        assert!(Built::open(Kind::Moka, bounded).is_ok());
        assert!(Built::open(Kind::QuickCache, bounded).is_ok());
    }
}
