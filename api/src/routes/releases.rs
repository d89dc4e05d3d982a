//! Environments and releases (API.md, "Releases"): `GET|POST .../environments`,
//! `PATCH .../environments/{name}`, `GET .../releases`, `GET .../releases/{id}`, and
//! `POST .../releases/{id}/rollback|abort`. Writes need the write scope; protecting an
//! environment needs an admin. Rollbacks, aborts and protection changes are audited.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use sluice_core::db::begin_write;
use sluice_core::entities::{project, release};
use sluice_core::store::releases::{self, ReleaseView, Request};
use sluice_core::store::{Page, PageRequest, audit, environments, projects};
use sluice_core::tenancy::{Role, TenantScope};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::list;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    /// Lowercase letters, digits and dashes, starting with a letter (at most 40).
    #[schema(example = "production")]
    pub name: String,
    /// Only `deployers` may deploy to it.
    #[serde(default)]
    pub protected: bool,
    /// Roles (`admin`, `developer`, …) and emails.
    #[serde(default)]
    pub deployers: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentChange {
    pub protected: Option<bool>,
    pub deployers: Option<Vec<String>>,
}

async fn view(
    state: &AppState,
    project_id: i64,
    name: &str,
) -> Result<environments::EnvironmentView, ApiError> {
    environments::list(&state.db, project_id)
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| sluice_core::Error::NotFound.into())
}

/// `GET .../environments`: each environment with its apps, the version each serves, its URL
/// and instances.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/environments", tag = "releases", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 200, description = "The project's environments", body = crate::routes::List<environments::EnvironmentView>), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn environment_index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &project).await?;
    let items = environments::list(&state.db, project.id).await?;
    Ok(list(Page {
        items,
        next_cursor: None,
    }))
}

/// `POST .../environments` (developer; admin for a protected one).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/environments", tag = "releases", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), request_body = NewEnvironment, responses((status = 201, description = "Created", body = environments::EnvironmentView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "An environment of that name exists", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn environment_create(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
    body: web::Json<NewEnvironment>,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    authn.require_write_scope()?;
    let body = body.into_inner();
    scope.require(if body.protected || !body.deployers.is_empty() {
        Role::Admin
    } else {
        Role::Developer
    })?;
    let project = projects::get(&state.db, &scope, &project).await?;
    let txn = begin_write(&state.db).await?;
    let env = environments::create(
        &txn,
        scope.org_id(),
        project.id,
        &body.name,
        body.protected,
        &body.deployers,
    )
    .await?;
    audit::record(
        &txn,
        &scope,
        "environment.create",
        "environment",
        format!("{}/{}", project.slug, env.name),
        serde_json::json!({"protected": env.protected, "deployers": body.deployers}),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(view(&state, project.id, &body.name).await?))
}

/// `PATCH .../environments/{name}` (admin): protection and deployers.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/projects/{project}/environments/{name}", tag = "releases", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("name" = String, Path, description = "Environment name", example = "production")), request_body = EnvironmentChange, responses((status = 200, description = "Changed", body = environments::EnvironmentView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn environment_update(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, String)>,
    body: web::Json<EnvironmentChange>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, name) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    authn.require_write_scope()?;
    scope.require(Role::Admin)?;
    let project = projects::get(&state.db, &scope, &project).await?;
    let body = body.into_inner();
    let txn = begin_write(&state.db).await?;
    let env = environments::find(&txn, project.id, &name)
        .await?
        .ok_or(sluice_core::Error::NotFound)?;
    let env = environments::update(&txn, env, body.protected, body.deployers).await?;
    audit::record(
        &txn,
        &scope,
        "environment.update",
        "environment",
        format!("{}/{}", project.slug, env.name),
        serde_json::json!({"protected": env.protected, "deployers": environments::deployers_of(&env)}),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(view(&state, project.id, &name).await?))
}

/// `GET .../releases`: newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/releases", tag = "releases", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("limit" = Option<u64>, Query, description = "Page size, 1-200 (default 50)", minimum = 1, maximum = 200), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "The project's releases", body = crate::routes::List<ReleaseView>), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
    query: web::Query<PageRequest>,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &project).await?;
    let page = releases::list(&state.db, project.id, &query).await?;
    let next_cursor = page.next_cursor;
    let items = releases::views(&state.db, page.items).await?;
    Ok(list(Page { items, next_cursor }))
}

async fn one(state: &AppState, project_id: i64, id: i64) -> Result<ReleaseView, ApiError> {
    let model = releases::get(&state.db, project_id, id).await?;
    Ok(releases::views(&state.db, vec![model])
        .await?
        .pop()
        .ok_or(sluice_core::Error::NotFound)?)
}

/// `GET .../releases/{id}`: its plan's steps and the traffic they left.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/releases/{id}", tag = "releases", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("id" = i64, Path, description = "Release id")), responses((status = 200, description = "The release", body = ReleaseView), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, id) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &project).await?;
    Ok(HttpResponse::Ok().json(one(&state, project.id, id).await?))
}

/// Asks the controller to roll back or abort release `id` of `project` (developer), audited.
/// The API and the release page both act through this.
pub(crate) async fn request_release(
    state: &AppState,
    scope: &TenantScope,
    project: &str,
    id: i64,
    what: Request,
) -> Result<(project::Model, release::Model), sluice_core::Error> {
    scope.require(Role::Developer)?;
    let project = projects::get(&state.db, scope, project).await?;
    let model = releases::request(&state.db, project.id, id, what).await?;
    let action = match what {
        Request::Rollback => "release.rollback",
        Request::Abort => "release.abort",
    };
    audit::record(
        &state.db,
        scope,
        action,
        "release",
        id,
        serde_json::json!({"app": model.app, "version": model.version, "status": model.status}),
    )
    .await?;
    Ok((project, model))
}

async fn act(
    state: &AppState,
    authn: &Authn,
    (org, project, id): (String, String, i64),
    what: Request,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(state, &org).await?;
    authn.require_write_scope()?;
    let (project, _) = request_release(state, &scope, &project, id, what).await?;
    Ok(HttpResponse::Accepted().json(one(state, project.id, id).await?))
}

/// `POST .../releases/{id}/rollback` (developer): while the release is in progress, or after
/// it succeeded until the next release. The controller puts the previous version back.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/releases/{id}/rollback", tag = "releases", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("id" = i64, Path, description = "Release id")), responses((status = 202, description = "Rollback requested", body = ReleaseView), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "Nothing to roll back (failed, replaced, or the first release)", body = crate::openapi::ErrorBody)))]
pub async fn rollback(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    act(&state, &authn, path.into_inner(), Request::Rollback).await
}

/// `POST .../releases/{id}/abort` (developer): while it is in progress; what ran before comes
/// back.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/releases/{id}/abort", tag = "releases", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("id" = i64, Path, description = "Release id")), responses((status = 202, description = "Abort requested", body = ReleaseView), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "The release is not in progress", body = crate::openapi::ErrorBody)))]
pub async fn abort(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    act(&state, &authn, path.into_inner(), Request::Abort).await
}
