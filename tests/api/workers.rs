//! Workers running real Jenkinsfiles from real git repositories through both queue backends:
//! stages recorded as they start and end, failures with their line, parameters checked
//! against the pipeline, and the worker metrics.

use serde_json::json;

use crate::fleet::{Backend, git_repo, project_for, queue, start_fleet, wait_for_run};
use crate::helpers::spawn_app;

const TWO_STAGES: &str = r#"
pipeline {
    agent any
    parameters {
        string(name: 'TARGET', defaultValue: 'eu', description: 'where')
        choice(name: 'SIZE', choices: ['s', 'm', 'l'])
    }
    stages {
        stage('Build') {
            steps {
                sh 'echo "building for $TARGET" > built.txt'
                sh 'test "$(cat built.txt)" = "building for ${TARGET}"'
            }
        }
        stage('Test') {
            steps { sh "test \"${params.SIZE}\" = l" }
        }
    }
}
"#;

async fn runs_through_a_worker(backend: Backend) {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(TWO_STAGES);
    project_for(&app, &owner, "acme", "web", &repo).await;
    let queue = queue(&app, backend, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, queue, 1, 2);

    let runs = "/api/v1/orgs/acme/projects/web/runs";
    let (status, _) = app
        .post_as(runs, &owner, json!({"params": {"SIZE": "l"}}))
        .await;
    assert_eq!(status, 201);
    let run = wait_for_run(&app, &owner, &format!("{runs}/1"), &["succeeded", "failed"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempt"], 1);
    assert_eq!(
        run["params"],
        json!({"TARGET": "eu", "SIZE": "l"}),
        "defaults filled in"
    );
    let stages: Vec<(&str, &str)> = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(stages, [("Build", "succeeded"), ("Test", "succeeded")]);
    assert!(
        run["stages"][0]["started_at"].is_string() && run["stages"][1]["finished_at"].is_string()
    );
    assert!(run["started_at"].is_string() && run["finished_at"].is_string());

    // The pipeline's parameters are now known: triggers are checked against them.
    let (status, err) = app
        .post_as(runs, &owner, json!({"params": {"SIZE": "xl"}}))
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["details"]["field"], "params");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`SIZE` must be one of s, m, l"),
        "{err}"
    );
    let (status, err) = app
        .post_as(runs, &owner, json!({"params": {"NOPE": "1"}}))
        .await;
    assert_eq!(status, 400, "{err}");

    // A run whose step fails: failed with the line at fault, later stages skipped.
    let (status, _) = app
        .post_as(runs, &owner, json!({"params": {"SIZE": "s"}}))
        .await;
    assert_eq!(status, 201);
    let run = wait_for_run(&app, &owner, &format!("{runs}/2"), &["succeeded", "failed"]).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("line 16: script returned exit code 1"),
        "{run}"
    );
    let statuses: Vec<&str> = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "failed"]);

    // The worker's metrics, on the shared registry. The slot lowers its gauges just after it
    // records the outcome the API already shows, so they are polled for.
    crate::helpers::wait_until(std::time::Duration::from_secs(10), || async {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        metrics.contains("sluice_runs_running{org=\"acme\"} 0")
            && metrics.contains("sluice_workers_busy 0")
    })
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("sluice_queue_wait_seconds_count 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_runs_running{org=\"acme\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("sluice_workers_busy 0"), "{metrics}");
}

#[tokio::test]
async fn a_run_executes_on_a_worker_through_the_embedded_queue() {
    runs_through_a_worker(Backend::Embedded).await;
}

#[tokio::test]
async fn a_run_executes_on_a_worker_through_redis() {
    runs_through_a_worker(Backend::Redis).await;
}

#[tokio::test]
async fn a_jenkinsfile_that_does_not_lint_fails_the_run_before_any_step() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("ran");
    let repo = git_repo(&format!(
        "pipeline {{ agent any\n stages {{ stage('a') {{ steps {{ sh 'touch {}' }} }}\n stage('b') {{ steps {{ script {{ x() }} }} }} }} }}\n",
        touched.display()
    ));
    project_for(&app, &owner, "acme", "web", &repo).await;
    let queue = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, queue, 1, 1);
    let runs = "/api/v1/orgs/acme/projects/web/runs";
    assert_eq!(app.post_as(runs, &owner, json!({})).await.0, 201);
    let run = wait_for_run(&app, &owner, &format!("{runs}/1"), &["succeeded", "failed"]).await;
    assert_eq!(run["status"], "failed");
    let reason = run["reason"].as_str().unwrap();
    assert!(reason.starts_with("Jenkinsfile:3:"), "{reason}");
    assert!(reason.contains("unknown step or function `x`"), "{reason}");
    assert!(!touched.exists(), "no step ran");
    assert_eq!(run["stages"], json!([]));
}

/// The probe's 2,000-level Jenkinsfile, from a repository: the run fails with the diagnostic
/// and the worker lives on to run the next one.
#[tokio::test]
async fn a_deeply_nested_jenkinsfile_fails_its_run_and_the_worker_goes_on() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let levels = 2000;
    let deep = git_repo(&format!(
        "pipeline {{\n{}{}}}\n",
        "a {\n".repeat(levels),
        "}\n".repeat(levels)
    ));
    project_for(&app, &owner, "acme", "deep", &deep).await;
    let fine = git_repo("pipeline { agent any\n stages { stage('a') { steps { echo 'hi' } } } }\n");
    project_for(&app, &owner, "acme", "fine", &fine).await;
    let queue = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, queue, 1, 1);
    let deep_runs = "/api/v1/orgs/acme/projects/deep/runs";
    assert_eq!(app.post_as(deep_runs, &owner, json!({})).await.0, 201);
    let run = wait_for_run(
        &app,
        &owner,
        &format!("{deep_runs}/1"),
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(run["status"], "failed");
    let reason = run["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "Jenkinsfile:101:3: nested more than 100 levels deep (blocks, lists and calls)"
    );
    let fine_runs = "/api/v1/orgs/acme/projects/fine/runs";
    assert_eq!(app.post_as(fine_runs, &owner, json!({})).await.0, 201);
    let run = wait_for_run(
        &app,
        &owner,
        &format!("{fine_runs}/1"),
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

#[tokio::test]
async fn queued_runs_all_still_run_after_redis_loses_every_job() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo("pipeline { agent any\n stages { stage('a') { steps { echo 'hi' } } } }\n");
    project_for(&app, &owner, "acme", "web", &repo).await;
    let runs = "/api/v1/orgs/acme/projects/web/runs";
    for _ in 0..3 {
        assert_eq!(app.post_as(runs, &owner, json!({})).await.0, 201);
    }
    let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4().simple());
    let queue: std::sync::Arc<dyn sluice_core::queue::Queue> = std::sync::Arc::new(
        sluice_core::queue::redis::RedisQueue::connect(
            &crate::helpers::redis_url(),
            &prefix,
            sluice_core::queue::QueueSettings::default(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        sluice_core::dispatch::publish_outbox(&app.db, queue.as_ref(), 16)
            .await
            .unwrap(),
        3
    );
    // FLUSHALL, as far as this test's keys go (other tests share this Redis).
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:jobs"))
        .arg(format!("{prefix}:dead"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);

    let _fleet = start_fleet(&app, queue, 1, 2);
    for n in 1..=3 {
        let run = wait_for_run(
            &app,
            &owner,
            &format!("{runs}/{n}"),
            &["succeeded", "failed"],
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
}

#[tokio::test]
async fn a_run_is_taken_over_only_when_its_heartbeat_is_stale_and_ends_once() {
    use sluice_core::store::execution::{self, Start};
    use sluice_core::store::runs::RunStatus;
    use std::time::Duration;

    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "web").await;
    let (_, created) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(created["attempt"], 0);
    let id: i64 = app
        .scalar("SELECT id FROM runs")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let long = Duration::from_secs(3600);
    let Start::Started(first) = execution::start(&app.db, id, "a", long).await.unwrap() else {
        panic!("a queued run is started");
    };
    assert_eq!(first.attempt, 1);
    assert_eq!(
        execution::start(&app.db, id, "b", long).await.unwrap(),
        Start::Busy,
        "a fresh heartbeat keeps it with its worker"
    );
    let Start::TakenOver(second) = execution::start(&app.db, id, "b", Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("a stale heartbeat lets another worker take over");
    };
    assert_eq!(second.attempt, 2);
    assert!(
        !execution::heartbeat(&app.db, id, 1).await.unwrap(),
        "the first worker learns it lost the run"
    );
    assert!(
        !execution::finish(&app.db, id, 1, RunStatus::Failed, None)
            .await
            .unwrap(),
        "the superseded attempt cannot end it"
    );
    assert!(
        execution::finish(&app.db, id, 2, RunStatus::Succeeded, None)
            .await
            .unwrap()
    );
    assert!(matches!(
        execution::start(&app.db, id, "c", Duration::ZERO)
            .await
            .unwrap(),
        Start::Skip(_)
    ));
    let (_, run) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs/1", &owner)
        .await;
    assert_eq!(
        (run["status"].as_str(), run["attempt"].as_i64()),
        (Some("succeeded"), Some(2))
    );
}

#[tokio::test]
async fn when_branch_and_when_tag_follow_the_ref_built() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(
        "pipeline { agent any\n stages {\n\
         stage('Branch') { when { branch 'main' }\n steps { sh 'test \"$BRANCH_NAME\" = main' } }\n\
         stage('Release') { when { tag 'v*' }\n steps { sh 'test \"$TAG_NAME\" = v1.0' } } } }\n",
    );
    crate::fleet::git(repo.dir.path(), &["tag", "v1.0"]);
    project_for(&app, &owner, "acme", "web", &repo).await;
    let queue = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, queue, 1, 2);
    let runs = "/api/v1/orgs/acme/projects/web/runs";
    for git_ref in ["main", "v1.0"] {
        assert_eq!(
            app.post_as(runs, &owner, json!({"ref": git_ref})).await.0,
            201
        );
    }
    let mut statuses = Vec::new();
    for n in 1..=2 {
        let run = wait_for_run(
            &app,
            &owner,
            &format!("{runs}/{n}"),
            &["succeeded", "failed"],
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let stages: Vec<String> = run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}={}",
                    s["name"].as_str().unwrap(),
                    s["status"].as_str().unwrap()
                )
            })
            .collect();
        statuses.push(stages.join(" "));
    }
    assert_eq!(
        statuses,
        [
            "Branch=succeeded Release=skipped",
            "Branch=skipped Release=succeeded"
        ]
    );
}
