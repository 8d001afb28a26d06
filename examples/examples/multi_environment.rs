//! One store per environment: the same key in different contract names never collides.
//!
//! Run with `cargo run --example multi_environment`.

use hodor_core::{Contract, Error};
use hodor_memory as _;

fn main() -> Result<(), Error> {
    let environments = ["development", "staging", "production"];
    let stores = environments
        .iter()
        .map(|env| Contract::new("memory", &format!("config-{env}"), None))
        .collect::<Result<Vec<_>, _>>()?;

    for (env, store) in environments.iter().zip(&stores) {
        store.set(
            "database/url",
            format!("postgres://db.{env}.internal/app"),
            None,
        )?;
        store.set(
            "log/level",
            if *env == "production" {
                "warn"
            } else {
                "debug"
            },
            None,
        )?;
    }

    for (env, store) in environments.iter().zip(&stores) {
        let url = store.get("database/url")?;
        let level = store.get("log/level")?;
        println!(
            "{env:>11}: database/url={} log/level={}",
            String::from_utf8_lossy(&url),
            String::from_utf8_lossy(&level)
        );
    }

    // Clearing staging leaves the others untouched.
    if let Some(staging) = stores.get(1) {
        let keys = staging.list("")?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        staging.delete_many(&keys)?;
    }
    for (env, store) in environments.iter().zip(&stores) {
        println!("{env:>11}: {} keys", store.list("")?.len());
    }
    for store in stores {
        store.close()?;
    }
    Ok(())
}
