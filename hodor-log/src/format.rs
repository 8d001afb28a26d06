//! Formatting a record into the body of a JSON line, on the application's thread.
//!
//! A stored line is `{"timestamp":"…","level":"INFO","target":"…","message":"…",
//! "fields":{…},"spans":[…]}`. The application's thread writes everything after the
//! timestamp (the *body*); the worker writes the timestamp, which is assigned when the
//! record enters the queue so that a sink's records are in timestamp order.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use crate::json::{self, Escaper};
use crate::reentry;

/// Longest target kept in a truncated record.
const TRUNCATED_TARGET_MAX: usize = 256;

/// One record being formatted: the parts are kept apart so the message comes first in the
/// line whatever order the fields are visited in.
#[derive(Debug, Default)]
pub(crate) struct Line {
    message: Vec<u8>,
    fields: Vec<u8>,
    spans: Vec<u8>,
    target: Vec<u8>,
    target_set: bool,
    out: Vec<u8>,
    budget: usize,
    overflowed: bool,
}

thread_local! {
    static LINE: RefCell<Line> = RefCell::new(Line::default());
}

/// Runs `f` with this thread's line buffer, reset for a record of at most `budget` bytes;
/// `None` (and `f` is not run) when this thread is already inside a sink.
pub(crate) fn with_line<R>(budget: usize, f: impl FnOnce(&mut Line) -> R) -> Option<R> {
    let _entered = reentry::enter()?;
    let mut f = Some(f);
    let mut run = |line: &mut Line| {
        line.reset(budget);
        f.take().map(|f| f(line))
    };
    let result = LINE
        .try_with(|cell| cell.try_borrow_mut().ok().and_then(|mut l| run(&mut l)))
        .ok()
        .flatten();
    // Without the thread-local (being destroyed), a buffer of its own.
    result.or_else(|| run(&mut Line::default()))
}

impl Line {
    fn reset(&mut self, budget: usize) {
        self.message.clear();
        self.fields.clear();
        self.spans.clear();
        self.target.clear();
        self.target_set = false;
        self.budget = budget;
        self.overflowed = false;
    }

    /// The message, from `format_args!("{value}")` or `format_args!("{value:?}")`.
    pub(crate) fn message(&mut self, value: fmt::Arguments<'_>) {
        let mut e = Escaper {
            out: &mut self.message,
            limit: self.budget,
            overflowed: false,
        };
        let _ = e.write_fmt(value);
        self.overflowed |= e.overflowed;
    }

    /// Replaces the target (a `log` record bridged through `tracing` carries its own).
    pub(crate) fn target(&mut self, target: &str) {
        self.target.clear();
        json::escape_into(&mut self.target, target);
        self.target_set = true;
    }

    /// Starts a field: `"name":` after a comma when needed. `false` when the record is
    /// already over its budget and the field is left out.
    fn field_name(&mut self, name: &str) -> bool {
        if self.fields.len() >= self.budget {
            self.overflowed = true;
            return false;
        }
        if !self.fields.is_empty() {
            self.fields.push(b',');
        }
        json::string_into(&mut self.fields, name);
        self.fields.push(b':');
        true
    }

    /// A string field.
    pub(crate) fn field_str(&mut self, name: &str, value: &str) {
        if self.field_name(name) {
            json::string_into(&mut self.fields, value);
        }
    }

    /// A field whose value is already JSON (a number or a boolean).
    pub(crate) fn field_json(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if self.field_name(name) {
            let _ = write!(BytesWriter(&mut self.fields), "{value}");
        }
    }

    /// A float field: non-finite values are strings, as JSON has no number for them.
    pub(crate) fn field_f64(&mut self, name: &str, value: f64) {
        if value.is_finite() {
            self.field_json(name, format_args!("{value}"));
        } else {
            self.field_text(name, format_args!("{value}"));
        }
    }

    /// A field written with `Display` or `Debug`, as a string.
    pub(crate) fn field_text(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if self.field_name(name) {
            self.fields.push(b'"');
            let mut e = Escaper {
                out: &mut self.fields,
                limit: self.budget,
                overflowed: false,
            };
            let _ = e.write_fmt(value);
            self.overflowed |= e.overflowed;
            self.fields.push(b'"');
        }
    }

    /// The name of an enclosing span; call from the outermost in.
    pub(crate) fn span(&mut self, name: &str) {
        if self.spans.len() >= self.budget {
            self.overflowed = true;
            return;
        }
        if !self.spans.is_empty() {
            self.spans.push(b',');
        }
        json::string_into(&mut self.spans, name);
    }

    /// The finished body, `"level":…}\n`. A record longer than the budget keeps its level
    /// and target, as much of its message as fits, and `"truncated":true`.
    pub(crate) fn finish(&mut self, level: &str, target: &str) -> &[u8] {
        if !self.target_set {
            json::escape_into(&mut self.target, target);
        }
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(b"\"level\":\"");
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(b"\",\"target\":\"");
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b"\",\"message\":\"");
        out.extend_from_slice(&self.message);
        out.push(b'"');
        if !self.fields.is_empty() {
            out.extend_from_slice(b",\"fields\":{");
            out.extend_from_slice(&self.fields);
            out.push(b'}');
        }
        if !self.spans.is_empty() {
            out.extend_from_slice(b",\"spans\":[");
            out.extend_from_slice(&self.spans);
            out.push(b']');
        }
        out.extend_from_slice(b"}\n");
        if out.len() > self.budget || self.overflowed {
            self.truncate(level);
        }
        &self.out
    }

    fn truncate(&mut self, level: &str) {
        const FIXED: &[&[u8]] = &[
            b"\"level\":\"",
            b"\",\"target\":\"",
            b"\",\"message\":\"",
            b"\",\"truncated\":true}\n",
        ];
        let target = self
            .target
            .get(..json::safe_cut(&self.target, TRUNCATED_TARGET_MAX));
        let target = target.unwrap_or_default();
        let fixed: usize = FIXED.iter().map(|p| p.len()).sum::<usize>() + level.len();
        let room = self.budget.saturating_sub(fixed + target.len());
        let message = self.message.get(..json::safe_cut(&self.message, room));
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(b"\"level\":\"");
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(b"\",\"target\":\"");
        out.extend_from_slice(target);
        out.extend_from_slice(b"\",\"message\":\"");
        out.extend_from_slice(message.unwrap_or_default());
        out.extend_from_slice(b"\",\"truncated\":true}\n");
    }
}

/// `fmt::Write` into a byte buffer, for numbers.
struct BytesWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for BytesWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(budget: usize, f: impl FnOnce(&mut Line)) -> serde_json::Value {
        let text = with_line(budget, |line| {
            f(line);
            String::from_utf8(line.finish("INFO", "app::db").to_vec()).unwrap()
        })
        .unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        assert!(
            text.len() <= budget.max(1),
            "{} > {budget}: {text}",
            text.len()
        );
        serde_json::from_str(&format!("{{{}", text)).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_full_record_is_valid_json_with_every_part() {
        let v = body(4096, |l| {
            l.field_str("user", "al\"ice");
            l.message(format_args!("signed in\n"));
            l.field_json("n", format_args!("{}", -3));
            l.field_f64("ratio", 0.5);
            l.field_f64("inf", f64::INFINITY);
            l.field_text("list", format_args!("{:?}", [1, 2]));
            l.span("request");
            l.span("db");
        });
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "app::db");
        assert_eq!(v["message"], "signed in\n");
        assert_eq!(v["fields"]["user"], "al\"ice");
        assert_eq!(v["fields"]["n"], -3);
        assert_eq!(v["fields"]["ratio"], 0.5);
        assert_eq!(v["fields"]["inf"], "inf");
        assert_eq!(v["fields"]["list"], "[1, 2]");
        assert_eq!(v["spans"], serde_json::json!(["request", "db"]));
    }

    #[test]
    fn empty_parts_are_left_out() {
        let v = body(4096, |l| l.message(format_args!("x")));
        assert!(v.get("fields").is_none() && v.get("spans").is_none(), "{v}");
    }

    #[test]
    fn an_oversized_record_is_cut_to_its_budget_and_says_so() {
        let huge = "é".repeat(100_000);
        let v = body(1024, |l| {
            l.message(format_args!("{huge}"));
            l.field_str("f", &huge);
        });
        assert_eq!(v["truncated"], true);
        assert!(huge.starts_with(v["message"].as_str().unwrap()));
        assert!(v["message"].as_str().unwrap().len() > 500);
        assert!(v.get("fields").is_none());
    }

    #[test]
    fn nested_formatting_on_one_thread_is_refused() {
        let inner = with_line(100, |_| with_line(100, |_| ()));
        assert_eq!(inner, Some(None));
    }
}
