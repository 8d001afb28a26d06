//! The hodor conformance suite, conditional writes and versions included, against
//! persistent memory stores that stay open: every write goes through the log (with
//! `fsync = always`, so the concurrent cases share group commits), and the stores without
//! limits compress values of 1 KiB and more. `conformance_persistent.rs` runs the suite
//! with restarts between steps.

mod common;

use common::persistent::PersistentHarness;
use hodor_memory::Fsync;

hodor_testkit::conformance_tests!(PersistentHarness::new(
    "conformance-live",
    Fsync::Always,
    hodor_memory::open_with_clock
));
