//! Feature flags: typed values read on every request, flipped at run time and picked up
//! live, without a restart and without reading the store on each request.
//!
//! Run with `cargo run --example feature_flags`.

use std::sync::mpsc;
use std::time::Duration;

use hodor_core::sync::SyncedMap;
use hodor_core::{Contract, Error};
use hodor_memory as _;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Flag {
    enabled: bool,
    /// Percentage of users who see the feature.
    rollout: u8,
}

/// Whether `name` is on for `user_id`: a lock-free read of the live map; an unknown flag is
/// off.
fn is_enabled(flags: &SyncedMap<Flag>, name: &str, user_id: u32) -> bool {
    flags
        .get(&format!("flag/{name}"))
        .is_some_and(|flag| flag.enabled && (user_id % 100) < u32::from(flag.rollout))
}

fn report(flags: &SyncedMap<Flag>, when: &str) {
    for user in [7, 42, 88] {
        println!(
            "{when}: user {user:>2}: new-checkout={} dark-mode={} beta-search={} unknown={}",
            is_enabled(flags, "new-checkout", user),
            is_enabled(flags, "dark-mode", user),
            is_enabled(flags, "beta-search", user),
            is_enabled(flags, "no-such-flag", user),
        );
    }
}

fn main() -> Result<(), Error> {
    let store = Contract::new("memory", "feature-flags", None)?;
    let set = |name: &str, enabled: bool, rollout: u8| {
        store.set_json(&format!("flag/{name}"), &Flag { enabled, rollout }, None)
    };
    set("new-checkout", true, 25)?;
    set("dark-mode", true, 100)?;
    set("beta-search", false, 100)?;

    // Every flag under `flag/`, followed live; each change is announced once.
    let (changes, changed) = mpsc::channel();
    let (errors, refused) = mpsc::channel();
    let flags = SyncedMap::<Flag>::builder(&store, "flag/")
        .validate(|_, flag| match flag.rollout {
            0..=100 => Ok(()),
            n => Err(format!("rollout is a percentage, not {n}")),
        })
        .on_change(move |name, old, new| {
            if old.is_some() {
                println!("flag {name}: {old:?} -> {new:?}");
            }
            let _ = changes.send(name.to_owned());
        })
        .on_error(move |e| {
            println!("flag change refused: {e}");
            let _ = errors.send(());
        })
        .debounce(Duration::from_millis(20))
        .start()?;
    // The first call per flag announces its initial value.
    for _ in 0..3 {
        changed
            .recv_timeout(Duration::from_secs(10))
            .expect("the initial flags");
    }
    println!("flags: {:?}", flags.snapshot().keys().collect::<Vec<_>>());
    report(&flags, "at start");

    // Roll out to everyone, and drop a flag: the map follows within the debounce.
    set("new-checkout", true, 100)?;
    store.delete("flag/beta-search")?;
    for _ in 0..2 {
        changed
            .recv_timeout(Duration::from_secs(10))
            .expect("the rollout and the removal");
    }
    report(&flags, "after rollout");
    assert!(is_enabled(&flags, "new-checkout", 88));
    assert_eq!(flags.get("flag/beta-search"), None);

    // A rollout of 250% is refused; the flag keeps its last good value.
    set("dark-mode", true, 250)?;
    refused
        .recv_timeout(Duration::from_secs(10))
        .expect("the bad rollout is reported");
    assert_eq!(flags.get("flag/dark-mode").map(|f| f.rollout), Some(100));
    println!(
        "dark-mode after a bad write: {:?}",
        flags.status("flag/dark-mode")
    );

    drop(flags);
    store.close()
}
