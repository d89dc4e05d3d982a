//! Sluice's worker: claims jobs from the queue and runs them through an executor.
//!
//! Each of `concurrency` slots claims a job, takes the run with a compare-and-set (a queued
//! run, or a running one whose worker stopped heart-beating), heart-beats both the queue and
//! the run while the executor works, records the outcome, then acknowledges the job. On
//! SIGTERM a worker claims nothing more and gives its runs the shutdown grace to finish; runs
//! still going then are stopped and handed back, queued, for another worker.
#![forbid(unsafe_code)]

pub mod agent;
pub use sluice_core::git as checkout;
mod events;
pub mod executor;
pub use sluice_core::host_env;
pub mod interpreter;
pub mod janitor;
pub mod supervised;
pub mod supervisor;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicI32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sluice_core::crypto::Keyring;
use sluice_core::entities::{org, project, run as run_entity};
use sluice_core::logs::{LogSink, Masker, Origin};
use sluice_core::metrics::Metrics;
use sluice_core::objects::Objects;
use sluice_core::queue::{Claimed, Queue};
use sluice_core::store::execution::{self, Start};
use sluice_core::store::gates;
use sluice_core::store::retention;
use sluice_core::store::runs::RunStatus;
use tokio_util::sync::CancellationToken;

use crate::events::{DbEvents, POLL};

pub use executor::{Executor, Outcome, RunContext, RunEvents};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker's consumers and is recorded on the runs it takes.
    pub name: String,
    /// Runs executed at once.
    pub concurrency: usize,
    /// The queue's lease: heartbeats come four times per lease.
    pub lease: Duration,
    /// How long running runs may go on after a stop signal before they are handed back.
    pub grace: Duration,
    /// Where attempts get their workspace.
    pub workspace_root: PathBuf,
    pub allow_local_repos: bool,
    /// Addresses repository hosts may not resolve to (unless local repositories are allowed).
    pub repo_deny: sluice_core::addresses::DenyList,
    /// Keep each attempt's workspace afterwards (debugging builds).
    pub keep_workspaces: bool,
    /// Keep a mirror of each project's remote repository under `{workspace_root}/mirrors`.
    pub git_mirrors: bool,
    /// Largest log one run may write.
    pub log_max_bytes: u64,
}

impl WorkerConfig {
    /// A name unique to this process: host and process id.
    pub fn default_name() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    }
}

/// A queue consumer; one runs inside `sluice serve`, many as `sluice worker` processes.
pub struct Worker {
    db: DatabaseConnection,
    queue: Arc<dyn Queue>,
    metrics: Metrics,
    config: WorkerConfig,
    executor: Arc<dyn Executor>,
    objects: Objects,
    keys: Keyring,
    /// Workspaces this process's slots are using (the janitor leaves them alone).
    active: Mutex<HashSet<PathBuf>>,
}

/// What a worker needs besides its queue and executor.
pub struct WorkerParts {
    pub db: DatabaseConnection,
    pub queue: Arc<dyn Queue>,
    pub metrics: Metrics,
    pub objects: Objects,
    pub keys: Keyring,
}

impl Worker {
    pub fn new(parts: WorkerParts, config: WorkerConfig, executor: Arc<dyn Executor>) -> Worker {
        Worker {
            db: parts.db,
            queue: parts.queue,
            metrics: parts.metrics,
            config,
            executor,
            objects: parts.objects,
            keys: parts.keys,
            active: Mutex::new(HashSet::new()),
        }
    }

    /// Removes dead attempts' workspaces (and kills what they left running).
    pub async fn sweep(&self) -> usize {
        let active = self.active.lock().map(|a| a.clone()).unwrap_or_default();
        janitor::sweep(
            &self.db,
            &self.config.workspace_root,
            &active,
            self.config.lease / 2,
        )
        .await
    }

    /// Runs until `shutdown` is cancelled and every slot has finished or handed back its run.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            worker = %self.config.name,
            concurrency = self.config.concurrency,
            "worker started"
        );
        let this = Arc::new(self);
        let mut slots = tokio::task::JoinSet::new();
        let sweeper = this.clone();
        let stop_sweeping = shutdown.clone();
        tokio::spawn(async move {
            loop {
                sweeper.sweep().await;
                tokio::select! {
                    _ = stop_sweeping.cancelled() => return,
                    _ = tokio::time::sleep(sweeper.config.lease / 2) => {}
                }
            }
        });
        for slot in 0..this.config.concurrency.max(1) {
            slots.spawn(this.clone().slot(slot, shutdown.clone()));
        }
        while slots.join_next().await.is_some() {}
        tracing::info!(worker = %this.config.name, "worker stopped");
    }

    async fn slot(self: Arc<Self>, slot: usize, shutdown: CancellationToken) {
        let consumer = format!("{}-{slot}", self.config.name);
        loop {
            // Stopping wins: a claim can complete within one poll (a fast database answers
            // before the future is polled again), and an unbiased select then picked it and
            // ran a run this worker had just handed back (seen in CI).
            let claimed = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                claimed = self.queue.claim(&consumer, Duration::from_secs(1)) => claimed,
            };
            if shutdown.is_cancelled() {
                if let Ok(Some(claimed)) = &claimed
                    && let Err(err) = self.queue.release(claimed).await
                {
                    tracing::warn!(run = claimed.job.run_id, error = %err, "releasing a job claimed while stopping failed; its lease will run out");
                }
                return;
            }
            match claimed {
                Ok(Some(claimed)) => self.handle(claimed, &consumer, &shutdown).await,
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(error = %err, "claiming a job failed; retrying in 1 s");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn handle(&self, claimed: Claimed, consumer: &str, shutdown: &CancellationToken) {
        let run_id = claimed.job.run_id;
        // The holder heart-beats four times per lease; two missed beats and it is gone. (Its
        // queue lease ran out before this delivery, so its last run heartbeat is about a
        // lease old, far past half of one.)
        let stale_after = self.config.lease / 2;
        let started = match execution::start(&self.db, run_id, consumer, stale_after).await {
            Ok(started) => started,
            Err(err) => {
                // Left in the queue: the lease runs out and it is delivered again.
                tracing::error!(run = run_id, error = %err, "taking a run failed");
                return;
            }
        };
        let taken_over = matches!(started, Start::TakenOver(_));
        let run = match started {
            Start::Busy if claimed.deliveries > 1 => {
                // Redelivered while its holder still looks alive: leave it held here; if the
                // holder is gone, the next delivery finds its heartbeat stale and takes over.
                tracing::debug!(
                    run = run_id,
                    "run still heart-beating elsewhere; trying later"
                );
                return;
            }
            Start::Busy => {
                // A duplicate job (republished) of a run alive on another worker.
                self.ack(&claimed).await;
                return;
            }
            Start::Skip(why) => {
                tracing::debug!(run = run_id, why, "job needs no work");
                self.ack(&claimed).await;
                return;
            }
            Start::TakenOver(run) => {
                tracing::warn!(
                    run = run_id,
                    attempt = run.attempt,
                    "taking over a run whose worker stopped heart-beating"
                );
                run
            }
            Start::Started(run) => {
                let waited = (Utc::now() - run.queued_at).num_milliseconds().max(0);
                self.metrics.queue_wait.observe(waited as f64 / 1000.0);
                run
            }
        };
        if taken_over || claimed.deliveries > 1 {
            // The attempt before may have died on this host: clear what it left.
            self.sweep().await;
        }
        let org_slug = org::Entity::find_by_id(run.org_id)
            .one(&self.db)
            .await
            .ok()
            .flatten()
            .map_or_else(|| "unknown".to_owned(), |o| o.slug);
        let project = match project::Entity::find_by_id(run.project_id)
            .one(&self.db)
            .await
        {
            Ok(Some(project)) => project,
            other => {
                let reason = match other {
                    Err(err) => format!("loading the project failed: {err}"),
                    _ => "the project no longer exists".to_owned(),
                };
                self.end(&claimed, &run, &org_slug, None, Outcome::Failed(reason))
                    .await;
                return;
            }
        };
        // A fork's change request runs someone else's code: no secrets unless the project
        // says forks may have them.
        let secrets_withheld = run
            .change
            .as_deref()
            .and_then(sluice_core::store::changes::ChangeRequest::from_json)
            .and_then(|change| change.fork)
            .filter(|_| !project.fork_secrets)
            .map(|fork| {
                format!(
                    "this change request comes from the fork `{fork}`, and the project gives forks no secrets (project setting `fork_secrets`)"
                )
            });
        let loaded = match secrets_withheld {
            Some(_) => Ok(Default::default()),
            None => {
                sluice_core::store::projects::secrets_for_run(&self.db, &self.keys, project.id)
                    .await
            }
        };
        let secrets = match loaded {
            Ok(secrets) => secrets,
            Err(err) => {
                let reason = format!("reading the project's secrets failed: {err}");
                self.end(
                    &claimed,
                    &run,
                    &org_slug,
                    Some(&project),
                    Outcome::Failed(reason),
                )
                .await;
                return;
            }
        };
        // The repository credential is Sluice's own, used by the checkout only: a fork's change
        // request is cloned with it too.
        let repo_credential =
            match sluice_core::store::repo_credentials::for_git(&self.keys, &project) {
                Ok(credential) => credential,
                Err(err) => {
                    let reason =
                        format!("reading the project's repository credential failed: {err}");
                    self.end(
                        &claimed,
                        &run,
                        &org_slug,
                        Some(&project),
                        Outcome::Failed(reason),
                    )
                    .await;
                    return;
                }
            };
        // Password parameters join the masker once the run's Jenkinsfile is parsed, before any
        // step runs (`RunEvents::also_mask`).
        let masker = Masker::new(secrets.values().cloned());
        let sink = match LogSink::open(
            self.db.clone(),
            self.objects.clone(),
            run.id,
            masker,
            self.config.log_max_bytes,
        )
        .await
        {
            Ok(sink) => sink,
            Err(err) => {
                // Left in the queue: the lease runs out and it is delivered again.
                tracing::error!(run = run_id, error = %err, "opening the run's log failed");
                return;
            }
        };
        let previous = previous_status(&self.db, &run).await;
        let running = self.metrics.runs_running.with_label_values(&[&org_slug]);
        running.inc();
        self.metrics.workers_busy.inc();

        let attempt = run.attempt;
        let workspace = self
            .config
            .workspace_root
            .join(format!("run-{}-{}", run.id, attempt));
        if let Ok(mut active) = self.active.lock() {
            active.insert(workspace.clone());
        }
        let here = Origin::default();
        if taken_over {
            sink.line(
                &here,
                &format!(
                    "[sluice] the worker running attempt {} stopped heart-beating; attempt {attempt} starts over on {consumer}",
                    attempt - 1
                ),
            );
        } else {
            sink.line(&here, &format!("[sluice] running on {consumer}"));
        }
        if let Some(why) = &secrets_withheld {
            sink.line(&here, &format!("[sluice] secrets withheld: {why}"));
        }
        let ctx = RunContext {
            run: run.clone(),
            project: project.clone(),
            workspace: workspace.clone(),
            repo_access: checkout::RepoAccess {
                allow_local: self.config.allow_local_repos,
                deny: self.config.repo_deny.clone(),
                // Beside the workspaces (same filesystem: clones from it are hard links); the
                // janitor leaves it alone, as it is not named like a workspace.
                mirror: self.config.git_mirrors.then(|| {
                    sluice_core::git::mirror::path(
                        &self.config.workspace_root.join("mirrors"),
                        project.id,
                        &project.repo_url,
                    )
                }),
            },
            repo_credential,
            secrets,
            secrets_withheld,
            previous,
        };
        let events = DbEvents {
            db: self.db.clone(),
            objects: self.objects.clone(),
            metrics: self.metrics.clone(),
            sink: sink.clone(),
            run_id,
            attempt,
            project_id: project.id,
            org_id: project.org_id,
            next_seq: AtomicI32::new(0),
        };
        let cancel = CancellationToken::new();
        let cancelled_by: Arc<Mutex<Option<String>>> = Arc::default();
        let beating = self.heartbeat(&claimed, run_id, attempt, cancel.clone());
        let watching = self.watch(run_id, attempt, cancel.clone(), cancelled_by.clone());
        let execute = async {
            if let Err(err) = tokio::fs::create_dir_all(&workspace).await {
                return Outcome::Failed(format!("creating the workspace failed: {err}"));
            }
            self.executor.execute(&ctx, &events, cancel.clone()).await
        };
        tokio::pin!(execute);
        let outcome = tokio::select! {
            outcome = &mut execute => Some(outcome),
            _ = beating => None,
            _ = watching => None,
            _ = shutdown.cancelled() => {
                tracing::info!(run = run_id, grace = ?self.config.grace, "stopping: letting the run finish");
                tokio::select! {
                    outcome = &mut execute => Some(outcome),
                    _ = tokio::time::sleep(self.config.grace) => None,
                }
            }
        };
        let outcome = match outcome {
            Some(outcome) => Some(outcome),
            None => {
                // Lost the run (taken over elsewhere), or out of grace: stop it.
                cancel.cancel();
                let _ = execute.await;
                None
            }
        };
        // A user's cancel: the run ends `cancelled` with who asked, whatever the executor saw.
        let outcome = match (outcome, cancelled_by.lock().ok().and_then(|c| c.clone())) {
            (Some(Outcome::Cancelled(_) | Outcome::Failed(_)), Some(by)) => {
                Some(Outcome::Cancelled(by))
            }
            (outcome, _) => outcome,
        };
        if let Err(err) = sink.close().await {
            tracing::warn!(run = run_id, error = %err, "writing the rest of the log failed");
        }
        if !self.config.keep_workspaces
            && let Err(err) = tokio::fs::remove_dir_all(&workspace).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(run = run_id, error = %err, "removing the workspace failed");
        }
        if let Ok(mut active) = self.active.lock() {
            active.remove(&workspace);
        }
        let masked = |o: Outcome| match o {
            Outcome::Failed(r) => Outcome::Failed(sink.masker().mask(&r)),
            Outcome::Cancelled(r) => Outcome::Cancelled(sink.masker().mask(&r)),
            Outcome::Unstable(r) => Outcome::Unstable(sink.masker().mask(&r)),
            Outcome::Succeeded => Outcome::Succeeded,
        };
        match outcome {
            Some(outcome) => {
                self.end(&claimed, &run, &org_slug, Some(&project), masked(outcome))
                    .await
            }
            None if shutdown.is_cancelled() => self.hand_back(&claimed, run_id, attempt).await,
            None => {
                tracing::info!(run = run_id, "this worker no longer holds the run");
                self.ack(&claimed).await;
            }
        }
        running.dec();
        self.metrics.workers_busy.dec();
        sluice_core::dispatch::wake();
    }

    /// Heart-beats until this attempt loses the run (then returns) or is dropped.
    async fn heartbeat(
        &self,
        claimed: &Claimed,
        run_id: i64,
        attempt: i32,
        cancel: CancellationToken,
    ) {
        let every = self.config.lease / 4;
        loop {
            tokio::time::sleep(every).await;
            if let Err(err) = self.queue.heartbeat(claimed).await {
                tracing::warn!(run = run_id, error = %err, "queue heartbeat failed");
            }
            match execution::heartbeat(&self.db, run_id, attempt).await {
                Ok(true) => {}
                Ok(false) => {
                    cancel.cancel();
                    return;
                }
                Err(err) => tracing::warn!(run = run_id, error = %err, "run heartbeat failed"),
            }
        }
    }

    /// Polls for a cancel request: cancels the run (noting who asked) and keeps going, so the
    /// executor can run `post { aborted }`; returns only when the attempt lost the run.
    async fn watch(
        &self,
        run_id: i64,
        attempt: i32,
        cancel: CancellationToken,
        cancelled_by: Arc<Mutex<Option<String>>>,
    ) {
        loop {
            tokio::time::sleep(POLL).await;
            match gates::requests(&self.db, run_id, attempt).await {
                Ok(r) if !r.held => return,
                Ok(r) if r.cancel && !cancel.is_cancelled() => {
                    let reason = run_entity::Entity::find_by_id(run_id)
                        .one(&self.db)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|r| r.reason)
                        .unwrap_or_else(|| "cancelled".to_owned());
                    if let Ok(mut by) = cancelled_by.lock() {
                        *by = Some(reason);
                    }
                    tracing::info!(run = run_id, "cancel requested: stopping the run");
                    cancel.cancel();
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(run = run_id, error = %err, "polling for requests failed")
                }
            }
        }
    }

    async fn end(
        &self,
        claimed: &Claimed,
        run: &run_entity::Model,
        org: &str,
        project: Option<&project::Model>,
        outcome: Outcome,
    ) {
        let (status, reason) = match outcome {
            Outcome::Succeeded => (RunStatus::Succeeded, None),
            Outcome::Unstable(reason) => (RunStatus::Unstable, Some(reason)),
            Outcome::Failed(reason) => (RunStatus::Failed, Some(reason)),
            Outcome::Cancelled(reason) => (RunStatus::Cancelled, Some(reason)),
        };
        match execution::finish(&self.db, run.id, run.attempt, status, reason).await {
            Ok(true) => {
                tracing::info!(run = run.id, status = status.as_str(), "run ended");
                // Locks a step failed to give back (they would pass on anyway: the run ended).
                if let Err(err) = sluice_core::store::locks::release_all(&self.db, run.id).await {
                    tracing::warn!(run = run.id, error = %err, "releasing the run's locks failed");
                }
                self.metrics
                    .runs_total
                    .with_label_values(&[org, status.as_str()])
                    .inc();
                if let Some(started) = run.started_at {
                    let took = (Utc::now() - started).num_milliseconds().max(0);
                    self.metrics.run_duration.observe(took as f64 / 1000.0);
                }
            }
            Ok(false) => tracing::info!(run = run.id, "run ended elsewhere; outcome dropped"),
            Err(err) => {
                // Not acknowledged: the job is delivered again and the run taken over.
                tracing::error!(run = run.id, error = %err, "recording the outcome failed");
                return;
            }
        }
        self.ack(claimed).await;
        // Retention (`buildDiscarder`, else the org's default): the project's older runs lose
        // their logs and artifacts.
        let Some(project) = project else {
            return;
        };
        let org_row = sluice_core::entities::org::Entity::find_by_id(run.org_id)
            .one(&self.db)
            .await
            .ok()
            .flatten();
        let policy = retention::policy_for(project, org_row.as_ref());
        if !policy.is_empty() {
            match retention::apply(&self.db, &self.objects, run.project_id, &policy).await {
                Ok((0, 0)) => {}
                Ok((runs, artifacts_only)) => tracing::info!(
                    project = run.project_id,
                    runs,
                    artifacts_only,
                    "discarded old runs' logs and artifacts"
                ),
                Err(err) => {
                    tracing::warn!(project = run.project_id, error = %err, "discarding old runs failed")
                }
            }
        }
    }

    async fn hand_back(&self, claimed: &Claimed, run_id: i64, attempt: i32) {
        match execution::hand_back(&self.db, run_id, attempt).await {
            Ok(_) => {
                if let Err(err) = self.queue.release(claimed).await {
                    tracing::warn!(run = run_id, error = %err, "releasing the job failed; its lease will run out");
                } else {
                    tracing::info!(run = run_id, "run handed back to the queue");
                }
            }
            Err(err) => tracing::error!(run = run_id, error = %err, "handing the run back failed"),
        }
    }

    async fn ack(&self, claimed: &Claimed) {
        if let Err(err) = self.queue.ack(claimed).await {
            tracing::warn!(run = claimed.job.run_id, error = %err, "acknowledging a job failed");
        }
    }
}

/// The status of the project's last ended run before this one.
async fn previous_status(db: &DatabaseConnection, run: &run_entity::Model) -> Option<String> {
    run_entity::Entity::find()
        .select_only()
        .column(run_entity::Column::Status)
        .filter(run_entity::Column::ProjectId.eq(run.project_id))
        .filter(run_entity::Column::Number.lt(run.number))
        .filter(run_entity::Column::FinishedAt.is_not_null())
        .order_by_desc(run_entity::Column::Number)
        .into_tuple::<String>()
        .one(db)
        .await
        .ok()
        .flatten()
}
