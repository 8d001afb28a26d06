//! Typed application config stored as JSON with `set_json` / `get_json`.
//!
//! Run with `cargo run --example json_config`.

use hodor_core::{Contract, Error};
use hodor_memory as _;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct ServerConfig {
    host: String,
    port: u16,
    workers: u32,
    tls: Option<Tls>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Tls {
    cert_path: String,
    key_path: String,
}

fn main() -> Result<(), Error> {
    let config = Contract::new("memory", "app-config", None)?;
    let server = ServerConfig {
        host: "0.0.0.0".into(),
        port: 8443,
        workers: 8,
        tls: Some(Tls {
            cert_path: "/etc/app/cert.pem".into(),
            key_path: "/etc/app/key.pem".into(),
        }),
    };
    config.set_json("server", &server, None)?;

    let loaded: ServerConfig = config.get_json("server")?;
    println!("loaded: {loaded:#?}");
    assert_eq!(loaded, server);
    println!(
        "stored as: {}",
        String::from_utf8_lossy(&config.get("server")?)
    );

    // Reading with the wrong type is a clear error, not a panic.
    config.set("legacy", "port=80", None)?;
    match config.get_json::<ServerConfig>("legacy") {
        Err(e @ Error::InvalidInput { .. }) => println!("legacy value: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    config.close()
}
