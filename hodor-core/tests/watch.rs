//! What `Contract` does for every watch, whatever the driver: checks, errors, and ending a
//! contract's watches when it closes.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hodor_core::driver::{Driver, DriverResult};
use hodor_core::watch::{
    EventKind, Hub, HubConfig, Item, Start, Watch, WatchOptions, WatchRequest,
};
use hodor_core::{Bytes, Capabilities, Contract, Error, Metadata};

/// A map with a hub: every write publishes, snapshots are taken under the map's lock.
#[derive(Debug)]
struct Hubbed {
    data: Arc<Mutex<std::collections::BTreeMap<String, Bytes>>>,
    hub: Arc<Hub>,
    /// Returns a snapshot watch without its snapshot (a driver bug).
    forget_snapshot: bool,
}

impl Hubbed {
    fn new() -> Hubbed {
        Hubbed {
            data: Arc::default(),
            hub: Arc::new(Hub::new("hubbed", "store", HubConfig::new().history(4))),
            forget_snapshot: false,
        }
    }

    fn again(&self) -> Hubbed {
        Hubbed {
            data: self.data.clone(),
            hub: self.hub.clone(),
            forget_snapshot: self.forget_snapshot,
        }
    }
}

impl Driver for Hubbed {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.watch(true)
    }
    fn set(&self, key: &str, value: Bytes, _: Option<Duration>) -> DriverResult<()> {
        let mut data = self.data.lock().unwrap();
        data.insert(key.to_owned(), value);
        self.hub.publish(key, EventKind::Put);
        Ok(())
    }
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        Ok(self.data.lock().unwrap().get(key).cloned())
    }
    fn delete(&self, key: &str) -> DriverResult<bool> {
        let mut data = self.data.lock().unwrap();
        let removed = data.remove(key).is_some();
        if removed {
            self.hub.publish(key, EventKind::Delete);
        }
        Ok(removed)
    }
    fn list(&self, prefix: &str) -> DriverResult<Vec<String>> {
        let data = self.data.lock().unwrap();
        Ok(data
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn stat(&self, _: &str) -> DriverResult<Option<Metadata>> {
        Ok(None)
    }
    fn watch(&self, request: &WatchRequest<'_>) -> DriverResult<Watch> {
        match request.start {
            Start::Snapshot => {
                let data = self.data.lock().unwrap();
                let keys = data
                    .keys()
                    .filter(|k| request.matches(k))
                    .cloned()
                    .collect();
                let watch = self.hub.subscribe_now(request)?;
                drop(data);
                if self.forget_snapshot {
                    return Ok(watch);
                }
                Ok(watch.with_snapshot(keys))
            }
            Start::After(seq) => self.hub.subscribe(request, seq),
            _ => self.hub.subscribe_now(request),
        }
    }
}

fn open(driver: Hubbed) -> Contract {
    Contract::from_driver("hubbed", "store", driver).unwrap()
}

#[test]
fn a_driver_without_watch_is_unsupported_and_never_asked() {
    let (driver, log) = support::Recording::new(Capabilities::NONE);
    let c = Contract::from_driver("rec", "store", driver).unwrap();
    let e = c.watch("").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                operation: "watch",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("polls"), "{e}");
    assert!(log.calls().is_empty(), "{:?}", log.calls());
}

#[test]
fn the_contract_checks_a_watch_before_the_driver_sees_it() {
    let c = open(Hubbed::new());
    assert!(matches!(c.watch_key(""), Err(Error::InvalidKey { .. })));
    assert!(matches!(c.watch_key("a\0b"), Err(Error::InvalidKey { .. })));
    for buffer in [0, WatchOptions::MAX_BUFFER + 1] {
        let e = c
            .watch_with("", WatchOptions::new().buffer(buffer))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{buffer}: {e}");
    }
    assert!(c.watch_with("", WatchOptions::new().buffer(1)).is_ok());
    // A prefix no key can have is a watch that never fires, as list returns nothing.
    let long = "k".repeat(2000);
    let mut w = c.watch(&long).unwrap();
    c.set("k", "v", None).unwrap();
    assert_eq!(w.try_recv().unwrap(), None);
}

#[test]
fn closing_a_contract_ends_its_watches_and_no_others() {
    let driver = Hubbed::new();
    let other = open(driver.again());
    let c = open(driver);
    let mut mine = c.watch("").unwrap();
    let mut via_clone = c.clone().watch("").unwrap();
    let mut theirs = other.watch("").unwrap();
    c.set("k", "v", None).unwrap();
    c.clone().close().unwrap();
    for w in [&mut mine, &mut via_clone] {
        assert!(
            matches!(w.recv(), Ok(Item::Event(_))),
            "what was buffered comes first"
        );
        // A bound, so that a watch the close did not end fails here instead of hanging.
        let e = match w.recv_timeout(Duration::from_secs(10)) {
            Err(e) => e,
            Ok(item) => panic!("the watch went on after its contract closed: {item:?}"),
        };
        assert!(
            matches!(
                e,
                Error::Closed {
                    operation: "watch",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    other.set("k2", "v", None).unwrap();
    assert!(matches!(theirs.recv(), Ok(Item::Event(_))));
    assert!(
        matches!(theirs.recv(), Ok(Item::Event(_))),
        "the other contract's watch goes on"
    );
    assert!(matches!(c.watch(""), Err(Error::Closed { .. })));
}

#[test]
fn dropping_the_last_clone_ends_the_watches() {
    let c = open(Hubbed::new());
    let mut w = c.watch("").unwrap();
    let waiter = std::thread::spawn(move || w.recv());
    std::thread::sleep(Duration::from_millis(20));
    drop(c);
    let ended = waiter.join().unwrap();
    assert!(matches!(ended, Err(Error::Closed { .. })), "{ended:?}");
}

#[test]
fn resuming_before_the_history_is_compacted_and_says_resync() {
    let c = open(Hubbed::new());
    let mut w = c.watch("").unwrap();
    for i in 0..10 {
        c.set(&format!("k{i}"), "v", None).unwrap();
    }
    let Some(Item::Event(first)) = w.try_recv().unwrap() else {
        panic!()
    };
    let e = c.watch_from("", first.seq).unwrap_err();
    let Error::Compacted {
        driver,
        requested,
        floor,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*driver, *requested), ("hubbed", first.seq));
    assert!(*floor > first.seq);
    let text = e.to_string();
    assert!(
        text.contains("resync") && text.contains("\"store\""),
        "{text}"
    );
    assert!(c.watch_from("", *floor).is_ok());
}

#[test]
fn a_snapshot_watch_without_its_snapshot_is_a_driver_error() {
    let mut driver = Hubbed::new();
    driver.forget_snapshot = true;
    let c = open(driver);
    let e = c.watch_snapshot("").unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
}

#[test]
fn a_snapshot_lists_the_matching_keys_as_of_its_seq() {
    let c = open(Hubbed::new());
    c.set("cfg/a", "1", None).unwrap();
    c.set("other", "1", None).unwrap();
    let (snapshot, mut w) = c.watch_snapshot("cfg/").unwrap();
    assert_eq!(snapshot.keys, ["cfg/a"]);
    assert_eq!(w.started_after(), snapshot.seq);
    c.set("cfg/b", "1", None).unwrap();
    let Some(Item::Event(e)) = w.try_recv().unwrap() else {
        panic!()
    };
    assert_eq!((&*e.key, e.seq), ("cfg/b", snapshot.seq + 1));
}
