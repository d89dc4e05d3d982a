//! A project's settings page: the repository and how to reach it (HTTPS token or SSH deploy
//! key, "Test connection"), branches and Jenkinsfile path, secrets, the webhook secret, and
//! deleting the project. Every form redirects back with a notice.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_core::db::begin_write;
use sluice_core::entities::project;
use sluice_core::store::changes::BranchFilter;
use sluice_core::store::projects::{self, ProjectChanges};
use sluice_core::store::repo_credentials::{self, CredentialView};
use sluice_core::tenancy::{Role, TenantScope};

use crate::pages::flash::see_other_notice;
use crate::pages::{FieldErrors, Nav, PageError, SignedIn, Visitor, field_error, render};
use crate::routes::base_url;
use crate::state::AppState;

/// The general settings form.
#[derive(Deserialize, Default)]
pub struct GeneralForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub repo_url: String,
    #[serde(default)]
    pub default_branch: String,
    #[serde(default)]
    pub branches: String,
    #[serde(default)]
    pub pipeline_path: String,
}

#[derive(Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirm: String,
}

/// A secret as the page lists it: the name and when it was last set, never the value.
pub struct SecretRow {
    pub name: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "project_settings.html")]
struct SettingsPage {
    nav: Nav,
    org: String,
    org_name: String,
    project: project::Model,
    general: GeneralForm,
    errors: FieldErrors,
    secret_errors: FieldErrors,
    credential: CredentialView,
    secrets: Vec<SecretRow>,
    secret_name: String,
    gitlab_url: String,
    github_url: String,
    webhook_secret: String,
    allow_local: bool,
    is_admin: bool,
}

fn general_of(p: &project::Model) -> GeneralForm {
    GeneralForm {
        csrf_token: String::new(),
        name: p.name.clone(),
        repo_url: p.repo_url.clone(),
        default_branch: p.default_branch.clone(),
        branches: BranchFilter::of_stored(p.branches.as_deref())
            .patterns()
            .join(", "),
        pipeline_path: p.pipeline_path.clone(),
    }
}

fn settings_path(org: &str, slug: &str) -> String {
    format!("/orgs/{org}/projects/{slug}/settings")
}

/// The settings page's scope: a developer's (viewers see the project page only).
async fn developer_scope(
    state: &AppState,
    who: &SignedIn,
    org: &str,
    csrf: Option<&str>,
) -> Result<TenantScope, PageError> {
    let scope = match csrf {
        Some(csrf) => who.form_scope(state, org, csrf).await?,
        None => who.scope(state, org).await?,
    };
    if scope.role() < Role::Developer {
        return Err(PageError::Forbidden(
            "Only developers and admins of this organisation can change a project's settings."
                .into(),
        ));
    }
    Ok(scope)
}

#[allow(clippy::too_many_arguments)]
async fn settings_page(
    state: &AppState,
    req: &HttpRequest,
    who: &SignedIn,
    scope: &TenantScope,
    project: project::Model,
    general: GeneralForm,
    errors: FieldErrors,
    secret: (String, FieldErrors),
) -> Result<SettingsPage, PageError> {
    let org = scope.org().slug.clone();
    let secrets = projects::list_secrets(&state.db, scope, &project.slug)
        .await?
        .into_iter()
        .map(|s| SecretRow {
            name: s.name,
            updated: s.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect();
    let base = base_url(state, req);
    Ok(SettingsPage {
        nav: who.nav(state, Some(&org)).await?,
        org_name: scope.org().name.clone(),
        gitlab_url: format!("{base}/hooks/gitlab/{org}/{}", project.slug),
        github_url: format!("{base}/hooks/github/{org}/{}", project.slug),
        webhook_secret: projects::webhook_secret(&state.keys, &project)?,
        credential: repo_credentials::view(&project),
        allow_local: state.repo_access.allow_local,
        is_admin: scope.role() >= Role::Admin,
        org,
        project,
        general,
        errors,
        secrets,
        secret_name: secret.0,
        secret_errors: secret.1,
    })
}

/// `GET /orgs/{org}/projects/{project}/settings`.
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = developer_scope(&state, &who, &org, None).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    let general = general_of(&project);
    let page = settings_page(
        &state,
        &req,
        &who,
        &scope,
        project,
        general,
        FieldErrors::new(),
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(StatusCode::OK, &page)
}

/// `POST .../settings`: name, repository, branches, Jenkinsfile path; errors by field.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<GeneralForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let form = form.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    let branches: Vec<String> = form
        .branches
        .split([',', '\n'])
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .collect();
    let changes = ProjectChanges {
        name: Some(form.name.clone()),
        repo_url: Some(form.repo_url.trim().to_owned()),
        default_branch: Some(form.default_branch.trim().to_owned()),
        pipeline_path: Some(form.pipeline_path.trim().to_owned()),
        branches: Some(if branches.is_empty() {
            vec!["*".to_owned()]
        } else {
            branches
        }),
        fork_secrets: None,
    };
    let txn = begin_write(&state.db).await?;
    match projects::update(&txn, &scope, &slug, changes).await {
        Ok(_) => {
            txn.commit().await?;
            Ok(see_other_notice(
                &settings_path(&org, &slug),
                "Settings saved.",
            ))
        }
        Err(err) => {
            txn.rollback().await?;
            let mut errors = FieldErrors::new();
            field_error(err, &mut errors)?;
            let project = projects::get(&state.db, &scope, &slug).await?;
            let page = settings_page(
                &state,
                &req,
                &who,
                &scope,
                project,
                form,
                errors,
                (String::new(), FieldErrors::new()),
            )
            .await?;
            render(StatusCode::BAD_REQUEST, &page)
        }
    }
}

/// `POST .../settings/credential`: an HTTPS token, or a new SSH deploy key.
pub async fn set_credential(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<CredentialForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let form = form.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    let txn = begin_write(&state.db).await?;
    let (set, notice) = match form.kind.as_str() {
        "ssh_key" => (
            repo_credentials::generate_ssh_key(&txn, &scope, &state.keys, &slug).await,
            "A new SSH deploy key was generated: add its public key to the repository, then test the connection.",
        ),
        _ => (
            repo_credentials::set_token(
                &txn,
                &scope,
                &state.keys,
                &slug,
                Some(&form.username),
                &form.token,
            )
            .await,
            "The HTTPS token was saved; it will not be shown again. Test the connection to check it.",
        ),
    };
    match set {
        Ok(_) => {
            txn.commit().await?;
            Ok(see_other_notice(&settings_path(&org, &slug), notice))
        }
        Err(sluice_core::Error::Invalid { field, message }) => {
            txn.rollback().await?;
            Ok(see_other_notice(
                &format!("{}#repository-access", settings_path(&org, &slug)),
                &format!("Not saved ({field}): {message}"),
            ))
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST .../settings/credential/remove`.
pub async fn remove_credential(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    let txn = begin_write(&state.db).await?;
    repo_credentials::clear(&txn, &scope, &slug).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &settings_path(&org, &slug),
        "The repository credential was removed: the repository is cloned anonymously.",
    ))
}

/// `POST .../settings/test`: "Test connection".
pub async fn test_connection(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    let test = crate::routes::repository::test_connection(&state, &project)
        .await
        .map_err(|e| PageError::Internal(Box::new(e)))?;
    let mut notice = match (&test.commit, &test.error) {
        (Some(commit), _) => format!(
            "Connected: {} is at {}.",
            project.default_branch,
            &commit[..commit.len().min(12)]
        ),
        (None, Some(error)) => format!("Connection failed: {error}"),
        (None, None) => "Connection failed.".to_owned(),
    };
    if test.pinned_host_keys.is_some() {
        notice.push_str(" The server's SSH host key is now pinned for this project.");
    }
    Ok(see_other_notice(
        &format!("{}#repository-access", settings_path(&org, &slug)),
        &notice,
    ))
}

/// `POST .../settings/secrets`: adds or replaces a secret.
pub async fn put_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<SecretForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let form = form.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    let name = form.name.trim().to_owned();
    // Browsers send a textarea's line breaks as CRLF; a pasted key file keeps its LFs.
    let value = form.value.replace("\r\n", "\n");
    let txn = begin_write(&state.db).await?;
    match projects::put_secret(&txn, &scope, &state.keys, &slug, &name, &value).await {
        Ok(created) => {
            txn.commit().await?;
            let what = if created { "added" } else { "replaced" };
            Ok(see_other_notice(
                &format!("{}#secrets", settings_path(&org, &slug)),
                &format!("Secret {name} {what}."),
            ))
        }
        Err(err) => {
            txn.rollback().await?;
            let mut errors = FieldErrors::new();
            field_error(err, &mut errors)?;
            let project = projects::get(&state.db, &scope, &slug).await?;
            let general = general_of(&project);
            let page = settings_page(
                &state,
                &req,
                &who,
                &scope,
                project,
                general,
                FieldErrors::new(),
                (name, errors),
            )
            .await?;
            render(StatusCode::BAD_REQUEST, &page)
        }
    }
}

/// `POST .../settings/secrets/{name}/delete`.
pub async fn delete_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug, name) = path.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    let txn = begin_write(&state.db).await?;
    projects::delete_secret(&txn, &scope, &slug, &name).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &format!("{}#secrets", settings_path(&org, &slug)),
        &format!("Secret {name} deleted."),
    ))
}

/// `POST .../settings/webhook/rotate`.
pub async fn rotate_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    let txn = begin_write(&state.db).await?;
    projects::rotate_webhook_secret(&txn, &scope, &state.keys, &slug).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &format!("{}#webhook", settings_path(&org, &slug)),
        "The webhook secret was rotated: put the new one in GitLab or GitHub, as deliveries signed with the old one are now refused.",
    ))
}

/// `POST .../settings/delete` (admin): only with the project's slug typed to confirm.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = developer_scope(&state, &who, &org, Some(&form.csrf_token)).await?;
    if form.confirm.trim() != slug {
        return Ok(see_other_notice(
            &format!("{}#delete", settings_path(&org, &slug)),
            &format!("Not deleted: type the project's slug, {slug}, to confirm."),
        ));
    }
    let txn = begin_write(&state.db).await?;
    projects::delete(&txn, &scope, &slug).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &format!("/orgs/{org}/projects"),
        &format!("Project {slug} was deleted with its runs and secrets."),
    ))
}
