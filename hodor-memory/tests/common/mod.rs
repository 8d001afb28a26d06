//! Helpers shared by the behaviour tests (each test binary uses some of them).
#![allow(dead_code)]

pub mod persistent;

/// A small deterministic generator (xorshift), so a failure replays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Whether the heavy variants run (`HODOR_TORTURE=1`).
pub fn heavy() -> bool {
    std::env::var_os("HODOR_TORTURE").is_some_and(|v| v != "0")
}
