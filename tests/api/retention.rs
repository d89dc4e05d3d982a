//! Retention: without a `buildDiscarder`, an org's `default_keep_runs` decides how many runs
//! each project keeps; older runs lose their logs and artifacts (objects and rows), a batch at
//! a time, and are marked `discarded_at`; their records stay, and their log says why it is
//! empty.

use std::time::Duration;

use serde_json::json;

use crate::execution::{push, setup, text_log};
use crate::fleet::{Backend, queue, start_fleet, wait_for_run};

const PIPELINE: &str = r#"pipeline {
    agent any
    stages {
        stage('Build') {
            steps {
                sh 'echo marker-$BUILD_NUMBER; echo build-$BUILD_NUMBER > out.txt'
                archiveArtifacts 'out.txt'
            }
        }
    }
}
"#;

const RUNS: &str = "/api/v1/orgs/acme/projects/web/runs";

/// Files the app's object store (the local one, under its data dir) holds under `prefix`
/// (`logs/<run>` or `artifacts/<run>`).
fn objects_under(app: &crate::helpers::TestApp, prefix: &str) -> usize {
    let dir = app.data_dir().join("objects").join(prefix);
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

/// `PATCH /api/v1/orgs/acme {"default_keep_runs": keep}` as `who`.
async fn set_keep(
    app: &crate::helpers::TestApp,
    who: &crate::helpers::Auth,
    keep: i64,
) -> (u16, serde_json::Value) {
    app.call(
        reqwest::Method::PATCH,
        "/api/v1/orgs/acme",
        who,
        Some(json!({"default_keep_runs": keep})),
    )
    .await
}

#[tokio::test]
async fn an_orgs_default_keep_discards_older_runs_logs_and_artifacts() {
    let app = crate::helpers::spawn_app().await;
    let (owner, repo, secret) = setup(&app, PIPELINE).await;

    // Validated, admins only, shown on the org.
    let (status, body) = set_keep(&app, &owner, -1).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["field"], "default_keep_runs");
    let (member, _) = app
        .join(&owner, "acme", "dev@example.com", "developer")
        .await;
    let (status, _) = set_keep(&app, &member, 1).await;
    assert_eq!(status, 403);
    let (status, body) = set_keep(&app, &owner, 2).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["default_keep_runs"], 2);

    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let n = push(&app, &secret, &repo).await;
        wait_for_run(&app, &owner, &format!("{RUNS}/{n}"), &["succeeded"]).await;
        numbers.push(n);
    }
    let id_of = |n: i64| {
        let app = &app;
        async move {
            app.scalar(&format!(
                "SELECT CAST(id AS BIGINT) FROM runs WHERE number = {n}"
            ))
            .await
            .unwrap()
        }
    };
    // The first run is past the newest two: its log and artifact are gone, rows and objects.
    let first = id_of(numbers[0]).await;
    let discarded = app
        .scalar(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM runs WHERE id = {first} AND discarded_at IS NOT NULL"
        ))
        .await;
    assert_eq!(discarded.as_deref(), Some("1"));
    for table in ["run_log_chunks", "artifacts"] {
        let left = app
            .scalar(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM {table} WHERE run_id = {first}"
            ))
            .await;
        assert_eq!(left.as_deref(), Some("0"), "{table}");
    }
    assert_eq!(objects_under(&app, &format!("logs/{first}")), 0);
    assert_eq!(objects_under(&app, &format!("artifacts/{first}")), 0);
    let (status, _) = app
        .get_as(&format!("{RUNS}/{}/artifacts/out.txt", numbers[0]), &owner)
        .await;
    assert_eq!(status, 404);
    let (status, run) = app.get_as(&format!("{RUNS}/{}", numbers[0]), &owner).await;
    assert_eq!((status, run["status"].as_str()), (200, Some("succeeded")));
    let log = text_log(&app, &owner, numbers[0]).await;
    assert!(
        log.contains("discarded by the retention policy") && !log.contains("marker-"),
        "{log}"
    );
    // The newest two keep theirs.
    for &n in &numbers[1..] {
        let log = text_log(&app, &owner, n).await;
        assert!(log.contains(&format!("marker-{n}")), "{log}");
        let (status, _) = app
            .get_as(&format!("{RUNS}/{n}/artifacts/out.txt"), &owner)
            .await;
        assert_eq!(status, 200);
        let id = id_of(n).await;
        assert!(objects_under(&app, &format!("logs/{id}")) > 0);
    }

    // Many old runs go in batches, each run once: 120 more ended runs, older than these.
    app.scalar(
        "INSERT INTO runs (org_id, project_id, number, status, \"trigger\", params, queued_at, \
         finished_at, attempt, cancel_requested, log_lines, log_bytes) \
         SELECT r.org_id, r.project_id, -k.n, r.status, r.\"trigger\", r.params, r.queued_at, \
         r.finished_at, r.attempt, r.cancel_requested, r.log_lines, r.log_bytes \
         FROM runs r, (WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 120) \
         SELECT n FROM s) k WHERE r.id = (SELECT MAX(id) FROM runs)",
    )
    .await;
    let project_id: i64 = app
        .scalar("SELECT CAST(id AS BIGINT) FROM projects WHERE slug = 'web'")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let gone =
        sluice_core::store::retention::discard_old(&app.db, &app.state.objects, project_id, 2)
            .await
            .unwrap();
    assert_eq!(
        gone,
        120,
        "the synthetic runs, in batches of {}",
        sluice_core::store::retention::BATCH
    );
    let kept = app
        .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM runs WHERE discarded_at IS NULL")
        .await;
    assert_eq!(kept.as_deref(), Some("2"));
    // Nothing is left to do: a second pass discards nothing.
    let again =
        sluice_core::store::retention::discard_old(&app.db, &app.state.objects, project_id, 2)
            .await
            .unwrap();
    assert_eq!(again, 0);
}

/// The rest of `logRotator`: `artifactNumToKeepStr` strips older runs' artifacts but keeps
/// their logs; `daysToKeepStr` discards runs that ended longer ago (log and artifacts).
#[tokio::test]
async fn log_rotator_days_and_artifact_counts_are_applied() {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use sluice_core::entities::{project, run};

    let app = crate::helpers::spawn_app().await;
    let pipeline = PIPELINE.replace(
        "    agent any\n",
        "    agent any\n    options { buildDiscarder(logRotator(daysToKeepStr: '30', artifactNumToKeepStr: '1', numToKeepStr: '')) }\n",
    );
    let (owner, repo, secret) = setup(&app, &pipeline).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let n = push(&app, &secret, &repo).await;
        wait_for_run(&app, &owner, &format!("{RUNS}/{n}"), &["succeeded"]).await;
        numbers.push(n);
    }
    // Only the newest run keeps its artifact; every log stays, nothing is marked discarded.
    for (i, &n) in numbers.iter().enumerate() {
        let (status, _) = app
            .get_as(&format!("{RUNS}/{n}/artifacts/out.txt"), &owner)
            .await;
        assert_eq!(status, if i == 2 { 200 } else { 404 }, "run {n}");
        let log = text_log(&app, &owner, n).await;
        assert!(log.contains(&format!("marker-{n}")), "{log}");
    }
    let discarded = app
        .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM runs WHERE discarded_at IS NOT NULL")
        .await;
    assert_eq!(discarded.as_deref(), Some("0"));

    // The first run ended 40 days ago: the next pass discards it, and only it.
    run::Entity::update_many()
        .col_expr(
            run::Column::FinishedAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::days(40)),
        )
        .filter(run::Column::Number.eq(numbers[0]))
        .exec(&app.db)
        .await
        .unwrap();
    let web = project::Entity::find()
        .filter(project::Column::Slug.eq("web"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let policy = sluice_core::store::retention::policy_for(&web, None);
    assert_eq!(
        (policy.keep, policy.days, policy.artifact_keep),
        (None, Some(30), Some(1))
    );
    let (runs, artifacts_only) =
        sluice_core::store::retention::apply(&app.db, &app.state.objects, web.id, &policy)
            .await
            .unwrap();
    assert_eq!((runs, artifacts_only), (1, 0));
    let log = text_log(&app, &owner, numbers[0]).await;
    assert!(log.contains("discarded by the retention policy"), "{log}");
    let log = text_log(&app, &owner, numbers[1]).await;
    assert!(log.contains(&format!("marker-{}", numbers[1])), "{log}");
}
