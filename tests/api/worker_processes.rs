//! `sluice worker` processes on a shared database and queue: a worker killed with SIGKILL
//! mid-run loses the run to another worker, which finishes it once; a worker stopped with
//! SIGTERM hands its run back and exits 0. Both queue backends, both databases.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

use crate::binary::{signal_pid, sluice};
use crate::fleet::{Backend, git_repo, project_for};
use crate::helpers::{TestApp, redis_url, spawn_app, wait_until};

/// A `sluice worker` on the app's database with a one-second lease.
pub(crate) fn worker(app: &TestApp, backend: Backend, prefix: &str, data_dir: &Path) -> Child {
    worker_with(app, backend, prefix, data_dir, &[])
}

/// [`worker`] with more settings.
pub(crate) fn worker_with(
    app: &TestApp,
    backend: Backend,
    prefix: &str,
    data_dir: &Path,
    extra: &[(&str, &str)],
) -> Child {
    let redis = redis_url();
    let data = data_dir.display().to_string();
    // Logs and artifacts go where the API reads them.
    let objects = format!("file://{}", app.data_dir().join("objects").display());
    let mut env = vec![
        ("SLUICE_DATABASE_URL", app.test_db.url.as_str()),
        (
            "SLUICE_SECRET_KEY",
            "test-secret-key-0123456789abcdef0123456789",
        ),
        ("SLUICE_DATA_DIR", data.as_str()),
        ("SLUICE_BIND", "127.0.0.1:0"),
        ("SLUICE_QUEUE_LEASE_SECS", "1"),
        ("SLUICE_WORKER_CONCURRENCY", "1"),
        ("SLUICE_SHUTDOWN_TIMEOUT_SECS", "1"),
        ("SLUICE_ALLOW_LOCAL_REPOS", "true"),
        ("SLUICE_OBJECT_STORE_URL", objects.as_str()),
    ];
    if let Backend::Redis = backend {
        env.extend([
            ("SLUICE_REDIS_URL", redis.as_str()),
            ("SLUICE_QUEUE_PREFIX", prefix),
        ]);
    }
    env.extend_from_slice(extra);
    let mut cmd = Command::from(sluice(data_dir, &["worker"], &env));
    cmd.stderr(Stdio::null()).kill_on_drop(true);
    cmd.spawn().unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Jobs left in the queue (acknowledged jobs leave it).
async fn queue_depth(app: &TestApp, backend: Backend, prefix: &str) -> i64 {
    match backend {
        Backend::Embedded => app
            .scalar("SELECT COUNT(*) FROM queue_jobs")
            .await
            .unwrap()
            .parse()
            .unwrap(),
        Backend::Redis => {
            let client = redis::Client::open(redis_url()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("XLEN")
                .arg(format!("{prefix}:jobs"))
                .query_async(&mut conn)
                .await
                .unwrap()
        }
    }
}

async fn run_status(app: &TestApp, auth: &crate::helpers::Auth) -> serde_json::Value {
    app.get_as("/api/v1/orgs/acme/projects/web/runs/1", auth)
        .await
        .1
}

async fn sigkill_mid_run(backend: Backend) {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("started");
    // The first attempt sleeps long: killing its worker orphans the sleep, which the second
    // worker must find and kill.
    let repo = git_repo(&format!(
        "pipeline {{ agent any\n stages {{ stage('Slow') {{ steps {{ sh 'echo started >> {0}; if [ $(wc -l < {0}) -eq 1 ]; then sleep 120; else sleep 1; fi' }} }} }} }}\n",
        marker.display()
    ));
    project_for(&app, &owner, "acme", "web", &repo).await;
    let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4().simple());
    let mut first = worker(&app, backend, &prefix, scratch.path());
    let (status, _) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201);
    wait_until(Duration::from_secs(30), || async { lines(&marker) == 1 }).await;

    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let mut second = worker(&app, backend, &prefix, scratch.path());
    wait_until(Duration::from_secs(60), || async {
        run_status(&app, &owner).await["status"] == "succeeded"
    })
    .await;
    let run = run_status(&app, &owner).await;
    assert_eq!(run["attempt"], 2, "taken over once: {run}");
    assert_eq!(lines(&marker), 2, "the step ran again on the second worker");
    assert_eq!(run["stages"].as_array().unwrap().len(), 1, "{run}");
    assert_eq!(run["stages"][0]["status"], "succeeded");
    wait_until(Duration::from_secs(30), || async {
        queue_depth(&app, backend, &prefix).await == 0
    })
    .await;
    // The dead attempt's processes were killed and its workspace removed.
    assert_eq!(
        crate::execution::processes_under(&scratch.path().join("workspaces")),
        Vec::<i32>::new(),
        "the first attempt's sleep was left running"
    );
    let left: Vec<_> = std::fs::read_dir(scratch.path().join("workspaces"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "workspaces left behind: {left:?}");
    // The log says what happened, and the second attempt's output follows the first's.
    let (_, log) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs/1/log", &owner)
        .await;
    let log = log.as_str().unwrap_or_default();
    assert!(
        log.contains("stopped heart-beating; attempt 2 starts over"),
        "{log}"
    );
    assert!(log.contains("Finished: SUCCESS"), "{log}");

    // The worker process exports its metrics.
    let url = metrics_url(&mut second).await;
    let metrics = reqwest::get(&url).await.unwrap().text().await.unwrap();
    for line in [
        "sluice_workers_busy 0",
        "sluice_runs_running{org=\"acme\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    assert!(metrics.contains("sluice_queue_depth"), "{metrics}");

    nix_term(&second);
    let status = tokio::time::timeout(Duration::from_secs(15), second.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        run_status(&app, &owner).await["status"],
        "succeeded",
        "finished once, not run again"
    );
}

/// The metrics URL a worker prints when it starts.
async fn metrics_url(child: &mut Child) -> String {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    line.split("metrics at ").nth(1).unwrap().to_owned()
}

fn nix_term(child: &Child) {
    signal_pid(child.id().unwrap(), "TERM");
}

#[tokio::test]
async fn a_worker_killed_mid_run_loses_it_to_another_that_finishes_it_once_embedded() {
    sigkill_mid_run(Backend::Embedded).await;
}

#[tokio::test]
async fn a_worker_killed_mid_run_loses_it_to_another_that_finishes_it_once_redis() {
    sigkill_mid_run(Backend::Redis).await;
}

async fn sigterm_hands_back(backend: Backend) {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let scratch = tempfile::tempdir().unwrap();
    let flag = scratch.path().join("first-attempt");
    let repo = git_repo(&format!(
        "pipeline {{ agent any\n stages {{ stage('Long') {{ steps {{ sh 'if [ -e {0} ]; then test -z \"$SLUICE_SECRET_KEY$SLUICE_DATABASE_URL\"; else touch {0}; sleep 60; fi' }} }} }} }}\n",
        flag.display()
    ));
    project_for(&app, &owner, "acme", "web", &repo).await;
    let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4().simple());
    let mut first = worker(&app, backend, &prefix, scratch.path());
    let (status, _) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201);
    wait_until(Duration::from_secs(30), || async { flag.exists() }).await;

    // Out of grace after a second: the run is stopped and handed back; the process exits 0.
    nix_term(&first);
    let status = tokio::time::timeout(Duration::from_secs(15), first.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let run = run_status(&app, &owner).await;
    assert_eq!(run["status"], "queued", "handed back: {run}");
    assert_eq!(run["stages"], json!([]));

    let _second = worker(&app, backend, &prefix, scratch.path());
    wait_until(Duration::from_secs(60), || async {
        run_status(&app, &owner).await["status"] == "succeeded"
    })
    .await;
    assert_eq!(run_status(&app, &owner).await["attempt"], 2);
}

#[tokio::test]
async fn a_stopping_worker_hands_its_run_back_embedded() {
    sigterm_hands_back(Backend::Embedded).await;
}

#[tokio::test]
async fn a_stopping_worker_hands_its_run_back_redis() {
    sigterm_hands_back(Backend::Redis).await;
}
