//! Retention: a project's ended runs past the newest `keep` lose their log and artifacts (the
//! run's record, stages and test results stay, marked `discarded_at`). `keep` is the
//! pipeline's `buildDiscarder`, else its org's `default_keep_runs`; neither keeps every run.
//!
//! Runs go a batch at a time: the batch's objects are deleted first (in bulk where the store
//! can), then its rows in one short transaction that also marks the runs. No lock is held
//! across batches or while objects are deleted, and a discard cut short (a crash between the
//! two) leaves rows whose objects are gone, which the next pass deletes again.

use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::Result;
use crate::entities::{artifact, org, project, run, run_log_chunk};
use crate::logs;
use crate::objects::Objects;
use crate::store::artifacts;

/// Runs discarded per batch (and per transaction).
pub const BATCH: u64 = 50;

/// How many runs a project keeps: its `buildDiscarder`, else its org's default; None keeps all.
pub fn keep_for(project: &project::Model, org: Option<&org::Model>) -> Option<u32> {
    project
        .build_keep
        .or_else(|| org.and_then(|o| o.default_keep_runs).filter(|n| *n > 0))
        .and_then(|k| u32::try_from(k).ok())
}

/// Discards the logs and artifacts of the project's ended runs past the newest `keep`, a
/// batch at a time; returns how many runs were discarded.
pub async fn discard_old(
    db: &DatabaseConnection,
    objects: &Objects,
    project_id: i64,
    keep: u32,
) -> Result<usize> {
    let mut discarded = 0;
    loop {
        // The newest `keep` ended runs are never discarded, so they are the first `keep` of
        // those not discarded yet.
        let batch: Vec<i64> = run::Entity::find()
            .select_only()
            .column(run::Column::Id)
            .filter(run::Column::ProjectId.eq(project_id))
            .filter(run::Column::FinishedAt.is_not_null())
            .filter(run::Column::DiscardedAt.is_null())
            .order_by_desc(run::Column::Number)
            .offset(u64::from(keep))
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if batch.is_empty() {
            return Ok(discarded);
        }
        discard(db, objects, &batch).await?;
        discarded += batch.len();
        if (batch.len() as u64) < BATCH {
            return Ok(discarded);
        }
    }
}

/// Deletes these runs' log chunks and artifacts, objects first, then rows, and marks them.
async fn discard(db: &DatabaseConnection, objects: &Objects, runs: &[i64]) -> Result<()> {
    let chunks: Vec<(i64, i32)> = run_log_chunk::Entity::find()
        .select_only()
        .column(run_log_chunk::Column::RunId)
        .column(run_log_chunk::Column::Seq)
        .filter(run_log_chunk::Column::RunId.is_in(runs.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let files: Vec<(i64, String)> = artifact::Entity::find()
        .select_only()
        .column(artifact::Column::RunId)
        .column(artifact::Column::Path)
        .filter(artifact::Column::RunId.is_in(runs.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let paths: Vec<Path> = chunks
        .iter()
        .map(|(run, seq)| logs::chunk_path(*run, *seq))
        .chain(
            files
                .iter()
                .map(|(run, path)| artifacts::object_path(*run, path)),
        )
        .collect();
    let deleted = objects
        .delete_stream(futures_util::stream::iter(paths.into_iter().map(Ok)).boxed())
        .filter_map(|r| async move {
            match r {
                Err(object_store::Error::NotFound { .. }) => None,
                other => Some(other),
            }
        })
        .try_collect::<Vec<Path>>()
        .await;
    deleted?;
    let txn = db.begin().await?;
    run_log_chunk::Entity::delete_many()
        .filter(run_log_chunk::Column::RunId.is_in(runs.iter().copied()))
        .exec(&txn)
        .await?;
    artifact::Entity::delete_many()
        .filter(artifact::Column::RunId.is_in(runs.iter().copied()))
        .exec(&txn)
        .await?;
    run::Entity::update_many()
        .col_expr(run::Column::DiscardedAt, Expr::value(Utc::now()))
        .filter(run::Column::Id.is_in(runs.iter().copied()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}
