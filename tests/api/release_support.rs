//! What the release tests share: a repository whose Jenkinsfile builds a small HTTP app (it
//! names its version in `X-App-Version` and answers 500 on `/` once its "break" flag file
//! exists), a release runtime on the test's database, and a load generator.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fleet::{Repo, git, git_repo};
use crate::helpers::{Auth, TestApp};

/// The app: `/healthz` 200, `/` "hello from <version>" (500 when `<flags>/break-<version>`
/// exists), anything else 404; keep-alive HTTP/1.1.
pub const APP: &str = r#"import http.server, os, socketserver
VERSION = os.environ["SLUICE_VERSION"]
FLAGS = "@FLAGS@"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, b"ok")
        elif self.path == "/":
            if os.path.exists(os.path.join(FLAGS, "break-" + VERSION)):
                self.reply(500, b"broken")
            else:
                self.reply(200, ("hello from " + VERSION).encode())
        else:
            self.reply(404, b"not found")

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("X-App-Version", VERSION)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// A Jenkinsfile that builds the app and deploys it to production with `production` as the
/// deploy step's extra arguments.
pub fn pipeline(production: &str) -> String {
    format!(
        r#"pipeline {{
    agent any
    stages {{
        stage('Build') {{
            steps {{
                sh 'mkdir -p dist && cp app.py dist/app.py'
                archiveArtifacts artifacts: 'dist/**'
            }}
        }}
        stage('Production') {{
            steps {{
                deploy app: 'web', environment: 'production', artifact: 'dist/**', command: 'python3 dist/app.py', healthPath: '/healthz', {production}
                sh 'curl -fsS "$APP_URL/" > served.txt'
                archiveArtifacts artifacts: 'served.txt'
            }}
        }}
    }}
}}
"#
    )
}

/// A repository with `jenkinsfile` and the app, whose flag files live in `flags`.
pub fn app_repo(jenkinsfile: &str, flags: &Path) -> Repo {
    let repo = git_repo(jenkinsfile);
    let source = APP.replace("@FLAGS@", &flags.display().to_string());
    std::fs::write(repo.dir.path().join("app.py"), source).unwrap();
    git(repo.dir.path(), &["add", "app.py"]);
    git(repo.dir.path(), &["commit", "--quiet", "-m", "app"]);
    repo
}

/// Owner, org `acme` and project `web` building `jenkinsfile` with the app; returns the
/// owner, the repository and the webhook secret.
pub async fn release_project(
    app: &TestApp,
    jenkinsfile: &str,
    flags: &Path,
) -> (Auth, Repo, String) {
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = app_repo(jenkinsfile, flags);
    let project = crate::fleet::project_for(app, &owner, "acme", "web", &repo).await;
    let hook = project["webhook"]["secret"].as_str().unwrap().to_owned();
    (owner, repo, hook)
}

/// Commits a change so the next push builds a new version.
pub fn bump(repo: &Repo) {
    let marker = repo.dir.path().join("VERSION");
    let n = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    std::fs::write(&marker, format!("{}\n", n + 1)).unwrap();
    git(repo.dir.path(), &["add", "VERSION"]);
    git(repo.dir.path(), &["commit", "--quiet", "-m", "bump"]);
}

/// A release runtime named `holder` on the app's database.
pub struct Releases {
    pub handle: Option<sluice_release::Handle>,
    _dir: tempfile::TempDir,
}

impl Releases {
    pub fn start(app: &TestApp, holder: &str, lease: Duration) -> Releases {
        Releases::start_with(app, holder, lease, |_| {})
    }

    /// A runtime whose settings `customise` changes.
    pub fn start_with(
        app: &TestApp,
        holder: &str,
        lease: Duration,
        customise: impl FnOnce(&mut sluice_release::Config),
    ) -> Releases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = sluice_release::Config::new(
            holder.to_owned(),
            dir.path().to_path_buf(),
            PathBuf::from(env!("CARGO_BIN_EXE_sluice")),
        );
        config.lease = lease;
        config.ready_timeout = Duration::from_secs(30);
        config.smoke_timeout = Duration::from_secs(60);
        config.drain = Duration::from_secs(10);
        customise(&mut config);
        let handle = sluice_release::Runtime::new(
            app.db.clone(),
            app.state.objects.clone(),
            app.state.metrics.clone(),
            config,
        )
        .start(CancellationToken::new());
        Releases {
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// As a killed process: nothing saved, the lease left to expire.
    pub fn kill(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.kill();
        }
    }
}

impl Drop for Releases {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One answer the load generator got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: DateTime<Utc>,
    /// The status, or `None` when the request failed without one.
    pub status: Option<u16>,
    pub version: Option<String>,
}

/// Requests `url` from `clients` keep-alive clients until stopped.
pub struct Load {
    stop: CancellationToken,
    hits: Arc<Mutex<Vec<Hit>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(url: &str, clients: usize) -> Load {
        let stop = CancellationToken::new();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|_| {
                let (stop, hits, url) = (stop.clone(), hits.clone(), url.to_owned());
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    while !stop.is_cancelled() {
                        let res = client.get(&url).send().await;
                        let hit = match res {
                            Ok(res) => {
                                let version = res
                                    .headers()
                                    .get("x-app-version")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned);
                                let status = res.status().as_u16();
                                let _ = res.bytes().await;
                                Hit {
                                    at: Utc::now(),
                                    status: Some(status),
                                    version,
                                }
                            }
                            Err(_) => Hit {
                                at: Utc::now(),
                                status: None,
                                version: None,
                            },
                        };
                        hits.lock().unwrap().push(hit);
                    }
                })
            })
            .collect();
        Load { stop, hits, tasks }
    }

    pub fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    pub async fn finish(self) -> Vec<Hit> {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        std::mem::take(&mut *self.hits.lock().unwrap())
    }

    /// Keeps going until at least `n` requests were answered (or 120 s passed).
    pub async fn until(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while self.count() < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The failed ones: no answer, or not 200.
pub fn failures(hits: &[Hit]) -> Vec<&Hit> {
    hits.iter().filter(|h| h.status != Some(200)).collect()
}

/// Approves the gate run `number` waits at, as `auth`.
pub async fn approve(app: &TestApp, auth: &Auth, number: i64) {
    approve_as(app, auth, auth, number).await;
}

/// Approves the gate run `number` waits at, as `approver` (`auth` reads the run).
pub async fn approve_as(app: &TestApp, auth: &Auth, approver: &Auth, number: i64) {
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let run = loop {
        let (_, run) = app.get_as(&path, auth).await;
        if run["status"] != "running" && run["status"] != "queued" {
            break run;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "run {number} never reached its gate: {run}\n{}",
                explain(app, auth, number).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if run["status"] != "waiting" {
        panic!("{run}\n{}", explain(app, auth, number).await);
    }
    let (status, body) = app
        .post_as(
            &format!("{path}/approve"),
            approver,
            json!({"id": run["waiting_for"]["id"], "approve": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The run's log and the project's releases, for a failing test's message.
pub async fn explain(app: &TestApp, auth: &Auth, number: i64) -> String {
    let log = crate::execution::text_log(app, auth, number).await;
    let (_, releases) = app
        .get_as("/api/v1/orgs/acme/projects/web/releases", auth)
        .await;
    format!("log:\n{log}\nreleases: {releases:#}")
}

/// Waits for run `number` to end (releases take longer than the fleet's default wait).
pub async fn run_ended(app: &TestApp, auth: &Auth, number: i64) -> Value {
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (_, run) = app.get_as(&path, auth).await;
        if ["succeeded", "failed", "cancelled", "unstable"]
            .iter()
            .any(|s| run["status"] == *s)
        {
            return run;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "run {number} did not end within 180 s: {run}\n{}",
                explain(app, auth, number).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The project's environment `name`'s app `web`.
pub async fn web_in(app: &TestApp, auth: &Auth, name: &str) -> Value {
    let (status, body) = app
        .get_as("/api/v1/orgs/acme/projects/web/environments", auth)
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| {
            e["apps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["app"] == "web")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no app `web` in {name}: {body}"))
}

/// The newest release of the project.
pub async fn newest_release(app: &TestApp, auth: &Auth) -> Value {
    let (status, body) = app
        .get_as("/api/v1/orgs/acme/projects/web/releases", auth)
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"][0].clone()
}

/// The id of the release run `version`'s deploy step started, once it has (60 s).
pub async fn release_of(app: &TestApp, auth: &Auth, version: i64) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let release = newest_release(app, auth).await;
        if release["version"] == version {
            return release["id"].as_i64().unwrap();
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "run {version} started no release within 60 s; newest: {release}\n{}",
                explain(app, auth, version).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until release `id` is in its `monitor` step.
pub async fn monitoring(app: &TestApp, auth: &Auth, id: i64) {
    wait_release(app, auth, id, "monitor", |r| {
        step(r, "monitor")["status"] == "running"
    })
    .await;
}

/// Polls release `id` until `done` says yes (60 s).
pub async fn wait_release(
    app: &TestApp,
    auth: &Auth,
    id: i64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/v1/orgs/acme/projects/web/releases/{id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (_, release) = app.get_as(&path, auth).await;
        if done(&release) {
            return release;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "release {id} never got to {what}: {release}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The step `name` of a release.
pub fn step<'a>(release: &'a Value, name: &str) -> &'a Value {
    release["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {release}"))
}
