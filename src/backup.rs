//! The scheduled backup of the whole media library.

use serde_json::value::RawValue;
use serde_json::Value;

use crate::app::App;
use crate::entry::lambda::EventError;
use crate::wix::CallContext;

/// Runs a backup for a schedule event, with `options` over the environment's defaults.
pub async fn run_event(
    _app: &App,
    _options: Option<&RawValue>,
    _request_id: &str,
    _ctx: &CallContext,
) -> Result<Value, EventError> {
    Err(EventError::BackupFailed(
        "scheduled backups are not implemented in this version".to_owned(),
    ))
}
