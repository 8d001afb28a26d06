//! The thread behind a [`Synced`](super::Synced) or [`SyncedMap`](super::SyncedMap): it
//! follows a watch (or polls), debounces, reads, and runs the callbacks, one at a time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::Error;
use crate::watch::{EventKind, Interrupter, Item, Watch, lock};

/// What a worker keeps in step with the store.
pub(super) trait Target: Send + 'static {
    /// Runs the first callbacks (with no old value).
    fn start(&mut self, cx: &mut Cx<'_>);
    /// An event for `key`: `true` if it concerns the target (then a reload is scheduled).
    fn on_event(&mut self, key: &str, kind: EventKind) -> bool;
    /// Events were lost: the next reload reads everything.
    fn on_lagged(&mut self);
    /// Reads what changed and applies it.
    fn reload(&mut self, cx: &mut Cx<'_>);
    /// Polls a driver without watch: reads what changed, if anything did.
    fn poll(&mut self, cx: &mut Cx<'_>);
}

/// What a target's steps report back to the worker.
pub(super) struct Cx<'a> {
    pub(super) reporter: &'a mut Reporter,
    pub(super) clock: &'a Clock,
    /// A read failed: read again after the poll interval.
    pub(super) retry: bool,
    /// The contract is closed: the worker stops.
    pub(super) closed: bool,
}

/// Runs a caller's callback, catching a panic; returns the panic's message.
pub(super) fn guarded(f: impl FnOnce()) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else {
            "a panic without a message".to_owned()
        }
    })
}

/// Reports errors to `on_error`, each distinct one once until the key it is about is good
/// again.
pub(super) struct Reporter {
    on_error: Option<super::OnError>,
    /// What was reported since each key was last good: (key, message).
    reported: Vec<(Option<String>, String)>,
}

/// How many distinct errors are remembered; beyond it the oldest may be reported again.
const REMEMBERED: usize = 256;

impl Reporter {
    pub(super) fn new(on_error: Option<super::OnError>) -> Reporter {
        Reporter {
            on_error,
            reported: Vec::new(),
        }
    }

    /// Reports `error` unless the same was reported since its key was last good; returns
    /// it, shared, for a status.
    pub(super) fn report(&mut self, error: Error) -> Arc<Error> {
        let (error, news) = self.record(error);
        if news {
            self.notify(&error);
        }
        error
    }

    /// Notes `error` without calling `on_error` yet: returns it, shared, and whether it is
    /// news. A caller that sets a status sets it before it [notifies](Self::notify), so an
    /// `on_error` that reads the status sees the error.
    pub(super) fn record(&mut self, error: Error) -> (Arc<Error>, bool) {
        let text = error.to_string();
        let key = error.key().map(str::to_owned);
        let error = Arc::new(error);
        if self.reported.iter().any(|(k, t)| *k == key && *t == text) {
            return (error, false);
        }
        if self.reported.len() >= REMEMBERED {
            self.reported.remove(0);
        }
        self.reported.push((key, text));
        (error, true)
    }

    /// Calls `on_error` with an error [recorded](Self::record) as news.
    pub(super) fn notify(&mut self, error: &Error) {
        if let Some(on_error) = &mut self.on_error {
            // A panicking error callback has nowhere to be reported.
            let _ = guarded(|| on_error(error));
        }
    }

    /// `key` is good again: its next error is news.
    pub(super) fn clear(&mut self, key: &str) {
        self.reported.retain(|(k, _)| k.as_deref() != Some(key));
    }
}

/// Where the changes come from.
enum Source {
    Watch(Watch),
    Poll,
}

/// How the caller's handle talks to the worker.
pub(super) struct Control {
    state: Mutex<ControlState>,
    changed: Condvar,
    interrupter: Option<Interrupter>,
    worker: OnceLock<ThreadId>,
}

#[derive(Default)]
struct ControlState {
    stop: bool,
    /// Settle requests made, and handled.
    requested: u64,
    handled: u64,
    exited: bool,
}

impl Control {
    fn wake(&self) {
        if let Some(interrupter) = &self.interrupter {
            interrupter.interrupt();
        }
        self.changed.notify_all();
    }

    /// Waits until the worker has handled everything due now; see `Synced::settle`.
    pub(super) fn settle(&self) {
        if self.worker.get() == Some(&std::thread::current().id()) {
            // Called from a callback: the worker is busy running it.
            return;
        }
        let mut state = lock(&self.state);
        state.requested += 1;
        let ticket = state.requested;
        self.wake();
        while state.handled < ticket && !state.exited {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    pub(super) fn stop(&self) {
        lock(&self.state).stop = true;
        self.wake();
    }

    /// `true` when called on the worker thread (from a callback).
    pub(super) fn on_worker(&self) -> bool {
        self.worker.get() == Some(&std::thread::current().id())
    }
}

/// Timing, in nanoseconds of the clock's monotonic time.
struct Timing {
    debounce: u64,
    max_wait: u64,
    poll: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The worker's state.
struct Worker<T> {
    target: T,
    source: Source,
    control: Arc<Control>,
    clock: Clock,
    timing: Timing,
    /// A change not yet read: when the burst began, and its last change.
    dirty: Option<(u64, u64)>,
    next_poll: u64,
    retry_at: Option<u64>,
    reporter: Reporter,
}

/// Starts the worker thread for `target`: following `watch`, or polling if there is none.
pub(super) fn spawn<T: Target>(
    target: T,
    watch: Option<Watch>,
    clock: Clock,
    debounce: Duration,
    poll: Duration,
    reporter: Reporter,
) -> Result<(Arc<Control>, JoinHandle<()>), std::io::Error> {
    let control = Arc::new(Control {
        state: Mutex::new(ControlState::default()),
        changed: Condvar::new(),
        interrupter: watch.as_ref().map(Watch::interrupter),
        worker: OnceLock::new(),
    });
    let now = clock.monotonic_nanos();
    let poll = nanos(poll);
    let worker = Worker {
        target,
        source: watch.map_or(Source::Poll, Source::Watch),
        control: control.clone(),
        clock,
        timing: Timing {
            debounce: nanos(debounce),
            max_wait: nanos(super::MAX_DEBOUNCE).max(nanos(debounce)),
            poll,
        },
        dirty: None,
        next_poll: now.saturating_add(poll),
        retry_at: None,
        reporter,
    };
    let thread = std::thread::Builder::new()
        .name("hodor-sync".to_owned())
        .spawn(move || worker.run())?;
    let _ = control.worker.set(thread.thread().id());
    Ok((control, thread))
}

impl<T: Target> Worker<T> {
    fn run(mut self) {
        // The handle sets this after the spawn; a callback may run before, so set it here
        // too.
        let _ = self.control.worker.set(std::thread::current().id());
        let mut closed = false;
        self.step(|target, cx| target.start(cx), &mut closed);
        while !closed {
            let (stop, ticket) = {
                let state = lock(&self.control.state);
                (state.stop, state.requested)
            };
            if stop {
                break;
            }
            self.drain(&mut closed);
            let now = self.clock.monotonic_nanos();
            if self.dirty.is_some_and(|d| self.due(d) <= now) {
                self.dirty = None;
                self.retry_at = None;
                self.step(|target, cx| target.reload(cx), &mut closed);
            }
            if self.retry_at.is_some_and(|at| at <= now) {
                self.retry_at = None;
                self.target.on_lagged();
                self.step(|target, cx| target.reload(cx), &mut closed);
            }
            if matches!(self.source, Source::Poll) && self.next_poll <= now {
                self.next_poll = now.saturating_add(self.timing.poll);
                self.step(|target, cx| target.poll(cx), &mut closed);
            }
            {
                let mut state = lock(&self.control.state);
                state.handled = state.handled.max(ticket);
                self.control.changed.notify_all();
            }
            if !closed {
                self.wait(ticket, &mut closed);
            }
        }
        lock(&self.control.state).exited = true;
        self.control.changed.notify_all();
    }

    /// When a burst that began at `first` and last changed at `last` is read.
    fn due(&self, (first, last): (u64, u64)) -> u64 {
        last.saturating_add(self.timing.debounce)
            .min(first.saturating_add(self.timing.max_wait))
    }

    fn step(&mut self, f: impl FnOnce(&mut T, &mut Cx<'_>), closed: &mut bool) {
        let mut cx = Cx {
            reporter: &mut self.reporter,
            clock: &self.clock,
            retry: false,
            closed: false,
        };
        f(&mut self.target, &mut cx);
        let (retry, now_closed) = (cx.retry, cx.closed);
        if retry {
            let now = self.clock.monotonic_nanos();
            self.retry_at = Some(now.saturating_add(self.timing.poll));
        }
        *closed |= now_closed;
    }

    fn mark(&mut self) {
        let now = self.clock.monotonic_nanos();
        self.dirty = Some(match self.dirty {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Event(e) => {
                if self.target.on_event(&e.key, e.kind) {
                    self.mark();
                }
            }
            Item::Lagged { .. } => {
                self.target.on_lagged();
                self.mark();
            }
        }
    }

    fn ended(&mut self, error: Error, closed: &mut bool) {
        self.reporter.report(error);
        *closed = true;
    }

    /// Takes every item the watch holds now.
    fn drain(&mut self, closed: &mut bool) {
        loop {
            let Source::Watch(watch) = &mut self.source else {
                return;
            };
            match watch.try_recv() {
                Ok(Some(item)) => self.take(item),
                Ok(None) => return,
                Err(e) => return self.ended(e, closed),
            }
        }
    }

    /// Waits for an item, a control request, or the next deadline.
    fn wait(&mut self, ticket: u64, closed: &mut bool) {
        let now = self.clock.monotonic_nanos();
        let mut next = self.dirty.map(|d| self.due(d));
        next = min(next, self.retry_at);
        if matches!(self.source, Source::Poll) {
            next = min(next, Some(self.next_poll));
        }
        if next.is_some_and(|at| at <= now) {
            return;
        }
        // A manual clock moves only when a test says so, and the test then settles: wait
        // for that, not for real time.
        let until = match next {
            Some(at) if !self.clock.is_manual() => {
                Instant::now().checked_add(Duration::from_nanos(at - now))
            }
            _ => None,
        };
        match &mut self.source {
            Source::Watch(watch) => match watch.recv_deadline(until) {
                Ok(Some(item)) => self.take(item),
                Ok(None) => {}
                Err(e) => self.ended(e, closed),
            },
            Source::Poll => {
                let mut state = lock(&self.control.state);
                if state.stop || state.requested > ticket {
                    return;
                }
                state = match until {
                    None => self
                        .control
                        .changed
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        self.control
                            .changed
                            .wait_timeout(state, left)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0
                    }
                };
                drop(state);
            }
        }
    }
}

fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
