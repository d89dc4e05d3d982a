//! How a worker records what an executor reports: stages and parameters in the database,
//! log lines through the run's [`LogSink`], artifacts in object storage, gates by parking the
//! run and polling for the answer, step metrics in the registry.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use object_store::{ObjectStore, WriteMultipart};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use sluice_core::logs::{LogSink, Origin};
use sluice_core::metrics::Metrics;
use sluice_core::objects::Objects;
use sluice_core::store::artifacts::{self, TestSummary};
use sluice_core::store::execution::{self, Declared};
use sluice_core::store::gates::{self, WaitingFor};
use sluice_core::store::releases::{self, NewRelease, Started};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::agent::ByteStream;
use crate::executor::{Archived, GateAnswer, RunEvents};
use sluice_core::entities::release;

/// How often a worker looks for a cancel request or a gate's answer.
pub const POLL: Duration = Duration::from_millis(250);

pub(crate) struct DbEvents {
    pub db: DatabaseConnection,
    pub objects: Objects,
    pub metrics: Metrics,
    pub sink: LogSink,
    pub run_id: i64,
    pub attempt: i32,
    pub project_id: i64,
    pub org_id: i64,
    pub next_seq: AtomicI32,
}

impl DbEvents {
    /// Every string a build produces goes through the log's masker before it is stored: the
    /// run's JSON, its pages, the Jenkins API and the audit log show what is stored.
    fn mask(&self, text: &str) -> String {
        self.sink.masker().mask(text)
    }
}

#[async_trait::async_trait]
impl RunEvents for DbEvents {
    async fn declared(&self, declared: Declared) {
        if let Err(err) = execution::remember_declared(&self.db, self.project_id, declared).await {
            tracing::warn!(run = self.run_id, error = %err, "recording the pipeline's declarations failed");
        }
    }

    async fn pin_host_keys(&self, known_hosts: &str) {
        use sea_orm::EntityTrait;
        let project = sluice_core::entities::project::Entity::find_by_id(self.project_id)
            .one(&self.db)
            .await;
        let pinned = match project {
            Ok(Some(project)) => {
                sluice_core::store::repo_credentials::pin_host_keys(&self.db, &project, known_hosts)
                    .await
            }
            Ok(None) => Ok(()),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = pinned {
            tracing::warn!(run = self.run_id, error = %err, "pinning the repository's SSH host keys failed");
        }
    }

    async fn params(&self, params: &BTreeMap<String, String>) {
        if let Err(err) = execution::set_params(&self.db, self.run_id, params).await {
            tracing::warn!(run = self.run_id, error = %err, "recording parameters failed");
        }
    }

    async fn commit(
        &self,
        commit: &sluice_core::git::CommitInfo,
        ref_type: sluice_core::store::changes::RefType,
    ) {
        if let Err(err) = execution::set_commit(&self.db, self.run_id, commit, ref_type).await {
            tracing::warn!(run = self.run_id, error = %err, "recording the commit failed");
        }
    }

    async fn lock(
        &self,
        resource: &str,
    ) -> Result<Result<(), Option<sluice_core::store::locks::Holder>>, String> {
        sluice_core::store::locks::try_acquire(&self.db, self.org_id, resource, self.run_id)
            .await
            .map_err(|e| e.to_string())
    }

    async fn shown(&self, display_name: Option<&str>, description: Option<&str>) {
        let name = display_name.map(|n| self.mask(n));
        let text = description.map(|d| self.mask(d));
        if let Err(err) =
            execution::set_shown(&self.db, self.run_id, name.as_deref(), text.as_deref()).await
        {
            tracing::warn!(run = self.run_id, error = %err, "recording the display name failed");
        }
    }

    fn also_mask(&self, values: Vec<String>) {
        self.sink.also_mask(values);
    }

    async fn unlock(&self, resource: &str) {
        if let Err(err) =
            sluice_core::store::locks::release(&self.db, self.org_id, resource, self.run_id).await
        {
            tracing::warn!(run = self.run_id, error = %err, "releasing a lock failed");
        }
    }

    async fn stage_started(&self, name: &str, parent: Option<i32>) -> i32 {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let name = self.mask(name);
        if let Err(err) = execution::stage_started(&self.db, self.run_id, seq, parent, &name).await
        {
            tracing::warn!(run = self.run_id, error = %err, "recording a stage failed");
        }
        seq
    }

    async fn stage_finished(&self, seq: i32, status: &str) {
        if let Err(err) = execution::stage_finished(&self.db, self.run_id, seq, status).await {
            tracing::warn!(run = self.run_id, error = %err, "recording a stage failed");
        }
    }

    fn log(&self, origin: &Origin, line: &str) {
        self.sink.line(origin, line);
    }

    fn log_error(&self, origin: &Origin, line: &str) {
        self.sink.error_line(origin, line);
    }

    fn step_finished(&self, step: &str, ok: bool, took: Duration) {
        let result = if ok { "success" } else { "failure" };
        self.metrics
            .steps_total
            .with_label_values(&[step, result])
            .inc();
        self.metrics
            .step_duration
            .with_label_values(&[step])
            .observe(took.as_secs_f64());
    }

    async fn archive(&self, path: &str, mut reader: ByteStream) -> Result<Archived, String> {
        artifacts::check_path(path).map_err(|e| e.to_string())?;
        let key = artifacts::object_path(self.run_id, path);
        let upload = self
            .objects
            .put_multipart_opts(&key, Default::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut writer = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut block = vec![0u8; 1024 * 1024];
        loop {
            let n = match reader.read(&mut block).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) => {
                    let _ = writer.abort().await;
                    return Err(err.to_string());
                }
            };
            hasher.update(&block[..n]);
            size += n as u64;
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| e.to_string())?;
            writer.write(&block[..n]);
        }
        writer.finish().await.map_err(|e| e.to_string())?;
        let sha256 = sluice_core::crypto::hex(&hasher.finalize());
        artifacts::record(&self.db, self.run_id, path, size, &sha256)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Archived { size, sha256 })
    }

    async fn tests(&self, summary: &TestSummary) {
        let mut summary = summary.clone();
        for failure in &mut summary.failures {
            failure.suite = self.mask(&failure.suite);
            failure.name = self.mask(&failure.name);
            failure.message = self.mask(&failure.message);
        }
        if let Err(err) = artifacts::set_tests(&self.db, self.run_id, &summary).await {
            tracing::warn!(run = self.run_id, error = %err, "recording test results failed");
        }
    }

    async fn gate(&self, mut gate: WaitingFor, cancel: &CancellationToken) -> GateAnswer {
        let id = gate.id.clone();
        // Who may answer is matched against accounts, so it is kept as written.
        gate.message = self.mask(&gate.message);
        gate.ok = self.mask(&gate.ok);
        gate.stage = gate.stage.map(|s| self.mask(&s));
        for param in &mut gate.parameters {
            param.default = self.mask(&param.default);
            for choice in &mut param.choices {
                *choice = self.mask(choice);
            }
        }
        match gates::park(&self.db, self.run_id, self.attempt, &gate).await {
            Ok(true) => {}
            Ok(false) => return GateAnswer::Stopped,
            Err(err) => {
                tracing::warn!(run = self.run_id, error = %err, "parking the run failed");
                return GateAnswer::Stopped;
            }
        }
        sluice_core::dispatch::wake();
        let answer = loop {
            tokio::select! {
                _ = cancel.cancelled() => break GateAnswer::Stopped,
                _ = tokio::time::sleep(POLL) => {}
            }
            match gates::requests(&self.db, self.run_id, self.attempt).await {
                Ok(r) if !r.held => break GateAnswer::Stopped,
                Ok(r) => match r.answer {
                    Some(a) if a.id == id && a.approve => {
                        break GateAnswer::Approved {
                            by: a.by,
                            params: a.params,
                        };
                    }
                    Some(a) if a.id == id => break GateAnswer::Rejected { by: a.by },
                    _ => {}
                },
                Err(err) => {
                    tracing::warn!(run = self.run_id, error = %err, "reading the gate failed")
                }
            }
        };
        if let Err(err) = gates::resume(&self.db, self.run_id, self.attempt).await {
            tracing::warn!(run = self.run_id, error = %err, "leaving the gate failed");
        }
        answer
    }

    async fn release_start(&self, mut new: NewRelease) -> Result<Started, String> {
        if let Some(user) = new.run.created_by {
            match sluice_core::store::users::get(&self.db, user).await {
                Ok(user) => new.people.insert(0, user.email),
                Err(err) => {
                    tracing::warn!(run = self.run_id, error = %err, "reading the run's starter failed")
                }
            }
        }
        releases::start(&self.db, &new)
            .await
            .map_err(|e| self.mask(&e.to_string()))
    }

    async fn release(&self, id: i64) -> Result<(release::Model, Option<String>), String> {
        let model = releases::get_by_id(&self.db, id)
            .await
            .map_err(|e| e.to_string())?;
        let url = sluice_core::store::environments::slot(&self.db, model.slot_id)
            .await
            .ok()
            .and_then(|s| s.url);
        Ok((model, url))
    }

    async fn smoke_answered(&self, id: i64, passed: bool, detail: &str) {
        if let Err(err) = releases::answer_smoke(&self.db, id, passed, &self.mask(detail)).await {
            tracing::warn!(run = self.run_id, error = %err, "recording the smoke test failed");
        }
    }

    async fn release_abort(&self, id: i64) {
        let project = self.project_id;
        if let Err(err) = releases::request(&self.db, project, id, releases::Request::Abort).await {
            tracing::debug!(run = self.run_id, error = %err, "aborting the release");
        }
    }
}
