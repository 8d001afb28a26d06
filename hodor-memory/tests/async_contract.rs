//! The memory driver behind `AsyncContract` on a multi-threaded tokio runtime: it claims
//! `non_blocking`, so calls run inline on the tasks' threads, and the conditional writes
//! keep their promises across tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hodor_core::{AsyncContract, Error};
use hodor_memory as _;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap()
}

#[test]
fn tasks_on_many_threads_lose_no_increment_and_load_once() {
    let rt = runtime();
    rt.block_on(async {
        let c = AsyncContract::open("memory", "async-memory", None)
            .await
            .unwrap();
        assert!(c.capabilities().non_blocking, "memory runs calls inline");
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (c, loads) = (c.clone(), loads.clone());
                tokio::spawn(async move {
                    let mut sums = Vec::new();
                    for _ in 0..250 {
                        sums.push(c.increment("hits", 1).await.unwrap());
                        tokio::task::yield_now().await;
                    }
                    let v = c
                        .get_or_insert_with("config", None, || async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok::<_, Error>("loaded")
                        })
                        .await
                        .unwrap();
                    assert_eq!(v, "loaded");
                    sums
                })
            })
            .collect();
        let mut sums = Vec::new();
        for t in tasks {
            sums.extend(t.await.unwrap());
        }
        sums.sort_unstable();
        assert_eq!(sums, (1..=2000).collect::<Vec<i64>>(), "each sum once");
        assert_eq!(c.get("hits").await.unwrap(), "2000");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        c.close().await.unwrap();
    });
}
