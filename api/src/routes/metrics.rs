//! `GET /metrics` for Prometheus.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;

/// The registry in the Prometheus text exposition format.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
