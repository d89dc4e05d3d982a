//! Runs: numbered per project without races, written together with their outbox entry so
//! the queue can never lose one (a reconciler republishes what the outbox still holds).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement,
};
use serde::{Deserialize, Serialize};

use crate::entities::{project, run, run_outbox, webhook_delivery};
use crate::store::changes::{ChangeRequest, RefType};
use crate::store::{Page, PageRequest, params, projects};
use crate::tenancy::{Role, TenantScope};
use crate::{Error, Result, validate};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Waiting,
    Succeeded,
    /// Finished, but tests failed or a step marked it (Jenkins `UNSTABLE`).
    Unstable,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Unstable => "unstable",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Result<RunStatus> {
        match value {
            "queued" => Ok(RunStatus::Queued),
            "running" => Ok(RunStatus::Running),
            "waiting" => Ok(RunStatus::Waiting),
            "succeeded" => Ok(RunStatus::Succeeded),
            "unstable" => Ok(RunStatus::Unstable),
            "failed" => Ok(RunStatus::Failed),
            "cancelled" => Ok(RunStatus::Cancelled),
            _ => Err(Error::invalid(
                "status",
                "one of queued, running, waiting, succeeded, unstable, failed, cancelled",
            )),
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Api,
    Github,
    Gitlab,
    Jenkins,
    Cron,
    /// Started again from an earlier run (same ref, commit and parameters).
    Rerun,
}

impl Trigger {
    /// The trigger stored as `value`; None for one this version does not know.
    pub fn parse(value: &str) -> Option<Trigger> {
        [
            Trigger::Api,
            Trigger::Github,
            Trigger::Gitlab,
            Trigger::Jenkins,
            Trigger::Cron,
            Trigger::Rerun,
        ]
        .into_iter()
        .find(|t| t.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Github => "github",
            Trigger::Gitlab => "gitlab",
            Trigger::Jenkins => "jenkins",
            Trigger::Cron => "cron",
            Trigger::Rerun => "rerun",
        }
    }
}

/// A run to queue.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub trigger: Trigger,
    /// Branch or tag; the project's default branch when None.
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub params: BTreeMap<String, String>,
    /// Branch, tag or change request, when the trigger knows (else the worker finds out).
    pub ref_type: Option<RefType>,
    /// The change request built; `git_ref` is then its head ref.
    pub change: Option<ChangeRequest>,
    /// The commit's message and author, when the trigger knows them.
    pub commit_message: Option<String>,
    pub commit_author: Option<String>,
}

impl NewRun {
    /// A run of `git_ref` (the default branch when None), everything else unknown yet.
    pub fn of(trigger: Trigger, git_ref: Option<String>, commit: Option<String>) -> NewRun {
        NewRun {
            trigger,
            git_ref,
            commit,
            params: BTreeMap::new(),
            ref_type: None,
            change: None,
            commit_message: None,
            commit_author: None,
        }
    }
}

/// Longest commit message kept on a run, in bytes.
pub const MAX_COMMIT_MESSAGE: usize = 4096;

/// `text` cut to at most `max` bytes on a character boundary.
pub fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn check_commit(commit: Option<&str>) -> Result<()> {
    match commit {
        Some(c) if !(4..=64).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Err(Error::invalid(
                "commit",
                "must be a commit id (4 to 64 hex characters)",
            ))
        }
        _ => Ok(()),
    }
}

/// When a run started this way waits out the project's `quietPeriod`: runs a push or a
/// schedule started (a person's run starts at once).
fn quiet_until(project: &project::Model, trigger: Trigger) -> Option<chrono::DateTime<Utc>> {
    let seconds = project.quiet_period.filter(|s| *s > 0)?;
    matches!(trigger, Trigger::Github | Trigger::Gitlab | Trigger::Cron)
        .then(|| Utc::now() + chrono::Duration::seconds(i64::from(seconds)))
}

/// Takes the project's next run number atomically: concurrent triggers get distinct,
/// consecutive numbers on SQLite and PostgreSQL alike.
async fn next_number(db: &impl ConnectionTrait, project_id: i64) -> Result<i64> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "UPDATE projects SET next_run_number = next_run_number + 1 WHERE id = $1 RETURNING next_run_number - 1"
        }
        _ => {
            "UPDATE projects SET next_run_number = next_run_number + 1 WHERE id = ? RETURNING next_run_number - 1"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [project_id.into()],
        ))
        .await?
        .ok_or(Error::NotFound)?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Queues a run of `project_slug` (developer): the run row and its outbox entry in the
/// caller's transaction.
pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    project_slug: &str,
    new: NewRun,
) -> Result<run::Model> {
    scope.require(Role::Developer)?;
    let project = projects::get(db, scope, project_slug).await?;
    create_for_project(db, &project, new, Some(scope.user_id())).await
}

/// Queues a run of a project already found (webhooks find it by their secret, not a scope).
pub async fn create_for_project(
    db: &impl ConnectionTrait,
    project: &project::Model,
    new: NewRun,
    created_by: Option<i64>,
) -> Result<run::Model> {
    let git_ref = new
        .git_ref
        .unwrap_or_else(|| project.default_branch.clone());
    validate::path_like("ref", &git_ref, 255)?;
    check_commit(new.commit.as_deref())?;
    for (name, value) in &new.params {
        validate::env_name(name).map_err(|_| {
            Error::invalid(
                "params",
                format!("`{name}` is not a parameter name (A-Z, 0-9, _)"),
            )
        })?;
        if value.len() > 64 * 1024 {
            return Err(Error::invalid(
                "params",
                format!("`{name}` is longer than 64 KiB"),
            ));
        }
    }
    // Checked against the parameters the last parsed Jenkinsfile declared. Only what was
    // given is stored: the worker fills in defaults from the Jenkinsfile of the run's own
    // commit (which may declare other parameters) and checks again.
    if let Some(json) = &project.pipeline_params {
        params::check(&params::from_json(json), &new.params)?;
    }
    let params = new.params;
    let number = next_number(db, project.id).await?;
    let not_before = quiet_until(project, new.trigger);
    let now = Utc::now();
    let run = run::ActiveModel {
        org_id: Set(project.org_id),
        project_id: Set(project.id),
        number: Set(number),
        status: Set(RunStatus::Queued.as_str().to_owned()),
        trigger: Set(new.trigger.as_str().to_owned()),
        git_ref: Set(Some(git_ref)),
        commit_sha: Set(new.commit.map(|c| c.to_ascii_lowercase())),
        ref_type: Set(new.ref_type.map(|t| t.as_str().to_owned())),
        change: Set(new.change.as_ref().map(ChangeRequest::to_json)),
        commit_message: Set(new
            .commit_message
            .map(|m| clip(m.trim(), MAX_COMMIT_MESSAGE))),
        commit_author: Set(new.commit_author.map(|a| clip(a.trim(), 255))),
        params: Set(serde_json::to_string(&params).unwrap_or_else(|_| "{}".into())),
        created_by: Set(created_by),
        queued_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    run_outbox::ActiveModel {
        run_id: Set(run.id),
        created_at: Set(now),
        published_at: Set(None),
        not_before: Set(not_before),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(run)
}

/// A project's runs, newest first, optionally only those in `status`.
pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    project_slug: &str,
    status: Option<RunStatus>,
    page: &PageRequest,
) -> Result<Page<run::Model>> {
    let project = projects::get(db, scope, project_slug).await?;
    let limit = page.limit()?;
    let mut query = run::Entity::find()
        .filter(run::Column::ProjectId.eq(project.id))
        .order_by_desc(run::Column::Number)
        .limit(limit + 1);
    if let Some(status) = status {
        query = query.filter(run::Column::Status.eq(status.as_str()));
    }
    if let Some(before) = page.after()? {
        query = query.filter(run::Column::Number.lt(before));
    }
    Ok(Page::from_rows(query.all(db).await?, limit, |r| r.number))
}

/// One run of a project, by number.
pub async fn get(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    project_slug: &str,
    number: i64,
) -> Result<run::Model> {
    let project = projects::get(db, scope, project_slug).await?;
    run::Entity::find()
        .filter(run::Column::ProjectId.eq(project.id))
        .filter(run::Column::Number.eq(number))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// What a webhook delivery did.
#[derive(Debug)]
pub enum Delivered {
    Queued(run::Model),
    /// A run of the same ref still waits out the project's quiet period: it builds this
    /// delivery's commit instead, and its wait starts again.
    Folded(run::Model),
    /// This delivery was seen before (the provider retried it).
    Duplicate,
}

/// Queues a run for a webhook delivery, once per delivery id.
pub async fn create_from_webhook(
    db: &impl ConnectionTrait,
    project: &project::Model,
    provider: &str,
    delivery_id: Option<&str>,
    new: NewRun,
) -> Result<Delivered> {
    let delivery = match delivery_id {
        Some(id) => {
            let inserted = webhook_delivery::ActiveModel {
                project_id: Set(project.id),
                provider: Set(provider.to_owned()),
                delivery_id: Set(id.chars().take(128).collect()),
                run_id: Set(None),
                received_at: Set(Utc::now()),
                ..Default::default()
            }
            .insert(db)
            .await;
            match inserted {
                Ok(delivery) => Some(delivery),
                Err(err)
                    if matches!(
                        err.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    return Ok(Delivered::Duplicate);
                }
                Err(err) => return Err(err.into()),
            }
        }
        None => None,
    };
    let delivered = match fold_into_waiting(db, project, &new).await? {
        Some(run) => Delivered::Folded(run),
        None => Delivered::Queued(create_for_project(db, project, new, None).await?),
    };
    if let Some(delivery) = delivery {
        let (Delivered::Queued(run) | Delivered::Folded(run)) = &delivered else {
            return Ok(delivered);
        };
        let mut active: webhook_delivery::ActiveModel = delivery.into();
        active.run_id = Set(Some(run.id));
        active.update(db).await?;
    }
    Ok(delivered)
}

/// As Jenkins' quiet period does, a push to a ref whose run still waits out the quiet period
/// folds into that run: it builds the newer commit, and its wait starts again. `None` when
/// there is no such run (or the dispatcher took it meanwhile).
async fn fold_into_waiting(
    db: &impl ConnectionTrait,
    project: &project::Model,
    new: &NewRun,
) -> Result<Option<run::Model>> {
    let Some(until) = quiet_until(project, new.trigger) else {
        return Ok(None);
    };
    check_commit(new.commit.as_deref())?;
    let git_ref = new
        .git_ref
        .clone()
        .unwrap_or_else(|| project.default_branch.clone());
    let waiting_outbox = sea_orm::sea_query::Query::select()
        .column(run_outbox::Column::RunId)
        .from(run_outbox::Entity)
        .and_where(run_outbox::Column::PublishedAt.is_null())
        .and_where(run_outbox::Column::NotBefore.gt(Utc::now()))
        .take();
    let Some(waiting) = run::Entity::find()
        .filter(run::Column::ProjectId.eq(project.id))
        .filter(run::Column::Status.eq(RunStatus::Queued.as_str()))
        .filter(run::Column::Trigger.eq(new.trigger.as_str()))
        .filter(run::Column::GitRef.eq(git_ref))
        .filter(run::Column::Id.in_subquery(waiting_outbox))
        .order_by_desc(run::Column::Id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // Only while the dispatcher has not taken it.
    let extended = run_outbox::Entity::update_many()
        .col_expr(run_outbox::Column::NotBefore, Expr::value(until))
        .filter(run_outbox::Column::RunId.eq(waiting.id))
        .filter(run_outbox::Column::PublishedAt.is_null())
        .exec(db)
        .await?;
    if extended.rows_affected == 0 {
        return Ok(None);
    }
    let mut active: run::ActiveModel = waiting.into();
    active.commit_sha = Set(new.commit.as_ref().map(|c| c.to_ascii_lowercase()));
    active.ref_type = Set(new.ref_type.map(|t| t.as_str().to_owned()));
    active.change = Set(new.change.as_ref().map(ChangeRequest::to_json));
    active.commit_message = Set(new
        .commit_message
        .as_ref()
        .map(|m| clip(m.trim(), MAX_COMMIT_MESSAGE)));
    active.commit_author = Set(new.commit_author.as_ref().map(|a| clip(a.trim(), 255)));
    Ok(Some(active.update(db).await?))
}

/// A run of the scope's org by its global id (the Jenkins API's queue item id).
pub async fn get_by_id(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: i64,
) -> Result<run::Model> {
    run::Entity::find_by_id(id)
        .filter(run::Column::OrgId.eq(scope.org_id()))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// The newest run of a project, if any.
pub async fn latest(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    project_slug: &str,
) -> Result<Option<run::Model>> {
    let page = PageRequest {
        limit: Some(1),
        cursor: None,
    };
    Ok(list(db, scope, project_slug, None, &page)
        .await?
        .items
        .into_iter()
        .next())
}

/// Where the queued ones of `runs` stand, by run id: 1 + the runs of their org queued before
/// them and not started yet, in one query. (Other orgs' runs are not counted: the scheduler
/// shares workers fairly between orgs, and one org's queue is none of another's business.)
pub async fn queue_positions(
    db: &impl ConnectionTrait,
    runs: &[run::Model],
) -> Result<HashMap<i64, u64>> {
    let queued: Vec<&run::Model> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Queued.as_str())
        .collect();
    let Some(last) = queued.iter().map(|r| r.id).max() else {
        return Ok(HashMap::new());
    };
    let orgs: HashSet<i64> = queued.iter().map(|r| r.org_id).collect();
    let mut queued_by_org: HashMap<i64, Vec<i64>> = HashMap::new();
    let rows: Vec<(i64, i64)> = run::Entity::find()
        .select_only()
        .column(run::Column::OrgId)
        .column(run::Column::Id)
        .filter(run::Column::OrgId.is_in(orgs))
        .filter(run::Column::Status.eq(RunStatus::Queued.as_str()))
        .filter(run::Column::Id.lte(last))
        .order_by_asc(run::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    for (org_id, id) in rows {
        queued_by_org.entry(org_id).or_default().push(id);
    }
    Ok(queued
        .iter()
        .map(|r| {
            let ahead = queued_by_org
                .get(&r.org_id)
                .map_or(0, |ids| ids.partition_point(|id| *id < r.id));
            (r.id, ahead as u64 + 1)
        })
        .collect())
}
