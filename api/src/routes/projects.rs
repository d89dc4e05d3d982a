//! Projects: `POST|GET /api/v1/orgs/{org}/projects`, `GET|PATCH|DELETE .../projects/{project}`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::db::begin_write;
use sluice_core::entities::project;
use sluice_core::store::PageRequest;
use sluice_core::store::changes::BranchFilter;
use sluice_core::store::projects::{self, NewProject, ProjectChanges};
use sluice_core::tenancy::{Role, TenantScope};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::{base_url, list_body};
use crate::state::AppState;
use actix_web::http::header::ContentType;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateProject {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$", example = "web")]
    pub slug: String,
    #[schema(min_length = 1, max_length = 200, example = "Web shop")]
    pub name: String,
    #[schema(example = "https://gitlab.example.com/acme/web.git")]
    pub repo_url: String,
    pub default_branch: Option<String>,
    pub pipeline_path: Option<String>,
    /// Which pushed branches build: globs (`*` any text, `?` one character, `!` leaves out);
    /// every branch by default. Tags and change requests always build.
    #[schema(example = json!(["main", "release/*", "!release/*-wip"]))]
    pub branches: Option<Vec<String>>,
    /// Whether change requests from forks get the project's secrets (admin only; false).
    pub fork_secrets: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateProject {
    pub name: Option<String>,
    pub repo_url: Option<String>,
    pub default_branch: Option<String>,
    pub pipeline_path: Option<String>,
    pub branches: Option<Vec<String>>,
    /// Admin only.
    pub fork_secrets: Option<bool>,
}

/// Where GitLab and GitHub should send pushes; the secret only for developers and above.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub gitlab_url: String,
    pub github_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    pub slug: String,
    pub name: String,
    pub repo_url: String,
    pub default_branch: String,
    pub pipeline_path: String,
    /// The `branches` filter (`["*"]`: every branch).
    pub branches: Vec<String>,
    pub fork_secrets: bool,
    /// How checkouts authenticate (never the token or private key).
    pub repo_credential: sluice_core::store::repo_credentials::CredentialView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookView>,
}

impl ProjectView {
    fn new(p: &project::Model, webhook: Option<WebhookView>) -> ProjectView {
        ProjectView {
            slug: p.slug.clone(),
            name: p.name.clone(),
            repo_url: p.repo_url.clone(),
            default_branch: p.default_branch.clone(),
            pipeline_path: p.pipeline_path.clone(),
            branches: BranchFilter::of_stored(p.branches.as_deref())
                .patterns()
                .to_vec(),
            fork_secrets: p.fork_secrets,
            repo_credential: sluice_core::store::repo_credentials::view(p),
            created_at: p.created_at,
            updated_at: p.updated_at,
            webhook,
        }
    }
}

/// The webhook URLs of a project, and its secret when the scope may see it.
pub fn webhook_view(
    state: &AppState,
    req: &HttpRequest,
    scope: &TenantScope,
    p: &project::Model,
) -> Result<WebhookView, ApiError> {
    let base = base_url(state, req);
    let secret = if scope.role() >= Role::Developer {
        Some(projects::webhook_secret(&state.keys, p)?)
    } else {
        None
    };
    Ok(WebhookView {
        gitlab_url: format!("{base}/hooks/gitlab/{}/{}", scope.org().slug, p.slug),
        github_url: format!("{base}/hooks/github/{}/{}", scope.org().slug, p.slug),
        secret,
    })
}

/// `POST /api/v1/orgs/{org}/projects` (developer).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme")), request_body = CreateProject, responses((status = 201, description = "Created, with its webhook URLs and secret", body = ProjectView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    authn: Authn,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CreateProject>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    let body = body.into_inner();
    let new = NewProject {
        slug: body.slug,
        name: body.name,
        repo_url: body.repo_url,
        default_branch: body.default_branch,
        pipeline_path: body.pipeline_path,
        branches: body.branches,
        fork_secrets: body.fork_secrets,
    };
    let txn = begin_write(&state.db).await?;
    let (project, _secret) = projects::create(&txn, &scope, &state.keys, new).await?;
    txn.commit().await?;
    let webhook = webhook_view(&state, &req, &scope, &project)?;
    Ok(HttpResponse::Created().json(ProjectView::new(&project, Some(webhook))))
}

/// `GET /api/v1/orgs/{org}/projects`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("limit" = Option<u64>, Query, description = "Page size, 1 to 200 (default 50)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "Projects", body = crate::routes::List<ProjectView>), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    let key = (scope.org_id(), page.limit, page.cursor.clone());
    if let Some(body) = state.cache.project_list(&key) {
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(body));
    }
    let generation = state.cache.generation();
    let found = projects::list(&state.db, &scope, &page).await?;
    let body = list_body(found.map(|p| ProjectView::new(&p, None)))?;
    state.cache.put_project_list(key, generation, body.clone());
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

/// `GET /api/v1/orgs/{org}/projects/{project}`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 200, description = "The project", body = ProjectView), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    authn: Authn,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    let webhook = webhook_view(&state, &req, &scope, &project)?;
    Ok(HttpResponse::Ok().json(ProjectView::new(&project, Some(webhook))))
}

/// `POST /api/v1/orgs/{org}/projects/{project}/webhook/rotate` (developer): a new webhook
/// secret; deliveries signed with the old one are refused from then on.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/webhook/rotate", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 200, description = "The webhook URLs and the new secret", body = WebhookView), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn rotate_webhook(
    state: web::Data<AppState>,
    authn: Authn,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    projects::rotate_webhook_secret(&txn, &scope, &state.keys, &slug).await?;
    let project = projects::get(&txn, &scope, &slug).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(webhook_view(&state, &req, &scope, &project)?))
}

/// `PATCH /api/v1/orgs/{org}/projects/{project}` (developer).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/projects/{project}", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), request_body = UpdateProject, responses((status = 200, description = "Updated", body = ProjectView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateProject>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let body = body.into_inner();
    let changes = ProjectChanges {
        name: body.name,
        repo_url: body.repo_url,
        default_branch: body.default_branch,
        pipeline_path: body.pipeline_path,
        branches: body.branches,
        fork_secrets: body.fork_secrets,
    };
    let txn = begin_write(&state.db).await?;
    let project = projects::update(&txn, &scope, &slug, changes).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(ProjectView::new(&project, None)))
}

/// `DELETE /api/v1/orgs/{org}/projects/{project}` (admin).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/projects/{project}", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 204, description = "Deleted with its secrets"), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    projects::delete(&txn, &scope, &slug).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
