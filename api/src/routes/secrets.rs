//! Project secrets: `PUT|DELETE .../projects/{project}/secrets/{NAME}`, `GET .../secrets`.
//! Values go in and never come out.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::db::begin_write;
use sluice_core::store::{Page, projects};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::list;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SecretValue {
    #[schema(max_length = 65536)]
    pub value: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SecretView {
    name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretName {
    name: String,
}

/// `PUT .../secrets/{NAME}` (developer): 201 when created, 200 when replaced.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/projects/{project}/secrets/{name}", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("name" = String, Path, description = "A Jenkins credential id: letters, digits, `-`, `_`, `.`", example = "deploy-token")), request_body = SecretValue, responses((status = 201, description = "Created", body = SecretName), (status = 200, description = "Replaced", body = SecretName), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, String)>,
    body: web::Json<SecretValue>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, name) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    let created =
        projects::put_secret(&txn, &scope, &state.keys, &project, &name, &body.value).await?;
    txn.commit().await?;
    let mut res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(SecretName { name }))
}

/// `GET .../secrets`: names only.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/secrets", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 200, description = "Secret names, never values", body = crate::routes::List<SecretView>), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let secrets = projects::list_secrets(&state.db, &scope, &project).await?;
    let items = secrets
        .into_iter()
        .map(|s| SecretView {
            name: s.name,
            created_at: s.created_at,
            updated_at: s.updated_at,
        })
        .collect();
    Ok(list(Page {
        items,
        next_cursor: None,
    }))
}

/// `DELETE .../secrets/{NAME}` (developer).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/projects/{project}/secrets/{name}", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("name" = String, Path, description = "A Jenkins credential id: letters, digits, `-`, `_`, `.`", example = "deploy-token")), responses((status = 204, description = "Deleted"), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, name) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    projects::delete_secret(&txn, &scope, &project, &name).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
