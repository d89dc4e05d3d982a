//! Members, invitations and the audit log of an org.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::db::begin_write;
use sluice_core::store::{PageRequest, audit, invitations, orgs};
use sluice_core::tenancy::Role;

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::{base_url, list, orgs::OrgView};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl From<orgs::Member> for MemberView {
    fn from(m: orgs::Member) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RoleChange {
    pub role: Role,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct InvitationRequest {
    pub email: String,
    pub role: Role,
}

#[derive(Serialize, utoipa::ToSchema)]
struct InvitationView {
    id: i64,
    email: String,
    role: Role,
    expires_at: DateTime<Utc>,
    accept_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Accepted {
    org: OrgView,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuditView {
    id: i64,
    action: String,
    target_type: String,
    target_id: String,
    actor_user_id: Option<i64>,
    actor_token_id: Option<i64>,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    created_at: DateTime<Utc>,
}

/// `GET /api/v1/orgs/{org}/members`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("limit" = Option<u64>, Query, description = "Page size, 1 to 200 (default 50)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "Members", body = crate::routes::List<MemberView>), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    Ok(list(
        orgs::members(&state.db, &scope, &page)
            .await?
            .map(MemberView::from),
    ))
}

/// `PATCH /api/v1/orgs/{org}/members/{user_id}` (admin).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/members/{user_id}", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("user_id" = i64, Path, description = "Member's user id")), request_body = RoleChange, responses((status = 200, description = "Role changed", body = MemberView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, i64)>,
    body: web::Json<RoleChange>,
) -> Result<HttpResponse, ApiError> {
    let (org, user_id) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    let member = orgs::set_role(&txn, &scope, user_id, body.role).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(MemberView::from(member)))
}

/// `DELETE /api/v1/orgs/{org}/members/{user_id}` (admin).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{user_id}", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("user_id" = i64, Path, description = "Member's user id")), responses((status = 204, description = "Removed"), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody)))]
pub async fn remove(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user_id) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    orgs::remove_member(&txn, &scope, user_id).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/orgs/{org}/invitations` (admin) → the link to send.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme")), request_body = InvitationRequest, responses((status = 201, description = "Invitation link", body = InvitationView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn invite(
    state: web::Data<AppState>,
    authn: Authn,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<InvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    let txn = begin_write(&state.db).await?;
    let (invitation, raw) = invitations::create(&txn, &scope, &body.email, body.role).await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(InvitationView {
        id: invitation.id,
        email: invitation.email,
        role: body.role,
        expires_at: invitation.expires_at,
        accept_url: format!("{}/invitations/{raw}", base_url(&state, &req)),
    }))
}

/// `POST /api/v1/invitations/{token}/accept`: joins the caller to the inviting org.
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("token" = String, Path, description = "Token from the invitation link")), responses((status = 200, description = "Joined", body = Accepted), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody)))]
pub async fn accept(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if authn.principal.token_id().is_some() {
        return Err(ApiError::Forbidden(
            "invitations are accepted by people, not tokens".into(),
        ));
    }
    let txn = begin_write(&state.db).await?;
    let (org, role) = invitations::accept(&txn, authn.principal.user(), &path).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(Accepted {
        org: OrgView::new(&org, role),
    }))
}

/// `GET /api/v1/orgs/{org}/audit` (admin), newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit", tag = "orgs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("limit" = Option<u64>, Query, description = "Page size, 1 to 200 (default 50)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "Audit log, newest first", body = crate::routes::List<AuditView>), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn audit_log(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    scope.require(Role::Admin)?;
    let entries = audit::list(&state.db, &scope, &page).await?;
    Ok(list(entries.map(|e| AuditView {
        id: e.id,
        action: e.action,
        target_type: e.target_type,
        target_id: e.target_id,
        actor_user_id: e.actor_user_id,
        actor_token_id: e.actor_token_id,
        details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
        created_at: e.created_at,
    })))
}
