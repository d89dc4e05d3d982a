//! A run's life on a worker, written so that each change happens once: every transition is a
//! compare-and-set on the run's status and attempt. A worker that stalls past its lease and
//! comes back finds its attempt superseded and its writes refused, so a run reclaimed from a
//! dead worker finishes exactly once.

use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::entities::{project, run, run_stage};
use crate::store::runs::RunStatus;
use crate::{Error, Result};

/// What a worker holding a job should do with the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The run was queued and is now this worker's (attempt in the model).
    Started(run::Model),
    /// The run's last worker stopped heart-beating; this worker took it over.
    TakenOver(run::Model),
    /// Running on a worker that heart-beat it less than `stale_after` ago.
    Busy,
    /// Nothing to do (finished, cancelled, or taken by another worker first): ack the job.
    Skip(&'static str),
}

/// Takes the run for `worker`: a queued run, or a running one whose heartbeat is older than
/// `stale_after`. Earlier attempts' stages are cleared.
pub async fn start(
    db: &impl ConnectionTrait,
    run_id: i64,
    worker: &str,
    stale_after: Duration,
) -> Result<Start> {
    let Some(current) = run::Entity::find_by_id(run_id).one(db).await? else {
        return Ok(Start::Skip("the run no longer exists"));
    };
    let now = Utc::now();
    let stale_before = now - chrono::Duration::from_std(stale_after).unwrap_or_default();
    let taking_over = match current.status.as_str() {
        "queued" => false,
        "running" | "waiting" if current.heartbeat_at.is_none_or(|at| at < stale_before) => true,
        "running" | "waiting" => return Ok(Start::Busy),
        _ => return Ok(Start::Skip("the run has already ended")),
    };
    let taken = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value("running"))
        .col_expr(
            run::Column::Attempt,
            Expr::col(run::Column::Attempt).add(1i32),
        )
        .col_expr(run::Column::Worker, Expr::value(worker.to_owned()))
        .col_expr(run::Column::HeartbeatAt, Expr::value(now))
        .col_expr(run::Column::WaitingFor, Expr::value(Option::<String>::None))
        .col_expr(
            run::Column::InputAnswer,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            run::Column::StartedAt,
            Expr::value(current.started_at.unwrap_or(now)),
        )
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::Status.eq(current.status.clone()))
        .filter(run::Column::Attempt.eq(current.attempt))
        .filter(
            sea_orm::Condition::any()
                .add(run::Column::Status.eq("queued"))
                .add(run::Column::HeartbeatAt.is_null())
                .add(run::Column::HeartbeatAt.lt(stale_before)),
        )
        .exec(db)
        .await?
        .rows_affected;
    if taken != 1 {
        return Ok(Start::Skip("another worker took the run first"));
    }
    run_stage::Entity::delete_many()
        .filter(run_stage::Column::RunId.eq(run_id))
        .exec(db)
        .await?;
    let model = run::Entity::find_by_id(run_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(if taking_over {
        Start::TakenOver(model)
    } else {
        Start::Started(model)
    })
}

/// Filters a write to the run as this attempt holds it.
fn held(run_id: i64, attempt: i32) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(run::Column::Id.eq(run_id))
        .add(run::Column::Status.is_in(["running", "waiting"]))
        .add(run::Column::Attempt.eq(attempt))
}

/// Records that the worker is alive; false when the attempt lost the run (cancelled,
/// reclaimed), and the worker should stop.
pub async fn heartbeat(db: &impl ConnectionTrait, run_id: i64, attempt: i32) -> Result<bool> {
    Ok(run::Entity::update_many()
        .col_expr(run::Column::HeartbeatAt, Expr::value(Utc::now()))
        .filter(held(run_id, attempt))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Ends the run; false when this attempt no longer holds it (nothing changed).
pub async fn finish(
    db: &impl ConnectionTrait,
    run_id: i64,
    attempt: i32,
    status: RunStatus,
    reason: Option<String>,
) -> Result<bool> {
    Ok(run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(status.as_str()))
        .col_expr(run::Column::FinishedAt, Expr::value(Utc::now()))
        .col_expr(run::Column::Reason, Expr::value(reason))
        .col_expr(run::Column::WaitingFor, Expr::value(Option::<String>::None))
        .filter(held(run_id, attempt))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Puts a run this worker cannot finish (it is stopping) back to `queued`, its stages
/// cleared, for another worker; false when this attempt no longer holds it.
pub async fn hand_back(db: &impl ConnectionTrait, run_id: i64, attempt: i32) -> Result<bool> {
    let changed = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value("queued"))
        .col_expr(run::Column::Worker, Expr::value(Option::<String>::None))
        .filter(held(run_id, attempt))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if changed {
        run_stage::Entity::delete_many()
            .filter(run_stage::Column::RunId.eq(run_id))
            .exec(db)
            .await?;
    }
    Ok(changed)
}

/// A stage began: its row, numbered in start order.
pub async fn stage_started(
    db: &impl ConnectionTrait,
    run_id: i64,
    seq: i32,
    parent: Option<i32>,
    name: &str,
) -> Result<()> {
    run_stage::ActiveModel {
        run_id: Set(run_id),
        seq: Set(seq),
        parent: Set(parent),
        name: Set(name.chars().take(255).collect()),
        status: Set("running".to_owned()),
        started_at: Set(Some(Utc::now())),
        finished_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A stage ended (`succeeded`, `failed`, `skipped`, `cancelled`, `unstable`).
pub async fn stage_finished(
    db: &impl ConnectionTrait,
    run_id: i64,
    seq: i32,
    status: &str,
) -> Result<()> {
    run_stage::Entity::update_many()
        .col_expr(run_stage::Column::Status, Expr::value(status))
        .col_expr(run_stage::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(run_stage::Column::RunId.eq(run_id))
        .filter(run_stage::Column::Seq.eq(seq))
        .exec(db)
        .await?;
    Ok(())
}

/// What the project's Jenkinsfile declared at its last parse, kept for the next triggers
/// (parameter checks), the cron scheduler and the fair scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The `parameters` block as JSON (see `store::params`).
    pub params: String,
    pub cron: Option<String>,
    pub concurrent_builds: bool,
    /// `buildDiscarder(logRotator(numToKeepStr))`.
    pub build_keep: Option<i32>,
    /// The rest of `logRotator`: `daysToKeepStr`, `artifactNumToKeepStr`,
    /// `artifactDaysToKeepStr`.
    pub build_keep_days: Option<i32>,
    pub artifact_keep: Option<i32>,
    pub artifact_keep_days: Option<i32>,
    /// `quietPeriod(n)`, in seconds.
    pub quiet_period: Option<i32>,
    /// `rateLimitBuilds(throttle: …)`.
    pub rate_limit: Option<RateLimit>,
}

/// At most `count` runs of a project start per `period` seconds; with `user_boost`, runs a
/// person started are not held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: i32,
    pub period: i32,
    pub user_boost: bool,
}

pub async fn remember_declared(
    db: &impl ConnectionTrait,
    project_id: i64,
    declared: Declared,
) -> Result<()> {
    let Some(found) = project::Entity::find_by_id(project_id).one(db).await? else {
        return Ok(());
    };
    if found.pipeline_params.as_deref() == Some(declared.params.as_str())
        && found.pipeline_cron == declared.cron
        && found.concurrent_builds == declared.concurrent_builds
        && found.build_keep == declared.build_keep
        && found.build_keep_days == declared.build_keep_days
        && found.artifact_keep == declared.artifact_keep
        && found.artifact_keep_days == declared.artifact_keep_days
        && found.quiet_period == declared.quiet_period
        && found.rate_limit_count == declared.rate_limit.map(|r| r.count)
        && found.rate_limit_period == declared.rate_limit.map(|r| r.period)
        && found.rate_limit_user_boost == declared.rate_limit.is_some_and(|r| r.user_boost)
    {
        return Ok(());
    }
    let mut active: project::ActiveModel = found.into();
    active.pipeline_params = Set(Some(declared.params));
    active.pipeline_cron = Set(declared.cron);
    active.concurrent_builds = Set(declared.concurrent_builds);
    active.build_keep = Set(declared.build_keep);
    active.build_keep_days = Set(declared.build_keep_days);
    active.artifact_keep = Set(declared.artifact_keep);
    active.artifact_keep_days = Set(declared.artifact_keep_days);
    active.quiet_period = Set(declared.quiet_period);
    active.rate_limit_count = Set(declared.rate_limit.map(|r| r.count));
    active.rate_limit_period = Set(declared.rate_limit.map(|r| r.period));
    active.rate_limit_user_boost = Set(declared.rate_limit.is_some_and(|r| r.user_boost));
    active.update(db).await?;
    Ok(())
}

/// The run's parameters as the worker resolved them (defaults filled in).
pub async fn set_params(
    db: &impl ConnectionTrait,
    run_id: i64,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let json = serde_json::to_string(params).unwrap_or_else(|_| "{}".into());
    run::Entity::update_many()
        .col_expr(run::Column::Params, Expr::value(json))
        .filter(run::Column::Id.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The commit a run's checkout found: its id, message and author, and the kind of ref.
pub async fn set_commit(
    db: &impl ConnectionTrait,
    run_id: i64,
    commit: &crate::git::CommitInfo,
    ref_type: crate::store::changes::RefType,
) -> Result<()> {
    use crate::store::runs::{MAX_COMMIT_MESSAGE, clip};
    run::Entity::update_many()
        .col_expr(run::Column::CommitSha, Expr::value(commit.sha.clone()))
        .col_expr(
            run::Column::CommitMessage,
            Expr::value(clip(&commit.message, MAX_COMMIT_MESSAGE)),
        )
        .col_expr(
            run::Column::CommitAuthor,
            Expr::value(clip(&commit.author, 255)),
        )
        .col_expr(run::Column::RefType, Expr::value(ref_type.as_str()))
        .filter(run::Column::Id.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}

/// What the run's Groovy set as `currentBuild.displayName` and `.description`.
pub async fn set_shown(
    db: &impl ConnectionTrait,
    run_id: i64,
    display_name: Option<&str>,
    description: Option<&str>,
) -> Result<()> {
    use crate::store::runs::clip;
    let mut update = run::Entity::update_many().filter(run::Column::Id.eq(run_id));
    if let Some(name) = display_name {
        update = update.col_expr(run::Column::DisplayName, Expr::value(clip(name, 255)));
    }
    if let Some(text) = description {
        update = update.col_expr(run::Column::Description, Expr::value(clip(text, 4096)));
    }
    if display_name.is_some() || description.is_some() {
        update.exec(db).await?;
    }
    Ok(())
}

/// The stages of several runs, by run id, each in start order.
pub async fn stages_of(
    db: &impl ConnectionTrait,
    run_ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<run_stage::Model>>> {
    let mut by_run: std::collections::HashMap<i64, Vec<run_stage::Model>> = Default::default();
    if run_ids.is_empty() {
        return Ok(by_run);
    }
    for stage in run_stage::Entity::find()
        .filter(run_stage::Column::RunId.is_in(run_ids.iter().copied()))
        .order_by_asc(run_stage::Column::RunId)
        .order_by_asc(run_stage::Column::Seq)
        .all(db)
        .await?
    {
        by_run.entry(stage.run_id).or_default().push(stage);
    }
    Ok(by_run)
}
