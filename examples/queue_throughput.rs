//! Job queue throughput: jobs per second from publish to ack through the Redis backend (and
//! the embedded backend on SQLite for reference), with producers and consumers running at once.
//!
//!   cargo run --release --example queue_throughput -- [jobs] [consumers] [producers]
//!
//! `scripts/bench-queue.sh` runs it next to `redis-benchmark` on the same Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluice_core::queue::embedded::EmbeddedQueue;
use sluice_core::queue::redis::RedisQueue;
use sluice_core::queue::{Job, Queue, QueueSettings};

/// Publishes `jobs` from `producers` while `consumers` claim and ack; returns jobs/s.
async fn enqueue_to_ack(queue: Arc<dyn Queue>, jobs: u64, consumers: usize, producers: u64) -> f64 {
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = p;
            while n < jobs {
                let id = i64::try_from(n).unwrap();
                queue
                    .publish(Job {
                        run_id: id,
                        org_id: 1,
                    })
                    .await
                    .unwrap();
                n += producers;
            }
        }));
    }
    for c in 0..consumers {
        let queue = queue.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("bench-{c}");
            while acked.load(Ordering::Relaxed) < jobs {
                if let Some(claimed) = queue.claim(&name, Duration::from_millis(50)).await.unwrap()
                {
                    queue.ack(&claimed).await.unwrap();
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    jobs as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: u64 = args.next().map_or(20_000, |a| a.parse().expect("jobs"));
    let consumers: usize = args.next().map_or(8, |a| a.parse().expect("consumers"));
    let producers: u64 = args.next().map_or(4, |a| a.parse().expect("producers"));
    let redis_url =
        std::env::var("SLUICE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let settings = QueueSettings::default();

    let prefix = format!("sluice-bench-{}", std::process::id());
    let redis: Arc<dyn Queue> = Arc::new(
        RedisQueue::connect(&redis_url, &prefix, settings)
            .await
            .expect("Redis"),
    );
    let rate = enqueue_to_ack(redis, jobs, consumers, producers).await;
    println!(
        "redis    enqueue->ack: {rate:>9.0} jobs/s ({jobs} jobs, {producers} producers, {consumers} consumers)"
    );
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:jobs"))
        .arg(format!("{prefix}:dead"))
        .query_async(&mut conn)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let db = sluice_core::db::connect(&url.into(), 10).await.unwrap();
    sluice_core::db::migrate(&db).await.unwrap();
    let embedded: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new(db, settings));
    let small = jobs.min(5_000);
    let rate = enqueue_to_ack(embedded, small, consumers, producers).await;
    println!(
        "embedded enqueue->ack: {rate:>9.0} jobs/s ({small} jobs on SQLite, {producers} producers, {consumers} consumers)"
    );
}
