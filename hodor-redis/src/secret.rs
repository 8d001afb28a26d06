//! Keeping credentials out of every message and Debug dump.
//!
//! A URL is shown only as [`describe_url`] rebuilds it: the scheme, then the address if it
//! has the plain shape of one, never what comes before an `@`, never a query or fragment.
//! Nothing is taken from where a parser thinks the password ends: a password with an
//! unencoded `/`, `#`, `?` or `@` moves that boundary, and that is exactly where a
//! redactor that trusts the URL's shape leaks it.
//!
//! Text that comes from elsewhere (the redis crate's error messages) goes through
//! [`Secrets::scrub`], which removes every piece of the URL that may be a password.

use hodor_core::Echo;

/// The schemes the redis crate accepts.
const SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "valkey",
    "valkeys",
    "redis+unix",
    "valkey+unix",
    "unix",
];

/// The longest address shown; a longer one is cut.
const ADDRESS_LIMIT: usize = 100;

/// `url` as messages show it: `redis://***@cache.internal:6379/2`, `redis://127.0.0.1/0`,
/// `redis+unix:///run/redis.sock`. Credentials are replaced by `***`, queries and fragments
/// are dropped, and an address that does not look like one is not shown at all.
pub(crate) fn describe_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a url without a scheme://, not shown)".to_owned();
    };
    if !SCHEMES.contains(&scheme) {
        return "(a url whose scheme is not redis, rediss, valkey, valkeys, redis+unix or \
                unix, not shown)"
            .to_owned();
    }
    let unix = scheme.ends_with("unix");
    // Everything up to the last `@` may be credentials, whatever characters it holds.
    let (credentials, after) = match rest.rfind('@') {
        Some(at) if !unix => (true, rest.get(at + 1..).unwrap_or("")),
        _ => (false, rest),
    };
    // `user:@host` has an empty password; far more often it is a password that starts
    // with `@` written without its host (`redis://:@secret`), so the "address" is the
    // password. Show nothing after it.
    let empty_password = credentials
        && rest
            .rfind('@')
            .and_then(|at| rest.get(..at))
            .is_some_and(|before| before.ends_with(':'));
    let address = after.split(['?', '#']).next().unwrap_or("");
    let shown = if unix {
        // A socket path; credentials travel in the query, which is dropped. A path with an
        // `@` may be a password written where the host would be.
        (address.starts_with('/') && !address.contains('@')).then_some(address)
    } else {
        (!empty_password && plain_address(address)).then_some(address)
    };
    let marker = if credentials { "***@" } else { "" };
    match shown {
        Some(address) if address.len() <= ADDRESS_LIMIT => format!("{scheme}://{marker}{address}"),
        Some(address) => format!("{scheme}://{marker}{}", Echo::prose(address)),
        None => format!("{scheme}://{marker}(address not shown)"),
    }
}

/// Whether `address` has the shape `host[:port][/db]`: a host name or an IP literal, a
/// number for the port and the database. Anything else may be part of a password.
fn plain_address(address: &str) -> bool {
    let (authority, path) = match address.find('/') {
        Some(slash) => address.split_at(slash),
        None => (address, ""),
    };
    let db_ok = path.is_empty()
        || path == "/"
        || path
            .strip_prefix('/')
            .is_some_and(|db| db.bytes().all(|b| b.is_ascii_digit()));
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((ip, port))
                if ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') =>
            {
                (ip, port)
            }
            _ => return false,
        }
    } else {
        match authority.find(':') {
            Some(colon) => authority.split_at(colon),
            None => (authority, ""),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    db_ok && host_ok && port_ok
}

/// The pieces of a configured URL that may be a password, to be removed from any text the
/// driver did not write itself.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

impl Secrets {
    /// Everything in `url` that may be a password, raw and decoded, and `password`, the
    /// one the client will send.
    pub(crate) fn of(url: &str, password: Option<&str>) -> Secrets {
        let mut secrets = Vec::new();
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        if let Some(at) = rest.rfind('@') {
            let userinfo = rest.get(..at).unwrap_or("");
            match userinfo.split_once(':') {
                Some((_, "")) => {} // a user name and no password: nothing to hide
                Some((_, pass)) => {
                    secrets.push(userinfo.to_owned());
                    secrets.push(pass.to_owned());
                    secrets.push(decode(pass));
                }
                // No colon: a user name, or a password written without its colon.
                None => secrets.push(userinfo.to_owned()),
            }
        }
        // Socket URLs carry the password as `pass=`: to the end of the URL (an unencoded
        // `&` or `#` may be part of it), and to the next `&`.
        let mut search = url;
        while let Some(i) = search.find("pass=") {
            let value = search.get(i + 5..).unwrap_or("");
            secrets.push(value.to_owned());
            let until_amp = value.split('&').next().unwrap_or("");
            secrets.push(until_amp.to_owned());
            secrets.push(decode(until_amp));
            search = value;
        }
        if let Some(password) = password {
            secrets.push(password.to_owned());
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret that contains another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Secrets(secrets)
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

/// Percent-decodes `text` as the redis crate does, leaving invalid escapes as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|&h| char::from(h).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        for (url, shown) in [
            ("redis://u:p@h:1/2", "redis://***@h:1/2"),
            ("redis://:p@h", "redis://***@h"),
            ("redis://h:1/0", "redis://h:1/0"),
            (
                "redis://127.0.0.1:6379/0?protocol=resp3",
                "redis://127.0.0.1:6379/0",
            ),
            (
                "rediss://:p@[::1]:6380/0#insecure",
                "rediss://***@[::1]:6380/0",
            ),
            ("redis://p@ss:w@rd@h", "redis://***@h"),
            ("redis://:a/b@h:1/0", "redis://***@h:1/0"),
            ("redis://:a#b@h:1/0", "redis://***@h:1/0"),
            ("redis://:a?b@h:1/0", "redis://***@h:1/0"),
            ("redis://:secret", "redis://(address not shown)"),
            ("redis://:12345", "redis://(address not shown)"),
            ("redis://:@secret", "redis://***@(address not shown)"),
            (
                "redis+unix:///tmp/s?db=1&pass=x&user=u",
                "redis+unix:///tmp/s",
            ),
            (
                "redis+unix://:pw@/tmp/s",
                "redis+unix://(address not shown)",
            ),
            ("unix:///tmp/s?pass=a@b", "unix:///tmp/s"),
        ] {
            assert_eq!(describe_url(url), shown, "{url}");
        }
        for garbage in ["not a url", "redis:/:pw@h", "http://:pw@h", "pw"] {
            assert!(!describe_url(garbage).contains("pw"), "{garbage}");
        }
    }

    #[test]
    fn a_huge_address_is_cut() {
        let url = format!("redis://{}:6379/0", "h".repeat(1 << 20));
        assert!(describe_url(&url).len() < 500);
    }

    #[test]
    fn secrets_are_scrubbed_raw_and_decoded() {
        let s = Secrets::of("redis://app:p%40ss/w#rd@h:1/0", Some("p@ss/w#rd"));
        let text = "p@ss/w#rd and p%40ss/w#rd and app:p%40ss/w#rd";
        let scrubbed = s.scrub(text);
        assert!(
            !scrubbed.contains("p@ss") && !scrubbed.contains("p%40ss"),
            "{scrubbed}"
        );
        // An empty password hides nothing, so messages keep their colons.
        let s = Secrets::of("redis://app:@h:1/0", None);
        assert_eq!(s.scrub("h:1 refused"), "h:1 refused");
        let s = Secrets::of("redis+unix:///tmp/s?pass=a&b#c&db=1", None);
        assert_eq!(s.scrub("x a&b#c&db=1 y"), "x *** y");
        assert!(!format!("{s:?}").contains("a&b"));
    }
}
