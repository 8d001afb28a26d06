//! Expiry bookkeeping through the public driver: every entry with a TTL is reclaimed at its
//! deadline, whatever happened to the entries before it.

use std::time::Duration;

use hodor_core::Bytes;
use hodor_core::clock::ManualClock;
use hodor_core::driver::Driver;
use hodor_memory::{MemoryConfig, MemoryDriver};

fn driver(name: &str) -> (MemoryDriver, ManualClock) {
    let clock = ManualClock::new();
    let d = MemoryDriver::open(name, MemoryConfig::default(), clock.clone().into()).unwrap();
    (d, clock)
}

#[test]
fn new_ttl_entries_keep_their_deadlines_after_many_ttl_entries_were_deleted() {
    let (d, clock) = driver("expiry-after-deletes");
    let hour = Some(Duration::from_secs(3600));
    for i in 0..5_000 {
        d.set(&format!("old/{i}"), Bytes::new(), hour).unwrap();
    }
    // Deleting leaves their deadline records behind until the queue is tidied up.
    for i in 0..5_000 {
        assert!(d.delete(&format!("old/{i}")).unwrap());
    }
    // Each of these inserts may be the one that tidies the queue.
    for i in 0..5_000 {
        d.set(
            &format!("new/{i}"),
            Bytes::new(),
            Some(Duration::from_secs(1)),
        )
        .unwrap();
    }
    clock.advance(Duration::from_secs(1));
    d.sweep();
    let g = d.gauges();
    assert_eq!(
        (g.entries, g.expirations),
        (Some(0), Some(5_000)),
        "every new entry must be reclaimed at its deadline"
    );
}
