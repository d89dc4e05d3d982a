//! Workers for tests: real git repositories with a Jenkinsfile, and a dispatcher plus worker
//! slots running in the test process against the app's database and a real queue.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::dispatch::DispatchSettings;
use sluice_core::queue::embedded::EmbeddedQueue;
use sluice_core::queue::redis::RedisQueue;
use sluice_core::queue::{Queue, QueueSettings};
use sluice_worker::agent::Agents;
use sluice_worker::agent::local::LocalAgents;
use sluice_worker::interpreter::JenkinsExecutor;
use sluice_worker::{Worker, WorkerConfig, WorkerParts};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Auth, TestApp, redis_url};

/// A git repository on disk whose `main` holds `Jenkinsfile`.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub url: String,
}

pub fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

pub fn git_repo(jenkinsfile: &str) -> Repo {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(dir.path().join("Jenkinsfile"), jenkinsfile).unwrap();
    git(dir.path(), &["add", "Jenkinsfile"]);
    git(dir.path(), &["commit", "--quiet", "-m", "pipeline"]);
    let url = format!("file://{}", dir.path().display());
    Repo { dir, url }
}

/// Creates `org/slug` building `repo`; returns the project as created (with its webhook).
pub async fn project_for(
    app: &TestApp,
    auth: &Auth,
    org: &str,
    slug: &str,
    repo: &Repo,
) -> serde_json::Value {
    let (status, body) = app
        .post_as(
            &format!("/api/v1/orgs/{org}/projects"),
            auth,
            serde_json::json!({"slug": slug, "name": slug, "repo_url": repo.url}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Embedded,
    Redis,
}

/// A queue of `backend` for the app, with its own Redis keys.
pub async fn queue(app: &TestApp, backend: Backend, lease: Duration) -> Arc<dyn Queue> {
    let settings = QueueSettings {
        lease,
        max_deliveries: 5,
    };
    match backend {
        Backend::Embedded => Arc::new(EmbeddedQueue::new(app.db.clone(), settings)),
        Backend::Redis => {
            let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4().simple());
            Arc::new(
                RedisQueue::connect(&redis_url(), &prefix, settings)
                    .await
                    .unwrap(),
            )
        }
    }
}

/// A dispatcher and `workers` workers of `slots` slots each; stopped when dropped.
pub struct Fleet {
    shutdown: CancellationToken,
    _workspaces: tempfile::TempDir,
}

impl Fleet {
    /// Where the fleet's workers put workspaces.
    pub fn workspaces(&self) -> &std::path::Path {
        self._workspaces.path()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn start_fleet(app: &TestApp, queue: Arc<dyn Queue>, workers: usize, slots: usize) -> Fleet {
    start_fleet_with(app, queue, workers, slots, |_| {})
}

/// The local agents, each script under this build's `sluice` binary as supervisor.
pub fn local_agents() -> Arc<dyn Agents> {
    Arc::new(LocalAgents::new(env!("CARGO_BIN_EXE_sluice")))
}

/// A fleet whose workers' settings `customise` changes.
pub fn start_fleet_with(
    app: &TestApp,
    queue: Arc<dyn Queue>,
    workers: usize,
    slots: usize,
    customise: impl Fn(&mut WorkerConfig),
) -> Fleet {
    start_fleet_on(app, queue, workers, slots, customise, local_agents())
}

/// A fleet whose steps run on `agents`.
pub fn start_fleet_on(
    app: &TestApp,
    queue: Arc<dyn Queue>,
    workers: usize,
    slots: usize,
    customise: impl Fn(&mut WorkerConfig),
    agents: Arc<dyn Agents>,
) -> Fleet {
    let shutdown = CancellationToken::new();
    let workspaces = tempfile::tempdir().unwrap();
    let lease = Duration::from_secs(30);
    tokio::spawn(sluice_core::dispatch::run(
        app.db.clone(),
        queue.clone(),
        app.state.metrics.clone(),
        DispatchSettings {
            every: Duration::from_millis(50),
            backlog: 8,
            lease,
            repo_access: Some(app.state.repo_access.clone()),
        },
        shutdown.clone(),
    ));
    for n in 0..workers {
        let mut config = WorkerConfig {
            name: format!("test-worker-{n}"),
            concurrency: slots,
            lease,
            grace: Duration::from_secs(5),
            workspace_root: workspaces.path().to_path_buf(),
            allow_local_repos: true,
            repo_deny: Default::default(),
            keep_workspaces: false,
            git_mirrors: true,
            log_max_bytes: 64 * 1024 * 1024,
        };
        customise(&mut config);
        let parts = WorkerParts {
            db: app.db.clone(),
            queue: queue.clone(),
            metrics: app.state.metrics.clone(),
            objects: app.state.objects.clone(),
            keys: app.state.keys.clone(),
        };
        let worker = Worker::new(
            parts,
            config,
            Arc::new(JenkinsExecutor::new(agents.clone())),
        );
        tokio::spawn(worker.run(shutdown.clone()));
    }
    Fleet {
        shutdown,
        _workspaces: workspaces,
    }
}

/// Polls `GET path` until the run's status is one of `statuses`; returns the run.
pub async fn wait_for_run(
    app: &TestApp,
    auth: &Auth,
    path: &str,
    statuses: &[&str],
) -> serde_json::Value {
    // Polls with a deadline; on timeout the panic shows the run as last seen (its status,
    // attempt, worker and stages say where it got stuck).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, run) = app.get_as(path, auth).await;
        if statuses.iter().any(|s| run["status"] == *s) {
            return run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} not {statuses:?} within 60 s; last seen: {run}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
