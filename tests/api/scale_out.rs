//! The scale-out path as real processes: `sluice migrate`, then `sluice api` ×2 and
//! `sluice worker` ×2 on one PostgreSQL database, one Redis (queue and bus) and one object
//! store. A write on replica A is seen on replica B; runs queued on A are run by both workers
//! at once; a follower on B gets every line a worker writes, and B counts the workers' flush
//! announcements (so the follower was woken by them, not only by its one-second fallback).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::binary::{signal_pid, sluice};
use crate::fleet::git_repo;
use crate::helpers::{Auth, TestDb, redis_url, session_from, wait_until};

/// The PostgreSQL server the test databases are made on.
fn postgres_server() -> String {
    match std::env::var("SLUICE_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => url,
        _ => std::env::var("SLUICE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    }
}

/// What every process of the deployment shares.
struct Deployment {
    db: TestDb,
    prefix: String,
    dir: tempfile::TempDir,
}

impl Deployment {
    fn env(&self, data_dir: &Path) -> Vec<(String, String)> {
        let objects = format!("file://{}", self.dir.path().join("objects").display());
        [
            ("SLUICE_DATABASE_URL", self.db.url.clone()),
            (
                "SLUICE_SECRET_KEY",
                "test-secret-key-0123456789abcdef0123456789".into(),
            ),
            ("SLUICE_REDIS_URL", redis_url()),
            ("SLUICE_QUEUE_PREFIX", self.prefix.clone()),
            ("SLUICE_OBJECT_STORE_URL", objects),
            ("SLUICE_DATA_DIR", data_dir.display().to_string()),
            ("SLUICE_BIND", "127.0.0.1:0".into()),
            ("SLUICE_ALLOW_LOCAL_REPOS", "true".into()),
            ("SLUICE_WORKER_CONCURRENCY", "1".into()),
            ("SLUICE_SHUTDOWN_TIMEOUT_SECS", "2".into()),
            ("SLUICE_DB_MAX_CONNECTIONS", "5".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn command(&self, role: &str) -> Command {
        let data_dir = self
            .dir
            .path()
            .join(format!("{role}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let env = self.env(&data_dir);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut cmd = Command::from(sluice(&data_dir, &[role], &env));
        cmd.kill_on_drop(true);
        cmd
    }

    /// A `sluice api` replica and its URL (from its banner).
    async fn api(&self) -> (Child, String) {
        let mut child = self.command("api").spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let line = lines.next_line().await.unwrap().expect("no banner");
                if let Some(url) = line.strip_prefix("Sluice is listening on ") {
                    return url.to_owned();
                }
            }
        })
        .await
        .expect("the replica never said where it listens");
        // Keep reading, so a full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, url)
    }

    fn worker(&self) -> Child {
        let mut cmd = self.command("worker");
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().unwrap()
    }
}

/// The owner, signed up on replica `base`.
async fn signup(base: &str) -> Auth {
    let res = reqwest::Client::new()
        .post(format!("{base}/auth/signup"))
        .json(&json!({"email": "owner@example.com", "password": "correct horse battery", "name": "Owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    session_from(res).await
}

/// Sends JSON as `auth`: (status, JSON body or Null).
async fn send(auth: &Auth, method: reqwest::Method, url: String, body: Value) -> (u16, Value) {
    let res = auth
        .apply(reqwest::Client::new().request(method, url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get_with(token: &str, url: String) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Reads a run's live log as server-sent events until `end`: the lines' texts and the end
/// event's data.
async fn follow(url: String, token: &str) -> (Vec<String>, Value) {
    let mut res = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut buf = String::new();
    let mut texts = Vec::new();
    loop {
        let chunk = res.chunk().await.unwrap().expect("no end event");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(at) = buf.find("\n\n") {
            let block: String = buf.drain(..at + 2).collect();
            let is_end = block.lines().any(|l| l == "event: end");
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if data.is_empty() {
                continue;
            }
            let data: Value = serde_json::from_str(&data).unwrap();
            if is_end {
                return (texts, data);
            }
            texts.push(data["text"].as_str().unwrap_or_default().to_owned());
        }
    }
}

/// A metric's value in a Prometheus text page (0 when absent).
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn stop(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            signal_pid(pid, "TERM");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_api_replicas_and_two_workers_as_processes_on_postgresql_and_redis() {
    let deployment = Deployment {
        db: TestDb::postgres(&postgres_server()).await,
        prefix: format!("scale-{}", uuid::Uuid::new_v4().simple()),
        dir: tempfile::tempdir().unwrap(),
    };
    let migrate = deployment.command("migrate").output().await.unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let (api_a, a) = deployment.api().await;
    let (api_b, b) = deployment.api().await;
    let mut children = vec![api_a, api_b, deployment.worker(), deployment.worker()];

    // Writes on A, reads with a token on B (which caches them).
    let owner = signup(&a).await;
    let (status, _) = send(
        &owner,
        reqwest::Method::POST,
        format!("{a}/api/v1/orgs"),
        json!({"slug": "acme", "name": "Acme"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(
        &owner,
        reqwest::Method::POST,
        format!("{a}/api/v1/orgs/acme/tokens"),
        json!({"name": "reader", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let token_id = body["id"].as_i64().unwrap();
    let projects_on_b = format!("{b}/api/v1/orgs/acme/projects");
    for _ in 0..3 {
        let (status, list) = get_with(&token, projects_on_b.clone()).await;
        assert_eq!(
            (status, list["items"].as_array().map(Vec::len)),
            (200, Some(0))
        );
    }
    let go = deployment.dir.path().join("go");
    let jenkinsfile = format!(
        "pipeline {{ agent any\n stages {{ stage('Count') {{ steps {{\n sh 'for i in $(seq 1 30); do echo \"tick $i\"; sleep 0.02; done'\n sh 'while [ ! -e {go} ]; do sleep 0.05; done; echo released'\n }} }} }} }}\n",
        go = go.display()
    );
    let repo = git_repo(&jenkinsfile);
    let (status, body) = send(
        &owner,
        reqwest::Method::POST,
        format!("{a}/api/v1/orgs/acme/projects"),
        json!({"slug": "web", "name": "Web", "repo_url": repo.url}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    wait_until(Duration::from_secs(10), || async {
        let (_, list) = get_with(&token, projects_on_b.clone()).await;
        list["items"][0]["slug"] == "web"
    })
    .await;

    // Two runs queued on A: the two workers take one each and hold them until `go` exists.
    for _ in 0..2 {
        let (status, body) = send(
            &owner,
            reqwest::Method::POST,
            format!("{a}/api/v1/orgs/acme/projects/web/runs"),
            json!({}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let followers = (1..=2).map(|n| {
        follow(
            format!("{b}/api/v1/orgs/acme/projects/web/runs/{n}/log"),
            &token,
        )
    });
    let followers = futures_util::future::join_all(followers);
    tokio::pin!(followers);
    let db = sea_orm::Database::connect(&deployment.db.url)
        .await
        .unwrap();
    let workers_busy = || async {
        use sea_orm::{ConnectionTrait, Statement};
        let row = db
            .query_one_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT COUNT(DISTINCT worker) FROM runs WHERE status = 'running' AND log_lines >= 30",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    tokio::select! {
        _ = wait_until(Duration::from_secs(60), || async { workers_busy().await == 2 }) => {}
        _ = &mut followers => panic!("a follower ended before its run was released"),
    }
    std::fs::write(&go, "").unwrap();
    let results = tokio::time::timeout(Duration::from_secs(60), followers)
        .await
        .expect("the followers never saw their runs end");
    for (texts, end) in results {
        assert_eq!(end["status"], "succeeded", "{texts:?}");
        let ticks: Vec<&String> = texts.iter().filter(|t| t.starts_with("tick ")).collect();
        let expected: Vec<String> = (1..=30).map(|i| format!("tick {i}")).collect();
        assert_eq!(
            ticks,
            expected.iter().collect::<Vec<_>>(),
            "every line once, in order"
        );
        assert!(texts.iter().any(|t| t == "released"), "{texts:?}");
    }

    // B heard the workers' flushes and A's writes over the bus.
    let page = reqwest::get(format!("{b}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(
            &page,
            "sluice_bus_messages_received_total{kind=\"log_flushed\"}"
        ) >= 2.0,
        "{page}"
    );
    assert!(
        metric(
            &page,
            "sluice_bus_messages_received_total{kind=\"written\"}"
        ) >= 4.0,
        "{page}"
    );

    // A token revoked on A is refused on B.
    let (status, _) = send(
        &owner,
        reqwest::Method::DELETE,
        format!("{a}/api/v1/orgs/acme/tokens/{token_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    wait_until(Duration::from_secs(10), || async {
        get_with(&token, projects_on_b.clone()).await.0 == 401
    })
    .await;

    stop(&mut children);
    for child in &mut children {
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("a process did not stop on SIGTERM")
            .unwrap();
        assert_eq!(status.code(), Some(0));
    }
}
