//! The Redis driver behind `AsyncContract` on a multi-threaded tokio runtime: every call
//! is a round trip, so it runs on the blocking pool, and a call waiting on a hung server
//! leaves the executor's threads to other tasks.

mod support;

use std::time::{Duration, Instant};

use hodor_core::{AsyncContract, Error};
use hodor_redis as _;
use serde_json::json;
use support::{Mode, Proxy, Server};

#[test]
fn a_call_waiting_on_a_hung_server_leaves_the_executor_free() {
    let Some(server) = Server::start() else {
        support::skip("a_call_waiting_on_a_hung_server", "no redis-server");
        return;
    };
    let proxy = Proxy::start(format!("127.0.0.1:{}", server.port), Mode::Forward);
    // One executor thread: a call that held it would stop every other task.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = json!({"url": proxy.url(), "timeout_ms": 1500, "pool_size": 2});
        let c = AsyncContract::open("redis", &support::unique("async"), Some(config))
            .await
            .unwrap();
        assert!(!c.capabilities().non_blocking, "Redis calls block");
        c.set("k", "v", None).await.unwrap();
        proxy.set(Mode::Silent);
        let started = Instant::now();
        let hung = {
            let c = c.clone();
            tokio::spawn(async move { c.get("k").await })
        };
        // Other tasks run meanwhile, on the only executor thread.
        let other = tokio::spawn(async { 42 });
        assert_eq!(other.await.unwrap(), 42);
        assert!(
            !hung.is_finished() && started.elapsed() < Duration::from_millis(1500),
            "another task ran only after the hung call had returned"
        );
        let err = hung.await.unwrap().unwrap_err();
        assert!(err.is_retryable(), "a timeout is retryable: {err}");
        proxy.set(Mode::Forward);
    });
}

#[test]
fn conditional_writes_from_many_tasks_keep_their_promises() {
    let Some(url) = support::url("conditional_writes_from_many_tasks") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let name = support::unique("async-cond");
        let c = AsyncContract::open("redis", &name, Some(support::config(&url)))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move {
                    let won = c.create("lock", format!("t{i}"), None).await.unwrap();
                    let mut sums = Vec::new();
                    for _ in 0..20 {
                        sums.push(c.increment("hits", 1).await.unwrap());
                    }
                    (won, sums)
                })
            })
            .collect();
        let mut winners = 0;
        let mut sums = Vec::new();
        for t in tasks {
            let (won, s) = t.await.unwrap();
            winners += usize::from(won);
            sums.extend(s);
        }
        sums.sort_unstable();
        assert_eq!(winners, 1, "one create wins");
        assert_eq!(sums, (1..=160).collect::<Vec<i64>>());
        let page = c.list_page("", None, 1).await.unwrap();
        assert_eq!(page.keys, ["hits"]);
        let v = c
            .get_or_insert_with("cfg", None, || async { Ok::<_, Error>("x") })
            .await
            .unwrap();
        assert_eq!(v, "x");
        c.close().await.unwrap();
    });
}
