//! The `tracing` side: [`Layer`].

use std::fmt;
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::format::{self, Line};
use crate::queue::Shared;

/// A [`tracing_subscriber::Layer`] that sends every event to its [`Sink`](crate::Sink).
///
/// Made by [`Builder::layer`](crate::Builder::layer) or [`Sink::layer`](crate::Sink::layer).
/// Each event becomes one JSON line: timestamp, level, target, message, its other fields
/// and the names of the spans it happened in, outermost first. Filter it like any layer
/// (`layer.with_filter(LevelFilter::INFO)`); it keeps no level of its own.
///
/// ```
/// use hodor_memory as _;
/// use tracing_subscriber::prelude::*;
/// # fn main() -> Result<(), hodor_core::Error> {
/// let logs = hodor_core::Contract::new("memory", "layer-doc", None)?;
/// let (layer, guard) = hodor_log::Sink::builder(logs.clone()).prefix("app/").layer()?;
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let span = tracing::info_span!("request", id = 7);
///     let _entered = span.enter();
///     tracing::info!(user = "alice", "signed in");
/// });
/// drop(guard); // writes the last batch
/// let record = hodor_log::read(&logs, "app/", std::time::UNIX_EPOCH)?.next().unwrap()?;
/// assert_eq!(record.message, "signed in");
/// assert_eq!(record.fields["user"], "alice");
/// assert_eq!(record.spans, ["request"]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Layer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("prefix", &self.shared.settings.prefix)
            .finish()
    }
}

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let settings = &self.shared.settings;
        if settings.ignores(meta.target()) {
            return;
        }
        let ts = settings.now_micros();
        format::with_line(settings.max_record_bytes, |line| {
            event.record(&mut Fields(line));
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope.from_root() {
                    line.span(span.name());
                }
            }
            let body = line.finish(meta.level().as_str(), meta.target());
            self.shared.push(ts, body);
        });
    }
}

/// Visits an event's fields into a [`Line`].
struct Fields<'a>(&'a mut Line);

/// Fields `tracing-log` adds to a `log` record it forwards; the target replaces the
/// event's, the rest is left out as the formatters of `tracing-subscriber` do.
fn is_log_metadata(name: &str) -> bool {
    matches!(name, "log.module_path" | "log.file" | "log.line")
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.0.message(format_args!("{value:?}")),
            name if is_log_metadata(name) => {}
            name => self.0.field_text(name, format_args!("{value:?}")),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.0.message(format_args!("{value}")),
            "log.target" => self.0.target(value),
            name if is_log_metadata(name) => {}
            name => self.0.field_str(name, value),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            name if is_log_metadata(name) => {}
            name => self.0.field_json(name, format_args!("{value}")),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            name if is_log_metadata(name) => {}
            name => self.0.field_json(name, format_args!("{value}")),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.field_json(field.name(), format_args!("{value}"));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.field_json(field.name(), format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.field_f64(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.field_json(field.name(), format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.field_text(field.name(), format_args!("{value}"));
    }
}
