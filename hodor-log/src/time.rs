//! Timestamps: microseconds since the Unix epoch, written as fixed-width RFC 3339 UTC
//! (`2026-12-01T10:00:00.123456Z`), so that byte order is time order in keys and lines.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of a written timestamp.
pub(crate) const TS_LEN: usize = 27;

/// The latest time the fixed-width form can show: 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: u64 = 253_402_300_799_999_999;

/// Microseconds since the epoch (0 before it, clamped to year 9999).
pub(crate) fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
        .min(MAX_MICROS)
}

/// The inverse of [`micros`].
pub(crate) fn system_time(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

/// Writes timestamps, redoing the date only when the second changes: consecutive records
/// of a batch mostly share their second.
#[derive(Debug)]
pub(crate) struct TsWriter {
    second: u64,
    text: [u8; TS_LEN],
}

impl TsWriter {
    pub(crate) fn new() -> TsWriter {
        let mut w = TsWriter {
            second: 0,
            text: [0; TS_LEN],
        };
        w.set_second(0);
        w
    }

    /// The timestamp of `micros` (clamped to year 9999).
    pub(crate) fn format(&mut self, micros: u64) -> &[u8; TS_LEN] {
        let micros = micros.min(MAX_MICROS);
        let second = micros / 1_000_000;
        if second != self.second {
            self.set_second(second);
        }
        write_digits(&mut self.text[20..26], micros % 1_000_000);
        &self.text
    }

    fn set_second(&mut self, second: u64) {
        self.second = second;
        let days = second / 86_400;
        let rem = second % 86_400;
        let (y, m, d) = civil_from_days(days);
        let t = &mut self.text;
        write_digits(&mut t[0..4], y);
        t[4] = b'-';
        write_digits(&mut t[5..7], m);
        t[7] = b'-';
        write_digits(&mut t[8..10], d);
        t[10] = b'T';
        write_digits(&mut t[11..13], rem / 3600);
        t[13] = b':';
        write_digits(&mut t[14..16], rem / 60 % 60);
        t[16] = b':';
        write_digits(&mut t[17..19], rem % 60);
        t[19] = b'.';
        t[26] = b'Z';
    }
}

/// `micros` as an owned timestamp string.
pub(crate) fn format(micros: u64) -> String {
    let mut w = TsWriter::new();
    String::from_utf8_lossy(w.format(micros)).into_owned()
}

/// Fills `out` with the last `out.len()` decimal digits of `n`, zero-padded.
fn write_digits(out: &mut [u8], mut n: u64) {
    for byte in out.iter_mut().rev() {
        *byte = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm,
/// restricted to dates on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a date on or after it.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC only, up to 9 fraction digits, kept to
/// the microsecond) into microseconds since the epoch. `None` for anything else.
pub(crate) fn parse(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > days_in_month || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let rest = b.get(19..)?;
    let fraction = match rest {
        [b'Z'] => 0,
        [b'.', digits @ .., b'Z'] if (1..=9).contains(&digits.len()) => {
            let mut micros = 0u64;
            for i in 0..6 {
                let digit = match digits.get(i) {
                    Some(c) if c.is_ascii_digit() => u64::from(c - b'0'),
                    Some(_) => return None,
                    None => 0,
                };
                micros = micros * 10 + digit;
            }
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            micros
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d)?;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T12:34:56.789012Z, a leap day.
        let t = 1_709_210_096_789_012;
        assert_eq!(format(t), "2024-02-29T12:34:56.789012Z");
        assert_eq!(parse("2024-02-29T12:34:56.789012Z"), Some(t));
        assert_eq!(format(MAX_MICROS), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format(u64::MAX), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn round_trips_and_sorts_like_time() {
        let mut w = TsWriter::new();
        let mut prev = String::new();
        // Every few days over 400 years, with assorted sub-second parts.
        let mut t = 0u64;
        while t < 13_000_000_000_000_000 {
            let text = String::from_utf8(w.format(t).to_vec()).unwrap();
            assert_eq!(text.len(), TS_LEN);
            assert_eq!(parse(&text), Some(t), "{text}");
            assert!(text > prev, "{text} <= {prev}");
            prev = text;
            t += 297_779_123_457;
        }
    }

    #[test]
    fn the_second_cache_notices_a_new_second() {
        let mut w = TsWriter::new();
        assert_eq!(&w.format(1_999_999)[..], b"1970-01-01T00:00:01.999999Z");
        assert_eq!(&w.format(2_000_000)[..], b"1970-01-01T00:00:02.000000Z");
        assert_eq!(&w.format(1_000_001)[..], b"1970-01-01T00:00:01.000001Z");
    }

    #[test]
    fn parse_accepts_short_and_long_fractions_and_rejects_the_rest() {
        assert_eq!(parse("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(parse("1970-01-01T00:00:01.123456789Z"), Some(1_123_456));
        for bad in [
            "",
            "1970-01-01",
            "1970-01-01T00:00:01",
            "1970-01-01T00:00:01+01:00",
            "1970-02-30T00:00:00Z",
            "1970-13-01T00:00:00Z",
            "1970-01-01T24:00:00Z",
            "1970-01-01T00:00:01.Z",
            "1970-01-01T00:00:01.1234567890Z",
            "1970-01-01T00:00:01.12a4Z",
            "1969-12-31T23:59:59Z",
            "19７0-01-01T00:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
