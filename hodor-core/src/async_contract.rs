//! [`AsyncContract`]: every operation of a [`Contract`] as an `async fn` (feature `tokio`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::Contract;
use crate::driver::{Capabilities, Metadata};
use crate::error::{Applied, BackendKind, Error, Result};
use crate::flight::{self, Join};
use crate::metrics::Metrics;
use crate::page::Page;
use crate::version::Version;

/// A [`Contract`] for async code: the same operations, each an `async fn`, that never
/// block the executor's thread for long.
///
/// How a call runs depends on the driver, as its [`Capabilities::non_blocking`] says:
///
/// - **A driver that never blocks** (memory): the call runs inline, on the task's thread,
///   as a plain function call. It takes about as long as a `HashMap` lookup behind a lock,
///   less than handing it to another thread would.
/// - **A driver that blocks** (Redis: every call is a network round trip, up to its
///   timeouts): the call runs on tokio's blocking pool ([`tokio::task::spawn_blocking`]),
///   and the task waits for it without holding its executor thread.
///
/// Values are not copied on the way: a value given to `set` is the `Bytes` the driver
/// stores, and the `Bytes` `get` returns is the driver's (a blocking call copies the key,
/// which it must own). Dropping the future of a blocking call does not cancel the call: it
/// completes on the blocking pool. Outside a tokio runtime, a blocking driver's calls run
/// inline. Like `Contract`, it is cheap to clone, and clones share one handle.
///
/// When to use which: in async code (a tokio web server, say), hold an `AsyncContract`,
/// so a Redis call waiting for its reply never holds one of the few executor threads; in
/// threads of your own, or for a memory store in code that is not async, hold the
/// `Contract`. [`AsyncContract::contract`] gives the `Contract` underneath, for code that
/// wants both.
///
/// ```
/// # use hodor_core::{AsyncContract, Contract};
/// async fn profile(cache: &AsyncContract, id: u32) -> hodor_core::Result<hodor_core::Bytes> {
///     let key = format!("profile/{id}");
///     cache
///         .get_or_insert_with(&key, None, || async move {
///             // The database, asked once however many requests miss at once.
///             Ok::<_, hodor_core::Error>(format!("{{\"id\":{id}}}"))
///         })
///         .await
/// }
/// ```
#[derive(Clone, Debug)]
pub struct AsyncContract {
    contract: Contract,
    /// The driver never blocks: run calls on the task's thread.
    inline: bool,
}

impl From<Contract> for AsyncContract {
    fn from(contract: Contract) -> AsyncContract {
        AsyncContract::new(contract)
    }
}

impl AsyncContract {
    /// The async face of `contract`; it shares its handle (closing either closes both).
    pub fn new(contract: Contract) -> AsyncContract {
        let inline = contract.capabilities().non_blocking;
        AsyncContract { contract, inline }
    }

    /// Opens a contract like [`Contract::new`]. Opening may connect to a server, so it
    /// always runs on the blocking pool.
    pub async fn open(
        driver: &str,
        name: &str,
        config: Option<serde_json::Value>,
    ) -> Result<AsyncContract> {
        let (driver_owned, name_owned) = (driver.to_owned(), name.to_owned());
        let open = move || Contract::new(&driver_owned, &name_owned, config);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return open().map(AsyncContract::new);
        };
        match runtime.spawn_blocking(open).await {
            Ok(opened) => opened.map(AsyncContract::new),
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(Error::Backend {
                    driver: "unknown",
                    contract: Arc::from(name),
                    operation: "open",
                    key: None,
                    kind: BackendKind::Other,
                    applied: Applied::No,
                    source: SHUT_DOWN.into(),
                }),
            },
        }
    }

    /// The synchronous contract underneath: the same handle.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// The synchronous contract underneath.
    pub fn into_contract(self) -> Contract {
        self.contract
    }

    /// [`Contract::driver`].
    pub fn driver(&self) -> &'static str {
        self.contract.driver()
    }

    /// [`Contract::name`].
    pub fn name(&self) -> &str {
        self.contract.name()
    }

    /// [`Contract::capabilities`].
    pub fn capabilities(&self) -> Capabilities {
        self.contract.capabilities()
    }

    /// [`Contract::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.contract.is_closed()
    }

    /// [`Contract::metrics`]. The gauges come from the driver, which may ask its server:
    /// this one runs like the other calls.
    pub async fn metrics(&self) -> Metrics {
        if self.inline {
            return self.contract.metrics();
        }
        self.blocking("metrics", None, |c| Ok(c.metrics()))
            .await
            .unwrap_or_else(|_| self.contract.metrics())
    }

    /// Runs `call` on the blocking pool and waits for it; inline outside a tokio runtime.
    /// A panic in the call is raised here, as it would be in a synchronous call.
    async fn blocking<T, F>(&self, operation: &'static str, key: Option<&str>, call: F) -> Result<T>
    where
        F: FnOnce(&Contract) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return call(&self.contract);
        };
        let contract = self.contract.clone();
        match runtime.spawn_blocking(move || call(&contract)).await {
            Ok(result) => result,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Only a runtime shutting down cancels a blocking task, and only one that
                // has not started: the call never ran.
                Err(_) => Err(Error::Backend {
                    driver: self.contract.driver(),
                    contract: Arc::from(self.contract.name()),
                    operation,
                    key: key.map(str::to_owned),
                    kind: BackendKind::Other,
                    applied: Applied::No,
                    source: SHUT_DOWN.into(),
                }),
            },
        }
    }

    /// [`Contract::set`].
    pub async fn set(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let value = value.into();
        if self.inline {
            return self.contract.set(key, value, ttl);
        }
        let owned = key.to_owned();
        self.blocking("set", Some(key), move |c| c.set(&owned, value, ttl))
            .await
    }

    /// [`Contract::get`].
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        if self.inline {
            return self.contract.get(key);
        }
        let owned = key.to_owned();
        self.blocking("get", Some(key), move |c| c.get(&owned))
            .await
    }

    /// [`Contract::exists`].
    pub async fn exists(&self, key: &str) -> Result<bool> {
        if self.inline {
            return self.contract.exists(key);
        }
        let owned = key.to_owned();
        self.blocking("exists", Some(key), move |c| c.exists(&owned))
            .await
    }

    /// [`Contract::delete`].
    pub async fn delete(&self, key: &str) -> Result<bool> {
        if self.inline {
            return self.contract.delete(key);
        }
        let owned = key.to_owned();
        self.blocking("delete", Some(key), move |c| c.delete(&owned))
            .await
    }

    /// [`Contract::list`], with its cost: prefer [`AsyncContract::list_page`] for a prefix
    /// that may hold many keys.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        if self.inline {
            return self.contract.list(prefix);
        }
        let owned = prefix.to_owned();
        self.blocking("list", None, move |c| c.list(&owned)).await
    }

    /// [`Contract::list_page`].
    pub async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        if self.inline {
            return self.contract.list_page(prefix, start_after, limit);
        }
        let (prefix, start_after) = (prefix.to_owned(), start_after.map(str::to_owned));
        self.blocking("list_page", None, move |c| {
            c.list_page(&prefix, start_after.as_deref(), limit)
        })
        .await
    }

    /// [`Contract::stat`].
    pub async fn stat(&self, key: &str) -> Result<Metadata> {
        if self.inline {
            return self.contract.stat(key);
        }
        let owned = key.to_owned();
        self.blocking("stat", Some(key), move |c| c.stat(&owned))
            .await
    }

    /// [`Contract::close`].
    pub async fn close(&self) -> Result<()> {
        if self.inline {
            return self.contract.close();
        }
        self.blocking("close", None, |c| c.close()).await
    }

    /// [`Contract::set_json`]. The value is serialized on the task's thread.
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let bytes = self.contract.encode_json(key, value)?;
        self.set(key, bytes, ttl).await
    }

    /// [`Contract::get_json`]. The value is deserialized on the task's thread.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let bytes = self.get(key).await?;
        self.contract.decode_json(key, &bytes)
    }

    /// [`Contract::get_many`].
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if self.inline {
            return self.contract.get_many(keys);
        }
        let owned: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.blocking("get_many", None, move |c| {
            let keys: Vec<&str> = owned.iter().map(String::as_str).collect();
            c.get_many(&keys)
        })
        .await
    }

    /// [`Contract::set_many`].
    pub async fn set_many<K, V>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
        ttl: Option<Duration>,
    ) -> Result<()>
    where
        K: AsRef<str>,
        V: Into<Bytes>,
    {
        if self.inline {
            return self.contract.set_many(entries, ttl);
        }
        let owned: Vec<(String, Bytes)> = entries
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.into()))
            .collect();
        self.blocking("set_many", None, move |c| c.set_many(owned, ttl))
            .await
    }

    /// [`Contract::delete_many`].
    pub async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        if self.inline {
            return self.contract.delete_many(keys);
        }
        let owned: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.blocking("delete_many", None, move |c| {
            let keys: Vec<&str> = owned.iter().map(String::as_str).collect();
            c.delete_many(&keys)
        })
        .await
    }

    /// [`Contract::create`].
    pub async fn create(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let value = value.into();
        if self.inline {
            return self.contract.create(key, value, ttl);
        }
        let owned = key.to_owned();
        self.blocking("create", Some(key), move |c| c.create(&owned, value, ttl))
            .await
    }

    /// [`Contract::set_if_version`].
    pub async fn set_if_version(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
        expected: Version,
    ) -> Result<bool> {
        let value = value.into();
        if self.inline {
            return self.contract.set_if_version(key, value, ttl, expected);
        }
        let owned = key.to_owned();
        self.blocking("set_if_version", Some(key), move |c| {
            c.set_if_version(&owned, value, ttl, expected)
        })
        .await
    }

    /// [`Contract::increment`].
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        if self.inline {
            return self.contract.increment(key, delta);
        }
        let owned = key.to_owned();
        self.blocking("increment", Some(key), move |c| c.increment(&owned, delta))
            .await
    }

    /// [`Contract::get_or_insert_with`], with an async `f`: cache-aside with one loader
    /// per key.
    ///
    /// The single flight is the same as the synchronous call's, shared with it: in this
    /// process, one caller (task or thread) at a time runs its `f` for a key, and the
    /// others wait without holding a thread. If the leading task's future is dropped, its
    /// flight ends as if `f` had failed, and the next waiter leads. An `f` that awaits
    /// `get_or_insert_with` for its own key waits for itself: unlike the synchronous call,
    /// this is not detected.
    pub async fn get_or_insert_with<V, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        f: F,
    ) -> std::result::Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<V, E>>,
        V: Into<Bytes>,
        E: From<Error>,
    {
        let ttl = self.contract.prepare_get_or_insert(key, ttl)?;
        loop {
            if let Some(value) = self.read(key).await? {
                self.contract.hit();
                return Ok(value);
            }
            match flight::join(self.contract.flight_key(key), None) {
                Join::Wait(flight) => flight.finished().await,
                Join::Lead(lead) => {
                    if let Some(value) = self.read(key).await? {
                        self.contract.hit();
                        return Ok(value);
                    }
                    let made: Bytes = f().await?.into();
                    let kept = self.keep(key, made, ttl).await?;
                    drop(lead);
                    return Ok(kept);
                }
            }
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Bytes>> {
        const OP: &str = "get_or_insert_with";
        if self.inline {
            return self.contract.read_for(OP, key);
        }
        let owned = key.to_owned();
        self.blocking(OP, Some(key), move |c| c.read_for(OP, &owned))
            .await
    }

    async fn keep(&self, key: &str, made: Bytes, ttl: Option<Duration>) -> Result<Bytes> {
        if self.inline {
            return self.contract.keep(key, made, ttl);
        }
        let owned = key.to_owned();
        self.blocking("get_or_insert_with", Some(key), move |c| {
            c.keep(&owned, made, ttl)
        })
        .await
    }
}

/// Why a blocking call did not run.
const SHUT_DOWN: &str = "the tokio runtime shut down before the call could run";
