//! [`SyncedMap<T>`]: every key under a prefix, decoded and validated, followed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::worker::{Cx, Reporter, Target, guarded};
use super::{Options, Runner, Status, callback_panicked, decode};
use crate::clock::Clock;
use crate::contract::Contract;
use crate::driver::Metadata;
use crate::error::{Echo, Error, Result};
use crate::watch::{EventKind, Start, WatchOptions, lock};

type Validate<T> = Box<dyn Fn(&str, &T) -> std::result::Result<(), String> + Send>;
type OnChange<T> = Box<dyn FnMut(&str, Option<&T>, Option<&T>) + Send>;
/// A key's change, to call back with once the map is swapped.
type Change<T> = (String, Option<Arc<T>>, Option<Arc<T>>);

/// The typed values of every key under a prefix, following the store: feature flags,
/// per-tenant settings. See [the module docs](super) for the rules; they hold per key.
///
/// A key whose value is invalid keeps its last good value (or is absent if it never had
/// one) with [`Status::Stale`]; a deleted (or expired) key leaves the map, and `on_change`
/// gets `(key, Some(&old), None)`.
///
/// ```
/// use hodor_core::sync::SyncedMap;
///
/// # fn flags(store: &hodor_core::Contract) -> hodor_core::Result<()> {
/// store.set("flag/dark-mode", "true", None)?;
/// let flags = SyncedMap::<bool>::builder(store, "flag/")
///     .debounce(std::time::Duration::ZERO)
///     .start()?;
/// assert_eq!(flags.get("flag/dark-mode").as_deref(), Some(&true));
/// store.set("flag/beta", "false", None)?;
/// store.delete("flag/dark-mode")?;
/// flags.settle();
/// assert_eq!(flags.get("flag/beta").as_deref(), Some(&false));
/// assert_eq!(flags.get("flag/dark-mode"), None);
/// # Ok(())
/// # }
/// ```
pub struct SyncedMap<T> {
    shared: Arc<Shared<T>>,
    runner: Runner,
    prefix: String,
}

/// The keys and their values.
pub type Entries<T> = BTreeMap<String, Arc<T>>;

struct Shared<T> {
    map: ArcSwap<Entries<T>>,
    /// The keys whose latest value could not be used.
    stale: Mutex<BTreeMap<String, Status>>,
}

impl<T> fmt::Debug for SyncedMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncedMap")
            .field("prefix", &Echo(&self.prefix))
            .field("keys", &self.shared.map.load().len())
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> SyncedMap<T> {
    /// Starts building a `SyncedMap` for the keys under `prefix` (plain bytes) of
    /// `contract`.
    pub fn builder(contract: &Contract, prefix: &str) -> SyncedMapBuilder<T> {
        SyncedMapBuilder {
            contract: contract.clone(),
            prefix: prefix.to_owned(),
            validate: None,
            on_change: None,
            options: Options::default(),
        }
    }
}

impl<T> SyncedMap<T> {
    /// The latest good value of `key`, if it has one: a lock-free load.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.shared.map.load().get(key).cloned()
    }

    /// Every key with a good value, at one moment: a lock-free load of the whole map.
    pub fn snapshot(&self) -> Arc<Entries<T>> {
        self.shared.map.load_full()
    }

    /// [`Status::Stale`] for a key whose latest value could not be used, `Current` for a
    /// key in the map, `None` for a key the map does not know.
    pub fn status(&self, key: &str) -> Option<Status> {
        if let Some(status) = lock(&self.shared.stale).get(key) {
            return Some(status.clone());
        }
        self.shared
            .map
            .load()
            .contains_key(key)
            .then_some(Status::Current)
    }

    /// The prefix it follows.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Returns once the thread has handled what is due; see [`Synced::settle`](super::Synced::settle).
    pub fn settle(&self) {
        self.runner.settle();
    }
}

/// Builds a [`SyncedMap`].
pub struct SyncedMapBuilder<T> {
    contract: Contract,
    prefix: String,
    validate: Option<Validate<T>>,
    on_change: Option<OnChange<T>>,
    options: Options,
}

impl<T> fmt::Debug for SyncedMapBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncedMapBuilder")
            .field("prefix", &Echo(&self.prefix))
            .field("debounce", &self.options.debounce)
            .field("poll_interval", &self.options.poll_interval)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> SyncedMapBuilder<T> {
    /// Checks each decoded value with its key; an `Err` keeps the key's last good value.
    pub fn validate(
        mut self,
        validate: impl Fn(&str, &T) -> std::result::Result<(), String> + Send + 'static,
    ) -> Self {
        self.validate = Some(Box::new(validate));
        self
    }

    /// Called with `(key, old, new)` for every change of a key's good value: `new` is
    /// `None` when the key left the map; the first call per key has `old` `None`.
    pub fn on_change(
        mut self,
        on_change: impl FnMut(&str, Option<&T>, Option<&T>) + Send + 'static,
    ) -> Self {
        self.on_change = Some(Box::new(on_change));
        self
    }

    /// Called with each distinct error once per key (until the key is good again).
    pub fn on_error(mut self, on_error: impl FnMut(&Error) + Send + 'static) -> Self {
        self.options.on_error = Some(Box::new(on_error));
        self
    }

    /// The trailing debounce; see [`SyncedBuilder::debounce`](super::SyncedBuilder::debounce).
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.options.debounce(debounce);
        self
    }

    /// How often a driver without watch is polled; see
    /// [`SyncedBuilder::poll_interval`](super::SyncedBuilder::poll_interval).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.options.poll_interval(interval);
        self
    }

    /// The clock debouncing and polling read.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.options.clock = clock;
        self
    }

    /// Subscribes, reads every key under the prefix and starts following them. A key with
    /// an invalid value is left out (and reported); a failed read is an error.
    pub fn start(self) -> Result<SyncedMap<T>> {
        let SyncedMapBuilder {
            contract,
            prefix,
            validate,
            on_change,
            options,
        } = self;
        let (timing, on_error) = options.split();
        let (watch, keys) =
            match contract.watch_with(&prefix, WatchOptions::new().start(Start::Snapshot)) {
                Ok(mut watch) => {
                    let keys = watch.take_snapshot().map(|s| s.keys).unwrap_or_default();
                    (Some(watch), keys)
                }
                Err(Error::Unsupported { .. }) => (None, contract.list(&prefix)?),
                Err(e) => return Err(e),
            };
        let shared = Arc::new(Shared {
            map: ArcSwap::from_pointee(BTreeMap::new()),
            stale: Mutex::new(BTreeMap::new()),
        });
        let mut target = FollowAll {
            contract: contract.clone(),
            prefix: prefix.clone(),
            shared: shared.clone(),
            validate,
            on_change,
            seen: HashMap::new(),
            metas: HashMap::new(),
            dirty: BTreeSet::new(),
            everything: false,
            polling: watch.is_none(),
            first: Vec::new(),
            unreported: Vec::new(),
        };
        let mut reporter = Reporter::new(on_error);
        target.load_initial(&keys, &timing.clock, &mut reporter)?;
        let runner = Runner::start(&contract, None, target, watch, timing, reporter)?;
        Ok(SyncedMap {
            shared,
            runner,
            prefix,
        })
    }
}

/// What the thread does for a `SyncedMap`.
struct FollowAll<T> {
    contract: Contract,
    prefix: String,
    shared: Arc<Shared<T>>,
    validate: Option<Validate<T>>,
    on_change: Option<OnChange<T>>,
    /// The last bytes seen per present key.
    seen: HashMap<String, Bytes>,
    /// Polling: the metadata last seen per key.
    metas: HashMap<String, Metadata>,
    /// Keys changed since the last reload.
    dirty: BTreeSet<String>,
    /// Events were lost: the next reload reads the whole prefix.
    everything: bool,
    polling: bool,
    /// The initial entries, for the first callbacks.
    first: Vec<String>,
    /// The errors of the start, reported once the thread runs.
    unreported: Vec<Arc<Error>>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> FollowAll<T> {
    fn callback_panicked(&self, key: &str, message: String) -> Error {
        callback_panicked(&self.contract, key, message)
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<T> {
        let validate = self.validate.as_ref().map(|v| |value: &T| v(key, value));
        decode(&self.contract, key, bytes, validate)
    }

    fn load_initial(
        &mut self,
        keys: &[String],
        clock: &Clock,
        reporter: &mut Reporter,
    ) -> Result<()> {
        if self.polling {
            for key in keys {
                match self.contract.stat(key) {
                    Ok(meta) => {
                        self.metas.insert(key.clone(), meta);
                    }
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = self.contract.get_many(&refs)?;
        let mut map = BTreeMap::new();
        for (key, value) in keys.iter().zip(values) {
            let Some(bytes) = value else { continue };
            match self.decode(key, &bytes) {
                Ok(value) => {
                    map.insert(key.clone(), Arc::new(value));
                    self.first.push(key.clone());
                }
                Err(e) => {
                    // Reported from the thread, like every other error.
                    let (error, news) = reporter.record(e);
                    if news {
                        self.unreported.push(error.clone());
                    }
                    lock(&self.shared.stale).insert(
                        key.clone(),
                        Status::Stale {
                            error,
                            since: clock.now(),
                        },
                    );
                }
            }
            self.seen.insert(key.clone(), bytes);
        }
        self.shared.map.store(Arc::new(map));
        Ok(())
    }

    fn call(&mut self, key: &str, old: Option<&T>, new: Option<&T>, cx: &mut Cx<'_>) {
        let Some(on_change) = &mut self.on_change else {
            return;
        };
        if let Err(message) = guarded(|| on_change(key, old, new)) {
            let error = self.callback_panicked(key, message);
            cx.reporter.report(error);
        }
    }

    /// Reads `keys` and applies what changed, in one swap of the map.
    fn read(&mut self, keys: Vec<String>, cx: &mut Cx<'_>) {
        if keys.is_empty() {
            return;
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = match self.contract.get_many(&refs) {
            Ok(values) => values,
            Err(e) => {
                if matches!(e, Error::Closed { .. }) {
                    cx.closed = true;
                } else {
                    // Read them all again later.
                    self.dirty.extend(keys);
                    cx.retry = true;
                }
                cx.reporter.report(e);
                return;
            }
        };
        let mut map = Entries::clone(&self.shared.map.load());
        let mut calls: Vec<Change<T>> = Vec::new();
        for (key, value) in keys.into_iter().zip(values) {
            match value {
                None => {
                    self.seen.remove(&key);
                    lock(&self.shared.stale).remove(&key);
                    cx.reporter.clear(&key);
                    if let Some(old) = map.remove(&key) {
                        calls.push((key, Some(old), None));
                    }
                }
                Some(bytes) => {
                    if self.seen.get(&key) == Some(&bytes) {
                        continue;
                    }
                    let decoded = self.decode(&key, &bytes);
                    self.seen.insert(key.clone(), bytes);
                    match decoded {
                        Ok(value) => {
                            let new = Arc::new(value);
                            let old = map.insert(key.clone(), new.clone());
                            lock(&self.shared.stale).remove(&key);
                            cx.reporter.clear(&key);
                            calls.push((key, old, Some(new)));
                        }
                        Err(e) => {
                            let (error, news) = cx.reporter.record(e);
                            {
                                let mut stale = lock(&self.shared.stale);
                                let since = match stale.get(&key) {
                                    Some(Status::Stale { since, .. }) => *since,
                                    _ => cx.clock.now(),
                                };
                                let status = Status::Stale {
                                    error: error.clone(),
                                    since,
                                };
                                stale.insert(key, status);
                            }
                            if news {
                                cx.reporter.notify(&error);
                            }
                        }
                    }
                }
            }
        }
        if calls.is_empty() {
            return;
        }
        self.shared.map.store(Arc::new(map));
        for (key, old, new) in calls {
            self.call(&key, old.as_deref(), new.as_deref(), cx);
        }
    }

    /// Every key the map or the store may hold under the prefix.
    fn all_keys(&mut self, cx: &mut Cx<'_>) -> Option<Vec<String>> {
        match self.contract.list(&self.prefix) {
            Ok(listed) => {
                let mut keys: BTreeSet<String> = listed.into_iter().collect();
                keys.extend(self.seen.keys().cloned());
                keys.extend(self.shared.map.load().keys().cloned());
                Some(keys.into_iter().collect())
            }
            Err(e) => {
                if matches!(e, Error::Closed { .. }) {
                    cx.closed = true;
                } else {
                    cx.retry = true;
                }
                cx.reporter.report(e);
                None
            }
        }
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Target for FollowAll<T> {
    fn start(&mut self, cx: &mut Cx<'_>) {
        for error in std::mem::take(&mut self.unreported) {
            cx.reporter.notify(&error);
        }
        let map = self.shared.map.load_full();
        for key in std::mem::take(&mut self.first) {
            if let Some(value) = map.get(&key) {
                self.call(&key, None, Some(value), cx);
            }
        }
    }

    fn on_event(&mut self, key: &str, _kind: EventKind) -> bool {
        self.dirty.insert(key.to_owned());
        true
    }

    fn on_lagged(&mut self) {
        self.everything = true;
    }

    fn reload(&mut self, cx: &mut Cx<'_>) {
        let keys = if std::mem::take(&mut self.everything) {
            self.dirty.clear();
            match self.all_keys(cx) {
                Some(keys) => keys,
                None => {
                    self.everything = true;
                    return;
                }
            }
        } else {
            std::mem::take(&mut self.dirty).into_iter().collect()
        };
        self.read(keys, cx);
    }

    fn poll(&mut self, cx: &mut Cx<'_>) {
        let listed = match self.contract.list(&self.prefix) {
            Ok(listed) => listed,
            Err(e) => {
                cx.closed |= matches!(e, Error::Closed { .. });
                cx.reporter.report(e);
                return;
            }
        };
        let mut changed: BTreeSet<String> = BTreeSet::new();
        let mut metas = HashMap::with_capacity(listed.len());
        for key in listed {
            match self.contract.stat(&key) {
                Ok(meta) => {
                    if self.metas.get(&key) != Some(&meta) {
                        changed.insert(key.clone());
                    }
                    metas.insert(key, meta);
                }
                // Gone since the list: read below like the other gone keys.
                Err(Error::NotFound { .. }) => {}
                Err(e) => {
                    cx.closed |= matches!(e, Error::Closed { .. });
                    cx.reporter.report(e);
                    return;
                }
            }
        }
        for key in self.seen.keys().chain(self.metas.keys()) {
            if !metas.contains_key(key) {
                changed.insert(key.clone());
            }
        }
        self.metas = metas;
        self.read(changed.into_iter().collect(), cx);
    }
}
