//! Removes the index entries of expired keys, so they are reclaimed even if nobody writes.
//!
//! Redis frees an expired entry's hash by itself (lazily on access, and by its active
//! expiry cycle). The contract's index and expiry sets are this driver's, so it removes
//! their members of expired keys: every write removes up to [`LIMIT`] of them, and one
//! thread per pool does the same for every contract open on the pool, every
//! `prune_interval_ms`. The thread holds no strong reference to the pool and ends within
//! one interval after the pool is dropped.

use std::sync::{Arc, Weak};
use std::thread;

use hodor_core::driver::{DriverError, DriverResult};

use crate::error::BackendError;
use crate::pool::{Pool, Retry};
use crate::scripts;

/// The most index members one script call removes: it bounds how long the server is
/// blocked by one call.
pub(crate) const LIMIT: usize = 1000;

/// At most this many calls per contract and interval, so a mass expiry is spread out.
const ROUNDS: usize = 100;

pub(crate) fn start(pool: &Arc<Pool>) -> DriverResult<()> {
    let weak = Arc::downgrade(pool);
    let interval = pool.config.prune_interval();
    thread::Builder::new()
        .name("hodor-redis-prune".to_owned())
        .spawn(move || {
            loop {
                thread::sleep(interval);
                if !prune_once(&weak) {
                    return;
                }
            }
        })
        .map(drop)
        .map_err(|e| {
            DriverError::backend(BackendError::other(format!(
                "cannot start the index pruning thread: {e}"
            )))
        })
}

/// One round over every open contract; `false` once the pool is gone.
fn prune_once(pool: &Weak<Pool>) -> bool {
    let Some(pool) = pool.upgrade() else {
        return false;
    };
    for namespace in pool.namespaces() {
        for _ in 0..ROUNDS {
            let removed = pool.run(Retry::Idempotent, |conn| {
                scripts::PRUNE
                    .key(namespace.index_key())
                    .key(namespace.expiry_key())
                    .arg(LIMIT)
                    .invoke::<usize>(conn)
            });
            // An unreachable server is the callers' news; the next round tries again.
            match removed {
                Ok(n) if n >= LIMIT => continue,
                _ => break,
            }
        }
    }
    true
}
