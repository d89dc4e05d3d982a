//! The OpenAPI 3 document of the JSON API, generated from the handlers' annotations, and
//! `GET /api/v1/openapi.json`.

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{
    auth, health, lint, members, orgs, projects, releases, repository, run_actions, run_outputs,
    runs, secrets, tokens, user,
};

/// The error shape every failing request answers with.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// More about the failure, e.g. `{"field": "slug"}` for bad input.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("slc_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice API", description = "Multi-tenant CI/CD: organisations, tokens, projects, secrets, runs, releases."),
    paths(
        health::healthz, health::readyz,
        auth::signup, auth::login, auth::logout,
        user::me,
        orgs::create, orgs::index, orgs::show, orgs::update,
        members::index, members::update, members::remove, members::invite, members::accept, members::audit_log,
        tokens::create, tokens::index, tokens::revoke,
        projects::create, projects::index, projects::show, projects::update, projects::delete,
        secrets::index, secrets::put, secrets::delete,
        projects::rotate_webhook,
        repository::show, repository::put_credential, repository::delete_credential, repository::test,
        runs::create, runs::index, runs::show,
        run_outputs::log, run_outputs::artifact_index, run_outputs::artifact_download,
        run_actions::cancel, run_actions::approve, run_actions::rerun,
        lint::lint,
        releases::environment_index, releases::environment_create, releases::environment_update,
        releases::index, releases::show, releases::rollback, releases::abort,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security),
    tags(
        (name = "service", description = "Health and readiness"),
        (name = "accounts", description = "Local accounts and sessions"),
        (name = "orgs", description = "Organisations, members, invitations, audit log"),
        (name = "tokens", description = "API tokens"),
        (name = "projects", description = "Projects and their secrets"),
        (name = "runs", description = "Runs of a project's pipeline"),
        (name = "pipelines", description = "Jenkinsfiles"),
        (name = "releases", description = "Environments and blue-green releases"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
