//! `POST /api/v1/lint`: checks a Jenkinsfile without running it.

use actix_web::HttpResponse;
use serde::Serialize;
use sluice_core::pipeline;

use crate::auth::Authn;
use crate::error::ApiError;

/// One problem found.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LintDiagnostic {
    pub line: u32,
    pub col: u32,
    /// `error` (the pipeline is refused) or `warning`.
    pub severity: String,
    pub message: String,
}

/// Whether the Jenkinsfile would run, and every problem found at once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LintResult {
    pub valid: bool,
    pub diagnostics: Vec<LintDiagnostic>,
}

/// The body is the Jenkinsfile itself.
#[utoipa::path(post, path = "/api/v1/lint", tag = "pipelines", security(("bearer" = []), ("session" = [])), request_body(content = String, content_type = "text/plain", description = "A Jenkinsfile"), responses((status = 200, description = "The verdict and the diagnostics", body = LintResult), (status = 400, description = "Not UTF-8 text", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Missing CSRF token", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn lint(_authn: Authn, body: String) -> Result<HttpResponse, ApiError> {
    let result = pipeline::lint(&body);
    let diagnostics = result
        .diagnostics
        .iter()
        .map(|d| LintDiagnostic {
            line: d.pos.line,
            col: d.pos.col,
            severity: match d.severity {
                pipeline::Severity::Error => "error".into(),
                pipeline::Severity::Warning => "warning".into(),
            },
            message: d.message.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(LintResult {
        valid: result.is_valid(),
        diagnostics,
    }))
}
