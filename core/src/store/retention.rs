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
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, TransactionTrait,
};

use crate::Result;
use crate::entities::{artifact, org, project, run, run_log_chunk};
use crate::logs;
use crate::objects::Objects;
use crate::store::artifacts;

/// Runs discarded per batch (and per transaction).
pub const BATCH: u64 = 50;

/// What a project keeps: its `logRotator`'s counts, else (when its pipeline declares none) its
/// org's default number of runs. None everywhere keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Runs past the newest this many lose their log and artifacts.
    pub keep: Option<u32>,
    /// Runs that ended more than this many days ago lose their log and artifacts.
    pub days: Option<u32>,
    /// Runs past the newest this many lose their artifacts.
    pub artifact_keep: Option<u32>,
    /// Runs that ended more than this many days ago lose their artifacts.
    pub artifact_days: Option<u32>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// The project's policy: its `buildDiscarder`, else its org's default.
pub fn policy_for(project: &project::Model, org: Option<&org::Model>) -> Policy {
    let n = |v: Option<i32>| v.and_then(|k| u32::try_from(k).ok());
    let declared = Policy {
        keep: n(project.build_keep),
        days: n(project.build_keep_days),
        artifact_keep: n(project.artifact_keep),
        artifact_days: n(project.artifact_keep_days),
    };
    if !declared.is_empty() {
        return declared;
    }
    Policy {
        keep: n(org.and_then(|o| o.default_keep_runs).filter(|k| *k > 0)),
        ..Policy::default()
    }
}

/// Applies `policy` to the project's ended runs, a batch at a time; returns how many runs lost
/// their log and artifacts, and how many only their artifacts.
pub async fn apply(
    db: &DatabaseConnection,
    objects: &Objects,
    project_id: i64,
    policy: &Policy,
) -> Result<(usize, usize)> {
    let mut discarded = 0;
    if let Some(keep) = policy.keep {
        discarded += discard_old(db, objects, project_id, keep).await?;
    }
    let ago = |days: u32| Utc::now() - chrono::Duration::days(i64::from(days));
    if let Some(days) = policy.days {
        let which = run::Entity::find()
            .filter(run::Column::ProjectId.eq(project_id))
            .filter(run::Column::FinishedAt.lt(ago(days)))
            .filter(run::Column::DiscardedAt.is_null());
        discarded += each(db, objects, which, Loses::Everything).await?;
    }
    // Artifacts only: of runs up to the newest ended run past `artifact_keep`, and of runs that
    // ended before `artifact_days` ago.
    let newest_stripped: Option<i64> = match policy.artifact_keep {
        Some(keep) => {
            run::Entity::find()
                .select_only()
                .column(run::Column::Number)
                .filter(run::Column::ProjectId.eq(project_id))
                .filter(run::Column::FinishedAt.is_not_null())
                .order_by_desc(run::Column::Number)
                .offset(u64::from(keep))
                .limit(1)
                .into_tuple()
                .one(db)
                .await?
        }
        None => None,
    };
    let mut old = Condition::any();
    if let Some(number) = newest_stripped {
        old = old.add(
            Condition::all()
                .add(run::Column::Number.lte(number))
                .add(run::Column::FinishedAt.is_not_null()),
        );
    }
    if let Some(days) = policy.artifact_days {
        old = old.add(run::Column::FinishedAt.lt(ago(days)));
    }
    let mut stripped = 0;
    if !old.is_empty() {
        let with_artifacts = Query::select()
            .column(artifact::Column::RunId)
            .from(artifact::Entity)
            .to_owned();
        let which = run::Entity::find()
            .filter(run::Column::ProjectId.eq(project_id))
            .filter(old)
            .filter(run::Column::Id.in_subquery(with_artifacts));
        stripped = each(db, objects, which, Loses::Artifacts).await?;
    }
    Ok((discarded, stripped))
}

/// Discards the logs and artifacts of the project's ended runs past the newest `keep`, a
/// batch at a time; returns how many runs were discarded.
pub async fn discard_old(
    db: &DatabaseConnection,
    objects: &Objects,
    project_id: i64,
    keep: u32,
) -> Result<usize> {
    // The newest `keep` ended runs are never discarded, so they are the first `keep` of those
    // not discarded yet.
    let which = run::Entity::find()
        .filter(run::Column::ProjectId.eq(project_id))
        .filter(run::Column::FinishedAt.is_not_null())
        .filter(run::Column::DiscardedAt.is_null())
        .order_by_desc(run::Column::Number)
        .offset(u64::from(keep));
    each(db, objects, which, Loses::Everything).await
}

/// What a run selected by retention loses.
#[derive(Clone, Copy)]
enum Loses {
    /// Its log and artifacts; it is marked discarded.
    Everything,
    /// Its artifacts.
    Artifacts,
}

/// Applies `loses` to the runs `which` selects, `BATCH` at a time, until it selects none (each
/// batch leaves the selection); returns how many runs it took.
async fn each(
    db: &DatabaseConnection,
    objects: &Objects,
    which: Select<run::Entity>,
    loses: Loses,
) -> Result<usize> {
    let mut done = 0;
    loop {
        let batch: Vec<i64> = which
            .clone()
            .select_only()
            .column(run::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if batch.is_empty() {
            return Ok(done);
        }
        match loses {
            Loses::Everything => discard(db, objects, &batch).await?,
            Loses::Artifacts => strip_artifacts(db, objects, &batch).await?,
        }
        done += batch.len();
    }
}

/// The objects of these runs' artifacts.
async fn artifact_paths(db: &DatabaseConnection, runs: &[i64]) -> Result<Vec<Path>> {
    let files: Vec<(i64, String)> = artifact::Entity::find()
        .select_only()
        .column(artifact::Column::RunId)
        .column(artifact::Column::Path)
        .filter(artifact::Column::RunId.is_in(runs.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(files
        .iter()
        .map(|(run, path)| artifacts::object_path(*run, path))
        .collect())
}

/// Deletes these runs' artifacts, objects first, then rows (their logs stay).
async fn strip_artifacts(db: &DatabaseConnection, objects: &Objects, runs: &[i64]) -> Result<()> {
    delete_objects(objects, artifact_paths(db, runs).await?).await?;
    artifact::Entity::delete_many()
        .filter(artifact::Column::RunId.is_in(runs.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes objects in bulk where the store can; one already gone is fine.
async fn delete_objects(objects: &Objects, paths: Vec<Path>) -> Result<()> {
    objects
        .delete_stream(futures_util::stream::iter(paths.into_iter().map(Ok)).boxed())
        .filter_map(|r| async move {
            match r {
                Err(object_store::Error::NotFound { .. }) => None,
                other => Some(other),
            }
        })
        .try_collect::<Vec<Path>>()
        .await?;
    Ok(())
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
    let paths: Vec<Path> = chunks
        .iter()
        .map(|(run, seq)| logs::chunk_path(*run, *seq))
        .chain(artifact_paths(db, runs).await?)
        .collect();
    delete_objects(objects, paths).await?;
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
