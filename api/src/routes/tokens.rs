//! API tokens: `POST|GET /api/v1/orgs/{org}/tokens`, `DELETE .../tokens/{id}`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::db::begin_write;
use sluice_core::entities::api_token;
use sluice_core::store::{PageRequest, tokens};
use sluice_core::tenancy::Scope;

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::list;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateToken {
    #[schema(min_length = 1, max_length = 100, example = "deploy script")]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// A token without its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&api_token::Model> for TokenView {
    fn from(t: &api_token::Model) -> Self {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            scopes: tokens::scopes_of(t),
            created_by: t.created_by,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedToken {
    #[serde(flatten)]
    view: TokenView,
    /// Shown only in this response.
    token: String,
}

/// `POST /api/v1/orgs/{org}/tokens` (admin).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/tokens", tag = "tokens", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme")), request_body = CreateToken, responses((status = 201, description = "The token, shown only here", body = CreatedToken), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    let txn = begin_write(&state.db).await?;
    let (token, raw) =
        tokens::create(&txn, &scope, &body.name, &body.scopes, body.expires_in_days).await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(CreatedToken {
        view: TokenView::from(&token),
        token: raw,
    }))
}

/// `GET /api/v1/orgs/{org}/tokens` (admin).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/tokens", tag = "tokens", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("limit" = Option<u64>, Query, description = "Page size, 1 to 200 (default 50)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "Tokens without secrets", body = crate::routes::List<TokenView>), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    Ok(list(
        tokens::list(&state.db, &scope, &page)
            .await?
            .map(|t| TokenView::from(&t)),
    ))
}

/// `DELETE /api/v1/orgs/{org}/tokens/{id}` (admin): effective on the next request.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/tokens/{id}", tag = "tokens", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("id" = i64, Path, description = "Token id")), responses((status = 204, description = "Revoked"), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn revoke(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    tokens::revoke(&txn, &scope, id).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
