//! Liveness and readiness for load balancers and Kubernetes probes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: 200 while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "The process lives", body = Object)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the database (and Redis, when configured) answer; else 503 naming
/// the failing part.
#[utoipa::path(get, path = "/readyz", tag = "service", responses((status = 200, description = "Database (and Redis) answer", body = Object), (status = 503, description = "Not ready", body = crate::openapi::ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let checks = state.readiness.check().await;
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.component)
        .collect();
    if failing.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks })));
    }
    Err(ApiError::Unavailable {
        message: format!("not ready: {} not answering", failing.join(" and ")),
        details: Some(json!({ "checks": checks })),
    })
}
