//! JSON log lines, as Lambda's JSON log format expects.

use tracing_subscriber::EnvFilter;

/// Libraries held at `info` or quieter whatever level is asked for: their lower levels can
/// print headers and bodies (keys, tokens, links).
const QUIET_LIBRARIES: &str = "hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=info,lambda_runtime=info,lambda_http=info,aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_smithy_http_client=info,aws_config=info,aws_sdk_secretsmanager=info,aws_sdk_ssm=info,aws_sdk_sesv2=info,tower=info";

/// The filter: `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`, with libraries held quiet.
pub fn filter() -> EnvFilter {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".to_owned());
    EnvFilter::try_new(format!("{level},{QUIET_LIBRARIES}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_LIBRARIES}")))
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
