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

/// Installs the JSON subscriber writing to `writer`.
pub fn init<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter())
        .with_writer(writer)
        .try_init();
}
