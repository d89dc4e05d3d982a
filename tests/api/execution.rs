//! The local executor end to end: real git repositories, a signed webhook, real worker slots
//! and real processes; the log, artifacts, gates, cancel and post conditions through the API.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_core::crypto::hmac_sha256_hex;

use crate::fleet::{Backend, Repo, git_repo, queue, start_fleet, wait_for_run};
use crate::helpers::{Auth, TestApp, spawn_app};

const SECRET: &str = "s3cr3t-Value-4242";

fn head(repo: &Repo) -> String {
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
async fn setup(app: &TestApp, jenkinsfile: &str) -> (Auth, Repo, String) {
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
async fn push(app: &TestApp, secret: &str, repo: &Repo) -> i64 {
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "after": head(repo),
        "head_commit": {"id": head(repo)},
        "repository": {"full_name": "acme/web"},
    }))
    .unwrap();
    let signature = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body));
    let res = app
        .client
        .post(app.url("/hooks/github/acme/web"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let answer: Value = res.json().await.unwrap();
    answer["run"].as_i64().unwrap()
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

async fn text_log(app: &TestApp, auth: &Auth, number: i64) -> String {
    let (status, body) = app
        .get_as(
            &format!("/api/v1/orgs/acme/projects/web/runs/{number}/log"),
            auth,
        )
        .await;
    assert_eq!(status, 200);
    body.as_str().unwrap_or_default().to_owned()
}
