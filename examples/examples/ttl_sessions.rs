//! Sessions that expire on their own: a TTL per entry, refreshed on activity.
//!
//! Run with `cargo run --example ttl_sessions`.

use std::thread::sleep;
use std::time::Duration;

use hodor_core::{Contract, Error};
use hodor_memory as _;

const SESSION_TTL: Duration = Duration::from_millis(300);

fn main() -> Result<(), Error> {
    let sessions = Contract::new("memory", "sessions", None)?;

    sessions.set("session/alice", "user=alice;role=admin", Some(SESSION_TTL))?;
    sessions.set("session/bob", "user=bob;role=viewer", Some(SESSION_TTL))?;
    let meta = sessions.stat("session/alice")?;
    println!("alice's session expires at {:?}", meta.expires_at);

    sleep(Duration::from_millis(200));
    // Alice is active: setting again with a TTL starts her clock over.
    sessions.set("session/alice", "user=alice;role=admin", Some(SESSION_TTL))?;
    println!("refreshed alice at 200 ms");

    sleep(Duration::from_millis(150));
    println!("at 350 ms live sessions: {:?}", sessions.list("session/")?);
    // An expired session is an everyday outcome: `get_opt` says so with `None`.
    match sessions.get_opt("session/bob")? {
        None => println!("bob's session expired: log in again"),
        Some(session) => println!("unexpected: {session:?}"),
    }

    // A session made permanent: set without a TTL clears the old one.
    sessions.set("session/alice", "user=alice;role=admin;remember-me", None)?;
    println!(
        "alice remembered, expires_at = {:?}",
        sessions.stat("session/alice")?.expires_at
    );
    sessions.close()
}
