//! "Run with parameters": pick a branch or tag, and fill in the parameters the default
//! branch's Jenkinsfile declares (string, text, choice, boolean, password), as Jenkins' "Build
//! with Parameters" does. The form posts to `POST .../runs` (`run_pages::trigger`).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use sluice_core::entities::project;
use sluice_core::store::params::{self, ParamSpec};
use sluice_core::store::{projects, repo_credentials};
use sluice_core::tenancy::{Role, TenantScope};

use crate::pages::{Nav, PageError, SignedIn, Visitor, render};
use crate::state::AppState;

/// Most branches and tags offered in the picker (each).
const MAX_REFS: usize = 200;

/// One parameter's field.
pub struct ParamField {
    pub spec: ParamSpec,
    /// What the field shows: the value given, else the default (never a password's).
    pub value: String,
}

#[derive(Template)]
#[template(path = "run_form.html")]
pub struct RunFormPage {
    nav: Nav,
    org: String,
    org_name: String,
    project: project::Model,
    branches: Vec<String>,
    tags: Vec<String>,
    /// Why the branches and tags could not be listed (the ref is then typed).
    refs_error: Option<String>,
    git_ref: String,
    fields: Vec<ParamField>,
    /// Why the run was refused, with the field at fault.
    error: Option<String>,
}

/// The form for `project`, with `given` values and `error` (after a refused post).
pub async fn page(
    state: &AppState,
    who: &SignedIn,
    scope: &TenantScope,
    project: project::Model,
    git_ref: Option<String>,
    given: &BTreeMap<String, String>,
    error: Option<String>,
) -> Result<RunFormPage, PageError> {
    let credential = repo_credentials::for_git(&state.keys, &project)?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let listed = tokio::time::timeout(
        sluice_core::store::changes::RESOLVE_TIMEOUT,
        sluice_core::git::list_refs(
            &project.repo_url,
            &state.repo_access,
            credential.as_ref(),
            MAX_REFS,
            &cancel,
        ),
    )
    .await;
    let (branches, tags, refs_error) = match listed {
        Ok(Ok((branches, tags))) => (branches, tags, None),
        Ok(Err(err)) => (Vec::new(), Vec::new(), Some(err.to_string())),
        Err(_) => (
            Vec::new(),
            Vec::new(),
            Some("the repository did not answer within 10 s".to_owned()),
        ),
    };
    let fields = project
        .pipeline_params
        .as_deref()
        .map(params::from_json)
        .unwrap_or_default()
        .into_iter()
        .map(|spec| ParamField {
            value: match given.get(&spec.name) {
                Some(v) if spec.kind != "password" => v.clone(),
                _ if spec.kind == "password" => String::new(),
                _ => spec.default.clone(),
            },
            spec,
        })
        .collect();
    Ok(RunFormPage {
        nav: who.nav(state, Some(&scope.org().slug)).await?,
        org: scope.org().slug.clone(),
        org_name: scope.org().name.clone(),
        git_ref: git_ref.unwrap_or_else(|| project.default_branch.clone()),
        project,
        branches,
        tags,
        refs_error,
        fields,
        error,
    })
}

/// `GET /orgs/{org}/projects/{project}/run`.
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = who.scope(&state, &org).await?;
    if scope.role() < Role::Developer {
        return Err(PageError::Forbidden(
            "Only developers and admins of this organisation can start runs.".into(),
        ));
    }
    let project = projects::get(&state.db, &scope, &slug).await?;
    let form = page(&state, &who, &scope, project, None, &BTreeMap::new(), None).await?;
    render(StatusCode::OK, &form)
}
