//! JSON log lines, as Lambda's JSON log format expects.

use tracing_subscriber::EnvFilter;

/// The filter: `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`. Only this crate logs
/// below `info`: libraries' debug and trace levels can print headers and bodies (keys,
/// tokens, links), so they are held at `info` whatever level is asked for.
pub fn filter() -> EnvFilter {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .map(|l| l.trim().to_ascii_lowercase())
        .unwrap_or_else(|_| "info".to_owned());
    let directives = match level.as_str() {
        "trace" | "debug" => format!("info,wix_media_archiver={level}"),
        "info" | "warn" | "error" | "off" => level,
        // Lambda's own names for the levels.
        "fatal" => "error".to_owned(),
        _ => "info".to_owned(),
    };
    EnvFilter::new(directives)
}

/// Installs the JSON subscriber writing to `writer`. Events of the target
/// [`crate::metrics::TARGET`] are EMF documents: their message is written as the whole
/// line, whatever the log level, so that CloudWatch reads it as metrics.
pub fn init<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    init_with(writer, None);
}

/// A further layer beside the logs (the local CLI's progress), with its own filter.
pub type ExtraLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// [`init`], with `extra` seeing every event its own filter lets through.
pub fn init_with<W>(writer: W, extra: Option<ExtraLayer>)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::filter::{filter_fn, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let writer = Shared(std::sync::Arc::new(writer));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_writer(writer.clone())
        .with_filter(filter())
        .with_filter(filter_fn(|m| m.target() != crate::metrics::TARGET));
    let metrics = tracing_subscriber::fmt::layer()
        .event_format(MessageOnly)
        .with_writer(writer)
        .with_filter(Targets::new().with_target(crate::metrics::TARGET, tracing::Level::INFO));
    // Spans of this crate only, as X-Ray subsegments (when a daemon is there).
    let xray = crate::xray::layer_from_env()
        .map(|l| l.with_filter(Targets::new().with_target("wix_media_archiver", tracing::Level::INFO)));
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(xray)
        .with(logs)
        .with(metrics)
        .try_init();
}

/// One writer for both layers.
struct Shared<W>(std::sync::Arc<W>);

impl<W> Clone for Shared<W> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<'a, W: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a> for Shared<W> {
    type Writer = W::Writer;
    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// Writes an event's message and nothing else.
struct MessageOnly;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for MessageOnly
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        struct Message<'w, 'a>(&'w mut tracing_subscriber::fmt::format::Writer<'a>, std::fmt::Result);
        impl tracing::field::Visit for Message<'_, '_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.1 = write!(self.0, "{value:?}");
                }
            }
        }
        let mut message = Message(&mut writer, Ok(()));
        event.record(&mut message);
        message.1?;
        writeln!(writer)
    }
}
