//! `AsyncContract` (feature `tokio`) on a multi-threaded runtime: calls of a driver that
//! never blocks run inline, calls of one that blocks run on the blocking pool and leave the
//! executor's threads free, values are not copied, and `get_or_insert_with` keeps its
//! single flight across tasks, dropped leaders included.
#![cfg(feature = "tokio")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use hodor_core::driver::{Driver, DriverResult};
use hodor_core::{AsyncContract, Bytes, Capabilities, Contract, Error, Metadata};

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .unwrap()
}

/// Runs `f` on another thread and fails the test if it does not end in time: a call that
/// blocked an executor thread would otherwise hang the test instead of failing it.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    match result.recv_timeout(Duration::from_secs(20)) {
        Ok(value) => value,
        Err(_) => panic!("{what}: did not finish (an executor thread was blocked?)"),
    }
}

/// A driver whose `get` waits for a message, and which records where calls ran and which
/// buffers it was handed.
#[derive(Debug)]
struct Parked {
    caps: Capabilities,
    release: Mutex<Receiver<()>>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
    stored: Arc<Mutex<Option<Bytes>>>,
}

impl Driver for Parked {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    fn set(&self, _: &str, value: Bytes, _: Option<Duration>) -> DriverResult<()> {
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        *self.stored.lock().unwrap() = Some(value);
        Ok(())
    }
    fn get(&self, key: &str) -> DriverResult<Option<Bytes>> {
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        if key == "parked" {
            self.release.lock().unwrap().recv().unwrap();
        }
        Ok(self.stored.lock().unwrap().clone())
    }
    fn delete(&self, _: &str) -> DriverResult<bool> {
        Ok(false)
    }
    fn list(&self, _: &str) -> DriverResult<Vec<String>> {
        Ok(Vec::new())
    }
    fn stat(&self, _: &str) -> DriverResult<Option<Metadata>> {
        Ok(None)
    }
}

type Threads = Arc<Mutex<Vec<ThreadId>>>;

fn parked(
    caps: Capabilities,
) -> (
    AsyncContract,
    Sender<()>,
    Threads,
    Arc<Mutex<Option<Bytes>>>,
) {
    let (release, parked) = channel();
    let threads = Threads::default();
    let stored = Arc::new(Mutex::new(None));
    let driver = Parked {
        caps,
        release: Mutex::new(parked),
        threads: threads.clone(),
        stored: stored.clone(),
    };
    let c = Contract::from_driver("parked", "async", driver).unwrap();
    (AsyncContract::new(c), release, threads, stored)
}

#[test]
fn a_blocking_driver_runs_on_the_blocking_pool_and_frees_the_executor() {
    let (c, release, threads, _) = parked(Capabilities::NONE);
    within(
        "a blocking call beside a task that releases it",
        move || {
            // One executor thread: if the parked call held it, the task releasing it could
            // never run.
            let rt = runtime(1);
            rt.block_on(async move {
                let call = tokio::spawn(async move {
                    let caller = std::thread::current().id();
                    let got = c.get("parked").await;
                    (caller, got)
                });
                let releaser = tokio::spawn(async move { release.send(()).unwrap() });
                releaser.await.unwrap();
                let (caller, got) = call.await.unwrap();
                assert!(matches!(got, Err(Error::NotFound { .. })), "{got:?}");
                let ran_on = threads.lock().unwrap()[0];
                assert_ne!(ran_on, caller, "the blocking call ran on the task's thread");
            });
        },
    );
}

#[test]
fn a_non_blocking_driver_runs_inline() {
    let (c, _, threads, _) = parked(Capabilities::NONE.non_blocking(true));
    let rt = runtime(2);
    rt.block_on(async move {
        tokio::spawn(async move {
            let caller = std::thread::current().id();
            c.set("k", "v", None).await.unwrap();
            assert_eq!(c.get("k").await.unwrap(), "v");
            for ran_on in threads.lock().unwrap().iter() {
                assert_eq!(
                    *ran_on, caller,
                    "a non-blocking call left the task's thread"
                );
            }
        })
        .await
        .unwrap();
    });
}

#[test]
fn values_are_moved_not_copied_both_ways() {
    for caps in [Capabilities::NONE, Capabilities::NONE.non_blocking(true)] {
        let (c, _, _, stored) = parked(caps);
        let rt = runtime(2);
        rt.block_on(async move {
            let value = Bytes::from(vec![7u8; 4096]);
            let at = value.as_ptr();
            c.set("k", value, None).await.unwrap();
            let kept = stored.lock().unwrap().clone().unwrap();
            assert_eq!(kept.as_ptr(), at, "set copied the value ({caps:?})");
            let got = c.get("k").await.unwrap();
            assert_eq!(got.as_ptr(), at, "get copied the value ({caps:?})");
        });
    }
}

fn conditional(caps: Capabilities) -> AsyncContract {
    let (driver, _) = support::Recording::new(caps.conditional(true));
    AsyncContract::new(Contract::from_driver("rec", "async-cond", driver).unwrap())
}

#[test]
fn every_operation_answers_as_the_synchronous_one() {
    for caps in [Capabilities::NONE, Capabilities::NONE.non_blocking(true)] {
        let c = conditional(caps);
        let rt = runtime(2);
        rt.block_on(async move {
            c.set("a", "1", None).await.unwrap();
            c.set_many([("b", "2"), ("c", "3")], None).await.unwrap();
            c.set_json("j", &[1, 2], None).await.unwrap();
            assert_eq!(c.get("a").await.unwrap(), "1");
            assert!(c.exists("b").await.unwrap());
            assert_eq!(c.get_json::<Vec<u8>>("j").await.unwrap(), [1, 2]);
            let many = c.get_many(&["a", "zz"]).await.unwrap();
            assert_eq!(many, [Some(Bytes::from("1")), None]);
            assert_eq!(c.list("").await.unwrap(), ["a", "b", "c", "j"]);
            let page = c.list_page("", Some("a"), 2).await.unwrap();
            assert_eq!(
                (page.keys, page.next.as_deref()),
                (vec!["b".into(), "c".into()], Some("c"))
            );
            assert_eq!(c.stat("a").await.unwrap().size, 1);
            assert!(c.create("n", "0", None).await.unwrap());
            assert_eq!(c.increment("n", 5).await.unwrap(), 5);
            let v = c.stat("n").await.unwrap().version;
            assert!(c.set_if_version("n", "9", None, v).await.unwrap());
            assert_eq!(c.delete_many(&["b", "c"]).await.unwrap(), 2);
            assert!(c.delete("a").await.unwrap());
            assert_eq!(c.metrics().await.sets, 7);
            c.close().await.unwrap();
            assert!(c.is_closed());
            assert!(matches!(c.get("n").await, Err(Error::Closed { .. })));
        });
    }
}

#[test]
fn get_or_insert_with_runs_one_loader_across_tasks() {
    for caps in [Capabilities::NONE, Capabilities::NONE.non_blocking(true)] {
        let c = conditional(caps);
        let loads = Arc::new(AtomicUsize::new(0));
        let rt = runtime(4);
        let got = rt.block_on(async {
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let (c, loads) = (c.clone(), loads.clone());
                    tokio::spawn(async move {
                        c.get_or_insert_with("k", None, || async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            // Other tasks miss and wait meanwhile.
                            tokio::task::yield_now().await;
                            std::thread::sleep(Duration::from_millis(20));
                            Ok::<_, Error>("loaded")
                        })
                        .await
                        .unwrap()
                    })
                })
                .collect();
            let mut got = Vec::new();
            for t in tasks {
                got.push(t.await.unwrap());
            }
            got
        });
        assert!(got.iter().all(|v| v == "loaded"));
        assert_eq!(loads.load(Ordering::SeqCst), 1, "{caps:?}");
    }
}

#[test]
fn a_dropped_leader_lets_the_next_waiter_load() {
    let c = conditional(Capabilities::NONE.non_blocking(true));
    within("waiters of an aborted leader", move || {
        let rt = runtime(2);
        rt.block_on(async move {
            let leader = {
                let c = c.clone();
                tokio::spawn(async move {
                    c.get_or_insert_with("k", None, || async {
                        std::future::pending::<Result<&str, Error>>().await
                    })
                    .await
                })
            };
            // Let the leader start its loader, then the waiters join its flight.
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(50));
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        c.get_or_insert_with("k", None, || async { Ok::<_, Error>("second") })
                            .await
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(50));
            leader.abort();
            assert!(leader.await.unwrap_err().is_cancelled());
            for w in waiters {
                assert_eq!(w.await.unwrap().unwrap(), "second");
            }
        });
    });
}

#[test]
fn a_panic_in_a_blocking_call_reaches_the_caller() {
    #[derive(Debug)]
    struct Panics;
    impl Driver for Panics {
        fn capabilities(&self) -> Capabilities {
            Capabilities::NONE
        }
        fn set(&self, _: &str, _: Bytes, _: Option<Duration>) -> DriverResult<()> {
            panic!("the driver panicked")
        }
        fn get(&self, _: &str) -> DriverResult<Option<Bytes>> {
            Ok(None)
        }
        fn delete(&self, _: &str) -> DriverResult<bool> {
            Ok(false)
        }
        fn list(&self, _: &str) -> DriverResult<Vec<String>> {
            Ok(Vec::new())
        }
        fn stat(&self, _: &str) -> DriverResult<Option<Metadata>> {
            Ok(None)
        }
    }
    let c = AsyncContract::new(Contract::from_driver("panics", "p", Panics).unwrap());
    let rt = runtime(2);
    let task =
        rt.block_on(async move { tokio::spawn(async move { c.set("k", "v", None).await }).await });
    let panic = task.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"the driver panicked"));
}

#[test]
fn outside_a_runtime_calls_run_inline() {
    let c = conditional(Capabilities::NONE);
    // A plain executor that is not tokio: the blocking call cannot be handed to tokio's
    // pool, so it runs where it is polled.
    let got = futures_lite_block_on(async move {
        c.set("k", "v", None).await.unwrap();
        c.get("k").await.unwrap()
    });
    assert_eq!(got, "v");
}

/// Polls a future to completion on this thread (a stand-in for another executor).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}
