//! One background thread reclaims expired entries for every memory store in the process.
//!
//! It holds only `Weak` references, so it never keeps a store alive, and it exits when no
//! store is left (the next store starts it again). A store's sweeps are `sweep_interval_ms`
//! apart. If the thread cannot be started, expired entries are still never returned and
//! writes still reclaim them from the shards they touch.

use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::store::Store;

struct Registered {
    store: Weak<Store>,
    next: Instant,
}

#[derive(Default)]
struct State {
    stores: Vec<Registered>,
    running: bool,
}

struct Sweeper {
    state: Mutex<State>,
    wake: Condvar,
}

fn sweeper() -> &'static Sweeper {
    static SWEEPER: OnceLock<Sweeper> = OnceLock::new();
    SWEEPER.get_or_init(|| Sweeper {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    })
}

/// Starts sweeping `store`.
pub(crate) fn register(store: &Arc<Store>) {
    let sweeper = sweeper();
    let mut state = sweeper.state.lock().unwrap_or_else(PoisonError::into_inner);
    state.stores.push(Registered {
        store: Arc::downgrade(store),
        next: Instant::now() + interval(store),
    });
    if !state.running {
        let started = std::thread::Builder::new()
            .name("hodor-memory-sweeper".to_owned())
            .spawn(run)
            .is_ok();
        state.running = started;
    }
    sweeper.wake.notify_one();
}

fn interval(store: &Store) -> Duration {
    Duration::from_millis(store.config.sweep_interval_ms.max(1))
}

fn run() {
    let sweeper = sweeper();
    let mut state = sweeper.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        state.stores.retain(|r| r.store.strong_count() > 0);
        if state.stores.is_empty() {
            state.running = false;
            return;
        }
        let now = Instant::now();
        let due: Vec<Arc<Store>> = state
            .stores
            .iter_mut()
            .filter(|r| r.next <= now)
            .filter_map(|r| {
                let store = r.store.upgrade()?;
                r.next = now + interval(&store);
                Some(store)
            })
            .collect();
        if !due.is_empty() {
            // Sweep without the registry lock, so opening a store never waits on a sweep.
            drop(state);
            for store in due {
                store.sweep();
            }
            state = sweeper.state.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        let next = state.stores.iter().map(|r| r.next).min().unwrap_or(now);
        let wait = next.saturating_duration_since(now);
        state = sweeper
            .wake
            .wait_timeout(state, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemoryConfig;
    use hodor_core::clock::ManualClock;

    #[test]
    fn the_sweeper_reclaims_without_reads_and_never_keeps_a_store_alive() {
        let clock = ManualClock::new();
        let config = MemoryConfig::default().sweep_interval_ms(1);
        let store = Arc::new(Store::new("sweeper-unit", config, clock.clone().into()));
        register(&store);
        store
            .set("k", bytes::Bytes::new(), Some(Duration::from_millis(1)))
            .unwrap();
        clock.advance(Duration::from_millis(1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.gauges().entries != Some(0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(store.gauges().entries, Some(0));

        let weak = Arc::downgrade(&store);
        drop(store);
        assert!(
            weak.upgrade().is_none(),
            "the sweeper holds only weak references"
        );
    }
}
