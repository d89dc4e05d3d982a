//! What a worker asks of an executor: run one attempt of a run and report as it goes. The
//! local executor runs steps on the worker's host; a Kubernetes executor will run the same
//! trait in a Pod per run (a stage may name a container image; steps stream their output
//! through [`RunEvents::log`]). Cancellation and timeouts are the executor's job: when
//! `cancel` fires it stops everything it started and returns promptly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sluice_core::entities::{project, release, run};
use sluice_core::logs::Origin;
use sluice_core::store::artifacts::TestSummary;
use sluice_core::store::changes::RefType;
use sluice_core::store::execution::Declared;
use sluice_core::store::gates::WaitingFor;
use sluice_core::store::releases::{NewRelease, Started};
use tokio_util::sync::CancellationToken;

/// One attempt of a run, as handed to an executor.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run: run::Model,
    pub project: project::Model,
    /// A directory for this attempt only; the worker removes it afterwards.
    pub workspace: PathBuf,
    /// Which repositories may be checked out (local ones, and hosts on which addresses).
    pub repo_access: crate::checkout::RepoAccess,
    /// How the checkout authenticates to a private repository (never given to a step).
    pub repo_credential: Option<sluice_core::git_auth::RepoCredential>,
    /// The project's secrets by name, for `credentials()` and `withCredentials`. Their values
    /// are masked in the log by the worker, whatever the executor prints.
    pub secrets: BTreeMap<String, String>,
    /// Why the project's secrets were withheld from this run (a change request from a fork).
    pub secrets_withheld: Option<String>,
    /// The status of the project's previous ended run (`changed`, `fixed`, `regression`).
    pub previous: Option<String>,
}

impl RunContext {
    /// Why `credentials('id')` found nothing, in words for the run's reason.
    pub fn missing_secret(&self, id: &str) -> String {
        match &self.secrets_withheld {
            Some(why) => format!("secrets are withheld from this run: {why}"),
            None => format!(
                "the project has no secret named `{id}` (set it under the project's secrets; names are Jenkins credential ids: letters, digits, `-`, `_`, `.`)"
            ),
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Finished with failing tests or a step that marked it unstable.
    Unstable(String),
    /// With the reason a person needs (the step, line or check at fault).
    Failed(String),
    Cancelled(String),
}

/// How a gate was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAnswer {
    /// With the gate's parameters as the approver gave them (defaults filled in).
    Approved {
        by: String,
        params: BTreeMap<String, String>,
    },
    Rejected {
        by: String,
    },
    /// The run was cancelled (or lost) while it waited.
    Stopped,
}

/// A file archived to object storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub size: u64,
    pub sha256: String,
}

/// Where an executor reports progress; the worker records it.
#[async_trait::async_trait]
pub trait RunEvents: Send + Sync {
    /// The Jenkinsfile was parsed: what it declares outlives the run (parameters, triggers).
    async fn declared(&self, declared: Declared);
    /// The run's parameters after checking them against the Jenkinsfile (defaults filled in).
    async fn params(&self, params: &BTreeMap<String, String>);
    /// Takes `resource` for the run (`lock`), or says who holds it.
    async fn lock(
        &self,
        resource: &str,
    ) -> Result<Result<(), Option<sluice_core::store::locks::Holder>>, String>;
    /// Gives `resource` back.
    async fn unlock(&self, resource: &str);
    /// What the run's Groovy set as `currentBuild.displayName` and `.description`.
    async fn shown(&self, display_name: Option<&str>, description: Option<&str>);
    /// The checkout met the repository's SSH host keys for the first time: they are pinned
    /// for the project's next connections.
    async fn pin_host_keys(&self, _known_hosts: &str) {}
    /// Masks these values in the log from now on (password parameters).
    fn also_mask(&self, values: Vec<String>);
    /// The checkout found the run's commit: recorded with its message, author and ref type.
    async fn commit(&self, commit: &sluice_core::git::CommitInfo, ref_type: RefType);
    /// A stage started (inside `parent`, for branches and nested stages); returns its number.
    async fn stage_started(&self, name: &str, parent: Option<i32>) -> i32;
    /// A stage ended: `succeeded`, `unstable`, `failed`, `skipped`, `cancelled`.
    async fn stage_finished(&self, seq: i32, status: &str);
    /// A line of output or of Sluice's own commentary; never blocks on storage.
    fn log(&self, origin: &Origin, line: &str);
    /// A line saying why a step or the run failed.
    fn log_error(&self, origin: &Origin, line: &str);
    /// A step ended (for the step metrics).
    fn step_finished(&self, step: &str, ok: bool, took: Duration);
    /// Uploads `body` as the artifact `path`.
    async fn archive(&self, path: &str, body: crate::agent::ByteStream)
    -> Result<Archived, String>;
    /// The run's test results so far.
    async fn tests(&self, summary: &TestSummary);
    /// Parks the run at a gate until someone answers it or `cancel` fires.
    async fn gate(&self, gate: WaitingFor, cancel: &CancellationToken) -> GateAnswer;
    /// Starts the release a `deploy` step asks for (or finds the one this run's step already
    /// started); `new.people` gets the run's starter added.
    async fn release_start(&self, new: NewRelease) -> Result<Started, String>;
    /// A release as it stands, with its app environment's routed URL.
    async fn release(&self, id: i64) -> Result<(release::Model, Option<String>), String>;
    /// The smoke test's result, for the release controller.
    async fn smoke_answered(&self, id: i64, passed: bool, detail: &str);
    /// Asks the controller to abort a release (the run was cancelled).
    async fn release_abort(&self, id: i64);
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
