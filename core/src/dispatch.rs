//! Getting queued runs into the job queue, and keeping them there: the outbox written with
//! each run is published, and a reconciler republishes queued runs whose job vanished (Redis
//! flushed, a crash between commit and publish). The database is the source of truth; the
//! queue may be lost.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tokio_util::sync::CancellationToken;

use crate::entities::{run, run_outbox};
use crate::queue::{Job, Queue};

/// How many outbox entries one pass publishes.
const BATCH: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("queue error")]
    Queue(#[from] crate::queue::QueueError),
}

/// Publishes unpublished outbox entries, oldest first; returns how many. A crash between
/// publishing and marking publishes again: workers treat a run that is no longer queued as
/// done, so a duplicate job is harmless.
pub async fn publish_outbox(
    db: &DatabaseConnection,
    queue: &dyn Queue,
) -> Result<usize, DispatchError> {
    let entries = run_outbox::Entity::find()
        .filter(run_outbox::Column::PublishedAt.is_null())
        .order_by_asc(run_outbox::Column::Id)
        .limit(BATCH)
        .all(db)
        .await?;
    let run_ids: Vec<i64> = entries.iter().map(|e| e.run_id).collect();
    let runs = run::Entity::find()
        .filter(run::Column::Id.is_in(run_ids))
        .all(db)
        .await?;
    let mut published = 0;
    for entry in entries {
        if let Some(r) = runs.iter().find(|r| r.id == entry.run_id) {
            queue
                .publish(Job {
                    run_id: r.id,
                    org_id: r.org_id,
                })
                .await?;
        }
        let mut active: run_outbox::ActiveModel = entry.into();
        active.published_at = Set(Some(Utc::now()));
        active.update(db).await?;
        published += 1;
    }
    Ok(published)
}

/// Republishes runs still `queued`, published longer ago than `grace`, whose job is no longer
/// in the queue; returns how many.
pub async fn reconcile(
    db: &DatabaseConnection,
    queue: &dyn Queue,
    grace: Duration,
) -> Result<usize, DispatchError> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::seconds(30));
    let queued = run::Entity::find()
        .filter(run::Column::Status.eq("queued"))
        .filter(run::Column::QueuedAt.lt(cutoff))
        .order_by_asc(run::Column::Id)
        .all(db)
        .await?;
    if queued.is_empty() {
        return Ok(0);
    }
    let unpublished: std::collections::HashSet<i64> = run_outbox::Entity::find()
        .filter(run_outbox::Column::PublishedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|e| e.run_id)
        .collect();
    let in_queue = queue.run_ids().await?;
    let mut republished = 0;
    for r in queued
        .iter()
        .filter(|r| !in_queue.contains(&r.id) && !unpublished.contains(&r.id))
    {
        tracing::warn!(
            run = r.id,
            "queued run missing from the queue: republishing"
        );
        queue
            .publish(Job {
                run_id: r.id,
                org_id: r.org_id,
            })
            .await?;
        republished += 1;
    }
    Ok(republished)
}

/// Publishes the outbox every `every`, reconciles every tenth pass and reports the queue's
/// depth, until cancelled.
pub async fn run(
    db: DatabaseConnection,
    queue: std::sync::Arc<dyn Queue>,
    metrics: crate::metrics::Metrics,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut pass = 0u64;
    loop {
        if let Err(err) = publish_outbox(&db, queue.as_ref()).await {
            tracing::error!(error = %err, "publishing the run outbox failed");
        }
        if pass.is_multiple_of(10)
            && let Err(err) = reconcile(&db, queue.as_ref(), every * 10).await
        {
            tracing::error!(error = %err, "reconciling queued runs failed");
        }
        match queue.depth().await {
            Ok(depth) => metrics
                .queue_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX)),
            Err(err) => tracing::warn!(error = %err, "reading the queue depth failed"),
        }
        pass += 1;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
