//! What people do to a run: `POST .../runs/{number}/cancel`, `.../approve`, `.../rerun`.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use sluice_core::Error;
use sluice_core::db::begin_write;
use sluice_core::entities::run;
use sluice_core::store::changes::{ChangeRequest, RefType};
use sluice_core::store::gates::{self, Answer, WaitingFor};
use sluice_core::store::runs::{self, NewRun, Trigger};
use sluice_core::store::{audit, users};
use sluice_core::tenancy::{Role, TenantScope};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::runs::RunView;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// The gate's id, from the run's `waiting_for.id`.
    pub id: String,
    /// true approves (the run goes on); false rejects (the run ends `cancelled`).
    pub approve: bool,
    /// Values for the gate's `parameters` (`waiting_for.parameters`); defaults fill the rest.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

async fn actor(state: &AppState, scope: &TenantScope) -> Result<String, Error> {
    Ok(users::get(&state.db, scope.user_id()).await?.email)
}

/// Cancels a run, approves or rejects its gate: developer and above (or the gate's named
/// submitters), recorded in the audit log.
pub(crate) async fn cancel_run(
    state: &AppState,
    scope: &TenantScope,
    project: &str,
    number: i64,
) -> Result<run::Model, Error> {
    scope.require(Role::Developer)?;
    let run = runs::get(&state.db, scope, project, number).await?;
    let by = actor(state, scope).await?;
    let txn = begin_write(&state.db).await?;
    let done = gates::cancel(&txn, &run, &by).await?;
    audit::record(
        &txn,
        scope,
        "run.cancel",
        "run",
        &format!("{project}#{number}"),
        serde_json::json!({"status": run.status}),
    )
    .await?;
    txn.commit().await?;
    if done == gates::Cancelled::Now {
        sluice_core::dispatch::wake();
    }
    runs::get(&state.db, scope, project, number).await
}

pub(crate) async fn answer_gate(
    state: &AppState,
    scope: &TenantScope,
    project: &str,
    number: i64,
    approval: Approval,
) -> Result<run::Model, Error> {
    let run = runs::get(&state.db, scope, project, number).await?;
    let gate: Option<WaitingFor> = run
        .waiting_for
        .as_deref()
        .and_then(|w| serde_json::from_str(w).ok());
    let Some(gate) = gate.filter(|g| g.id == approval.id && run.status == "waiting") else {
        return Err(Error::Conflict(format!(
            "run {number} is not waiting at gate `{}`",
            approval.id
        )));
    };
    let by = actor(state, scope).await?;
    if !gates::may_answer(&gate, &by, scope.role()) {
        return Err(Error::Forbidden(match &gate.submitter {
            Some(who) => format!("only {who} may answer this gate"),
            None => "only developers and above may answer this gate".to_owned(),
        }));
    }
    let params = if approval.approve {
        sluice_core::store::params::check(&gate.parameters, &approval.params)?
    } else {
        BTreeMap::new()
    };
    let answer = Answer {
        id: approval.id,
        approve: approval.approve,
        by: by.clone(),
        at: Utc::now(),
        params,
    };
    let txn = begin_write(&state.db).await?;
    gates::answer(&txn, &run, &answer).await?;
    audit::record(
        &txn,
        scope,
        if answer.approve {
            "run.approve"
        } else {
            "run.reject"
        },
        "run",
        &format!("{project}#{number}"),
        serde_json::json!({"gate": answer.id, "message": gate.message}),
    )
    .await?;
    txn.commit().await?;
    runs::get(&state.db, scope, project, number).await
}

pub(crate) async fn rerun_run(
    state: &AppState,
    scope: &TenantScope,
    project: &str,
    number: i64,
) -> Result<run::Model, Error> {
    let earlier = runs::get(&state.db, scope, project, number).await?;
    let params: BTreeMap<String, String> =
        serde_json::from_str(&earlier.params).unwrap_or_default();
    let new = NewRun {
        trigger: Trigger::Rerun,
        git_ref: earlier.git_ref,
        commit: earlier.commit_sha,
        params,
        ref_type: earlier.ref_type.as_deref().and_then(RefType::parse),
        change: earlier.change.as_deref().and_then(ChangeRequest::from_json),
        commit_message: earlier.commit_message,
        commit_author: earlier.commit_author,
    };
    let txn = begin_write(&state.db).await?;
    let run = runs::create(&txn, scope, project, new).await?;
    txn.commit().await?;
    sluice_core::dispatch::wake();
    Ok(run)
}

/// `POST .../runs/{number}/cancel` (developer): a queued run is cancelled at once; a running
/// or waiting one is stopped by its worker within about a second (its processes killed, `post
/// { aborted }` run) and ends `cancelled`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/runs/{number}/cancel", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("number" = i64, Path, description = "Run number")), responses((status = 200, description = "Cancelled, or the cancel requested", body = RunView), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "The run has already ended", body = crate::openapi::ErrorBody)))]
pub async fn cancel(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let run = cancel_run(&state, &scope, &project, number).await?;
    Ok(HttpResponse::Ok().json(RunView::load(&state.db, run).await?))
}

/// `POST .../runs/{number}/approve` {id, approve}: answers the gate the run waits at.
///
/// A write: a token needs the `write` scope even when the gate's `submitter` names its creator.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/runs/{number}/approve", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("number" = i64, Path, description = "Run number")), request_body = Approval, responses((status = 200, description = "Answered; the worker resumes or stops the run", body = RunView), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not one of the gate's submitters, or a token without the write scope", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "Not waiting at this gate, or already answered", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn approve(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
    body: web::Json<Approval>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    authn.require_write_scope()?;
    let run = answer_gate(&state, &scope, &project, number, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RunView::load(&state.db, run).await?))
}

/// `POST .../runs/{number}/rerun` (developer): queues a new run of the same ref, commit and
/// parameters.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/runs/{number}/rerun", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("number" = i64, Path, description = "Run number")), responses((status = 201, description = "The new run, queued", body = RunView), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn rerun(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let run = rerun_run(&state, &scope, &project, number).await?;
    Ok(HttpResponse::Created().json(RunView::load(&state.db, run).await?))
}
