//! The quickstart on a Redis server: the same program as `quickstart`, with one line
//! changed (the driver name and its config), plus the line that links the driver.
//!
//! Start a server, then run it:
//!
//! ```sh
//! apt-get install redis-server   # or: docker run -p 6379:6379 redis
//! redis-server --save "" --appendonly no &
//! cargo run -p hodor-redis-examples --example redis_quickstart
//! ```

use hodor_core::{Contract, Error};
use hodor_redis as _; // links the "redis" driver into this program
use serde_json::json;

fn main() -> Result<(), Error> {
    println!("drivers linked: {:?}", hodor_core::drivers());

    let store = Contract::new(
        "redis",
        "quickstart",
        Some(json!({"url": "redis://127.0.0.1:6379/0"})),
    )?;
    store.set("greeting", "hello, hodor", None)?;
    store.set("users/alice", "admin", None)?;
    store.set("users/bob", "viewer", None)?;

    let greeting = store.get("greeting")?;
    println!(
        "get greeting      -> {}",
        String::from_utf8_lossy(&greeting)
    );
    println!("list users/       -> {:?}", store.list("users/")?);
    println!("exists users/bob  -> {}", store.exists("users/bob")?);
    println!("delete users/bob  -> {}", store.delete("users/bob")?);
    println!("exists users/bob  -> {}", store.exists("users/bob")?);
    match store.get("users/bob") {
        Err(e @ Error::NotFound { .. }) => println!("get users/bob     -> {e}"),
        other => println!("get users/bob     -> unexpected {other:?}"),
    }
    let meta = store.stat("users/alice")?;
    println!(
        "stat users/alice  -> {} bytes, expires {:?}",
        meta.size, meta.expires_at
    );

    store.close()?;
    match store.get("greeting") {
        Err(e @ Error::Closed { .. }) => println!("after close       -> {e}"),
        other => println!("after close       -> unexpected {other:?}"),
    }
    Ok(())
}
