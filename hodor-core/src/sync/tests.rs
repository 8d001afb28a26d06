use super::worker::Reporter;
use crate::error::Error;
use std::sync::{Arc, Mutex};

fn invalid(key: &str, reason: &str) -> Error {
    Error::InvalidInput {
        driver: "test",
        contract: Arc::from("c"),
        key: Some(key.to_owned()),
        reason: reason.to_owned(),
    }
}

#[test]
fn each_distinct_error_is_reported_once_until_its_key_is_good() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let mut reporter = Reporter::new(Some(Box::new(move |e: &Error| {
        log.lock().unwrap().push(e.to_string());
    })));
    reporter.report(invalid("a", "bad"));
    reporter.report(invalid("a", "bad"));
    reporter.report(invalid("a", "worse"));
    reporter.report(invalid("b", "bad"));
    reporter.report(invalid("a", "bad"));
    assert_eq!(seen.lock().unwrap().len(), 3, "{:?}", seen.lock().unwrap());
    reporter.clear("a");
    reporter.report(invalid("a", "bad"));
    reporter.report(invalid("b", "bad"));
    assert_eq!(seen.lock().unwrap().len(), 4, "a is news again, b is not");
}

#[test]
fn a_panicking_error_callback_is_contained() {
    let mut reporter = Reporter::new(Some(Box::new(|_: &Error| panic!("in on_error"))));
    let e = reporter.report(invalid("a", "bad"));
    assert!(e.to_string().contains("bad"));
}
