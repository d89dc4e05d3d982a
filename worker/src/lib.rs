//! Sluice's worker: claims jobs from the queue and runs them through an executor.
//!
//! Each of `concurrency` slots claims a job, takes the run with a compare-and-set (a queued
//! run, or a running one whose worker stopped heart-beating), heart-beats both the queue and
//! the run while the executor works, records the outcome, then acknowledges the job. On
//! SIGTERM a worker claims nothing more and gives its runs the shutdown grace to finish; runs
//! still going then are stopped and handed back, queued, for another worker.
#![forbid(unsafe_code)]

pub mod checkout;
pub mod executor;
pub mod host_env;
pub mod minimal;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{DatabaseConnection, EntityTrait};
use sluice_core::entities::{org, project};
use sluice_core::metrics::Metrics;
use sluice_core::queue::{Claimed, Queue};
use sluice_core::store::execution::{self, Declared, Start};
use sluice_core::store::runs::RunStatus;
use tokio_util::sync::CancellationToken;

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
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        queue: Arc<dyn Queue>,
        metrics: Metrics,
        config: WorkerConfig,
        executor: Arc<dyn Executor>,
    ) -> Worker {
        Worker {
            db,
            queue,
            metrics,
            config,
            executor,
        }
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
        for slot in 0..this.config.concurrency.max(1) {
            slots.spawn(this.clone().slot(slot, shutdown.clone()));
        }
        while slots.join_next().await.is_some() {}
        tracing::info!(worker = %this.config.name, "worker stopped");
    }

    async fn slot(self: Arc<Self>, slot: usize, shutdown: CancellationToken) {
        let consumer = format!("{}-{slot}", self.config.name);
        loop {
            let claimed = tokio::select! {
                _ = shutdown.cancelled() => return,
                claimed = self.queue.claim(&consumer, Duration::from_secs(1)) => claimed,
            };
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
                self.end(&claimed, run.id, run.attempt, Outcome::Failed(reason))
                    .await;
                return;
            }
        };
        let running = self.metrics.runs_running.with_label_values(&[&org_slug]);
        running.inc();
        self.metrics.workers_busy.inc();

        let attempt = run.attempt;
        let workspace = self
            .config
            .workspace_root
            .join(format!("run-{}-{}", run.id, attempt));
        let ctx = RunContext {
            run,
            project,
            workspace: workspace.clone(),
            allow_local_repos: self.config.allow_local_repos,
        };
        let events = DbEvents {
            db: self.db.clone(),
            run_id,
            project_id: ctx.project.id,
            next_seq: AtomicI32::new(0),
        };
        let cancel = CancellationToken::new();
        let beating = self.heartbeat(&claimed, run_id, attempt, cancel.clone());
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
                // Lost the run (cancelled elsewhere or taken over), or out of grace: stop it.
                cancel.cancel();
                let _ = execute.await;
                None
            }
        };
        if let Err(err) = tokio::fs::remove_dir_all(&workspace).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(run = run_id, error = %err, "removing the workspace failed");
        }
        match outcome {
            Some(outcome) => self.end(&claimed, run_id, attempt, outcome).await,
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

    async fn end(&self, claimed: &Claimed, run_id: i64, attempt: i32, outcome: Outcome) {
        let (status, reason) = match outcome {
            Outcome::Succeeded => (RunStatus::Succeeded, None),
            Outcome::Failed(reason) => (RunStatus::Failed, Some(reason)),
            Outcome::Cancelled(reason) => (RunStatus::Cancelled, Some(reason)),
        };
        match execution::finish(&self.db, run_id, attempt, status, reason).await {
            Ok(true) => tracing::info!(run = run_id, status = status.as_str(), "run ended"),
            Ok(false) => tracing::info!(run = run_id, "run ended elsewhere; outcome dropped"),
            Err(err) => {
                // Not acknowledged: the job is delivered again and the run taken over.
                tracing::error!(run = run_id, error = %err, "recording the outcome failed");
                return;
            }
        }
        self.ack(claimed).await;
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

/// Records an executor's progress in the database.
struct DbEvents {
    db: DatabaseConnection,
    run_id: i64,
    project_id: i64,
    next_seq: AtomicI32,
}

#[async_trait::async_trait]
impl RunEvents for DbEvents {
    async fn declared(&self, declared: Declared) {
        if let Err(err) = execution::remember_declared(&self.db, self.project_id, declared).await {
            tracing::warn!(run = self.run_id, error = %err, "recording the pipeline's declarations failed");
        }
    }

    async fn params(&self, params: &BTreeMap<String, String>) {
        if let Err(err) = execution::set_params(&self.db, self.run_id, params).await {
            tracing::warn!(run = self.run_id, error = %err, "recording parameters failed");
        }
    }

    async fn stage_started(&self, name: &str) -> i32 {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        if let Err(err) = execution::stage_started(&self.db, self.run_id, seq, name).await {
            tracing::warn!(run = self.run_id, error = %err, "recording a stage failed");
        }
        seq
    }

    async fn stage_finished(&self, seq: i32, status: &str) {
        if let Err(err) = execution::stage_finished(&self.db, self.run_id, seq, status).await {
            tracing::warn!(run = self.run_id, error = %err, "recording a stage failed");
        }
    }

    async fn log(&self, line: &str) {
        tracing::debug!(run = self.run_id, "{line}");
    }
}
