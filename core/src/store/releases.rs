//! Releases (API.md, "Releases"): what a `deploy` step asks for, the state machine the release
//! controller persists step by step (so a controller that took over after a crash resumes it),
//! and what people ask of a release (rollback, abort).
//!
//! A release is keyed by its run and the `deploy` step's position, so a retried run's step
//! finds the release its earlier attempt started instead of starting a second one.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::entities::{app_slot, environment, release, run};
use crate::release::plan::{self, ReleaseStatus, StepName, StepStatus, Traffic};
use crate::store::environments;
use crate::store::{Page, PageRequest};
use crate::{Error, Result};

/// What runs, as the `deploy` step gave it (templates rendered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// An Ant glob of the run's archived files (the local runtime).
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    /// The image (the Kubernetes runtime).
    #[serde(default)]
    pub image: Option<String>,
    pub instances: u32,
    pub health_path: String,
    #[serde(default)]
    pub smoke: Option<String>,
    pub monitor_secs: u32,
}

/// One step of a release's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepState {
    pub name: StepName,
    pub status: StepStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What happened (a breach, the smoke test's exit, instances started).
    pub detail: Option<String>,
}

impl StepState {
    pub fn pending(name: StepName) -> StepState {
        StepState {
            name,
            status: StepStatus::Pending,
            started_at: None,
            finished_at: None,
            detail: None,
        }
    }
}

/// The smoke test: the controller asks, the `deploy` step runs it on the run's agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmokeState {
    Requested,
    Passed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smoke {
    pub state: SmokeState,
    /// The green instance's own URL (`GREEN_URL`).
    pub green_url: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// A `deploy` step's request.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub run: run::Model,
    /// The step's position in the Jenkinsfile (`line:col`, plus a matrix cell if any).
    pub step_key: String,
    pub app: String,
    pub environment: String,
    /// `Some("recreate")` or `Some("blueGreen")`; `None` for the default.
    pub strategy: Option<String>,
    pub spec: Spec,
    /// Who stands behind the run: its starter and the approvers of its gates so far (emails).
    pub people: Vec<String>,
}

/// What `start` did.
#[derive(Debug, Clone)]
pub enum Started {
    Release(Box<release::Model>),
    /// Another release of the same app and environment is in progress: try again later.
    Busy {
        release_id: i64,
    },
}

/// One colour's traffic as the analysis saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ColourAnalysis {
    pub requests: u64,
    pub failures: u64,
    /// Answers that were not 5xx, over all (1 when there were none).
    pub success_rate: f64,
    pub p99_ms: f64,
}

impl From<plan::Counters> for ColourAnalysis {
    fn from(c: plan::Counters) -> ColourAnalysis {
        let failures = c.failures.min(c.requests);
        ColourAnalysis {
            requests: c.requests,
            failures,
            success_rate: if c.requests == 0 {
                1.0
            } else {
                (c.requests - failures) as f64 / c.requests as f64
            },
            p99_ms: c.p99_ms,
        }
    }
}

/// The router's counters per colour since `monitor` began, refreshed while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    pub blue: ColourAnalysis,
    pub green: ColourAnalysis,
}

/// A release as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReleaseView {
    pub id: i64,
    pub app: String,
    pub environment: String,
    /// The run number that built it.
    pub version: i64,
    pub run: i64,
    pub strategy: String,
    pub status: ReleaseStatus,
    pub reason: Option<String>,
    pub steps: Vec<StepState>,
    pub traffic: Traffic,
    /// Per-colour success rate and p99 while it was monitored.
    pub analysis: Option<Analysis>,
    /// A rollback or abort was asked and the controller has not finished it yet.
    pub pending_request: bool,
    /// The version it replaced (blue), the rollback target.
    pub previous_version: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub fn steps_of(model: &release::Model) -> Vec<StepState> {
    serde_json::from_str(&model.steps).unwrap_or_default()
}

pub fn traffic_of(model: &release::Model) -> Traffic {
    serde_json::from_str(&model.traffic).unwrap_or_default()
}

pub fn spec_of(model: &release::Model) -> Result<Spec> {
    serde_json::from_str(&model.spec)
        .map_err(|e| Error::Conflict(format!("release {} has an unreadable spec: {e}", model.id)))
}

pub fn smoke_of(model: &release::Model) -> Option<Smoke> {
    model
        .smoke
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
}

pub fn status_of(model: &release::Model) -> ReleaseStatus {
    ReleaseStatus::parse(&model.status).unwrap_or(ReleaseStatus::Failed)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Starts the release a `deploy` step asks for (or finds the one its run already started):
/// the environment and the app's slot are created on first use; a protected environment
/// refuses a run nobody of its `deployers` started or approved.
pub async fn start(db: &DatabaseConnection, new: &NewRelease) -> Result<Started> {
    let txn = crate::db::begin_write(db).await?;
    if let Some(existing) = release::Entity::find()
        .filter(release::Column::RunId.eq(new.run.id))
        .filter(release::Column::StepKey.eq(new.step_key.as_str()))
        .one(&txn)
        .await?
    {
        return Ok(Started::Release(Box::new(existing)));
    }
    let env = environments::find_or_create(&txn, &new.run, &new.environment).await?;
    environments::check_deployer(&txn, &env, &new.people).await?;
    let slot = environments::slot_find_or_create(&txn, &env, &new.app).await?;
    if let Some(busy) = release::Entity::find()
        .filter(release::Column::SlotId.eq(slot.id))
        .filter(release::Column::Status.eq(ReleaseStatus::InProgress.as_str()))
        .one(&txn)
        .await?
    {
        return Ok(Started::Busy {
            release_id: busy.id,
        });
    }
    let live = match slot.live_release_id {
        Some(id) => release::Entity::find_by_id(id).one(&txn).await?,
        None => None,
    };
    let n = new.spec.instances.max(1);
    let (strategy, names, traffic) = match (&live, new.strategy.as_deref()) {
        (None, _) => ("start", vec![StepName::Start], Traffic::default()),
        (Some(live), strategy) => {
            let blue_n = spec_of(live).map_or(n, |s| s.instances.max(1));
            let traffic = plan::rolled_back(blue_n);
            if strategy == Some("recreate") {
                ("recreate", vec![StepName::Start], traffic)
            } else {
                let names = plan::plan(n, true).into_iter().map(|(s, _)| s).collect();
                ("blueGreen", names, traffic)
            }
        }
    };
    let steps: Vec<StepState> = names.into_iter().map(StepState::pending).collect();
    let now = Utc::now();
    let model = release::ActiveModel {
        org_id: Set(new.run.org_id),
        project_id: Set(new.run.project_id),
        environment_id: Set(env.id),
        slot_id: Set(slot.id),
        app: Set(new.app.clone()),
        version: Set(new.run.number),
        run_id: Set(new.run.id),
        step_key: Set(new.step_key.clone()),
        strategy: Set(strategy.to_owned()),
        spec: Set(json(&new.spec)),
        status: Set(ReleaseStatus::InProgress.as_str().to_owned()),
        steps: Set(json(&steps)),
        traffic: Set(json(&traffic)),
        previous_release_id: Set(live.as_ref().map(|l| l.id)),
        reason: Set(None),
        smoke: Set(None),
        analysis: Set(None),
        abort_requested: Set(false),
        rollback_requested: Set(false),
        created_by: Set(new.run.created_by),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        crate::store::conflict_on_unique(e, "this deploy step already started a release")
    })?;
    txn.commit().await?;
    Ok(Started::Release(Box::new(model)))
}

pub async fn get_by_id(db: &impl ConnectionTrait, id: i64) -> Result<release::Model> {
    release::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// A release of `project_id` (another project's is not found).
pub async fn get(db: &impl ConnectionTrait, project_id: i64, id: i64) -> Result<release::Model> {
    release::Entity::find_by_id(id)
        .filter(release::Column::ProjectId.eq(project_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// The project's releases, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    project_id: i64,
    page: &PageRequest,
) -> Result<Page<release::Model>> {
    let limit = page.limit()?;
    let mut query = release::Entity::find()
        .filter(release::Column::ProjectId.eq(project_id))
        .order_by_desc(release::Column::Id)
        .limit(limit + 1);
    if let Some(after) = page.after()? {
        query = query.filter(release::Column::Id.lt(after));
    }
    let rows = query.all(db).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id))
}

/// The API's view of `models` (environment names looked up once).
pub async fn views(
    db: &impl ConnectionTrait,
    models: Vec<release::Model>,
) -> Result<Vec<ReleaseView>> {
    let mut env_ids: Vec<i64> = models.iter().map(|m| m.environment_id).collect();
    let mut prev_ids: Vec<i64> = models
        .iter()
        .filter_map(|m| m.previous_release_id)
        .collect();
    env_ids.dedup();
    prev_ids.dedup();
    let envs = environment::Entity::find()
        .filter(environment::Column::Id.is_in(env_ids))
        .all(db)
        .await?;
    let previous = release::Entity::find()
        .filter(release::Column::Id.is_in(prev_ids))
        .all(db)
        .await?;
    Ok(models
        .into_iter()
        .map(|m| ReleaseView {
            id: m.id,
            app: m.app.clone(),
            environment: envs
                .iter()
                .find(|e| e.id == m.environment_id)
                .map(|e| e.name.clone())
                .unwrap_or_default(),
            version: m.version,
            run: m.version,
            strategy: m.strategy.clone(),
            status: status_of(&m),
            reason: m.reason.clone(),
            steps: steps_of(&m),
            traffic: traffic_of(&m),
            analysis: m
                .analysis
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok()),
            pending_request: m.rollback_requested || m.abort_requested,
            previous_version: m
                .previous_release_id
                .and_then(|id| previous.iter().find(|p| p.id == id).map(|p| p.version)),
            created_at: m.created_at,
            finished_at: m.finished_at,
        })
        .collect())
}

/// What a person asks of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Rollback,
    Abort,
}

/// Records a rollback or abort request for the controller: an abort while the release is in
/// progress; a rollback while it is in progress, or after it succeeded as long as it is still
/// what serves (until the next release) and there is a version to go back to.
pub async fn request(
    db: &DatabaseConnection,
    project_id: i64,
    id: i64,
    what: Request,
) -> Result<release::Model> {
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, project_id, id).await?;
    let status = status_of(&model);
    let column = match (what, status) {
        (Request::Abort, ReleaseStatus::InProgress) => release::Column::AbortRequested,
        (Request::Abort, _) => {
            return Err(Error::Conflict(format!(
                "release {id} is {}: only a release in progress can be aborted",
                status.as_str()
            )));
        }
        (Request::Rollback, ReleaseStatus::InProgress) => release::Column::RollbackRequested,
        (Request::Rollback, ReleaseStatus::Succeeded) => {
            let slot = app_slot::Entity::find_by_id(model.slot_id)
                .one(&txn)
                .await?
                .ok_or(Error::NotFound)?;
            if slot.live_release_id != Some(model.id) {
                return Err(Error::Conflict(format!(
                    "release {id} no longer serves: a later release replaced it"
                )));
            }
            if model.previous_release_id.is_none() {
                return Err(Error::Conflict(format!(
                    "release {id} was the first in its environment: there is no version to roll back to"
                )));
            }
            let newer = release::Entity::find()
                .filter(release::Column::SlotId.eq(model.slot_id))
                .filter(release::Column::Id.gt(model.id))
                .filter(release::Column::Status.eq(ReleaseStatus::InProgress.as_str()))
                .one(&txn)
                .await?;
            if newer.is_some() {
                return Err(Error::Conflict(format!(
                    "a later release of this app is in progress: abort it instead of rolling back release {id}"
                )));
            }
            release::Column::RollbackRequested
        }
        (Request::Rollback, _) => {
            return Err(Error::Conflict(format!(
                "release {id} is {}: there is nothing to roll back",
                status.as_str()
            )));
        }
    };
    release::Entity::update_many()
        .col_expr(column, Expr::value(true))
        .col_expr(release::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(release::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    get(db, project_id, id).await
}

/// The `deploy` step's answer to the smoke test.
pub async fn answer_smoke(
    db: &impl ConnectionTrait,
    id: i64,
    passed: bool,
    detail: &str,
) -> Result<()> {
    let model = get_by_id(db, id).await?;
    let Some(mut smoke) = smoke_of(&model).filter(|s| s.state == SmokeState::Requested) else {
        return Ok(());
    };
    smoke.state = if passed {
        SmokeState::Passed
    } else {
        SmokeState::Failed
    };
    smoke.detail = Some(detail.to_owned());
    release::Entity::update_many()
        .col_expr(release::Column::Smoke, Expr::value(json(&smoke)))
        .col_expr(release::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(release::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// What the controller writes after each transition.
#[derive(Debug, Clone)]
pub struct Progress {
    pub steps: Vec<StepState>,
    pub traffic: Traffic,
    pub status: ReleaseStatus,
    pub reason: Option<String>,
    pub smoke: Option<Smoke>,
    /// Which release serves from now on (set when a release ends).
    pub live: Option<i64>,
}

/// Saves a release's progress, only while `holder` holds its slot's lease (a controller that
/// lost it must stop, so two never write one release). Returns false when the lease is lost.
pub async fn save(
    db: &DatabaseConnection,
    holder: &str,
    release: &release::Model,
    progress: &Progress,
) -> Result<bool> {
    let txn = crate::db::begin_write(db).await?;
    if !environments::holds(&txn, release.slot_id, holder).await? {
        return Ok(false);
    }
    let now = Utc::now();
    let ended = progress.status != ReleaseStatus::InProgress;
    release::Entity::update_many()
        .col_expr(release::Column::Steps, Expr::value(json(&progress.steps)))
        .col_expr(
            release::Column::Traffic,
            Expr::value(json(&progress.traffic)),
        )
        .col_expr(
            release::Column::Status,
            Expr::value(progress.status.as_str()),
        )
        .col_expr(
            release::Column::Reason,
            Expr::value(progress.reason.clone()),
        )
        .col_expr(
            release::Column::Smoke,
            Expr::value(progress.smoke.as_ref().map(json)),
        )
        .col_expr(release::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            release::Column::FinishedAt,
            Expr::value(if ended {
                release.finished_at.or(Some(now))
            } else {
                release.finished_at
            }),
        )
        .filter(release::Column::Id.eq(release.id))
        .exec(&txn)
        .await?;
    if let Some(live) = progress.live {
        app_slot::Entity::update_many()
            .col_expr(app_slot::Column::LiveReleaseId, Expr::value(live))
            .filter(app_slot::Column::Id.eq(release.slot_id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(true)
}

/// Records the analysis's counters (the controller, while monitoring).
pub async fn set_analysis(db: &impl ConnectionTrait, id: i64, analysis: &Analysis) -> Result<()> {
    release::Entity::update_many()
        .col_expr(release::Column::Analysis, Expr::value(json(analysis)))
        .filter(release::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Clears a handled rollback request (a rollback after success is done).
pub async fn clear_requests(db: &impl ConnectionTrait, id: i64) -> Result<()> {
    release::Entity::update_many()
        .col_expr(release::Column::RollbackRequested, Expr::value(false))
        .col_expr(release::Column::AbortRequested, Expr::value(false))
        .filter(release::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The release in progress in a slot, if any.
pub async fn in_progress(
    db: &impl ConnectionTrait,
    slot_id: i64,
) -> Result<Option<release::Model>> {
    Ok(release::Entity::find()
        .filter(release::Column::SlotId.eq(slot_id))
        .filter(release::Column::Status.eq(ReleaseStatus::InProgress.as_str()))
        .order_by_asc(release::Column::Id)
        .one(db)
        .await?)
}

/// The newest release of a slot, whatever its state (its instances are the green ones).
pub async fn newest(db: &impl ConnectionTrait, slot_id: i64) -> Result<Option<i64>> {
    Ok(release::Entity::find()
        .filter(release::Column::SlotId.eq(slot_id))
        .order_by_desc(release::Column::Id)
        .one(db)
        .await?
        .map(|r| r.id))
}
