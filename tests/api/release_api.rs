//! The environments and releases API: a protected environment takes deploys only from runs its
//! deployers started or approved, protecting needs an admin, an abort stops a release in
//! progress, and every endpoint keeps to its org, role and token scope.

use std::time::Duration;

use serde_json::json;

use crate::execution::push;
use crate::fleet::{Backend, queue, start_fleet};
use crate::helpers::{assert_error, spawn_app};
use crate::release_support::{
    Releases, approve_as, bump, monitoring, newest_release, pipeline, release_of, release_project,
    run_ended, step, wait_release,
};

const GATED: &str = r#"pipeline {
    agent any
    stages {
        stage('Build') {
            steps {
                sh 'mkdir -p dist && cp app.py dist/app.py'
                archiveArtifacts artifacts: 'dist/**'
            }
        }
        stage('QA') {
            input { message 'Release?' }
            steps { echo 'approved' }
        }
        stage('Production') {
            steps {
                deploy app: 'web', environment: 'production', artifact: 'dist/**', command: 'python3 dist/app.py', instances: 1, healthPath: '/healthz', monitorSeconds: 1
            }
        }
    }
}
"#;

#[tokio::test]
async fn a_protected_environment_takes_deploys_only_through_its_deployers() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let (owner, repo, hook) = release_project(&app, GATED, flags.path()).await;
    let (dev, _) = app
        .join(&owner, "acme", "dev@example.com", "developer")
        .await;
    let (qa, _) = app
        .join(&owner, "acme", "qa@example.com", "developer")
        .await;
    let envs = "/api/v1/orgs/acme/projects/web/environments";

    // Protecting takes an admin; names are checked.
    let protected =
        json!({"name": "production", "protected": true, "deployers": ["qa@example.com"]});
    let (status, body) = app.post_as(envs, &dev, protected.clone()).await;
    assert_eq!(status, 403, "{body}");
    let res = app
        .client
        .post(app.url(envs))
        .bearer_auth(app.create_token(&owner, "acme", &["write"]).await)
        .json(&json!({"name": "Prod!"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, 400, "bad_request").await;
    assert_eq!(body["error"]["details"]["field"], "name", "{body}");
    let (status, body) = app.post_as(envs, &owner, protected).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["protected"], true);
    assert_eq!(body["deployers"], json!(["qa@example.com"]));
    let (status, body) = app
        .post_as(envs, &owner, json!({"name": "production"}))
        .await;
    assert_eq!(status, 409, "{body}");

    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let _releases = Releases::start(&app, "releases-a", Duration::from_secs(10));

    // A push approved by a developer who is not a deployer: refused at the step.
    let first = push(&app, &hook, &repo).await;
    approve_as(&app, &owner, &dev, first).await;
    let run = run_ended(&app, &owner, first).await;
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("environment `production` is protected")
            && reason.contains("dev@example.com"),
        "{reason}"
    );
    let (_, releases) = app
        .get_as("/api/v1/orgs/acme/projects/web/releases", &owner)
        .await;
    assert_eq!(releases["items"], json!([]), "no release was started");

    // Approved by QA: deployed.
    bump(&repo);
    let second = push(&app, &hook, &repo).await;
    approve_as(&app, &owner, &qa, second).await;
    let run = run_ended(&app, &owner, second).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let release = newest_release(&app, &owner).await;
    assert_eq!(release["status"], "succeeded", "{release}");
    let id = release["id"].as_i64().unwrap();

    // Only in progress can be aborted; a viewer and a read token cannot act; another org
    // sees nothing.
    let abort = format!("/api/v1/orgs/acme/projects/web/releases/{id}/abort");
    let (status, body) = app.post_as(&abort, &owner, json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (viewer, _) = app
        .join(&owner, "acme", "viewer@example.com", "viewer")
        .await;
    let (status, body) = app.post_as(&abort, &viewer, json!({})).await;
    assert_eq!(status, 403, "{body}");
    let read = app.create_token(&owner, "acme", &["read"]).await;
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/orgs/acme/projects/web/releases/{id}/rollback"
        )))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let res = app
        .client
        .get(app.url(&format!("/api/v1/orgs/acme/projects/web/releases/{id}")))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let stranger = app.signup("stranger@example.com").await;
    app.create_org(&stranger, "other").await;
    for path in [
        envs.to_owned(),
        "/api/v1/orgs/acme/projects/web/releases".to_owned(),
        format!("/api/v1/orgs/acme/projects/web/releases/{id}"),
    ] {
        let (status, _) = app.get_as(&path, &stranger).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = app.post_as(&abort, &stranger, json!({})).await;
    assert_eq!(status, 404);
    // A release id of another project is not found through this one.
    let (status, _) = app
        .get_as("/api/v1/orgs/acme/projects/web/releases/999999", &owner)
        .await;
    assert_eq!(status, 404);

    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("{envs}/production"),
            &owner,
            Some(json!({"protected": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["protected"], false);
    assert_eq!(body["apps"][0]["version"], second, "{body}");
}

#[tokio::test]
async fn an_abort_stops_a_release_in_progress_and_puts_blue_back() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let (owner, repo, hook) = release_project(
        &app,
        &pipeline("instances: 2, monitorSeconds: 120"),
        flags.path(),
    )
    .await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let _releases = Releases::start(&app, "releases-a", Duration::from_secs(10));
    let first = push(&app, &hook, &repo).await;
    assert_eq!(run_ended(&app, &owner, first).await["status"], "succeeded");
    bump(&repo);
    let second = push(&app, &hook, &repo).await;
    let id = release_of(&app, &owner, second).await;
    monitoring(&app, &owner, id).await;
    let (status, body) = app
        .post_as(
            &format!("/api/v1/orgs/acme/projects/web/releases/{id}/abort"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let release = wait_release(&app, &owner, id, "aborted", |r| {
        r["status"] != "in_progress"
    })
    .await;
    assert_eq!(release["status"], "aborted", "{release}");
    assert_eq!(step(&release, "monitor")["status"], "failed");
    assert_eq!(step(&release, "rollback")["status"], "succeeded");
    let run = run_ended(&app, &owner, second).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["reason"].as_str().unwrap().contains("aborted"), "{run}");
}
