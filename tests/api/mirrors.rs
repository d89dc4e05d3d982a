//! Per-project git mirrors, against a real git server on loopback (smart HTTP behind Basic
//! authentication): the first run clones the repository into the project's mirror, later runs
//! fetch only what is new into it and clone the workspace from it, the workspace's `origin`
//! is the repository (not the mirror), and a run always builds what the repository has now.

use std::time::Duration;

use serde_json::json;

use crate::execution::{head, setup, text_log};
use crate::fleet::{Backend, Repo, git, queue, start_fleet, start_fleet_with, wait_for_run};
use crate::git_servers::{Fetch, Requests, bare_copy, start_http_recording};
use crate::helpers::{Auth, TestApp};
use crate::private_repos::patch_url;

const PROJECT: &str = "/api/v1/orgs/acme/projects/web";
const TOKEN: &str = "mirror-token-5521";

const PIPELINE: &str = r#"pipeline {
    agent any
    stages {
        stage('Look') {
            steps {
                sh 'echo "CHECKED $(git rev-parse HEAD) ORIGIN $(git remote get-url origin)"'
            }
        }
    }
}
"#;

/// Project `acme/web` on a private repository served over smart HTTP; returns the owner, the
/// working repository, its served bare copy (push there to publish), the project's URL and
/// what each fetch asked for.
async fn on_http_server(
    app: &TestApp,
) -> (
    Auth,
    Repo,
    (tempfile::TempDir, std::path::PathBuf),
    String,
    Requests,
) {
    let (owner, repo, _hook) = setup(app, PIPELINE).await;
    let (root, bare) = bare_copy(&repo);
    let (base, requests) = start_http_recording(root.path(), "ci-bot", TOKEN);
    let url = format!("{base}/app.git");
    patch_url(app, &owner, &url).await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("{PROJECT}/repository/credential"),
            &owner,
            Some(json!({"kind": "token", "token": TOKEN, "username": "ci-bot"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (owner, repo, (root, bare), url, requests)
}

/// Runs the project to success; returns its log.
async fn run_once(app: &TestApp, owner: &Auth) -> String {
    let (status, body) = app
        .post_as(&format!("{PROJECT}/runs"), owner, json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let number = body["number"].as_i64().unwrap();
    let path = format!("{PROJECT}/runs/{number}");
    let run = wait_for_run(app, owner, &path, &["succeeded", "failed"]).await;
    let log = text_log(app, owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    log
}

/// Commits a change in `repo` and publishes it to the served copy.
fn push_change(repo: &Repo, bare: &std::path::Path) {
    std::fs::write(repo.dir.path().join("README"), "more\n").unwrap();
    git(repo.dir.path(), &["add", "README"]);
    git(repo.dir.path(), &["commit", "--quiet", "-m", "more"]);
    git(
        repo.dir.path(),
        &["push", "--quiet", &bare.display().to_string(), "main"],
    );
}

#[tokio::test]
async fn a_remote_repository_is_mirrored_per_project_and_fetched_incrementally() {
    let app = crate::helpers::spawn_app().await;
    let (owner, repo, (_root, bare), url, requests) = on_http_server(&app).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let fleet = start_fleet(&app, q, 1, 1);

    let log = run_once(&app, &owner).await;
    assert!(
        log.contains(&format!("CHECKED {} ORIGIN {url}", head(&repo))),
        "the workspace's origin is the repository, not the mirror: {log}"
    );
    let first: Vec<Fetch> = requests.lock().unwrap().drain(..).collect();
    assert_eq!(first, vec![Fetch::Full], "the first run clones the mirror");
    let mirrors: Vec<String> = std::fs::read_dir(fleet.workspaces().join("mirrors"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".git"))
        .collect();
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    let project_id = app
        .scalar("SELECT CAST(id AS BIGINT) FROM projects WHERE slug = 'web'")
        .await
        .unwrap();
    assert!(
        mirrors[0].starts_with(&format!("p{project_id}-")),
        "{mirrors:?}"
    );

    // A new commit pushed: the next run builds it, fetching only what is new.
    push_change(&repo, &bare);
    let log = run_once(&app, &owner).await;
    assert!(
        log.contains(&format!("CHECKED {} ORIGIN {url}", head(&repo))),
        "{log}"
    );
    let second: Vec<Fetch> = requests.lock().unwrap().drain(..).collect();
    assert_eq!(
        second,
        vec![Fetch::Incremental],
        "the mirror fetched only what it lacked"
    );

    // Nothing new: no objects are asked for at all.
    run_once(&app, &owner).await;
    assert_eq!(requests.lock().unwrap().len(), 0);
}

#[tokio::test]
async fn with_mirrors_off_every_run_clones_the_repository() {
    let app = crate::helpers::spawn_app().await;
    let (owner, repo, (_root, bare), url, requests) = on_http_server(&app).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let fleet = start_fleet_with(&app, q, 1, 1, |c| c.git_mirrors = false);
    run_once(&app, &owner).await;
    push_change(&repo, &bare);
    let log = run_once(&app, &owner).await;
    assert!(
        log.contains(&format!("CHECKED {} ORIGIN {url}", head(&repo))),
        "{log}"
    );
    let fetches: Vec<Fetch> = requests.lock().unwrap().drain(..).collect();
    assert_eq!(fetches, vec![Fetch::Full, Fetch::Full]);
    assert!(!fleet.workspaces().join("mirrors").exists());
}
