//! Runs: `POST|GET /api/v1/orgs/{org}/projects/{project}/runs`, `GET .../runs/{number}`.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use sluice_core::db::begin_write;
use sluice_core::entities::run;
use sluice_core::store::PageRequest;
use sluice_core::store::artifacts::TestSummary;
use sluice_core::store::changes::{self, ChangeRequest};
use sluice_core::store::execution;
use sluice_core::store::gates::WaitingFor;
use sluice_core::store::runs::{self, NewRun, RunStatus, Trigger};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::list;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateRun {
    /// Branch or tag to build; the project's default branch when absent.
    #[serde(rename = "ref")]
    #[schema(rename = "ref")]
    pub git_ref: Option<String>,
    /// Commit to build; the head of `ref` when absent.
    pub commit: Option<String>,
    /// Values for the pipeline's `parameters`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct RunQuery {
    /// Only runs in this status.
    pub status: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// A stage as it ran (filled in by the worker).
#[derive(Serialize, utoipa::ToSchema)]
pub struct StageView {
    /// Its number in the run (stages are numbered as they start).
    pub seq: i32,
    /// The stage it runs inside: a parallel branch's or matrix cell's parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<i32>,
    pub name: String,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub number: i64,
    pub status: RunStatus,
    #[serde(rename = "ref")]
    #[schema(rename = "ref")]
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    /// `branch`, `tag` or `change_request` (absent on runs from before it was recorded, and
    /// until a checkout finds out when the trigger could not tell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ref_type: Option<String>,
    /// The built commit's message and author (`Name <email>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    /// The pull or merge request a change-request run builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeRequest>,
    /// What the run's Groovy set as `currentBuild.displayName` and `.description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub trigger: String,
    pub params: BTreeMap<String, String>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub stages: Vec<StageView>,
    /// For a queued run: 1 + this org's runs queued before it. Workers are shared fairly
    /// between orgs, so other orgs' queues are not counted (nor shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u64>,
    /// Why a failed or cancelled run ended, when Sluice knows (the step, line or check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many times a worker started it (more than 1 after a worker was lost mid-run).
    pub attempt: i32,
    /// The approval gate a `waiting` run is parked at: answer it with `POST .../approve`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<WaitingFor>,
    /// A cancel was requested and the worker is stopping the run.
    pub cancel_requested: bool,
    /// JUnit results, when the pipeline ran `junit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestSummary>,
    /// Lines in the log so far.
    pub log_lines: i64,
}

impl RunView {
    /// The run with its stages and, when queued, its place in the queue.
    pub async fn load(db: &impl ConnectionTrait, r: run::Model) -> Result<RunView, ApiError> {
        Self::load_many(db, vec![r])
            .await?
            .pop()
            .ok_or_else(|| ApiError::from(sluice_core::Error::NotFound))
    }

    /// Several runs with their stages (one query) and queue positions (queued ones only).
    pub async fn load_many(
        db: &impl ConnectionTrait,
        runs: Vec<run::Model>,
    ) -> Result<Vec<RunView>, ApiError> {
        let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
        let mut stages = execution::stages_of(db, &ids).await?;
        // Password parameters are never shown.
        let mut project_ids: Vec<i64> = runs.iter().map(|r| r.project_id).collect();
        project_ids.sort_unstable();
        project_ids.dedup();
        let specs: std::collections::HashMap<i64, Vec<sluice_core::store::params::ParamSpec>> =
            sluice_core::entities::project::Entity::find()
                .filter(sluice_core::entities::project::Column::Id.is_in(project_ids))
                .all(db)
                .await
                .map_err(sluice_core::Error::from)?
                .into_iter()
                .map(|p| {
                    let specs = sluice_core::store::params::from_json(
                        p.pipeline_params.as_deref().unwrap_or("[]"),
                    );
                    (p.id, specs)
                })
                .collect();
        let positions = runs::queue_positions(db, &runs).await?;
        let mut views = Vec::with_capacity(runs.len());
        for r in runs {
            let position = positions.get(&r.id).copied();
            let run_stages = stages.remove(&r.id).unwrap_or_default();
            let project_specs = specs.get(&r.project_id);
            let mut view = RunView::new(r);
            if let Some(specs) = project_specs {
                sluice_core::store::params::hide_passwords(specs, &mut view.params);
            }
            view.queue_position = position;
            view.stages = run_stages
                .into_iter()
                .map(|s| StageView {
                    seq: s.seq,
                    parent: s.parent,
                    name: s.name,
                    status: s.status,
                    started_at: s.started_at,
                    finished_at: s.finished_at,
                })
                .collect();
            views.push(view);
        }
        Ok(views)
    }

    pub fn new(r: run::Model) -> RunView {
        RunView {
            number: r.number,
            status: RunStatus::parse(&r.status).unwrap_or(RunStatus::Queued),
            git_ref: r.git_ref,
            commit: r.commit_sha,
            ref_type: r.ref_type,
            commit_message: r.commit_message,
            commit_author: r.commit_author,
            change: r.change.as_deref().and_then(ChangeRequest::from_json),
            display_name: r.display_name,
            description: r.description,
            trigger: r.trigger,
            params: serde_json::from_str(&r.params).unwrap_or_default(),
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            stages: Vec::new(),
            queue_position: None,
            reason: r.reason,
            attempt: r.attempt,
            waiting_for: r
                .waiting_for
                .as_deref()
                .and_then(|w| serde_json::from_str(w).ok()),
            cancel_requested: r.cancel_requested,
            tests: r
                .tests
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            log_lines: r.log_lines,
        }
    }
}

/// Resolves a run's ref to its commit before it is created (developer: nobody else makes
/// Sluice reach a repository), outside any transaction.
pub(crate) async fn resolve(
    state: &AppState,
    scope: &sluice_core::tenancy::TenantScope,
    project: &str,
    new: &mut NewRun,
) -> Result<(), sluice_core::Error> {
    scope.require(sluice_core::tenancy::Role::Developer)?;
    let project = sluice_core::store::projects::get(&state.db, scope, project).await?;
    let credential = sluice_core::store::repo_credentials::for_git(&state.keys, &project)?;
    changes::resolve(&project, new, &state.repo_access, credential.as_ref()).await
}

/// `POST .../runs` (developer): queues a run.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/runs", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), request_body = CreateRun, responses((status = 201, description = "Queued", body = RunView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
    body: web::Json<CreateRun>,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let body = body.into_inner();
    let mut new = NewRun::of(Trigger::Api, body.git_ref, body.commit);
    new.params = body.params;
    resolve(&state, &scope, &project, &mut new).await?;
    let txn = begin_write(&state.db).await?;
    let run = runs::create(&txn, &scope, &project, new).await?;
    txn.commit().await?;
    sluice_core::dispatch::wake();
    Ok(HttpResponse::Created().json(RunView::load(&state.db, run).await?))
}

/// `GET .../runs`: newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/runs", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), RunQuery), responses((status = 200, description = "Runs", body = crate::routes::List<RunView>), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
    query: web::Query<RunQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let query = query.into_inner();
    let status = query.status.as_deref().map(RunStatus::parse).transpose()?;
    let page = PageRequest {
        limit: query.limit,
        cursor: query.cursor,
    };
    let page = runs::list(&state.db, &scope, &project, status, &page).await?;
    let items = RunView::load_many(&state.db, page.items).await?;
    Ok(list(sluice_core::store::Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// `GET .../runs/{number}`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/runs/{number}", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("number" = i64, Path, description = "Run number")), responses((status = 200, description = "The run", body = RunView), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let run = runs::get(&state.db, &scope, &project, number).await?;
    Ok(HttpResponse::Ok().json(RunView::load(&state.db, run).await?))
}
