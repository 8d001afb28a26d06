//! `Contract::get_opt` promises that a miss allocates nothing, unlike `get`, whose miss
//! builds an `Error::NotFound` holding the key. A global allocator that counts this thread's
//! allocations checks it, on this driver, whose own miss allocates nothing either (here
//! rather than in hodor-core, which has no driver crate to test with).

// GlobalAlloc is an unsafe trait; the allocator below only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hodor_core::Contract;
use hodor_memory as _;

struct PerThreadCount;

thread_local! {
    // Const-initialized and without a destructor, so the allocator may touch it at any time.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the same arguments; the count never
// affects what is returned.
unsafe impl GlobalAlloc for PerThreadCount {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: PerThreadCount = PerThreadCount;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn a_get_opt_miss_allocates_nothing_where_a_get_miss_does() {
    let c = Contract::new("memory", "get-opt-alloc", None).unwrap();
    c.set("present", "v", None).unwrap();
    // The first calls on a thread set up its counter stripe; count the steady state.
    let _ = c.get_opt("absent");
    let _ = c.get("absent");

    let get_miss = allocations(|| assert!(c.get("absent").is_err()));
    assert!(
        get_miss > 0,
        "a get miss builds an error holding the key: the count must see it"
    );
    let get_opt_miss = allocations(|| assert_eq!(c.get_opt("absent").unwrap(), None));
    assert_eq!(get_opt_miss, 0, "a get_opt miss allocated");
    let get_opt_hit = allocations(|| assert!(c.get_opt("present").unwrap().is_some()));
    assert_eq!(get_opt_hit, 0, "a get_opt hit allocated");
    assert_eq!(c.metrics().misses, 4);
}
