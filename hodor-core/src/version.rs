//! [`Version`]: what changes every time a key is written, for compare-and-set.

use std::fmt;
use std::str::FromStr;

/// The version of a stored entry: opaque, and different after every write of the key.
///
/// [`Contract::stat`](crate::Contract::stat) reports it in [`Metadata::version`](
/// crate::Metadata::version), and [`Contract::set_if_version`](
/// crate::Contract::set_if_version) writes only while the key still has it: the
/// compare-and-set of a read-modify-write that several processes share.
///
/// Every write of a key gives it a new version (`set`, `set_many`, `create`,
/// `set_if_version`, `increment`, and recreating a deleted or expired key), so an equal
/// version means no write happened in between. Versions are only compared for equality:
/// their order and their numbers mean nothing across drivers. A version may also change
/// without a write when a store is reopened (a memory store released and opened again),
/// which makes a compare-and-set fail safely, never succeed wrongly.
///
/// A version can leave the process (an HTTP `ETag`, a hidden form field) through its
/// `Display` text and come back with [`str::parse`]:
///
/// ```
/// use hodor_core::Version;
/// let v = Version::from_raw(0x2a);
/// let etag = v.to_string();
/// assert_eq!(etag.parse::<Version>().unwrap(), v);
/// assert!("not a version".parse::<Version>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(u128);

impl Version {
    /// For drivers: the version a driver keeps for an entry, as 128 bits of its choosing (a
    /// counter, a timestamp with a tie-breaker, ...). The driver must give every write of a
    /// key a version that key has not had before in the store.
    pub const fn from_raw(raw: u128) -> Version {
        Version(raw)
    }

    /// The 128 bits [`Version::from_raw`] was given: for drivers, and for keeping a version
    /// as a number. Only equality means anything.
    pub const fn to_raw(self) -> u128 {
        self.0
    }
}

impl fmt::Display for Version {
    /// Lowercase hexadecimal, as [`str::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:x})", self.0)
    }
}

/// The text is not a version's `Display` form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseVersionError;

impl fmt::Display for ParseVersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a hodor version: expected 1 to 32 hexadecimal digits")
    }
}

impl std::error::Error for ParseVersionError {}

impl FromStr for Version {
    type Err = ParseVersionError;

    /// Reads what `Display` wrote: 1 to 32 hexadecimal digits, nothing else.
    fn from_str(text: &str) -> Result<Version, ParseVersionError> {
        let hex =
            !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            return Err(ParseVersionError);
        }
        u128::from_str_radix(text, 16)
            .map(Version)
            .map_err(|_| ParseVersionError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip_every_width() {
        for raw in [0, 1, 0xff, u64::MAX as u128, u128::MAX, 1 << 127] {
            let v = Version::from_raw(raw);
            assert_eq!(v.to_string().parse::<Version>(), Ok(v), "{raw:x}");
            assert_eq!(v.to_raw(), raw);
        }
    }

    #[test]
    fn only_hex_digits_parse() {
        for bad in ["", "+1", "-1", " 1", "1 ", "0x1", "g", &"f".repeat(33)] {
            assert_eq!(bad.parse::<Version>(), Err(ParseVersionError), "{bad:?}");
        }
    }
}
