//! The local executor end to end: real git repositories, a signed webhook, real worker slots
//! and real processes; the log, artifacts, gates, cancel and post conditions through the API.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_core::crypto::hmac_sha256_hex;

use crate::fleet::{Backend, Repo, git_repo, queue, start_fleet, wait_for_run};
use crate::helpers::{Auth, TestApp, spawn_app};

pub(crate) const SECRET: &str = "s3cr3t-Value-4242";

pub(crate) fn head(repo: &Repo) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo.dir.path())
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An org `acme` with project `web` building `jenkinsfile`, its secret `DEPLOY_TOKEN` set;
/// returns the owner, the repository and the project's webhook secret.
pub(crate) async fn setup(app: &TestApp, jenkinsfile: &str) -> (Auth, Repo, String) {
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(jenkinsfile);
    let (status, project) = app
        .post_as(
            "/api/v1/orgs/acme/projects",
            &owner,
            json!({"slug": "web", "name": "web", "repo_url": repo.url}),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/acme/projects/web/secrets/DEPLOY_TOKEN",
            &owner,
            Some(json!({"value": SECRET})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let hook = project["webhook"]["secret"].as_str().unwrap().to_owned();
    (owner, repo, hook)
}

/// A signed GitHub push of the repository's head; returns the run number.
pub(crate) async fn push(app: &TestApp, secret: &str, repo: &Repo) -> i64 {
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "after": head(repo),
        "head_commit": {"id": head(repo)},
        "repository": {"full_name": "acme/web"},
    }))
    .unwrap();
    let res = github_push(app, secret, body).await;
    assert_eq!(res.status().as_u16(), 202);
    let answer: Value = res.json().await.unwrap();
    answer["run"].as_i64().unwrap()
}

/// Delivers `body` to `acme/web`'s GitHub webhook as a push, signed with `secret`.
pub(crate) async fn github_push(app: &TestApp, secret: &str, body: Vec<u8>) -> reqwest::Response {
    let signature = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body));
    app.client
        .post(app.url("/hooks/github/acme/web"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A run of `repo` pushed to `acme/web` on a fleet of one worker with one slot.
pub(crate) struct Pushed {
    pub fleet: crate::fleet::Fleet,
    pub number: i64,
    /// `/api/v1/orgs/acme/projects/web/runs/{number}`.
    pub path: String,
}

/// Starts a one-slot fleet on the embedded queue and pushes `repo` to it.
pub(crate) async fn push_to_fleet(app: &TestApp, secret: &str, repo: &Repo) -> Pushed {
    let q = queue(app, Backend::Embedded, Duration::from_secs(30)).await;
    let fleet = start_fleet(app, q, 1, 1);
    let number = push(app, secret, repo).await;
    Pushed {
        fleet,
        number,
        path: format!("/api/v1/orgs/acme/projects/web/runs/{number}"),
    }
}

fn stage<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {run}"))
}

const RELEASE: &str = r#"pipeline {
    agent any
    environment {
        DEPLOY_TOKEN = credentials('DEPLOY_TOKEN')
    }
    stages {
        stage('Build') {
            steps {
                sh 'mkdir -p dist && printf "artifact-%s" "$BUILD_NUMBER" > dist/app.txt'
                sh 'echo "token is $DEPLOY_TOKEN"'
                sh 'printf %s "$DEPLOY_TOKEN" | base64'
                archiveArtifacts artifacts: 'dist/*.txt'
            }
        }
        stage('Checks') {
            parallel {
                stage('Unit') {
                    steps { sh 'echo unit-ok' }
                }
                stage('Lint') {
                    steps { sh 'echo lint-ok' }
                }
            }
        }
        stage('Approve') {
            input {
                message 'Ship build ${BUILD_NUMBER}?'
                ok 'Ship'
            }
            steps { echo 'shipping' }
        }
    }
    post {
        success { echo 'post-success-ran' }
        failure { echo 'post-failure-ran' }
        always { echo 'post-always-ran' }
    }
}
"#;

#[tokio::test]
async fn a_pushed_pipeline_runs_parallel_stages_masks_secrets_archives_and_waits_for_approval() {
    let app = spawn_app().await;
    let (owner, repo, secret) = setup(&app, RELEASE).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 2);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["waiting", "failed", "succeeded"]).await;
    assert_eq!(run["status"], "waiting", "{run}");
    let gate = run["waiting_for"].clone();
    assert_eq!(gate["message"], format!("Ship build {number}?"), "{run}");
    assert_eq!(gate["ok"], "Ship");
    // Parallel branches are drawn inside their stage.
    let checks = stage(&run, "Checks")["seq"].clone();
    assert_eq!(stage(&run, "Unit")["parent"], checks, "{run}");
    assert_eq!(stage(&run, "Lint")["parent"], checks, "{run}");
    assert_eq!(stage(&run, "Unit")["status"], "succeeded");
    assert_eq!(stage(&run, "Approve")["status"], "running");

    // A stale gate id is refused; a viewer may not answer; a developer approves.
    let (viewer, _) = app
        .join(&owner, "acme", "viewer@example.com", "viewer")
        .await;
    let approve = format!("{path}/approve");
    let (status, _) = app
        .post_as(&approve, &owner, json!({"id": "0-9", "approve": true}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .post_as(
            &approve,
            &viewer,
            json!({"id": gate["id"], "approve": true}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post_as(&approve, &owner, json!({"id": gate["id"], "approve": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let log = text_log(&app, &owner, number).await;
    for expected in [
        "unit-ok",
        "lint-ok",
        "token is ****",
        "shipping",
        "approved by owner@example.com",
        "post-success-ran",
        "post-always-ran",
        "Finished: SUCCESS",
    ] {
        assert!(
            log.contains(expected),
            "`{expected}` missing from the log:\n{log}"
        );
    }
    assert!(!log.contains("post-failure-ran"), "{log}");
    let b64 = base64_of(SECRET);
    assert!(
        !log.contains(SECRET) && !log.contains(&b64),
        "secret leaked:\n{log}"
    );
    // Every line is timestamped and attributed to its stage.
    assert!(log.lines().any(|l| l.contains("[Unit] unit-ok")), "{log}");

    let (status, artifacts) = app.get_as(&format!("{path}/artifacts"), &owner).await;
    assert_eq!(status, 200);
    let expected = format!("artifact-{number}");
    let sha = sluice_core::crypto::hex(&Sha256::digest(expected.as_bytes()));
    assert_eq!(
        artifacts,
        json!([{"path": "dist/app.txt", "size": expected.len(), "sha256": sha}])
    );
    let res = app
        .client
        .get(app.url(&format!("{path}/artifacts/dist/app.txt")))
        .bearer_auth(token_of(&app, &owner).await)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["x-checksum-sha256"], sha.as_str());
    let bytes = res.bytes().await.unwrap();
    assert_eq!(sluice_core::crypto::hex(&Sha256::digest(&bytes)), sha);
    for bad in [
        "..%2F..%2Fetc%2Fpasswd",
        "dist/..%2F..%2Fx",
        "%2Fetc%2Fpasswd",
    ] {
        let (status, _) = app.get_as(&format!("{path}/artifacts/{bad}"), &owner).await;
        assert!(status == 400 || status == 404, "{bad} answered {status}");
    }

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"sluice_runs_total{org="acme",result="succeeded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sluice_steps_total{result="success",step="sh"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_run_duration_seconds_count 1"),
        "{metrics}"
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn token_of(app: &TestApp, owner: &Auth) -> String {
    app.create_token(owner, "acme", &["read"]).await
}

pub(crate) async fn text_log(app: &TestApp, auth: &Auth, number: i64) -> String {
    let (status, body) = app
        .get_as(
            &format!("/api/v1/orgs/acme/projects/web/runs/{number}/log"),
            auth,
        )
        .await;
    assert_eq!(status, 200);
    body.as_str().unwrap_or_default().to_owned()
}

/// Processes whose `WORKSPACE` lies under `root` (a fleet's or worker's workspace root).
pub fn processes_under(root: &std::path::Path) -> Vec<i32> {
    let needle = format!("WORKSPACE={}/", root.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|v| v.starts_with(needle.as_bytes()))
            })
        })
        .collect()
}

#[tokio::test]
async fn a_failing_step_fails_the_run_runs_post_failure_and_skips_later_stages() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Build') {
            steps {
                sh 'echo before-the-failure'
                sh 'echo about to fail >&2; exit 3'
                sh 'echo never-after-the-failure'
            }
        }
        stage('Deploy') {
            steps { echo 'never-deployed' }
        }
    }
    post {
        unsuccessful { echo 'post-unsuccessful-ran' }
        notBuilt { echo 'post-not-built-ran' }
        failure { echo 'post-failure-ran' }
        success { echo 'post-success-ran' }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["failed", "succeeded"]).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        run["reason"], "line 7: script returned exit code 3",
        "{run}"
    );
    assert_eq!(stage(&run, "Build")["status"], "failed");
    assert_eq!(stage(&run, "Deploy")["status"], "skipped");
    let log = text_log(&app, &owner, number).await;
    for expected in [
        "before-the-failure",
        "about to fail",
        "post-failure-ran",
        "Finished: FAILURE",
    ] {
        assert!(log.contains(expected), "`{expected}` missing:\n{log}");
    }
    // Jenkins' order: failure before unsuccessful, whatever the file's order.
    let failure_at = log.find("post-failure-ran").unwrap();
    let unsuccessful_at = log
        .find("post-unsuccessful-ran")
        .expect("post { unsuccessful } ran");
    assert!(failure_at < unsuccessful_at, "{log}");
    for absent in [
        "never-after-the-failure",
        "never-deployed",
        "post-success-ran",
        "post-not-built-ran",
    ] {
        assert!(!log.contains(absent), "`{absent}` ran:\n{log}");
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"sluice_runs_total{org="acme",result="failed"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn cancelling_a_running_script_kills_its_process_group_and_runs_post_aborted() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Long') {
            steps {
                sh 'sleep 600 & echo started-background; sleep 600'
            }
        }
        stage('Later') {
            steps { echo 'never-later' }
        }
    }
    post {
        aborted { echo 'post-aborted-ran' }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    crate::helpers::wait_until(Duration::from_secs(30), || async {
        text_log(&app, &owner, number)
            .await
            .contains("started-background")
            && processes_under(fleet.workspaces()).len() >= 2
    })
    .await;
    let asked = std::time::Instant::now();
    let (status, body) = app
        .post_as(&format!("{path}/cancel"), &owner, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cancel_requested"], true);
    let run = wait_for_run(&app, &owner, &path, &["cancelled", "failed", "succeeded"]).await;
    println!("cancel → cancelled in {:?}", asked.elapsed());
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["reason"], "cancelled by owner@example.com", "{run}");
    assert_eq!(stage(&run, "Later")["status"], "skipped");
    assert_eq!(
        processes_under(fleet.workspaces()),
        Vec::<i32>::new(),
        "processes left behind"
    );
    let log = text_log(&app, &owner, number).await;
    assert!(log.contains("post-aborted-ran"), "{log}");
    assert!(!log.contains("never-later"), "{log}");
    // An ended run cannot be cancelled again.
    let (status, _) = app
        .post_as(&format!("{path}/cancel"), &owner, json!({}))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn retry_timeout_catch_error_stash_matrix_and_junit_behave_like_jenkins() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    options { timeout(time: 2, unit: 'MINUTES') }
    stages {
        stage('Make') {
            steps {
                sh 'mkdir -p out && echo stashed-hello > out/a.txt'
                stash name: 'out', includes: 'out/**'
            }
        }
        stage('Use') {
            steps {
                deleteDir()
                unstash 'out'
                sh 'cat out/a.txt'
            }
        }
        stage('Flaky') {
            steps {
                retry(3) {
                    sh 'n=$(cat ../count 2>/dev/null || echo 0); n=$((n+1)); echo $n > ../count; echo try-$n; test $n -ge 2'
                }
            }
        }
        stage('Slow') {
            steps {
                catchError(buildResult: 'SUCCESS', stageResult: 'FAILURE') {
                    timeout(time: 1, unit: 'SECONDS') {
                        sh 'sleep 30'
                    }
                }
            }
        }
        stage('Matrix') {
            matrix {
                axes {
                    axis {
                        name 'OS'
                        values 'linux', 'mac'
                    }
                }
                stages {
                    stage('Cell') {
                        steps { sh 'echo cell-$OS' }
                    }
                }
            }
        }
        stage('Tests') {
            steps {
                withCredentials([usernamePassword(credentialsId: 'REGISTRY', usernameVariable: 'U', passwordVariable: 'P')]) {
                    sh 'echo user=$U password=$P'
                }
                writeFile file: 'r.xml', text: '<testsuite name="s"><testcase classname="c" name="ok"/><testcase classname="c" name="bad"><failure message="nope"/></testcase></testsuite>'
                junit 'r.xml'
            }
        }
    }
    post {
        unstable { echo 'post-unstable-ran' }
        success { echo 'post-success-ran' }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/acme/projects/web/secrets/REGISTRY",
            &owner,
            Some(json!({"value": "robot:pa55word"})),
        )
        .await;
    assert_eq!(status, 201);
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["unstable", "failed", "succeeded"]).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "unstable", "{run}\n{log}");
    assert_eq!(run["reason"], "1 tests failed", "{run}");
    assert_eq!(
        run["tests"],
        json!({"passed": 1, "failed": 1, "skipped": 0, "failures": [{"suite": "s", "name": "c.bad", "message": "nope"}]})
    );
    assert_eq!(stage(&run, "Slow")["status"], "failed", "{run}");
    assert_eq!(stage(&run, "Flaky")["status"], "succeeded", "{run}");
    assert_eq!(stage(&run, "Tests")["status"], "unstable", "{run}");
    let matrix = stage(&run, "Matrix")["seq"].clone();
    assert_eq!(stage(&run, "Matrix (OS=linux)")["parent"], matrix, "{run}");
    assert_eq!(stage(&run, "Matrix (OS=mac)")["parent"], matrix, "{run}");
    for expected in [
        "stashed-hello",
        "try-1",
        "retrying (2 of 3)",
        "try-2",
        "timed out after 1 s",
        "catchError caught",
        "[Matrix (OS=linux) / Cell] cell-linux",
        "[Matrix (OS=mac) / Cell] cell-mac",
        "user=robot password=****",
        "tests: 1 passed, 1 failed, 0 skipped",
        "post-unstable-ran",
        "Finished: UNSTABLE",
    ] {
        assert!(log.contains(expected), "`{expected}` missing:\n{log}");
    }
    assert!(
        !log.contains("try-3") && !log.contains("post-success-ran"),
        "{log}"
    );
}

#[tokio::test]
async fn build_discarder_drops_older_runs_artifacts_and_rerun_repeats_a_run() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    options { buildDiscarder(logRotator(numToKeepStr: '1')) }
    stages {
        stage('Build') {
            steps {
                sh 'echo build-$BUILD_NUMBER > out.txt'
                archiveArtifacts 'out.txt'
            }
        }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let first = push(&app, &secret, &repo).await;
    let base = "/api/v1/orgs/acme/projects/web/runs";
    wait_for_run(&app, &owner, &format!("{base}/{first}"), &["succeeded"]).await;
    let (status, _) = app
        .get_as(&format!("{base}/{first}/artifacts/out.txt"), &owner)
        .await;
    assert_eq!(status, 200);
    let (status, second) = app
        .post_as(&format!("{base}/{first}/rerun"), &owner, json!({}))
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["trigger"], "rerun");
    assert_eq!(second["commit"], head(&repo));
    let second = second["number"].as_i64().unwrap();
    wait_for_run(&app, &owner, &format!("{base}/{second}"), &["succeeded"]).await;
    let (_, kept) = app
        .get_as(&format!("{base}/{second}/artifacts"), &owner)
        .await;
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    let (_, gone) = app
        .get_as(&format!("{base}/{first}/artifacts"), &owner)
        .await;
    assert_eq!(gone, json!([]));
    let (status, _) = app
        .get_as(&format!("{base}/{first}/artifacts/out.txt"), &owner)
        .await;
    assert_eq!(status, 404);

    // The project page lists both runs and charts them.
    let (status, html) = app.page("/orgs/acme/projects/web", &owner).await;
    assert_eq!(status, 200);
    for expected in [
        format!("/orgs/acme/projects/web/runs/{first}\">#{first}</a>"),
        format!("/orgs/acme/projects/web/runs/{second}\">#{second}</a>"),
        "<td>Rerun by owner</td>".to_owned(),
        "Run main now".to_owned(),
    ] {
        assert!(html.contains(&expected), "{expected} missing from\n{html}");
    }
    assert_eq!(
        html.matches("<rect class=\"bar status-succeeded\"").count(),
        2,
        "{html}"
    );
    let (status, html) = app
        .page(&format!("/orgs/acme/projects/web/runs/{second}"), &owner)
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("out.txt") && html.contains("Re-run"),
        "{html}"
    );
}

#[tokio::test]
async fn repositories_on_internal_hosts_are_refused_unless_local_repos_are_allowed() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    for (slug, url) in [
        ("loopback", "https://localhost:9/acme/web.git"),
        ("metadata", "http://169.254.169.254/latest/meta-data.git"),
        ("local", "file:///etc"),
    ] {
        let (status, body) = app
            .post_as(
                "/api/v1/orgs/acme/projects",
                &owner,
                json!({"slug": slug, "name": slug, "repo_url": url}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = crate::fleet::start_fleet_with(&app, q, 1, 2, |c| c.allow_local_repos = false);
    for (slug, expected) in [
        ("loopback", "repository host `localhost` resolves to "),
        (
            "metadata",
            "repository host `169.254.169.254` resolves to 169.254.169.254, which SLUICE_REPO_DENY_CIDRS refuses",
        ),
        ("local", "repository `file:///etc` is local"),
    ] {
        let (status, _) = app
            .post_as(
                &format!("/api/v1/orgs/acme/projects/{slug}/runs"),
                &owner,
                json!({}),
            )
            .await;
        assert_eq!(status, 201);
        let run = wait_for_run(
            &app,
            &owner,
            &format!("/api/v1/orgs/acme/projects/{slug}/runs/1"),
            &["failed", "succeeded"],
        )
        .await;
        assert_eq!(run["status"], "failed", "{run}");
        assert!(
            run["reason"].as_str().unwrap().starts_with(expected),
            "{slug}: {run}"
        );
    }
}
