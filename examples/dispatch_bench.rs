//! Dispatcher passes on a large database (see `scripts/bench-dataset.sh`): how long one pass of
//! the fair scheduler takes (`dispatch::publish_outbox`, the embedded queue on the same
//! database, a backlog of 8) when thousands of runs wait across many orgs.
//!
//!   dispatch_bench DATABASE_URL [PASSES]
//!
//! Prints two figures: passes that admit nothing because the queue already holds its backlog
//! (the idle tick every process runs four times a second), and passes that admit a full
//! backlog (between passes, the admitted runs are marked finished and their jobs removed, as
//! if workers had run them at once).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sluice_core::dispatch::publish_outbox;
use sluice_core::queue::QueueSettings;
use sluice_core::queue::embedded::EmbeddedQueue;

const BACKLOG: u32 = 8;

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

/// As if workers had run the queued jobs at once: their runs end, the jobs go.
async fn drain(db: &DatabaseConnection) {
    db.execute_unprepared(
        "UPDATE runs SET status = 'succeeded', started_at = now(), finished_at = now() \
         WHERE id IN (SELECT run_id FROM queue_jobs); DELETE FROM queue_jobs",
    )
    .await
    .unwrap();
}

fn summary(label: &str, took: &mut [Duration], admitted: usize) {
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = took[((took.len() - 1) as f64 * 0.99).round() as usize];
    println!(
        "{label}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} passes ({admitted} runs admitted)",
        ms(took[took.len() / 2]),
        ms(p99),
        ms(*took.last().unwrap()),
        took.len()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(url) = args.get(1) else {
        eprintln!("usage: dispatch_bench DATABASE_URL [PASSES]");
        std::process::exit(2);
    };
    let passes: usize = args.get(2).map_or(20, |n| n.parse().unwrap());
    let db = Database::connect(url.as_str()).await.unwrap();
    let queue = EmbeddedQueue::new(db.clone(), QueueSettings::default());
    let waiting = scalar(
        &db,
        "SELECT COUNT(*) FROM run_outbox WHERE published_at IS NULL",
    )
    .await;
    let orgs = scalar(
        &db,
        "SELECT COUNT(DISTINCT r.org_id) FROM run_outbox o JOIN runs r ON r.id = o.run_id WHERE o.published_at IS NULL",
    )
    .await;
    let runs = scalar(&db, "SELECT COUNT(*) FROM runs").await;
    println!("{waiting} runs waiting across {orgs} orgs, {runs} runs in all");

    // Fill the backlog, then time passes that find it full.
    drain(&db).await;
    publish_outbox(&db, &queue, BACKLOG).await.unwrap();
    let mut idle = Vec::new();
    for _ in 0..passes {
        let started = Instant::now();
        let admitted = publish_outbox(&db, &queue, BACKLOG).await.unwrap();
        idle.push(started.elapsed());
        assert_eq!(admitted, 0);
    }
    summary("pass with the queue full", &mut idle, 0);

    let mut busy = Vec::new();
    let mut total = 0;
    for _ in 0..passes {
        drain(&db).await;
        let started = Instant::now();
        total += publish_outbox(&db, &queue, BACKLOG).await.unwrap();
        busy.push(started.elapsed());
    }
    summary("pass admitting a backlog of 8", &mut busy, total);
    drain(&db).await;

    // Retention on the same data: the 10 projects with the most runs keep their newest 10;
    // each pass deletes the rest's log chunks and artifacts 50 runs per transaction (the
    // chunks' objects were never written here: deleting them finds nothing, which is allowed).
    let objects =
        sluice_core::objects::local(&std::env::temp_dir().join("dispatch-bench-objects")).unwrap();
    let projects = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT project_id FROM runs GROUP BY project_id ORDER BY COUNT(*) DESC, project_id LIMIT 10",
        ))
        .await
        .unwrap();
    let mut took = Vec::new();
    let mut discarded = 0;
    for row in projects {
        let project_id: i64 = row.try_get_by_index(0).unwrap();
        let started = Instant::now();
        discarded += sluice_core::store::retention::discard_old(&db, &objects, project_id, 10)
            .await
            .unwrap();
        took.push(started.elapsed());
    }
    took.sort();
    println!(
        "retention, a project keeping its newest 10 runs: p50 {:.1} ms, max {:.1} ms over {} projects \
         ({discarded} runs discarded, {} per transaction)",
        took[took.len() / 2].as_secs_f64() * 1000.0,
        took.last().unwrap().as_secs_f64() * 1000.0,
        took.len(),
        sluice_core::store::retention::BATCH
    );
}
