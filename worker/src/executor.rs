//! What a worker asks of an executor: run one attempt of a run and report as it goes. The
//! local executor runs on the worker's host; a Kubernetes executor will run the same trait in
//! a Pod per run. Cancellation and timeouts are the executor's job: when `cancel` fires it
//! stops everything it started and returns promptly.

use std::path::PathBuf;

use sluice_core::entities::{project, run};
use sluice_core::store::execution::Declared;
use tokio_util::sync::CancellationToken;

/// One attempt of a run, as handed to an executor.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run: run::Model,
    pub project: project::Model,
    /// A directory for this attempt only; the worker removes it afterwards.
    pub workspace: PathBuf,
    /// Whether `file://` and local-path repositories may be checked out.
    pub allow_local_repos: bool,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// With the reason a person needs (the step, line or check at fault).
    Failed(String),
    Cancelled(String),
}

/// Where an executor reports progress; the worker records it.
#[async_trait::async_trait]
pub trait RunEvents: Send + Sync {
    /// The Jenkinsfile was parsed: what it declares outlives the run (parameters, triggers).
    async fn declared(&self, declared: Declared);
    /// The run's parameters after checking them against the Jenkinsfile (defaults filled in).
    async fn params(&self, params: &std::collections::BTreeMap<String, String>);
    /// A stage started; returns its number in the run.
    async fn stage_started(&self, name: &str) -> i32;
    /// A stage ended: `succeeded`, `failed`, `skipped`, `cancelled`.
    async fn stage_finished(&self, seq: i32, status: &str);
    /// A line of output or of Sluice's own commentary.
    async fn log(&self, line: &str);
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    async fn execute(
        &self,
        ctx: &RunContext,
        events: &dyn RunEvents,
        cancel: CancellationToken,
    ) -> Outcome;
}
