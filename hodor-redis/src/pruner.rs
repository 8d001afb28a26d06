//! Removes the index entries of expired keys, so they are reclaimed even if nobody writes.
//!
//! Redis frees an expired entry's hash by itself (lazily on access, and by its active
//! expiry cycle). The contract's index and expiry sets are this driver's, so it removes
//! their members of expired keys: one `set`, `create` or `set_if_version` in 16 (the one
//! whose change's `seq` is a multiple of 16, see `write_entry` in [`crate::scripts`]) and
//! every `set_many` and `increment` removes up to [`LIMIT`] of them, and one thread per
//! pool does the same for every contract open on the pool, every `prune_interval_ms`.
//! Each member removed is an `Expired` entry in the contract's change log, so watches
//! learn of expiries within about one interval.
//!
//! The thread starts when the pool's first contract has opened, so an open that fails
//! starts none. It holds no strong reference to the pool, and it waits on a channel whose
//! sender the pool holds: when the pool is dropped (its last contract closed or dropped),
//! the wait ends at once and so does the thread, instead of sleeping out its interval.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread;

use hodor_core::driver::{DriverError, DriverResult};
use hodor_core::{Applied, BackendKind};

use crate::error::BackendError;
use crate::pool::{Op, Pool};
use crate::scripts;

/// The most index members one script call removes: it bounds how long the server is
/// blocked by one call.
pub(crate) const LIMIT: usize = 1000;

/// At most this many calls per contract and interval, so a mass expiry is spread out.
const ROUNDS: usize = 100;

/// The pool's end of its pruning thread: dropping it stops the thread. Nothing is ever
/// sent; the sender is held only so that its drop disconnects the channel.
#[derive(Debug)]
pub(crate) struct Stop(#[expect(dead_code, reason = "held to be dropped")] mpsc::Sender<()>);

/// Starts the pruning thread of `pool`.
pub(crate) fn start(pool: &Arc<Pool>) -> DriverResult<Stop> {
    let weak = Arc::downgrade(pool);
    let interval = pool.config.prune_interval();
    let (stop, stopped) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("hodor-redis-prune".to_owned())
        .spawn(move || {
            // Nothing is ever sent: a timeout is the next round, anything else is the
            // pool going away.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                if !prune_once(&weak) {
                    return;
                }
            }
        })
        .map(|_| Stop(stop))
        .map_err(|e| {
            DriverError::backend_failure(
                BackendKind::Other,
                Applied::No,
                BackendError::other(format!("cannot start the index pruning thread: {e}")),
            )
        })
}

/// One round over every open contract; `false` once the pool is gone.
fn prune_once(pool: &Weak<Pool>) -> bool {
    let Some(pool) = pool.upgrade() else {
        return false;
    };
    for namespace in pool.namespaces() {
        for _ in 0..ROUNDS {
            let removed = pool.run(Op::Write, |conn| {
                let mut invocation = scripts::PRUNE.prepare_invoke();
                invocation
                    .key(namespace.index_key())
                    .key(namespace.expiry_key())
                    .arg(LIMIT);
                scripts::log_args(&mut invocation, &namespace, pool.config.watch_history);
                invocation.invoke::<usize>(conn)
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
