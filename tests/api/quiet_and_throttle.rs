//! The options `quietPeriod`, `rateLimitBuilds` and `checkoutToSubdirectory`: a pushed run
//! waits out the quiet period and later pushes fold into it, a throttled project's runs are
//! spaced out (a person's run skipping the line with `userBoost`), and the checkout lands in
//! the subdirectory, on a real worker.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use sluice_core::dispatch::publish_outbox;
use sluice_core::queue::QueueSettings;
use sluice_core::queue::embedded::EmbeddedQueue;

use crate::execution::{github_push, head, setup, text_log};
use crate::fleet::{Backend, Repo, git, queue, start_fleet, wait_for_run};
use crate::helpers::{TestApp, spawn_app, wait_until};

const ENDED: [&str; 4] = ["succeeded", "unstable", "failed", "cancelled"];

/// A signed GitHub push of `branch` at the repository's head; returns the answer.
async fn push_branch(app: &TestApp, secret: &str, repo: &Repo, branch: &str) -> Value {
    let body = serde_json::to_vec(&json!({
        "ref": format!("refs/heads/{branch}"),
        "after": head(repo),
        "head_commit": {"id": head(repo), "message": "change", "author": {"name": "Ada"}},
        "repository": {"full_name": "acme/web"},
    }))
    .unwrap();
    let res = github_push(app, secret, body).await;
    assert_eq!(res.status().as_u16(), 202);
    res.json().await.unwrap()
}

fn commit(repo: &Repo, message: &str) {
    git(
        repo.dir.path(),
        &["commit", "--quiet", "--allow-empty", "-m", message],
    );
}

async fn admitted(app: &TestApp, project: &str) -> String {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM run_outbox o JOIN runs r ON r.id = o.run_id \
         JOIN projects p ON p.id = r.project_id \
         WHERE p.slug = '{project}' AND o.published_at IS NOT NULL"
    ))
    .await
    .unwrap_or_default()
}

#[tokio::test]
async fn pushes_wait_out_the_quiet_period_and_fold_into_the_waiting_run() {
    let app = spawn_app().await;
    let (owner, repo, hook) = setup(&app, "pipeline { agent any }").await;
    // What `options { quietPeriod(600) }` records when a run parses the Jenkinsfile.
    app.db
        .execute_unprepared("UPDATE projects SET quiet_period = 600")
        .await
        .unwrap();
    let queue = EmbeddedQueue::new(app.db.clone(), QueueSettings::default());

    let first = push_branch(&app, &hook, &repo, "main").await;
    let number = first["run"].as_i64().unwrap();
    assert_eq!(first.get("folded"), None, "{first}");
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 0);

    // Two more pushes to main meanwhile: the waiting run builds the newest commit.
    commit(&repo, "second");
    commit(&repo, "third");
    let newest = head(&repo);
    let again = push_branch(&app, &hook, &repo, "main").await;
    assert_eq!(again["run"], number, "{again}");
    assert_eq!(again["folded"], true, "{again}");
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let (_, run) = app.get_as(&path, &owner).await;
    assert_eq!(run["commit"], newest.as_str(), "{run}");
    assert_eq!(run["status"], "queued", "{run}");

    // Another branch is another run; a person's run starts at once.
    let other = push_branch(&app, &hook, &repo, "feature/x").await;
    assert_ne!(other["run"], number, "{other}");
    assert_eq!(other.get("folded"), None, "{other}");
    let (status, body) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        publish_outbox(&app.db, &queue, 100).await.unwrap(),
        1,
        "only the person's run"
    );
    let waiting = app
        .scalar(
            "SELECT COUNT(*) FROM run_outbox WHERE published_at IS NULL \
             AND not_before IS NOT NULL",
        )
        .await;
    assert_eq!(waiting.as_deref(), Some("2"));

    // The quiet period over, both pushed runs go.
    app.db
        .execute_unprepared("UPDATE run_outbox SET not_before = NULL")
        .await
        .unwrap();
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 2);
    // A push now queues a new run: the old one is no longer waiting.
    let later = push_branch(&app, &hook, &repo, "main").await;
    assert_ne!(later["run"], number, "{later}");
    assert_eq!(later.get("folded"), None, "{later}");
}

#[tokio::test]
async fn a_throttled_projects_runs_are_spaced_out() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "paced").await;
    app.create_project(&owner, "acme", "free").await;
    // What `rateLimitBuilds(throttle: [count: 2, durationName: 'hour'])` records: a run every
    // 30 minutes.
    app.db
        .execute_unprepared(
            "UPDATE projects SET rate_limit_count = 2, rate_limit_period = 3600 \
             WHERE slug = 'paced'",
        )
        .await
        .unwrap();
    for project in ["paced", "paced", "paced", "free", "free"] {
        let (status, body) = app
            .post_as(
                &format!("/api/v1/orgs/acme/projects/{project}/runs"),
                &owner,
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let queue = EmbeddedQueue::new(app.db.clone(), QueueSettings::default());
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 3);
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 0);
    assert_eq!(admitted(&app, "paced").await, "1", "one per 30 minutes");
    assert_eq!(admitted(&app, "free").await, "2");

    // `userBoost: true`: runs a person started skip the throttle.
    app.db
        .execute_unprepared("UPDATE projects SET rate_limit_user_boost = true")
        .await
        .unwrap();
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 2);
    assert_eq!(admitted(&app, "paced").await, "3");

    // Without the boost, a shorter period lets the next run through once it has passed (the
    // org's limit of runs at once raised, with 5 waiting in the queue).
    app.db
        .execute_unprepared("UPDATE orgs SET max_concurrent_runs = 100")
        .await
        .unwrap();
    app.db
        .execute_unprepared(
            "UPDATE projects SET rate_limit_user_boost = false, rate_limit_count = 1, \
             rate_limit_period = 1 WHERE slug = 'paced'",
        )
        .await
        .unwrap();
    let (status, body) = app
        .post_as("/api/v1/orgs/acme/projects/paced/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    wait_until(Duration::from_secs(20), || async {
        publish_outbox(&app.db, &queue, 100).await.unwrap();
        admitted(&app, "paced").await == "4"
    })
    .await;
}

const SUBDIRECTORY: &str = r#"pipeline {
    agent any
    options {
        checkoutToSubdirectory('app/src')
        quietPeriod(7)
        rateLimitBuilds(throttle: [count: 30, durationName: 'minute', userBoost: true])
    }
    stages {
        stage('Build') {
            steps {
                sh 'test -f app/src/Jenkinsfile && test ! -e Jenkinsfile && echo "IN-SUBDIR $(git -C app/src rev-parse HEAD)"'
            }
        }
    }
}
"#;

#[tokio::test]
async fn the_checkout_lands_in_the_subdirectory_and_the_options_are_recorded() {
    let app = spawn_app().await;
    let (owner, repo, _hook) = setup(&app, SUBDIRECTORY).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let (status, body) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let number = body["number"].as_i64().unwrap();
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &ENDED).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert!(log.contains(&format!("IN-SUBDIR {}", head(&repo))), "{log}");
    let declared = app
        .scalar(
            "SELECT CAST(quiet_period AS BIGINT) || ' ' || CAST(rate_limit_count AS BIGINT) \
             || ' ' || CAST(rate_limit_period AS BIGINT) || ' ' || \
             CASE WHEN rate_limit_user_boost THEN 'boost' ELSE 'none' END \
             FROM projects WHERE slug = 'web'",
        )
        .await;
    assert_eq!(declared.as_deref(), Some("7 30 60 boost"));
}
