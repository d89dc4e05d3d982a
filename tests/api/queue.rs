//! The queue's conformance suite against every backend: the embedded queue on this run's
//! database (SQLite or PostgreSQL) and Redis Streams on a real Redis.

use std::time::Duration;

use sluice_core::queue::embedded::EmbeddedQueue;
use sluice_core::queue::redis::RedisQueue;
use sluice_core::queue::{QueueSettings, conformance};

use crate::helpers::{TestDb, redis_url};

async fn embedded(lease: Duration) -> (EmbeddedQueue, TestDb) {
    let test_db = TestDb::create().await;
    let db = sluice_core::db::connect(&test_db.url.clone().into(), 4)
        .await
        .unwrap();
    sluice_core::db::migrate(&db).await.unwrap();
    (
        EmbeddedQueue::new(
            db,
            QueueSettings {
                lease,
                max_deliveries: 3,
            },
        ),
        test_db,
    )
}

async fn redis(lease: Duration) -> RedisQueue {
    let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4().simple());
    RedisQueue::connect(
        &redis_url(),
        &prefix,
        QueueSettings {
            lease,
            max_deliveries: 3,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn embedded_queue_is_fifo_with_acks_and_depth() {
    let (queue, _db) = embedded(Duration::from_secs(30)).await;
    conformance::fifo_ack_and_depth(&queue).await;
}

#[tokio::test]
async fn embedded_queue_reclaims_silent_claims_and_dead_letters() {
    // Long enough that a heartbeat write waiting behind the rest of the parallel suite's
    // writes (hundreds of ms on SQLite under CI load) does not look like a dead worker.
    let lease = Duration::from_millis(1000);
    let (queue, _db) = embedded(lease).await;
    conformance::leases_reclaim_and_dead_letters(&queue, lease).await;
}

#[tokio::test]
async fn redis_queue_is_fifo_with_acks_and_depth() {
    conformance::fifo_ack_and_depth(&redis(Duration::from_secs(30)).await).await;
}

#[tokio::test]
async fn redis_queue_reclaims_silent_claims_and_dead_letters() {
    let lease = Duration::from_millis(200);
    conformance::leases_reclaim_and_dead_letters(&redis(lease).await, lease).await;
}

#[tokio::test]
async fn embedded_queue_takes_jobs_back_from_a_stopping_worker() {
    let (queue, _db) = embedded(Duration::from_secs(30)).await;
    conformance::release_hands_a_job_back(&queue).await;
}

#[tokio::test]
async fn redis_queue_takes_jobs_back_from_a_stopping_worker() {
    conformance::release_hands_a_job_back(&redis(Duration::from_secs(30)).await).await;
}
