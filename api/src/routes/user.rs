//! `GET /api/v1/user`: who am I, and in which orgs.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use sluice_core::store::{PageRequest, orgs};
use sluice_core::tenancy::{Principal, Role};

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
    let memberships = orgs::list_for_user(&state.db, user.id, &page).await?.items;
    let orgs = memberships
        .into_iter()
        .filter_map(|(org, role)| match &authn.principal {
            Principal::User(_) => Some(OrgRole {
                slug: org.slug,
                name: org.name,
                role,
            }),
            Principal::Token { token, .. } if token.org_id == org.id => Some(OrgRole {
                slug: org.slug,
                name: org.name,
                role: role.min(authn.principal.ceiling()),
            }),
            Principal::Token { .. } => None,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Me {
        user: user.into(),
        orgs,
    }))
}
