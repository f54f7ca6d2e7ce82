//! The job queue's worker: each SQS message is one step of a job (its task token, the job,
//! the item). The step runs, sending Step Functions heartbeats meanwhile, and its task is
//! answered: success with the step's output, or failure with its error. A message whose
//! answer could not be delivered is reported back to SQS as a partial batch failure, so it
//! comes again; the steps are safe to run twice.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use super::engine::Engine;
use super::steps::{self, ItemRef, StepEnv};
use super::JobRef;
use crate::app::App;
use crate::wix::CallContext;

/// One message of the job queue, as the state machine writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepMessage {
    /// `list`, `plan`, `batch` or `finish`.
    pub step: String,
    pub token: String,
    pub job: JobRef,
    #[serde(default)]
    pub item: Option<ItemRef>,
}

/// An SQS record as Lambda's event source mapping delivers it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    pub body: String,
}

/// The answer Lambda's event source mapping reads: the messages to deliver again.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

/// A message to deliver again.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: String,
}

/// Counts for the summary line.
#[derive(Debug, Default, Clone)]
pub struct WorkerCounts {
    /// The job and step of the (last) message.
    pub job_id: Option<String>,
    pub step: Option<String>,
    pub steps: usize,
    pub failed_steps: usize,
    pub redeliver: usize,
    /// What the steps did to files, for the metrics (a finish step's whole job).
    pub tally: crate::metrics::Tally,
}

/// Handles the SQS records of one invocation.
pub async fn handle(
    app: &App,
    engine: &Engine,
    records: Vec<SqsRecord>,
    ctx: &CallContext,
    request_id: &str,
) -> (BatchResponse, WorkerCounts) {
    let mut response = BatchResponse::default();
    let mut counts = WorkerCounts::default();
    for record in records {
        counts.steps += 1;
        let message: StepMessage = match serde_json::from_str(&record.body) {
            Ok(m) => m,
            Err(e) => {
                // Not a step of ours: nothing to answer; delivering it again would not help.
                tracing::error!(error = %e, "a job queue message is not a step; dropped");
                counts.failed_steps += 1;
                continue;
            }
        };
        counts.job_id = Some(message.job.job_id.clone());
        counts.step = Some(message.step.clone());
        let span = tracing::info_span!("job step", job_id = %message.job.job_id, step = %message.step);
        let (failed, redeliver, tally) = answer(app, engine, &message, ctx, request_id).instrument(span).await;
        counts.failed_steps += usize::from(failed);
        counts.tally.add(tally);
        if redeliver {
            counts.redeliver += 1;
            response.batch_item_failures.push(ItemFailure {
                item_identifier: record.message_id.clone(),
            });
        }
    }
    (response, counts)
}

/// Runs one step and answers its task: (whether the step failed, whether the message must
/// come again because the answer did not reach Step Functions).
async fn answer(
    app: &App,
    engine: &Engine,
    message: &StepMessage,
    ctx: &CallContext,
    request_id: &str,
) -> (bool, bool, crate::metrics::Tally) {
    let every = Duration::from_secs(app.config.job_heartbeat_seconds);
    let Some(outcome) = with_heartbeats(engine, &message.token, every, run_step(app, message, ctx, request_id)).await
    else {
        // Step Functions gave the task up (timed out and retried, or the job ended): the
        // retry does the work; this delivery stops and is done.
        tracing::warn!("the step's task is over elsewhere; this delivery stopped");
        return (false, false, crate::metrics::Tally::default());
    };
    let answered = match &outcome {
        Ok((output, _)) => engine.succeed(&message.token, &output.to_string()).await,
        Err((name, cause)) => {
            tracing::warn!(error = %cause, "a job step failed");
            engine.fail(&message.token, name, &clip(cause, MAX_CAUSE)).await
        }
    };
    let failed = outcome.is_err();
    let tally = outcome.map(|(_, tally)| tally).unwrap_or_default();
    match answered {
        Ok(()) => (failed, false, tally),
        // The task is over already (answered by an earlier delivery, or timed out and
        // retried with a new message): this delivery is done, and counted by the first.
        Err(e) if e.task_is_over() => {
            tracing::info!(error = %e, "the step's task was already answered or retried");
            (failed, false, crate::metrics::Tally::default())
        }
        Err(e) => {
            tracing::warn!(error = %e, "the step's answer could not be delivered; the message comes again");
            (failed, true, crate::metrics::Tally::default())
        }
    }
}

/// Step Functions takes a failure's cause of at most 32,768 characters.
const MAX_CAUSE: usize = 32_000;

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

async fn run_step(
    app: &App,
    message: &StepMessage,
    ctx: &CallContext,
    request_id: &str,
) -> Result<(Value, crate::metrics::Tally), (&'static str, String)> {
    let credentials = app
        .credentials_by(ctx)
        .await
        .map_err(|e| ("Job.Credentials", format!("the credentials could not be read: {e}")))?;
    let store = app
        .store(&credentials)
        .ok_or(("Job.NoStorage", "jobs need STORAGE_BUCKET".to_owned()))?;
    let env = StepEnv {
        app,
        store: &store,
        ctx,
        request_id,
    };
    let bare = |value| (value, crate::metrics::Tally::default());
    let result = match (message.step.as_str(), &message.item) {
        ("list", _) => Box::pin(steps::list(&env, &message.job))
            .await
            .map(|out| bare(serde_json::to_value(out).unwrap_or(Value::Null))),
        ("plan", _) => Box::pin(steps::plan(&env, &message.job))
            .await
            .map(|out| bare(serde_json::to_value(out).unwrap_or(Value::Null))),
        ("batch", Some(item)) => Box::pin(steps::batch(&env, &message.job, item)).await.map(bare),
        ("finish", _) => Box::pin(steps::finish(&env, &message.job)).await,
        (other, _) => return Err(("Job.UnknownStep", format!("`{other}` is not a step"))),
    };
    result.map_err(|e| (e.name(), e.to_string()))
}

/// Runs `work`, telling Step Functions `every` so often that the task is alive; `None`
/// when Step Functions answers a heartbeat that the task is over (a step that outlived its
/// heartbeat timeout has been retried elsewhere, and two copies of a step must not both
/// spend the site's Wix budget).
async fn with_heartbeats<T>(
    engine: &Engine,
    token: &str,
    every: Duration,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = ticker.tick() => match engine.heartbeat(token).await {
                Ok(()) => {}
                Err(e) if e.task_is_over() => return None,
                Err(e) => tracing::warn!(error = %e, "a heartbeat was not delivered"),
            },
        }
    }
}
