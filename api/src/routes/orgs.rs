//! Organisations: `POST|GET /api/v1/orgs`, `GET|PATCH /api/v1/orgs/{org}`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::db::begin_write;
use sluice_core::entities::org;
use sluice_core::store::{PageRequest, orgs};
use sluice_core::tenancy::Role;

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::list;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateOrg {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$", example = "acme")]
    pub slug: String,
    #[schema(min_length = 1, max_length = 200, example = "Acme Inc")]
    pub name: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateOrg {
    pub name: Option<String>,
    pub max_concurrent_runs: Option<i32>,
    /// Runs each project keeps (their logs and artifacts) when its Jenkinsfile declares no
    /// `buildDiscarder`; 0 keeps every run.
    #[schema(minimum = 0, maximum = 100000, example = 50)]
    pub default_keep_runs: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgView {
    pub slug: String,
    pub name: String,
    pub max_concurrent_runs: i32,
    /// Runs each project keeps when its Jenkinsfile declares no `buildDiscarder`; null keeps
    /// every run.
    pub default_keep_runs: Option<i32>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl OrgView {
    pub fn new(org: &org::Model, role: Role) -> OrgView {
        OrgView {
            slug: org.slug.clone(),
            name: org.name.clone(),
            max_concurrent_runs: org.max_concurrent_runs,
            default_keep_runs: org.default_keep_runs,
            role,
            created_at: org.created_at,
        }
    }
}

/// `POST /api/v1/orgs`: the caller becomes owner. Tokens cannot create orgs.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", security(("bearer" = []), ("session" = [])), request_body = CreateOrg, responses((status = 201, description = "Created; the caller is owner", body = OrgView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    authn: Authn,
    body: web::Json<CreateOrg>,
) -> Result<HttpResponse, ApiError> {
    if authn.principal.token_id().is_some() {
        return Err(ApiError::Forbidden(
            "API tokens act within their org; sign in to create an org".into(),
        ));
    }
    let txn = begin_write(&state.db).await?;
    let org = orgs::create(&txn, authn.principal.user().id, &body.slug, &body.name).await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(OrgView::new(&org, Role::Owner)))
}

/// `GET /api/v1/orgs`: the caller's orgs (a token: its own).
#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("limit" = Option<u64>, Query, description = "Page size, 1 to 200 (default 50)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "The caller's orgs", body = crate::routes::List<OrgView>), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, ApiError> {
    let found = orgs::list_for_principal(&state.db, &authn.principal, &page).await?;
    Ok(list(found.map(|(org, role)| OrgView::new(&org, role))))
}

/// `GET /api/v1/orgs/{org}`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme")), responses((status = 200, description = "The org", body = OrgView), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    Ok(HttpResponse::Ok().json(OrgView::new(scope.org(), scope.role())))
}

/// `PATCH /api/v1/orgs/{org}` (admin).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme")), request_body = UpdateOrg, responses((status = 200, description = "Updated", body = OrgView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
    body: web::Json<UpdateOrg>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    let txn = begin_write(&state.db).await?;
    let org = orgs::update(
        &txn,
        &scope,
        body.name.as_deref(),
        body.max_concurrent_runs,
        body.default_keep_runs,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(OrgView::new(&org, scope.role())))
}
