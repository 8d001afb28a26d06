//! Feature flags: typed values read on every request from a live map (no store read per
//! request, no restart to pick up a change), changed at run time by admins who may race,
//! with compare-and-set (`set_if_version`) so no change is lost.
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

/// How long the example waits for a change it expects (it comes in milliseconds).
const WAIT: Duration = Duration::from_secs(10);

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
        changed.recv_timeout(WAIT).expect("the initial flags");
    }
    println!("flags: {:?}", flags.snapshot().keys().collect::<Vec<_>>());
    report(&flags, "at start");

    // Two admins raise the rollout at once, each from what they read. A plain set would
    // let one of them silently undo the other; compare-and-set retries instead. The live
    // map follows whatever they write.
    let admins: Vec<_> = [50, 100]
        .into_iter()
        .map(|target| {
            let store = store.clone();
            std::thread::spawn(move || raise_rollout(&store, "new-checkout", target))
        })
        .collect();
    for admin in admins {
        admin.join().expect("the admin thread does not panic")?;
    }
    while flags.get("flag/new-checkout").map(|f| f.rollout) != Some(100) {
        changed
            .recv_timeout(WAIT)
            .expect("the rollout reaches the map");
    }

    // Drop a flag: the map follows within the debounce.
    store.delete("flag/beta-search")?;
    while flags.get("flag/beta-search").is_some() {
        changed
            .recv_timeout(WAIT)
            .expect("the removal reaches the map");
    }
    report(&flags, "after rollout");
    assert!(is_enabled(&flags, "new-checkout", 88));

    // A flag created only if nobody created it first (another process, say).
    let created = store.create(
        "flag/dark-mode",
        serde_json::to_vec(&Flag {
            enabled: false,
            rollout: 0,
        })
        .expect("a flag serializes"),
        None,
    )?;
    println!("create flag/dark-mode again: {created} (it exists, nothing was written)");

    // A rollout of 250% is refused; the flag keeps its last good value.
    set("dark-mode", true, 250)?;
    refused
        .recv_timeout(WAIT)
        .expect("the bad rollout is reported");
    assert_eq!(flags.get("flag/dark-mode").map(|f| f.rollout), Some(100));
    println!(
        "dark-mode after a bad write: {:?}",
        flags.status("flag/dark-mode")
    );

    drop(flags);
    store.close()
}

/// Raises a flag's rollout to at least `target`, without losing a concurrent change: read
/// the flag and its version, write only if nobody wrote in between, else read again.
fn raise_rollout(flags: &Contract, name: &str, target: u8) -> Result<(), Error> {
    let key = format!("flag/{name}");
    loop {
        let version = flags.stat(&key)?.version;
        let mut flag: Flag = flags.get_json(&key)?;
        flag.rollout = flag.rollout.max(target);
        let bytes = serde_json::to_vec(&flag).expect("a flag serializes");
        if flags.set_if_version(&key, bytes, None, version)? {
            return Ok(());
        }
    }
}
