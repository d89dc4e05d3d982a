//! Project secrets: `PUT|DELETE .../projects/{project}/secrets/{NAME}`, `GET .../secrets`.
//! Values go in and never come out.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use sluice_core::store::{Page, projects};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::list;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SecretValue {
    pub value: String,
}

#[derive(Serialize)]
struct SecretView {
    name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `PUT .../secrets/{NAME}` (developer): 201 when created, 200 when replaced.
pub async fn put(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, String)>,
    body: web::Json<SecretValue>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, name) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = state.db.begin().await?;
    let created =
        projects::put_secret(&txn, &scope, &state.keys, &project, &name, &body.value).await?;
    txn.commit().await?;
    let mut res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(serde_json::json!({ "name": name })))
}

/// `GET .../secrets`: names only.
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
pub async fn delete(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, name) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = state.db.begin().await?;
    projects::delete_secret(&txn, &scope, &project, &name).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
