//! `GET /metrics` for Prometheus.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use sluice_core::crypto::constant_time_eq;

use crate::error::ApiError;
use crate::state::AppState;

/// The registry in the Prometheus text exposition format. With `SLUICE_METRICS_TOKEN` set,
/// only for `Authorization: Bearer <token>`: label values name every tenant's org.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = &state.metrics_token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if !given.is_some_and(|token| constant_time_eq(token, expected.expose_secret())) {
            return Err(ApiError::Unauthorized);
        }
    }
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
