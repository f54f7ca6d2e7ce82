//! The job engine on a local moto: the state machine of `statemachine/backup.asl.json`,
//! substituted the way the template's `DefinitionSubstitutions` are, the job queue, and the
//! real Lambda binary as the queue's workers. Each worker is one "container": the binary behind its own
//! Lambda Runtime API, handed one SQS message at a time as an SQS event, the way Lambda's
//! event source mapping delivers them (a message is deleted when the invocation answers
//! without listing it in `batchItemFailures`; otherwise it comes back after its visibility
//! timeout). A worker can be killed in the middle of a step, and comes back as a new process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lambda_runtime_stub::{Outcome, RuntimeApi};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use aws_config::SdkConfig;

/// The definition the template deploys.
pub const DEFINITION: &str = include_str!("../../../statemachine/backup.asl.json");

/// The queue and the state machine, on moto.
pub struct JobEngine {
    pub sfn: aws_sdk_sfn::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub queue_url: String,
    pub state_machine_arn: String,
}

/// Turns on moto's Step Functions interpreter (off, executions never leave `RUNNING`).
pub async fn enable_interpreter(moto_url: &str) {
    reqwest::Client::new()
        .post(format!("{moto_url}/moto-api/config"))
        .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
        .send()
        .await
        .expect("moto config")
        .error_for_status()
        .expect("moto accepts the interpreter flag");
}

/// Makes the jobs' state machine (the template's definition over `queue_url` and `bucket`) in
/// moto's Step Functions backend of the moment (the interpreter's, or the one that only
/// records executions); its ARN.
pub async fn create_machine(
    sfn: &aws_sdk_sfn::Client,
    queue_url: &str,
    bucket: &str,
    heartbeat_seconds: u32,
    batch_concurrency: u32,
) -> Result<String, String> {
    let out = sfn
        .create_state_machine()
        .name("wix-media-archiver-jobs")
        .definition(definition(queue_url, bucket, heartbeat_seconds, batch_concurrency))
        .role_arn("arn:aws:iam::123456789012:role/wix-media-archiver-jobs")
        .send()
        .await
        .map_err(|e| format!("create the state machine: {e}"))?;
    Ok(out.state_machine_arn().to_owned())
}

/// The definition with the template's substitutions.
pub fn definition(queue_url: &str, bucket: &str, heartbeat_seconds: u32, batch_concurrency: u32) -> String {
    let text = DEFINITION
        .replace("${JobQueueUrl}", queue_url)
        .replace("${StorageBucket}", bucket)
        .replace("${MapResultsPrefix}", "wix-media-archiver/_map-results")
        .replace("${HeartbeatSeconds}", &heartbeat_seconds.to_string())
        .replace("${BatchConcurrency}", &batch_concurrency.to_string());
    assert!(
        !text.contains("${"),
        "every placeholder of the definition is substituted"
    );
    let _: Value = serde_json::from_str(&text).expect("the substituted definition is JSON");
    text
}

impl JobEngine {
    /// Creates the job queue (`visibility` seconds) and the state machine on the moto at
    /// `moto_url`, which `sdk` points at.
    pub async fn create(
        sdk: &SdkConfig,
        moto_url: &str,
        bucket: &str,
        heartbeat_seconds: u32,
        batch_concurrency: u32,
        visibility: u32,
    ) -> JobEngine {
        enable_interpreter(moto_url).await;
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let sfn = aws_sdk_sfn::Client::new(sdk);
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build());
        let queue_url = sqs
            .create_queue()
            .queue_name("wix-media-archiver-jobs")
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                visibility.to_string(),
            )
            .send()
            .await
            .expect("create the job queue")
            .queue_url()
            .expect("a queue URL")
            .to_owned();
        let state_machine_arn = create_machine(&sfn, &queue_url, bucket, heartbeat_seconds, batch_concurrency)
            .await
            .expect("moto accepts the definition");
        JobEngine {
            sfn,
            sqs,
            s3,
            queue_url,
            state_machine_arn,
        }
    }

    /// The execution named `name`: its status and output.
    pub async fn execution(&self, name: &str) -> Option<(String, Option<Value>)> {
        let arn = format!(
            "{}:{name}",
            self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
        );
        let out = self.sfn.describe_execution().execution_arn(arn).send().await.ok()?;
        let output = out.output().and_then(|o| serde_json::from_str(o).ok()).or_else(|| {
            out.error()
                .map(|e| json!({"error": e, "cause": out.cause().unwrap_or_default()}))
        });
        Some((out.status().as_str().to_owned(), output))
    }

    /// Waits for the execution `name` to end; its status and output.
    pub async fn wait(&self, name: &str, limit: Duration) -> (String, Option<Value>) {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Some((status, output)) = self.execution(name).await {
                if status != "RUNNING" {
                    return (status, output);
                }
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the execution {name} did not end within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How many executions the state machine has.
    pub async fn executions(&self) -> usize {
        self.sfn
            .list_executions()
            .state_machine_arn(&self.state_machine_arn)
            .send()
            .await
            .expect("list executions")
            .executions()
            .len()
    }
}

/// What a worker does with a message before (or instead of) answering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Deliver,
    /// Hand it to the binary, then kill the process after this long (the message is neither
    /// answered nor deleted; the worker comes back as a new process).
    KillAfter(Duration),
    /// Overwrite the batch's file in S3 with bytes that are not gzip, then deliver: the
    /// batch's step fails every time it runs.
    CorruptBatch,
}

/// Decides per message: `(step, item number)` → what to do. Called once per delivery.
pub type Plan = Arc<dyn Fn(&str, Option<u64>, usize) -> Action + Send + Sync>;

/// Every delivery made, and how the workers fared.
#[derive(Default)]
pub struct Stats {
    pub deliveries: Mutex<Vec<(String, Option<u64>)>>,
    pub kills: AtomicUsize,
    pub redelivered: AtomicUsize,
    pub errors: AtomicUsize,
    /// The workers' log lines (stdout and stderr).
    pub logs: Mutex<Vec<String>>,
}

impl Stats {
    /// Deliveries of `step`.
    pub fn delivered(&self, step: &str) -> usize {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == step)
            .count()
    }
}

/// The running workers; they stop when dropped.
pub struct Workers {
    pub stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Starts `n` workers of the Lambda binary at `binary` with `env`, taking messages from
    /// the queue.
    pub async fn start(
        binary: &Path,
        n: usize,
        engine: &JobEngine,
        env: HashMap<String, String>,
        plan: Plan,
    ) -> Workers {
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let seq = Arc::new(AtomicUsize::new(0));
        for i in 0..n {
            let worker = Worker {
                index: i,
                binary: binary.to_owned(),
                sqs: engine.sqs.clone(),
                s3: engine.s3.clone(),
                queue_url: engine.queue_url.clone(),
                env: env.clone(),
                plan: plan.clone(),
                stats: stats.clone(),
                stopped: stopped.clone(),
                seq: seq.clone(),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        Workers { stats, stop, tasks }
    }

    /// Stops the workers and waits for them.
    pub async fn stop(mut self) -> Arc<Stats> {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
        }
        self.stats.clone()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Worker {
    index: usize,
    binary: PathBuf,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    queue_url: String,
    env: HashMap<String, String>,
    plan: Plan,
    stats: Arc<Stats>,
    stopped: watch::Receiver<bool>,
    seq: Arc<AtomicUsize>,
}

impl Worker {
    fn spawn(&self, runtime_api: &str) -> Child {
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "wix-media-archiver-jobs")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/wix-media-archiver-jobs")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("worker-{}", self.index))
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("the Lambda binary starts");
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let stats = self.stats.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    stats.logs.lock().unwrap().push(line);
                }
            });
        }
        child
    }

    async fn run(self) {
        let mut api = RuntimeApi::start().await.expect("a runtime API");
        let mut child = self.spawn(&api.address());
        loop {
            if *self.stopped.borrow() {
                break;
            }
            // The binary's `next` (it may still be starting).
            let Some(poll) = api.next_poll(Duration::from_secs(1)).await else {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("worker {} exited before polling: {status}", self.index);
                }
                continue;
            };
            // A message, as the event source mapping would take it.
            let message = loop {
                if *self.stopped.borrow() {
                    let _ = child.kill().await;
                    return;
                }
                let received = self
                    .sqs
                    .receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(1)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .send()
                    .await;
                match received {
                    Ok(out) => {
                        if let Some(m) = out.messages().first() {
                            break m.clone();
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            let body: Value = serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or(Value::Null);
            let step = body["step"].as_str().unwrap_or("?").to_owned();
            let number = body["item"]["number"].as_u64();
            let receives: usize = message
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            if receives > 1 {
                self.stats.redelivered.fetch_add(1, Ordering::SeqCst);
            }
            let action = (self.plan)(&step, number, self.stats.delivered(&step));
            self.stats.deliveries.lock().unwrap().push((step.clone(), number));
            let message_id = message.message_id().unwrap_or_default().to_owned();
            let event = json!({"Records": [{
                "messageId": message_id,
                "receiptHandle": message.receipt_handle().unwrap_or_default(),
                "body": message.body().unwrap_or_default(),
                "attributes": {"ApproximateReceiveCount": receives.to_string(), "SentTimestamp": "0",
                               "SenderId": "states.amazonaws.com", "ApproximateFirstReceiveTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wix-media-archiver-jobs",
                "awsRegion": "us-east-1"
            }]});
            if action == Action::CorruptBatch {
                if let (Some(bucket), Some(key)) = (self.env.get("STORAGE_BUCKET"), body["item"]["key"].as_str()) {
                    self.s3
                        .put_object()
                        .bucket(bucket)
                        .key(key)
                        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"not gzip"))
                        .send()
                        .await
                        .expect("corrupt the batch file");
                }
            }
            let request_id = format!("worker{}-{}", self.index, self.seq.fetch_add(1, Ordering::SeqCst));
            poll.deliver(&request_id, Bytes::from(event.to_string()), Duration::from_secs(900));
            if let Action::KillAfter(after) = action {
                tokio::time::sleep(after).await;
                let _ = child.kill().await;
                self.stats.kills.fetch_add(1, Ordering::SeqCst);
                // Whatever the dead process posted is not this worker's business any more.
                while api.outcome(Duration::from_millis(10)).await.is_some() {}
                child = self.spawn(&api.address());
                continue;
            }
            let answered = loop {
                if *self.stopped.borrow() {
                    let _ = child.kill().await;
                    return;
                }
                if let Some((outcome, _)) = api.outcome(Duration::from_secs(1)).await {
                    break outcome;
                }
            };
            let redeliver = match &answered {
                Outcome::Response { body, .. } => {
                    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    v["batchItemFailures"].as_array().is_some_and(|a| !a.is_empty())
                }
                _ => {
                    self.stats.errors.fetch_add(1, Ordering::SeqCst);
                    true
                }
            };
            if !redeliver {
                let _ = self
                    .sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await;
            }
        }
        let _ = child.kill().await;
    }
}

/// Delivers every message.
pub fn deliver_all() -> Plan {
    Arc::new(|_, _, _| Action::Deliver)
}
