//! From the run outbox to the queue, and back again when the queue loses jobs.

use std::time::Duration;

use serde_json::json;
use sluice_core::dispatch::{publish_outbox, reconcile};
use sluice_core::queue::embedded::EmbeddedQueue;
use sluice_core::queue::redis::RedisQueue;
use sluice_core::queue::{Queue, QueueSettings};

use crate::helpers::{TestApp, redis_url, spawn_app};

/// An app with three queued runs of acme/web.
async fn three_runs() -> TestApp {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "web").await;
    for _ in 0..3 {
        let (status, _) = app
            .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
            .await;
        assert_eq!(status, 201);
    }
    app
}

#[tokio::test]
async fn the_outbox_is_published_once_into_the_embedded_queue() {
    let app = three_runs().await;
    let queue = EmbeddedQueue::new(app.db.clone(), QueueSettings::default());
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 3);
    assert_eq!(queue.depth().await.unwrap(), 3);
    assert_eq!(
        publish_outbox(&app.db, &queue, 100).await.unwrap(),
        0,
        "published entries stay published"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM run_outbox WHERE published_at IS NULL")
            .await
            .as_deref(),
        Some("0")
    );
    // Nothing is missing, so the reconciler republishes nothing.
    assert_eq!(
        reconcile(&app.db, &queue, Duration::ZERO, Duration::from_secs(3600))
            .await
            .unwrap()
            .republished,
        0
    );
}

#[tokio::test]
async fn queued_runs_survive_redis_losing_every_job() {
    let app = three_runs().await;
    let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4().simple());
    let queue = RedisQueue::connect(&redis_url(), &prefix, QueueSettings::default())
        .await
        .unwrap();
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 3);
    assert_eq!(queue.depth().await.unwrap(), 3);

    // What FLUSHALL does to this queue (only its own keys: other tests share this Redis).
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:jobs"))
        .arg(format!("{prefix}:dead"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);

    assert_eq!(
        reconcile(&app.db, &queue, Duration::ZERO, Duration::from_secs(3600))
            .await
            .unwrap()
            .republished,
        3,
        "every queued run republished"
    );
    let mut runs = Vec::new();
    while let Some(claimed) = queue
        .claim("worker", Duration::from_millis(200))
        .await
        .unwrap()
    {
        runs.push(claimed.job.run_id);
        queue.ack(&claimed).await.unwrap();
    }
    runs.sort();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(
        reconcile(&app.db, &queue, Duration::ZERO, Duration::from_secs(3600))
            .await
            .unwrap()
            .republished,
        3,
        "still queued in the database: republished again"
    );
}

#[tokio::test]
async fn a_run_cancelled_before_admission_is_never_published_and_its_entry_is_closed() {
    use sea_orm::ConnectionTrait;
    let app = three_runs().await;
    // Cancel run 2 while it still waits for admission (straight in the database, as a cancel
    // racing the scheduler would leave it).
    app.db
        .execute_unprepared("UPDATE runs SET status = 'cancelled' WHERE number = 2")
        .await
        .unwrap();
    let queue = EmbeddedQueue::new(app.db.clone(), QueueSettings::default());
    assert_eq!(publish_outbox(&app.db, &queue, 100).await.unwrap(), 2);
    let published = app
        .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM queue_jobs j JOIN runs r ON r.id = j.run_id WHERE r.number = 2")
        .await;
    assert_eq!(
        published.as_deref(),
        Some("0"),
        "the cancelled run was queued"
    );
    // Its outbox entry still waits until the housekeeping closes it; then nothing waits.
    assert_eq!(
        app.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM run_outbox WHERE published_at IS NULL")
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        sluice_core::schedule::close_cancelled(&app.db)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        app.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM run_outbox WHERE published_at IS NULL")
            .await
            .as_deref(),
        Some("0")
    );
    // The two admitted runs hold the queue: the next pass admits nothing more.
    assert_eq!(publish_outbox(&app.db, &queue, 2).await.unwrap(), 0);
}
