//! Private repositories, against real git servers on loopback: an HTTPS token sent to git's
//! smart HTTP protocol behind Basic authentication, and an SSH deploy key Sluice generates,
//! let in by a real `sshd`. "Test connection" reports what failed, host keys are pinned at
//! first contact, and neither the token nor the private key reaches a response, the log or a
//! step's environment.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::execution::{head, setup, text_log};
use crate::fleet::{Backend, queue, start_fleet, wait_for_run};
use crate::git_servers::{Sshd, bare_copy, start_http};
use crate::helpers::{Auth, TestApp, spawn_app};

const ENDED: [&str; 4] = ["succeeded", "unstable", "failed", "cancelled"];
const TOKEN: &str = "glpat-Private-Token-9917";

/// Looks for the token and the private key where a step could see them.
const PIPELINE: &str = r#"pipeline {
    agent any
    stages {
        stage('Look') {
            steps {
                sh '''
                    if env | grep -q "glpat-Private"; then echo LEAKED-ENV; fi
                    if env | grep -q "PRIVATE KEY"; then echo LEAKED-KEY; fi
                    if grep -rqs "glpat-Private" .git; then echo LEAKED-GIT; fi
                    echo "CHECKED $(git rev-parse HEAD)"
                '''
            }
        }
    }
}
"#;

const PROJECT: &str = "/api/v1/orgs/acme/projects/web";

pub(crate) async fn patch_url(app: &TestApp, owner: &Auth, url: &str) {
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            PROJECT,
            owner,
            Some(json!({"repo_url": url})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn test_connection(app: &TestApp, owner: &Auth) -> Value {
    let (status, body) = app
        .post_as(&format!("{PROJECT}/repository/test"), owner, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Runs the project's default branch to its end; returns the run and its log.
async fn run_once(app: &TestApp, owner: &Auth) -> (Value, String) {
    let (status, body) = app
        .post_as(&format!("{PROJECT}/runs"), owner, json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let number = body["number"].as_i64().unwrap();
    let run = wait_for_run(app, owner, &format!("{PROJECT}/runs/{number}"), &ENDED).await;
    (run, text_log(app, owner, number).await)
}

fn assert_not_leaked(log: &str) {
    assert!(!log.contains("LEAKED"), "{log}");
    assert!(
        !log.contains(TOKEN) && !log.contains("PRIVATE KEY"),
        "{log}"
    );
}

#[tokio::test]
async fn an_https_token_clones_a_private_repository() {
    let app = spawn_app().await;
    let (owner, repo, _hook) = setup(&app, PIPELINE).await;
    let (root, _bare) = bare_copy(&repo);
    let base = start_http(root.path(), "ci-bot", TOKEN);
    patch_url(&app, &owner, &format!("{base}/app.git")).await;

    // Without the token the server refuses, and the test says so.
    let refused = test_connection(&app, &owner).await;
    assert_eq!(refused["ok"], false, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("ls-remote"), "{error}");

    // A deploy key is refused for an http(s) URL, naming the field.
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("{PROJECT}/repository/credential"),
            &owner,
            Some(json!({"kind": "ssh_key"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["field"], "kind", "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("{PROJECT}/repository/credential"),
            &owner,
            Some(json!({"kind": "token", "token": TOKEN, "username": "ci-bot"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "token");
    assert_eq!(body["username"], "ci-bot");
    for path in [
        PROJECT.to_owned(),
        format!("{PROJECT}/repository"),
        "/api/v1/orgs/acme/projects".to_owned(),
    ] {
        let (status, body) = app.get_as(&path, &owner).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.to_string().contains(TOKEN), "{path}: {body}");
    }
    let stored = app
        .scalar(
            "SELECT COUNT(*) FROM projects WHERE repo_username = 'ci-bot' \
             AND repo_secret_enc IS NOT NULL AND repo_auth = 'token'",
        )
        .await;
    assert_eq!(stored.as_deref(), Some("1"));

    let found = test_connection(&app, &owner).await;
    assert_eq!(found["ok"], true, "{found}");
    assert_eq!(found["commit"], head(&repo).as_str(), "{found}");

    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let (run, log) = run_once(&app, &owner).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert!(log.contains(&format!("CHECKED {}", head(&repo))), "{log}");
    assert_not_leaked(&log);

    // Removed, the repository is cloned anonymously again: the server refuses.
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{PROJECT}/repository/credential"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (run, log) = run_once(&app, &owner).await;
    assert_eq!(run["status"], "failed", "{run}\n{log}");
}

#[tokio::test]
async fn an_ssh_deploy_key_is_generated_pinned_and_used() {
    let app = spawn_app().await;
    let (owner, repo, _hook) = setup(&app, PIPELINE).await;
    let (_root, bare) = bare_copy(&repo);
    let sshd = Sshd::start().await;
    patch_url(&app, &owner, &sshd.url(&bare)).await;

    let (status, key) = app
        .call(
            reqwest::Method::PUT,
            &format!("{PROJECT}/repository/credential"),
            &owner,
            Some(json!({"kind": "ssh_key"})),
        )
        .await;
    assert_eq!(status, 200, "{key}");
    let public_key = key["public_key"].as_str().unwrap().to_owned();
    assert!(
        public_key.starts_with("ssh-ed25519 ")
            && public_key.ends_with(" sluice deploy key acme/web"),
        "{public_key}"
    );
    let (_, shown) = app.get_as(PROJECT, &owner).await;
    assert!(!shown.to_string().contains("PRIVATE KEY"), "{shown}");
    assert_eq!(shown["repo_credential"]["public_key"], public_key.as_str());

    // Not yet added to the repository: the server turns the key away.
    let refused = test_connection(&app, &owner).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{refused}"
    );

    sshd.authorize(&public_key);
    let found = test_connection(&app, &owner).await;
    assert_eq!(found["ok"], true, "{found}");
    assert_eq!(found["commit"], head(&repo).as_str(), "{found}");
    let pinned = found["pinned_host_keys"].as_str().unwrap().to_owned();
    assert!(
        pinned.contains(&format!("[127.0.0.1]:{}", sshd.port)) && pinned.contains("ssh-ed25519"),
        "{pinned}"
    );
    let (_, repository) = app.get_as(&format!("{PROJECT}/repository"), &owner).await;
    assert_eq!(repository["credential"]["host_keys"], pinned.as_str());

    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let (run, log) = run_once(&app, &owner).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert!(log.contains(&format!("CHECKED {}", head(&repo))), "{log}");
    assert_not_leaked(&log);

    // A host answering with another key than the pinned one is refused.
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.path().join("k"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let other_key = std::fs::read_to_string(other.path().join("k.pub")).unwrap();
    let mut parts = other_key.split_whitespace();
    let forged = format!(
        "[127.0.0.1]:{} {} {}",
        sshd.port,
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    app.db
        .execute_unprepared(&format!("UPDATE projects SET ssh_known_hosts = '{forged}'"))
        .await
        .unwrap();
    let refused = test_connection(&app, &owner).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("Host key verification failed"),
        "{refused}"
    );
}
