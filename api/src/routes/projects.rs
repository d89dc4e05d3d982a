//! Projects: `POST|GET /api/v1/orgs/{org}/projects`, `GET|PATCH|DELETE .../projects/{project}`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use sluice_core::entities::project;
use sluice_core::store::PageRequest;
use sluice_core::store::projects::{self, NewProject, ProjectChanges};
use sluice_core::tenancy::{Role, TenantScope};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::{base_url, list};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateProject {
    pub slug: String,
    pub name: String,
    pub repo_url: String,
    pub default_branch: Option<String>,
    pub pipeline_path: Option<String>,
}

#[derive(Deserialize)]
pub struct UpdateProject {
    pub name: Option<String>,
    pub repo_url: Option<String>,
    pub default_branch: Option<String>,
    pub pipeline_path: Option<String>,
}

/// Where GitLab and GitHub should send pushes; the secret only for developers and above.
#[derive(Serialize)]
pub struct WebhookView {
    pub gitlab_url: String,
    pub github_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Serialize)]
pub struct ProjectView {
    pub slug: String,
    pub name: String,
    pub repo_url: String,
    pub default_branch: String,
    pub pipeline_path: String,
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
    };
    let txn = state.db.begin().await?;
    let (project, _secret) = projects::create(&txn, &scope, &state.keys, new).await?;
    txn.commit().await?;
    let webhook = webhook_view(&state, &req, &scope, &project)?;
    Ok(HttpResponse::Created().json(ProjectView::new(&project, Some(webhook))))
}

/// `GET /api/v1/orgs/{org}/projects`.
pub async fn index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    Ok(list(
        projects::list(&state.db, &scope, &page)
            .await?
            .map(|p| ProjectView::new(&p, None)),
    ))
}

/// `GET /api/v1/orgs/{org}/projects/{project}`.
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

/// `PATCH /api/v1/orgs/{org}/projects/{project}` (developer).
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
    };
    let txn = state.db.begin().await?;
    let project = projects::update(&txn, &scope, &slug, changes).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(ProjectView::new(&project, None)))
}

/// `DELETE /api/v1/orgs/{org}/projects/{project}` (admin).
pub async fn delete(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = state.db.begin().await?;
    projects::delete(&txn, &scope, &slug).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
