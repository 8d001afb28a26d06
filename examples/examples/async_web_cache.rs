//! A cache-aside handler in an async web service, on tokio: the shape of an axum or actix
//! handler, without the web framework.
//!
//! - `GET /products/{id}` reads the product through the cache with `get_or_insert_with`:
//!   on a miss, one request loads it from the (slow) database and stores it with a TTL,
//!   and the other requests for it wait for that one instead of all asking the database.
//! - `PUT /products/{id}` writes the database, then removes the cached copy.
//! - Each read also counts a view with `increment`, atomic across tasks and processes.
//!
//! Run with `cargo run --example async_web_cache --features tokio`.
//!
//! The cache here is the memory driver, whose calls run inline on the task. With Redis
//! (`AsyncContract::open("redis", "web-cache", Some(config))`), nothing else changes: its
//! calls, which wait for the network, run on tokio's blocking pool, so a slow server never
//! holds one of the runtime's worker threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hodor_core::{AsyncContract, Bytes, Error};
use hodor_memory as _;

/// How long a cached product is served before it is loaded again.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Stands in for the database: slow, and counting its queries.
#[derive(Default)]
struct Database {
    queries: AtomicUsize,
}

impl Database {
    async fn load_product(&self, id: u32) -> Result<String, Error> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(format!(
            "{{\"id\":{id},\"name\":\"product {id}\",\"price\":{}}}",
            10 + id
        ))
    }

    async fn save_product(&self, _id: u32, _body: &str) -> Result<(), Error> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    }
}

/// What the handlers share, as a web framework's state would be.
struct App {
    cache: AsyncContract,
    db: Database,
}

/// A response, as a handler would return it.
#[derive(Debug)]
struct Response {
    status: u16,
    body: Bytes,
}

/// `GET /products/{id}`.
async fn get_product(app: &App, id: u32) -> Result<Response, Error> {
    let key = format!("products/{id}");
    let body = app
        .cache
        .get_or_insert_with(&key, Some(CACHE_TTL), || app.db.load_product(id))
        .await?;
    app.cache.increment(&format!("views/{id}"), 1).await?;
    Ok(Response { status: 200, body })
}

/// `PUT /products/{id}`: the database first, then the cached copy goes.
async fn put_product(app: &App, id: u32, body: &str) -> Result<Response, Error> {
    app.db.save_product(id, body).await?;
    app.cache.delete(&format!("products/{id}")).await?;
    Ok(Response {
        status: 204,
        body: Bytes::new(),
    })
}

async fn serve() -> Result<(), Error> {
    let app = Arc::new(App {
        cache: AsyncContract::open("memory", "web-cache", None).await?,
        db: Database::default(),
    });

    // 60 requests at once for 3 products: 3 database queries, not 60.
    let started = Instant::now();
    let requests: Vec<_> = (0..60u32)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move { get_product(&app, n % 3).await })
        })
        .collect();
    for request in requests {
        let response = request.await.expect("the handler does not panic")?;
        assert_eq!(response.status, 200);
    }
    println!(
        "60 concurrent GETs in {:?}: {} database queries",
        started.elapsed(),
        app.db.queries.load(Ordering::Relaxed)
    );

    let response = put_product(&app, 1, "{\"price\":99}").await?;
    println!("PUT /products/1 -> {}", response.status);
    let response = get_product(&app, 1).await?;
    println!(
        "GET /products/1 -> {} {} ({} database queries in all)",
        response.status,
        String::from_utf8_lossy(&response.body),
        app.db.queries.load(Ordering::Relaxed)
    );

    for id in 0..3 {
        let views = app.cache.get(&format!("views/{id}")).await?;
        println!("views/{id}: {}", String::from_utf8_lossy(&views));
    }
    app.cache.close().await
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()?;
    runtime.block_on(serve())?;
    Ok(())
}
