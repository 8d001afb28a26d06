//! No password ever shows: not in a message, not in a Debug dump, not in an error's
//! source chain, whatever the password holds and however the URL is written. A password
//! with `/`, `#`, `?` or `@` left unencoded breaks the URL's shape, which is where a
//! redactor that trusts the shape leaks it.

mod support;

use hodor_core::{Contract, Error};
use hodor_redis::RedisConfig;
use proptest::prelude::*;
use serde_json::json;

/// Percent-encodes everything but the URL's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every way a user might write a URL holding `pw`, pointing at `port` (where nothing
/// listens, so connecting fails fast).
fn urls(pw: &str, port: u16) -> Vec<String> {
    let enc = encode(pw);
    let mut urls = vec![
        format!("redis://:{pw}@127.0.0.1:{port}/0"),
        format!("redis://app:{pw}@127.0.0.1:{port}/0"),
        format!("redis://:{enc}@127.0.0.1:{port}/0"),
        format!("redis://app:{enc}@127.0.0.1:{port}/2"),
        format!("redis://:{pw}@127.0.0.1:{port}"),
        format!("redis://:{pw}@localhost:{port}/0?protocol=resp3"),
        format!("redis://:{pw}@[::1]:{port}/0"),
        format!("redis://app:{enc}@[::1]:{port}/0"),
        format!("rediss://:{pw}@127.0.0.1:{port}/0"),
        format!("rediss://app:{enc}@127.0.0.1:{port}/0#insecure"),
        format!("valkey://:{pw}@127.0.0.1:{port}/0"),
        format!("redis+unix:///tmp/hodor-no-such.sock?pass={pw}"),
        format!("redis+unix:///tmp/hodor-no-such.sock?db=1&pass={enc}&user=app"),
        format!("redis+unix:///tmp/hodor-no-such.sock?pass={pw}&db=1"),
        format!("unix:///tmp/hodor-no-such.sock?pass={enc}"),
        format!("redis+unix://:{pw}@/tmp/hodor-no-such.sock"),
        // Garbage a user can type all the same.
        format!("redis:/:{pw}@127.0.0.1:{port}"),
        format!("redis:{pw}"),
        pw.to_owned(),
        format!("redis://:{pw}"),
        format!("redis://:{pw}@"),
        format!("redis:// :{pw}@127.0.0.1"),
        format!("http://:{pw}@127.0.0.1:{port}"),
        format!("redis://:{pw}@127.0.0.1:{port}/not-a-db"),
        format!("redis://:{pw}@127.0.0.1:99999/0"),
        format!("redis://:{pw}@0.0.0.0:{port}/0"),
        format!(":{pw}@127.0.0.1:{port}"),
    ];
    urls.push(format!("redis://{pw}:{pw}@127.0.0.1:{port}/0"));
    urls
}

/// Display and Debug of `e` and of every error in its source chain.
fn texts_of(e: &Error) -> Vec<String> {
    let mut texts = vec![e.to_string(), format!("{e:?}"), format!("{e:#?}")];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    texts
}

fn assert_hidden(pw: &str, url: &str, texts: &[String]) -> Result<(), TestCaseError> {
    for text in texts {
        prop_assert!(
            !text.contains(pw),
            "password {pw:?} of {url:?} shows in: {text}"
        );
        let enc = encode(pw);
        prop_assert!(
            !text.contains(&enc),
            "encoded password {enc:?} of {url:?} shows in: {text}"
        );
    }
    Ok(())
}

/// Passwords of printable characters, the URL's delimiters among them.
fn passwords() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{8,24}",
        "[/#?@:%&=+ ]{1,3}[ -~]{7,20}",
        "[a-z]{4}[/#?@][a-z0-9/#?@:]{4,12}",
        "\\PC{8,16}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn no_output_shows_the_password(pw in passwords()) {
        let port = support::free_port();
        for url in urls(&pw, port) {
            let config = RedisConfig::new(url.clone()).connect_timeout_ms(100);
            let mut texts = vec![format!("{config:?}"), format!("{config:#?}")];
            let json = json!({ "url": url, "connect_timeout_ms": 100 });
            match Contract::new("redis", "secrets", Some(json)) {
                Ok(c) => texts.push(format!("{c:?}")),
                Err(e) => texts.extend(texts_of(&e)),
            }
            match hodor_redis::RedisDriver::open("secrets", &config) {
                Ok(driver) => texts.push(format!("{driver:?}")),
                Err(e) => {
                    texts.push(e.to_string());
                    texts.push(format!("{e:?}"));
                    texts.extend(texts_of(&e.into_error("redis", "secrets", "open")));
                }
            }
            assert_hidden(&pw, &url, &texts)?;
        }
    }
}

/// A server of this test binary's own, whose password the tests change.
fn server() -> Option<&'static support::Server> {
    static SERVER: std::sync::OnceLock<Option<support::Server>> = std::sync::OnceLock::new();
    SERVER.get_or_init(support::Server::start).as_ref()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn a_real_password_never_shows_whether_it_works_or_not(pw in passwords()) {
        let Some(server) = server() else {
            support::skip("a_real_password_never_shows", "redis-server could not be started");
            return Ok(());
        };
        let mut admin = support::raw(&server.url());
        redis::cmd("CONFIG").arg("SET").arg("requirepass").arg(&pw).query::<()>(&mut admin).unwrap();
        let enc = encode(&pw);
        let good = format!("redis://:{enc}@127.0.0.1:{}/0", server.port);
        let wrong = format!("redis://:{enc}x@127.0.0.1:{}/0", server.port);
        let config = RedisConfig::new(good.clone()).connect_timeout_ms(2000);
        let driver = hodor_redis::RedisDriver::open("secrets", &config).unwrap();
        let c = hodor_redis::open(&support::unique("secrets"), &config).unwrap();
        c.set("k", "v", None).unwrap();
        let mut texts = vec![format!("{driver:?}"), format!("{c:?}"), format!("{:?}", c.metrics())];
        let e = hodor_redis::open("secrets", &RedisConfig::new(wrong.clone())).unwrap_err();
        texts.extend(texts_of(&e));
        let result = redis::cmd("CONFIG").arg("SET").arg("requirepass").arg("").query::<()>(&mut admin);
        result.unwrap();
        assert_hidden(&pw, &good, &texts)?;
    }
}
