//! The fair scheduler and the cron scheduler: one org's flood does not delay another org's
//! runs, per-org and per-project limits hold, queued runs show their place, and each cron
//! slot fires once however many schedulers look at it.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use sluice_core::dispatch::publish_outbox;
use sluice_core::entities::{org, run};
use sluice_core::queue::QueueSettings;
use sluice_core::queue::embedded::EmbeddedQueue;

use crate::fleet::{Backend, git_repo, project_for, queue, start_fleet};
use crate::helpers::{Auth, TestApp, spawn_app, wait_until};

async fn queue_runs(app: &TestApp, auth: &Auth, org: &str, project: &str, n: usize) {
    for _ in 0..n {
        let (status, body) = app
            .post_as(
                &format!("/api/v1/orgs/{org}/projects/{project}/runs"),
                auth,
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

async fn org_id(app: &TestApp, slug: &str) -> i64 {
    org::Entity::find()
        .filter(org::Column::Slug.eq(slug))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// 500 runs of one org queued first, then 5 of another: the 5 start before the first org's
/// 50th. Returns how many of the big org's runs started before the small org's last one.
async fn a_flood_does_not_delay_another_org(backend: Backend) -> usize {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    let repo = git_repo("pipeline { agent any\n stages { stage('a') { steps { echo 'hi' } } } }\n");
    for slug in ["flood", "small"] {
        app.create_org(&owner, slug).await;
        project_for(&app, &owner, slug, "app", &repo).await;
    }
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/flood",
            &owner,
            Some(json!({"max_concurrent_runs": 100})),
        )
        .await;
    assert_eq!(status, 200);
    queue_runs(&app, &owner, "flood", "app", 500).await;
    queue_runs(&app, &owner, "small", "app", 5).await;
    let (_, fifth) = app
        .get_as("/api/v1/orgs/small/projects/app/runs/5", &owner)
        .await;
    assert_eq!(fifth["queue_position"], 5, "its place among its org's runs");

    let queue = queue(&app, backend, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, queue, 2, 2);
    let small = org_id(&app, "small").await;
    let flood = org_id(&app, "flood").await;
    wait_until(Duration::from_secs(120), || async {
        run::Entity::find()
            .filter(run::Column::OrgId.eq(small))
            .filter(run::Column::StartedAt.is_not_null())
            .all(&app.db)
            .await
            .unwrap()
            .len()
            == 5
    })
    .await;
    let small_runs = run::Entity::find()
        .filter(run::Column::OrgId.eq(small))
        .all(&app.db)
        .await
        .unwrap();
    let last_small = small_runs
        .iter()
        .filter_map(|r| r.started_at)
        .max()
        .unwrap();
    let flood_before = run::Entity::find()
        .filter(run::Column::OrgId.eq(flood))
        .filter(run::Column::StartedAt.lte(last_small))
        .all(&app.db)
        .await
        .unwrap()
        .len();
    assert!(
        flood_before < 50,
        "{flood_before} of the flood's runs started before the small org's 5th"
    );
    println!(
        "fairness ({backend:?}): the small org's 5 runs all started after {flood_before} of the flood's 500"
    );
    flood_before
}

#[tokio::test]
async fn a_flood_of_one_org_does_not_delay_another_on_the_embedded_queue() {
    a_flood_does_not_delay_another_org(Backend::Embedded).await;
}

#[tokio::test]
async fn a_flood_of_one_org_does_not_delay_another_on_redis() {
    a_flood_does_not_delay_another_org(Backend::Redis).await;
}

#[tokio::test]
async fn org_limits_and_serial_projects_hold_back_runs() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "web").await;
    app.create_project(&owner, "acme", "serial").await;
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme",
            &owner,
            Some(json!({"max_concurrent_runs": 3})),
        )
        .await;
    assert_eq!(status, 200);
    // What `options { disableConcurrentBuilds() }` records when a run parses the Jenkinsfile.
    app.db
        .execute_unprepared("UPDATE projects SET concurrent_builds = false WHERE slug = 'serial'")
        .await
        .unwrap();
    queue_runs(&app, &owner, "acme", "serial", 3).await;
    queue_runs(&app, &owner, "acme", "web", 5).await;
    let queue = EmbeddedQueue::new(app.db.clone(), QueueSettings::default());

    assert_eq!(
        publish_outbox(&app.db, &queue, 100).await.unwrap(),
        3,
        "the org's limit"
    );
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 0);
    let serial_admitted = app
        .scalar(
            "SELECT COUNT(*) FROM run_outbox o JOIN runs r ON r.id = o.run_id \
             JOIN projects p ON p.id = r.project_id \
             WHERE p.slug = 'serial' AND o.published_at IS NOT NULL",
        )
        .await;
    assert_eq!(serial_admitted.as_deref(), Some("1"), "one at a time");
    let (_, waiting) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs/5", &owner)
        .await;
    assert_eq!(
        waiting["queue_position"], 8,
        "behind the org's 7 older queued runs"
    );

    // A run ends: one slot frees, and the serial project still waits for its own.
    app.db
        .execute_unprepared(
            "UPDATE runs SET status = 'succeeded' WHERE id = (SELECT MIN(id) FROM runs)",
        )
        .await
        .unwrap();
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 1);
    // The backlog caps what waits in the queue whatever the limits.
    app.db
        .execute_unprepared("UPDATE orgs SET max_concurrent_runs = 100")
        .await
        .unwrap();
    assert_eq!(
        publish_outbox(&app.db, &queue, 4).await.unwrap(),
        1,
        "3 already wait in the queue; a backlog of 4 takes one more"
    );
}

#[tokio::test]
async fn each_cron_slot_fires_once_across_schedulers() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "nightly").await;
    // What `triggers { cron('* * * * *') }` records when a run parses the Jenkinsfile.
    app.db
        .execute_unprepared("UPDATE projects SET pipeline_cron = '* * * * *'")
        .await
        .unwrap();
    let from = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 30).unwrap();
    let until = from + chrono::Duration::minutes(3);
    // Four schedulers (as in four processes) look at the same three minutes at once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            sluice_core::cron_runs::fire_due(&db, from, until, None)
                .await
                .unwrap()
        }));
    }
    let mut fired = 0;
    for task in tasks {
        fired += task.await.unwrap();
    }
    assert_eq!(fired, 3, "10:01, 10:02 and 10:03, once each");
    let (_, runs) = app
        .get_as("/api/v1/orgs/acme/projects/nightly/runs", &owner)
        .await;
    let triggers: Vec<&str> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["cron", "cron", "cron"]);
    assert_eq!(
        sluice_core::cron_runs::fire_due(&app.db, from, until, None)
            .await
            .unwrap(),
        0,
        "looking again fires nothing"
    );
    // `H` picks one stable minute per project: one run per hour.
    app.db
        .execute_unprepared("UPDATE projects SET pipeline_cron = 'H * * * *'")
        .await
        .unwrap();
    let hours =
        sluice_core::cron_runs::fire_due(&app.db, until, until + chrono::Duration::hours(3), None)
            .await
            .unwrap();
    assert_eq!(hours, 3);
}
