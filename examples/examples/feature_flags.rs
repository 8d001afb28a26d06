//! Feature flags: typed values read on every request, changed at run time by admins who
//! may race, with compare-and-set (`set_if_version`) so no change is lost.
//!
//! Run with `cargo run --example feature_flags`.

use hodor_core::{Contract, Error};
use hodor_memory as _;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct Flag {
    enabled: bool,
    /// Percentage of users who see the feature.
    rollout: u8,
}

fn is_enabled(flags: &Contract, name: &str, user_id: u32) -> Result<bool, Error> {
    match flags.get_json::<Flag>(&format!("flag/{name}")) {
        Ok(flag) => Ok(flag.enabled && (user_id % 100) < u32::from(flag.rollout)),
        // An unknown flag is off.
        Err(Error::NotFound { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

fn main() -> Result<(), Error> {
    let flags = Contract::new("memory", "feature-flags", None)?;
    flags.set_json(
        "flag/new-checkout",
        &Flag {
            enabled: true,
            rollout: 25,
        },
        None,
    )?;
    flags.set_json(
        "flag/dark-mode",
        &Flag {
            enabled: true,
            rollout: 100,
        },
        None,
    )?;
    flags.set_json(
        "flag/beta-search",
        &Flag {
            enabled: false,
            rollout: 100,
        },
        None,
    )?;

    println!("flags: {:?}", flags.list("flag/")?);
    for user in [7, 42, 88] {
        println!(
            "user {user:>2}: new-checkout={} dark-mode={} beta-search={} unknown={}",
            is_enabled(&flags, "new-checkout", user)?,
            is_enabled(&flags, "dark-mode", user)?,
            is_enabled(&flags, "beta-search", user)?,
            is_enabled(&flags, "no-such-flag", user)?,
        );
    }

    // Two admins raise the rollout at once, each from what they read. A plain set would
    // let one of them silently undo the other; compare-and-set retries instead.
    let admins: Vec<_> = [50, 100]
        .into_iter()
        .map(|target| {
            let flags = flags.clone();
            std::thread::spawn(move || raise_rollout(&flags, "new-checkout", target))
        })
        .collect();
    for admin in admins {
        admin.join().expect("the admin thread does not panic")?;
    }
    let flag: Flag = flags.get_json("flag/new-checkout")?;
    println!("after both admins: {flag:?}");
    println!(
        "after rollout, user 88 new-checkout={}",
        is_enabled(&flags, "new-checkout", 88)?
    );

    // A flag created only if nobody created it first (another process, say).
    let created = flags.create(
        "flag/dark-mode",
        serde_json::to_vec(&Flag {
            enabled: false,
            rollout: 0,
        })
        .expect("a flag serializes"),
        None,
    )?;
    println!("create flag/dark-mode again: {created} (it exists, nothing was written)");
    flags.close()
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
