//! The `log` side: [`Logger`].

use std::fmt;
use std::sync::Arc;

use log::kv::{Error as KvError, Key, Value, VisitSource};

use crate::format::{self, Line};
use crate::queue::Shared;

/// A [`log::Log`] that sends every record to its [`Sink`](crate::Sink).
///
/// Made by [`Builder::logger`](crate::Builder::logger) or
/// [`Sink::logger`](crate::Sink::logger). A record becomes one JSON line: timestamp, level,
/// target, message and its key-value pairs as fields. [`Logger::install`] makes it the
/// program's logger; `log::Log::flush` waits for the queue to be written (at most the
/// builder's [`flush_timeout`](crate::Builder::flush_timeout)).
///
/// ```
/// use hodor_memory as _;
/// # fn main() -> Result<(), hodor_core::Error> {
/// let logs = hodor_core::Contract::new("memory", "logger-doc", None)?;
/// let (logger, _guard) = hodor_log::Sink::builder(logs.clone()).prefix("app/").logger()?;
/// // In a program: logger.install(log::LevelFilter::Info) and then log::info!(...).
/// log::Log::log(
///     &logger,
///     &log::Record::builder()
///         .level(log::Level::Warn)
///         .target("app::db")
///         .args(format_args!("slow query"))
///         .key_values(&[("ms", 250)])
///         .build(),
/// );
/// log::Log::flush(&logger);
/// let record = hodor_log::read(&logs, "app/", std::time::UNIX_EPOCH)?.next().unwrap()?;
/// assert_eq!((record.level.as_str(), record.target.as_str()), ("WARN", "app::db"));
/// assert_eq!(record.fields["ms"], 250);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Logger {
    pub(crate) shared: Arc<Shared>,
}

impl Logger {
    /// Makes this the program's `log` logger and sets the maximum level.
    ///
    /// Fails if a logger is already installed (the `log` crate allows one per program).
    pub fn install(self, level: log::LevelFilter) -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        Ok(())
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("prefix", &self.shared.settings.prefix)
            .finish()
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        !self.shared.settings.ignores(metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        let settings = &self.shared.settings;
        if settings.ignores(record.target()) {
            return;
        }
        let ts = settings.now_micros();
        format::with_line(settings.max_record_bytes, |line| {
            line.message(*record.args());
            let _ = record.key_values().visit(&mut Pairs(line));
            let body = line.finish(record.level().as_str(), record.target());
            self.shared.push(ts, body);
        });
    }

    fn flush(&self) {
        let _ = self.shared.flush(self.shared.settings.flush_timeout);
    }
}

/// Visits a record's key-value pairs into a [`Line`].
struct Pairs<'a>(&'a mut Line);

impl<'kvs> VisitSource<'kvs> for Pairs<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), KvError> {
        let name = key.as_str();
        if let Some(b) = value.to_bool() {
            self.0.field_json(name, format_args!("{b}"));
        } else if let Some(n) = value.to_i64() {
            self.0.field_json(name, format_args!("{n}"));
        } else if let Some(n) = value.to_u64() {
            self.0.field_json(name, format_args!("{n}"));
        } else if let Some(x) = value.to_f64() {
            self.0.field_f64(name, x);
        } else if let Some(s) = value.to_borrowed_str() {
            self.0.field_str(name, s);
        } else {
            self.0.field_text(name, format_args!("{value}"));
        }
        Ok(())
    }
}
