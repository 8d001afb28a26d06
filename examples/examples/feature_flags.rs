//! Feature flags: typed values read on every request, flipped at run time.
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

    // Roll out to everyone.
    flags.set_json(
        "flag/new-checkout",
        &Flag {
            enabled: true,
            rollout: 100,
        },
        None,
    )?;
    println!(
        "after rollout, user 88 new-checkout={}",
        is_enabled(&flags, "new-checkout", 88)?
    );
    flags.close()
}
