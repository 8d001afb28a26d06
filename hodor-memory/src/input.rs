//! What [`MemoryDriver`](crate::MemoryDriver) checks on its own.
//!
//! A `Contract` validates keys and TTLs before any driver runs, but `MemoryDriver` is public
//! and implements `Driver`, so it can be called directly with any `&str` and any `Duration`.
//! It must keep its promises then too: refuse what it cannot store with a typed error, never
//! panic, never store a key another driver could not round-trip. Messages describe the
//! input without echoing it (a key may be a megabyte long).

use std::time::Duration;

use hodor_core::driver::{DriverError, DriverResult};
use hodor_core::{MAX_KEY_LEN, MAX_TTL};

/// Whether `key` follows the key rules: 1 to [`MAX_KEY_LEN`] bytes, no NUL.
#[inline]
pub(crate) fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && !key.as_bytes().contains(&0)
}

/// Why `key` breaks the key rules; `None` when it follows them.
pub(crate) fn key_problem(what: &str, key: &str) -> Option<String> {
    let len = key.len();
    if len == 0 {
        return Some(format!("the {what} is empty"));
    }
    if len > MAX_KEY_LEN {
        return Some(format!(
            "the {what} is {len} bytes, longer than the limit of {MAX_KEY_LEN} bytes"
        ));
    }
    let nul = key.bytes().position(|b| b == 0)?;
    Some(format!("the {what} contains a NUL character at byte {nul}"))
}

/// `InvalidInput` for a key that breaks the rules.
pub(crate) fn check_key(key: &str) -> DriverResult<()> {
    if is_valid_key(key) {
        return Ok(());
    }
    Err(DriverError::InvalidInput(
        key_problem("key", key).unwrap_or_default(),
    ))
}

/// `InvalidInput` for a store name that breaks the rules (names follow the key rules).
pub(crate) fn check_name(name: &str) -> DriverResult<()> {
    match key_problem("store name", name) {
        None => Ok(()),
        Some(reason) => Err(DriverError::InvalidInput(format!(
            "invalid memory store name: {reason}; a name follows the key rules"
        ))),
    }
}

/// A TTL as the contract keeps it: `None` stays `None`; zero and anything over
/// [`MAX_TTL`] are `InvalidInput`; the rest is rounded up to whole milliseconds, so an
/// entry never expires earlier than asked.
#[inline]
pub(crate) fn ttl(ttl: Option<Duration>) -> DriverResult<Option<Duration>> {
    match ttl {
        None => Ok(None),
        Some(ttl) => checked_ttl(ttl),
    }
}

fn checked_ttl(ttl: Duration) -> DriverResult<Option<Duration>> {
    if ttl.is_zero() {
        return Err(DriverError::InvalidInput(
            "a TTL of zero would expire the entry at once; pass None for no expiry".to_owned(),
        ));
    }
    if ttl > MAX_TTL {
        return Err(DriverError::InvalidInput(format!(
            "a TTL of {ttl:?} is longer than the maximum of {MAX_TTL:?}; pass None for no expiry"
        )));
    }
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    Ok(Some(Duration::from_millis(
        u64::try_from(millis).unwrap_or(u64::MAX),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_contract_rules_and_messages_do_not_echo_them() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key(&"é".repeat(MAX_KEY_LEN / 2)));
        let long = "x".repeat(1 << 20);
        for bad in ["", "a\0b", long.as_str(), &"x".repeat(MAX_KEY_LEN + 1)] {
            assert!(!is_valid_key(bad), "{:?}", bad.get(..8));
            let reason = key_problem("key", bad).unwrap();
            assert!(reason.len() < 100, "{reason}");
        }
        assert!(key_problem("key", "a\0b").unwrap().contains("byte 1"));
        assert!(check_name("").is_err());
    }

    #[test]
    fn ttls_are_checked_and_rounded_up() {
        assert_eq!(ttl(None).unwrap(), None);
        assert!(ttl(Some(Duration::ZERO)).is_err());
        assert!(ttl(Some(MAX_TTL + Duration::from_nanos(1))).is_err());
        assert!(ttl(Some(Duration::MAX)).is_err());
        assert_eq!(
            ttl(Some(Duration::from_nanos(1))).unwrap(),
            Some(Duration::from_millis(1))
        );
        assert_eq!(ttl(Some(MAX_TTL)).unwrap(), Some(MAX_TTL));
    }
}
