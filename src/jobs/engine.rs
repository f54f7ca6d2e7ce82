//! The job engine: AWS Step Functions. Executions are started by name (the job's ID, so a
//! job is started once), looked at, and their callback tasks answered with the task token a
//! step's message carries.

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

/// Step Functions for one state machine.
#[derive(Clone, Debug)]
pub struct Engine {
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

/// A failed Step Functions call, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Step Functions {operation} failed: {reason}")]
pub struct EngineError {
    pub operation: &'static str,
    pub reason: String,
    pub code: Option<String>,
}

/// An execution as Step Functions reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Execution {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, …
    pub status: String,
    pub error: Option<String>,
}

impl Engine {
    /// The engine of `state_machine_arn`.
    pub fn new(sfn: aws_sdk_sfn::Client, state_machine_arn: String) -> Self {
        Engine { sfn, state_machine_arn }
    }

    /// The ARN an execution named `name` has (or will have).
    pub fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
        )
    }

    /// Starts an execution named `name` with `input`, unless one of that name exists: AWS
    /// answers a repeated start of the same name and input with the running execution, and
    /// refuses one with another input; both are the job already started. `new` says the
    /// name was never started before (its job was claimed just now), so the look for an
    /// execution of that name is skipped: one call instead of two on the way to a `202`.
    /// Otherwise the execution is looked for first, since not every Step Functions
    /// (moto's among them) refuses a second start of a name.
    pub async fn start(&self, name: &str, input: &str, new: bool) -> Result<(), EngineError> {
        if !new && self.describe(name).await?.is_some() {
            return Ok(());
        }
        match self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ExecutionAlreadyExists") => Ok(()),
            Err(e) => Err(engine_error("StartExecution", &e)),
        }
    }

    /// The execution named `name`, if there is one.
    pub async fn describe(&self, name: &str) -> Result<Option<Execution>, EngineError> {
        match self
            .sfn
            .describe_execution()
            .execution_arn(self.execution_arn(name))
            .send()
            .await
        {
            Ok(out) => Ok(Some(Execution {
                status: out.status().as_str().to_owned(),
                error: out.error().map(str::to_owned),
            })),
            Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(None),
            Err(e) => Err(engine_error("DescribeExecution", &e)),
        }
    }

    /// The names of the running executions (the running jobs), at most `max`.
    pub async fn running(&self, max: i32) -> Result<Vec<String>, EngineError> {
        let out = self
            .sfn
            .list_executions()
            .state_machine_arn(&self.state_machine_arn)
            .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
            .max_results(max)
            .send()
            .await
            .map_err(|e| engine_error("ListExecutions", &e))?;
        Ok(out.executions().iter().map(|e| e.name().to_owned()).collect())
    }

    /// Completes a callback task with `output` (JSON).
    pub async fn succeed(&self, token: &str, output: &str) -> Result<(), EngineError> {
        self.sfn
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| engine_error("SendTaskSuccess", &e))
    }

    /// Fails a callback task.
    pub async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), EngineError> {
        self.sfn
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| engine_error("SendTaskFailure", &e))
    }

    /// Tells Step Functions a long task is still being worked on.
    pub async fn heartbeat(&self, token: &str) -> Result<(), EngineError> {
        self.sfn
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| engine_error("SendTaskHeartbeat", &e))
    }
}

impl EngineError {
    /// Step Functions says the task is over: answered already, timed out, or its execution
    /// ended.
    pub fn task_is_over(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("TaskTimedOut" | "InvalidToken" | "TaskDoesNotExist")
        )
    }
}

fn engine_error<E: ProvideErrorMetadata, R>(operation: &'static str, e: &SdkError<E, R>) -> EngineError {
    let reason = crate::aws::describe(e);
    EngineError {
        operation,
        reason,
        code: e.code().map(str::to_owned),
    }
}
