//! The Lambda binary: build everything once, then serve events.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use wix_media_archiver::{app::App, entry::lambda, logging};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(std::io::stdout);
    wix_media_archiver::storage::upload::release_part_buffers();
    let app = match App::from_env().await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let app = app.clone();
        async move { lambda::handle_event(&app, event).await }
    }))
    .await
}
