//! `GET /api/v1/user`: who am I, and in which orgs.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use sluice_core::store::{PageRequest, orgs};
use sluice_core::tenancy::Role;

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::auth::UserView;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
struct OrgRole {
    slug: String,
    name: String,
    role: Role,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Me {
    #[serde(flatten)]
    user: UserView,
    orgs: Vec<OrgRole>,
}

/// The caller and their orgs; a token sees only its own org, with its effective role.
#[utoipa::path(get, path = "/api/v1/user", tag = "accounts", security(("bearer" = []), ("session" = [])), responses((status = 200, description = "The caller and their orgs", body = Me), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody)))]
pub async fn me(state: web::Data<AppState>, authn: Authn) -> Result<HttpResponse, ApiError> {
    let user = authn.principal.user();
    let page = PageRequest {
        limit: Some(200),
        cursor: None,
    };
    let orgs = orgs::list_for_principal(&state.db, &authn.principal, &page)
        .await?
        .items
        .into_iter()
        .map(|(org, role)| OrgRole {
            slug: org.slug,
            name: org.name,
            role,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Me {
        user: user.into(),
        orgs,
    }))
}
