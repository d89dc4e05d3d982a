//! The job queue between triggers and workers: a trait with two backends chosen at start-up,
//! `embedded` (a table in Sluice's own database, for `sluice serve`) and `redis` (Streams
//! with a consumer group, for scale-out). Delivery is at least once: a job whose worker stops
//! heart-beating is handed to another worker after its lease, and dead-lettered after too
//! many deliveries; workers check the run's state before running it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod embedded;
pub mod redis;

/// What a worker is handed: the run to execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub run_id: i64,
    pub org_id: i64,
}

/// A job claimed by one worker, until acknowledged or its lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub job: Job,
    /// The backend's handle for this delivery (row id or stream entry id).
    pub handle: String,
    /// How many times this job has been handed out, this time included.
    pub deliveries: u32,
}

/// Queue errors, with the backend's cause.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("redis error")]
    Redis(#[from] ::redis::RedisError),
    #[error("malformed job: {0}")]
    Malformed(String),
}

pub type QueueResult<T> = std::result::Result<T, QueueError>;

/// How long a claim lasts without a heartbeat, and how many deliveries a job gets.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub lease: Duration,
    pub max_deliveries: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            lease: Duration::from_secs(60),
            max_deliveries: 5,
        }
    }
}

/// The queue contract both backends meet (one shared test suite proves it).
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// Adds a job at the back.
    async fn publish(&self, job: Job) -> QueueResult<()>;
    /// The oldest job nobody holds (or whose lease ran out), for `consumer`; waits up to
    /// `wait` for one. Jobs past `max_deliveries` go to the dead letters instead.
    async fn claim(&self, consumer: &str, wait: Duration) -> QueueResult<Option<Claimed>>;
    /// Done with a job: it leaves the queue.
    async fn ack(&self, claimed: &Claimed) -> QueueResult<()>;
    /// Still working on it: the lease starts again.
    async fn heartbeat(&self, claimed: &Claimed) -> QueueResult<()>;
    /// Handing it back unfinished (a worker stopping): another worker may claim it at once,
    /// in its old place, and this delivery is not counted against it.
    async fn release(&self, claimed: &Claimed) -> QueueResult<()>;
    /// Jobs waiting or held, not counting dead letters.
    async fn depth(&self) -> QueueResult<u64>;
    /// Jobs given up on after too many deliveries.
    async fn dead_letters(&self) -> QueueResult<u64>;
    /// The runs that have a job in the queue (waiting or held), for the reconciler.
    async fn run_ids(&self) -> QueueResult<std::collections::HashSet<i64>>;
}

/// The behaviour every backend must show: one suite, run against each backend by the tests.
#[allow(clippy::unwrap_used, clippy::missing_panics_doc)]
pub mod conformance {

    use std::time::{Duration, Instant};

    use super::*;

    pub async fn fifo_ack_and_depth(queue: &dyn Queue) {
        for run_id in 1..=3 {
            queue.publish(Job { run_id, org_id: 7 }).await.unwrap();
        }
        assert_eq!(queue.depth().await.unwrap(), 3);
        let first = queue
            .claim("w1", Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            first.job,
            Job {
                run_id: 1,
                org_id: 7
            }
        );
        assert_eq!(first.deliveries, 1);
        let second = queue
            .claim("w2", Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.job.run_id, 2, "a held job is not handed out twice");
        queue.ack(&first).await.unwrap();
        queue.ack(&second).await.unwrap();
        assert_eq!(queue.depth().await.unwrap(), 1);
        let third = queue
            .claim("w1", Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        queue.ack(&third).await.unwrap();
        assert_eq!(queue.depth().await.unwrap(), 0);
        let started = Instant::now();
        assert!(
            queue
                .claim("w1", Duration::from_millis(200))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "claim waits for work"
        );
    }

    /// With a short lease: a silent worker's job goes to another; a heart-beating one keeps it.
    pub async fn leases_reclaim_and_dead_letters(queue: &dyn Queue, lease: Duration) {
        queue
            .publish(Job {
                run_id: 10,
                org_id: 1,
            })
            .await
            .unwrap();
        let held = queue
            .claim("alive", Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        // While heart-beating, nobody else gets it.
        let deadline = Instant::now() + lease * 3;
        while Instant::now() < deadline {
            let beat = Instant::now();
            queue.heartbeat(&held).await.unwrap();
            let stolen = queue
                .claim("thief", Duration::from_millis(10))
                .await
                .unwrap();
            assert!(
                stolen.is_none(),
                "taken {:?} after a heartbeat (lease {lease:?}): pick a longer lease if the \
                 database is this slow",
                beat.elapsed()
            );
        }
        // Silent past the lease: reclaimed by another worker, delivery count rising.
        let reclaimed = poll_claim(queue, "rescuer", lease * 20).await;
        assert_eq!((reclaimed.job.run_id, reclaimed.deliveries), (10, 2));
        // Keep abandoning it: after max deliveries it is dead-lettered, not handed out again.
        let mut last = reclaimed.deliveries;
        while let Some(again) = try_claim_after_lease(queue, lease).await {
            assert!(again.deliveries > last);
            last = again.deliveries;
        }
        assert_eq!(queue.dead_letters().await.unwrap(), 1);
        assert_eq!(queue.depth().await.unwrap(), 0);
    }

    /// A job handed back goes to the next claimer at once, in its place, without a delivery
    /// counted against it.
    pub async fn release_hands_a_job_back(queue: &dyn Queue) {
        for run_id in [21, 22] {
            queue.publish(Job { run_id, org_id: 3 }).await.unwrap();
        }
        let held = queue
            .claim("stopping", Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(held.job.run_id, 21);
        queue.release(&held).await.unwrap();
        let again = queue
            .claim("other", Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.job.run_id, again.deliveries),
            (21, 1),
            "handed back in its place, uncounted"
        );
        queue.ack(&again).await.unwrap();
        let next = queue
            .claim("other", Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.job.run_id, 22);
        queue.ack(&next).await.unwrap();
        assert_eq!(queue.depth().await.unwrap(), 0);
    }

    async fn poll_claim(queue: &dyn Queue, consumer: &str, within: Duration) -> Claimed {
        let deadline = Instant::now() + within;
        loop {
            if let Some(c) = queue
                .claim(consumer, Duration::from_millis(20))
                .await
                .unwrap()
            {
                return c;
            }
            assert!(Instant::now() < deadline, "job never reclaimed");
        }
    }

    async fn try_claim_after_lease(queue: &dyn Queue, lease: Duration) -> Option<Claimed> {
        let deadline = Instant::now() + lease * 20;
        while Instant::now() < deadline {
            if let Some(c) = queue
                .claim("rescuer", Duration::from_millis(20))
                .await
                .unwrap()
            {
                return Some(c);
            }
            if queue.dead_letters().await.unwrap() == 1 {
                return None;
            }
        }
        None
    }
}

/// The queue configured for this process: Redis when `SLUICE_REDIS_URL` is set, else the
/// embedded queue in the database.
pub async fn from_settings(
    settings: &crate::config::Settings,
    db: &sea_orm::DatabaseConnection,
) -> QueueResult<std::sync::Arc<dyn Queue>> {
    use secrecy::ExposeSecret;
    Ok(match &settings.redis_url {
        Some(url) => std::sync::Arc::new(
            redis::RedisQueue::connect(
                url.expose_secret(),
                &settings.queue_prefix,
                settings.queue_settings(),
            )
            .await?,
        ),
        None => std::sync::Arc::new(embedded::EmbeddedQueue::new(
            db.clone(),
            settings.queue_settings(),
        )),
    })
}
