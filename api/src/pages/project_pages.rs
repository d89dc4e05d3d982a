//! Project pages: the list with a create form, and a project's settings.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_core::db::begin_write;
use sluice_core::entities::project;
use sluice_core::store::PageRequest;
use sluice_core::store::projects::{self, NewProject};
use sluice_core::tenancy::{Role, TenantScope};

use crate::pages::flash::see_other_notice;
use crate::pages::{FieldErrors, Nav, PageError, SignedIn, Visitor, field_error, render};
use crate::routes::base_url;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct ProjectForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub repo_url: String,
    #[serde(default)]
    pub default_branch: String,
    #[serde(default)]
    pub pipeline_path: String,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    nav: Nav,
    org: String,
    org_name: String,
    projects: Vec<project::Model>,
    can_create: bool,
    form: ProjectForm,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    nav: Nav,
    org: String,
    org_name: String,
    project: project::Model,
    gitlab_url: String,
    github_url: String,
    webhook_secret: Option<String>,
    secrets: Vec<String>,
    part: crate::pages::project_runs::RunsPart,
    slug: String,
    can_run: bool,
    environments: Vec<sluice_core::store::environments::EnvironmentView>,
}

async fn projects_page(
    state: &AppState,
    who: &SignedIn,
    scope: &TenantScope,
    form: ProjectForm,
    errors: FieldErrors,
) -> Result<ProjectsPage, PageError> {
    let projects = projects::list(
        &state.db,
        scope,
        &PageRequest {
            limit: Some(200),
            cursor: None,
        },
    )
    .await?
    .items;
    Ok(ProjectsPage {
        nav: who.nav(state, Some(&scope.org().slug)).await?,
        org: scope.org().slug.clone(),
        org_name: scope.org().name.clone(),
        projects,
        can_create: scope.role() >= Role::Developer,
        form,
        errors,
    })
}

/// `GET /orgs/{org}/projects`.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let scope = who.scope(&state, &path).await?;
    let form = ProjectForm {
        default_branch: "main".into(),
        pipeline_path: "Jenkinsfile".into(),
        ..ProjectForm::default()
    };
    render(
        StatusCode::OK,
        &projects_page(&state, &who, &scope, form, FieldErrors::new()).await?,
    )
}

/// `POST /orgs/{org}/projects`: validation errors appear next to their field.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<String>,
    form: web::Form<ProjectForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let scope = who.form_scope(&state, &path, &form.csrf_token).await?;
    let form = form.into_inner();
    let optional = |v: &str| {
        if v.trim().is_empty() {
            None
        } else {
            Some(v.trim().to_owned())
        }
    };
    let new = NewProject {
        slug: form.slug.trim().to_owned(),
        name: form.name.clone(),
        repo_url: form.repo_url.clone(),
        default_branch: optional(&form.default_branch),
        pipeline_path: optional(&form.pipeline_path),
        branches: None,
        fork_secrets: None,
    };
    let txn = begin_write(&state.db).await?;
    match projects::create(&txn, &scope, &state.keys, new).await {
        Ok((project, _)) => {
            txn.commit().await?;
            Ok(see_other_notice(
                &format!("/orgs/{}/projects/{}", scope.org().slug, project.slug),
                &format!(
                    "{} was created. Point a webhook at it, or run it now.",
                    project.name
                ),
            ))
        }
        Err(err) => {
            txn.rollback().await?;
            let mut errors = FieldErrors::new();
            field_error(err, &mut errors)?;
            render(
                StatusCode::BAD_REQUEST,
                &projects_page(&state, &who, &scope, form, errors).await?,
            )
        }
    }
}

/// `GET /orgs/{org}/projects/{project}`: webhook URLs and (for developers) the secret.
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = who.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    let webhook_secret = if scope.role() >= Role::Developer {
        Some(projects::webhook_secret(&state.keys, &project)?)
    } else {
        None
    };
    let secrets = projects::list_secrets(&state.db, &scope, &slug)
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let base = base_url(&state, &req);
    let part = crate::pages::project_runs::runs_part(&state, &scope, &slug).await?;
    let environments = sluice_core::store::environments::list(&state.db, project.id).await?;
    let page = ProjectPage {
        org_name: scope.org().name.clone(),
        environments,
        part,
        slug: slug.clone(),
        can_run: scope.role() >= Role::Developer,
        nav: who.nav(&state, Some(&org)).await?,
        gitlab_url: format!("{base}/hooks/gitlab/{org}/{slug}"),
        github_url: format!("{base}/hooks/github/{org}/{slug}"),
        org,
        project,
        webhook_secret,
        secrets,
    };
    render(StatusCode::OK, &page)
}
