//! Pause points for the crate's unit tests: a test runs its own code at a named point inside
//! an operation, forcing an interleaving that concurrent threads would hit only by chance.
//! Compiled only for `cargo test`.

use std::cell::RefCell;

type Hook = Box<dyn FnOnce()>;

thread_local! {
    static HOOKS: RefCell<Vec<(&'static str, Hook)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `hook` the next time this thread reaches `point`. Each test runs on its own thread,
/// so a hook never fires in another test.
pub(crate) fn at(point: &'static str, hook: impl FnOnce() + 'static) {
    HOOKS.with(|h| h.borrow_mut().push((point, Box::new(hook))));
}

/// Marks `point` in the code under test. The hook is taken out before it runs, so code it
/// calls may reach the same point.
pub(crate) fn reach(point: &'static str) {
    let taken = HOOKS.with(|h| {
        let mut hooks = h.borrow_mut();
        let at = hooks.iter().position(|(p, _)| *p == point)?;
        Some(hooks.remove(at).1)
    });
    if let Some(hook) = taken {
        hook();
    }
}
