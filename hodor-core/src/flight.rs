//! Single flight: at most one caller per key computes a missing value at a time, in one
//! process, for `get_or_insert_with` (sync and async callers alike).
//!
//! A flight is keyed by (driver, contract name, key), so contracts of one name share it.
//! The first caller to miss leads: it runs its closure (with no lock of any kind held) and
//! stores the value; the others wait until the leader is done, by success, error, panic
//! or a dropped future, and then read the store again. A waiter takes nothing from the
//! leader but the news that it finished: two contracts of one name on different servers
//! share flights, and a waiter must read its own store. So a leader that fails (or whose
//! value is gone again) leaves the key missing, and the next waiter leads.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
#[cfg(feature = "tokio")]
use std::task::{Context, Poll};
use std::thread::ThreadId;

/// Which flight: driver, contract name, key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct FlightKey {
    pub(crate) driver: &'static str,
    pub(crate) contract: Arc<str>,
    pub(crate) key: String,
}

/// One key's flight, shared by its leader and its waiters.
pub(crate) struct Flight {
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Default)]
struct State {
    done: bool,
    /// The leader's thread, while a synchronous leader runs its closure: a waiter on that
    /// thread is the closure calling back for its own key, which would wait forever.
    leader: Option<ThreadId>,
    /// Async waiters to wake when the flight is done.
    wakers: Vec<Waker>,
}

/// Tables split by key hash, so unrelated keys rarely meet on one lock. Each lock guards
/// only map operations: nothing else runs under it.
const TABLES: usize = 16;

type Table = Mutex<HashMap<FlightKey, Arc<Flight>>>;

fn tables() -> &'static (RandomState, [Table; TABLES]) {
    static TABLES_: OnceLock<(RandomState, [Table; TABLES])> = OnceLock::new();
    TABLES_.get_or_init(|| {
        (
            RandomState::new(),
            std::array::from_fn(|_| Table::default()),
        )
    })
}

fn table_of(key: &FlightKey) -> &'static Table {
    let (hasher, tables) = tables();
    let at = (hasher.hash_one(key) as usize) % TABLES;
    let [first, ..] = tables;
    // `at < TABLES` by construction; the fallback is unreachable.
    tables.get(at).unwrap_or(first)
}

/// Neither a map nor a flight state is ever left half-updated by a panic (no code that can
/// panic runs under these locks), so a poisoned lock is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What joining a key's flight made of the caller.
pub(crate) enum Join {
    /// No flight was running: the caller leads. Dropping the guard ends the flight.
    Lead(Lead),
    /// Another caller leads: wait for it with [`Flight::wait`] or [`Flight::finished`].
    Wait(Arc<Flight>),
}

/// Joins the flight of `key`, or starts it. `leader_thread` is the thread a synchronous
/// leader runs its closure on (`None` for an async leader, which may move between threads).
pub(crate) fn join(key: FlightKey, leader_thread: Option<ThreadId>) -> Join {
    let table = table_of(&key);
    let mut flights = lock(table);
    if let Some(flight) = flights.get(&key) {
        return Join::Wait(flight.clone());
    }
    let flight = Arc::new(Flight {
        state: Mutex::new(State {
            leader: leader_thread,
            ..State::default()
        }),
        finished: Condvar::new(),
    });
    flights.insert(key.clone(), flight.clone());
    Join::Lead(Lead { key, flight })
}

/// The leader's hold on its flight. Dropped however the leader ends (its value stored, an
/// error, a panic unwinding, an async call's future dropped), it ends the flight and wakes
/// every waiter, so none waits for a leader that is gone.
pub(crate) struct Lead {
    key: FlightKey,
    flight: Arc<Flight>,
}

impl Drop for Lead {
    fn drop(&mut self) {
        {
            let mut flights = lock(table_of(&self.key));
            // Only this flight: the entry is this leader's until now.
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        let wakers = {
            let mut state = lock(&self.flight.state);
            state.done = true;
            state.leader = None;
            std::mem::take(&mut state.wakers)
        };
        self.flight.finished.notify_all();
        // Wakers are the executors' code: run them with no lock held.
        for waker in wakers {
            waker.wake();
        }
    }
}

/// Waiting on the leader's own thread: the leader's closure asked for its own key.
#[derive(Debug)]
pub(crate) struct Reentered;

impl Flight {
    /// Blocks until the leader is done.
    pub(crate) fn wait(&self) -> Result<(), Reentered> {
        let mut state = lock(&self.state);
        if state.leader == Some(std::thread::current().id()) {
            return Err(Reentered);
        }
        while !state.done {
            state = self
                .finished
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Ok(())
    }

    /// Resolves when the leader is done (async waiters).
    #[cfg(feature = "tokio")]
    pub(crate) fn finished(self: Arc<Self>) -> Finished {
        Finished(self)
    }
}

/// The future of `Flight::finished`.
#[cfg(feature = "tokio")]
pub(crate) struct Finished(Arc<Flight>);

#[cfg(feature = "tokio")]
impl std::future::Future for Finished {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.0.state);
        if state.done {
            return Poll::Ready(());
        }
        let waker = cx.waker();
        if !state.wakers.iter().any(|w| w.will_wake(waker)) {
            state.wakers.push(waker.clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(k: &str) -> FlightKey {
        FlightKey {
            driver: "test",
            contract: Arc::from("flights"),
            key: k.to_owned(),
        }
    }

    #[test]
    fn one_leader_per_key_and_the_next_joins_after_it_ends() {
        let Join::Lead(lead) = join(key("a"), None) else {
            panic!("the first caller leads");
        };
        assert!(matches!(join(key("a"), None), Join::Wait(_)));
        assert!(
            matches!(join(key("b"), None), Join::Lead(_)),
            "other keys are free"
        );
        drop(lead);
        assert!(
            matches!(join(key("a"), None), Join::Lead(_)),
            "the flight ended"
        );
    }

    #[test]
    fn waiters_wake_when_the_leader_ends_even_by_a_panic() {
        let Join::Lead(lead) = join(key("panic"), None) else {
            panic!("leads");
        };
        let woken = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let Join::Wait(flight) = join(key("panic"), None) else {
                    panic!("waits");
                };
                let woken = woken.clone();
                std::thread::spawn(move || {
                    flight.wait().unwrap();
                    woken.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let leader = std::thread::spawn(move || {
            let _lead = lead;
            panic!("the closure panicked");
        });
        assert!(leader.join().is_err());
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_leader_waiting_on_its_own_flight_is_told_instead_of_deadlocking() {
        let me = std::thread::current().id();
        let Join::Lead(_lead) = join(key("self"), Some(me)) else {
            panic!("leads");
        };
        let Join::Wait(flight) = join(key("self"), Some(me)) else {
            panic!("waits");
        };
        assert!(flight.wait().is_err());
    }
}
