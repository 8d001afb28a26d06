//! The five calls of the contract against the in-memory driver.
//!
//! Run with `cargo run --example quickstart`.

use hodor_core::{Contract, Error};
use hodor_memory as _; // links the "memory" driver into this program

fn main() -> Result<(), Error> {
    println!("drivers linked: {:?}", hodor_core::drivers());

    let store = Contract::new("memory", "quickstart", None)?;
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
