//! A project's repository access: `GET .../repository`, `PUT|DELETE .../repository/credential`
//! (an HTTPS token, or an SSH deploy key Sluice generates) and `POST .../repository/test`
//! (`git ls-remote` of the default branch, as a checkout would reach it).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use sluice_core::db::begin_write;
use sluice_core::store::projects;
use sluice_core::store::repo_credentials::{self, CredentialView};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::state::AppState;

/// The credential to set: `{"kind": "token", "token": "…", "username": "oauth2"}`, or
/// `{"kind": "ssh_key"}` to generate a new deploy key.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CredentialRequest {
    /// `token` or `ssh_key`.
    pub kind: String,
    /// With `token`: the token (never shown again).
    #[schema(max_length = 4096)]
    pub token: Option<String>,
    /// With `token`: the user name sent with it (default `oauth2`).
    pub username: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RepositoryView {
    pub url: String,
    pub credential: CredentialView,
}

/// What `POST .../repository/test` found.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionTest {
    /// Whether the default branch could be looked up.
    pub ok: bool,
    /// The default branch's commit, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What failed, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// SSH host keys this test pinned (first contact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_host_keys: Option<String>,
}

/// `GET .../repository`: the URL and what is shown of the credential.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/repository", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 200, description = "The repository; never the token or private key", body = RepositoryView), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    Ok(HttpResponse::Ok().json(RepositoryView {
        credential: repo_credentials::view(&project),
        url: project.repo_url,
    }))
}

/// `PUT .../repository/credential` (developer): sets an HTTPS token or generates an SSH
/// deploy key, replacing any credential.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/projects/{project}/repository/credential", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), request_body = CredentialRequest, responses((status = 200, description = "Set; an SSH key's public half to add to the repository", body = CredentialView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn put_credential(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
    body: web::Json<CredentialRequest>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let body = body.into_inner();
    let txn = begin_write(&state.db).await?;
    let view = match body.kind.as_str() {
        "token" => {
            let token = body.token.unwrap_or_default();
            repo_credentials::set_token(
                &txn,
                &scope,
                &state.keys,
                &slug,
                body.username.as_deref(),
                &token,
            )
            .await?
        }
        "ssh_key" => repo_credentials::generate_ssh_key(&txn, &scope, &state.keys, &slug).await?,
        _ => {
            return Err(sluice_core::Error::invalid("kind", "must be `token` or `ssh_key`").into());
        }
    };
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE .../repository/credential` (developer): the repository is cloned anonymously again.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/projects/{project}/repository/credential", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 204, description = "Removed"), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn delete_credential(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let txn = begin_write(&state.db).await?;
    repo_credentials::clear(&txn, &scope, &slug).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Looks the project's default branch up as a checkout would reach the repository; pins SSH
/// host keys met for the first time.
pub(crate) async fn test_connection(
    state: &AppState,
    project: &sluice_core::entities::project::Model,
) -> Result<ConnectionTest, ApiError> {
    let credential = repo_credentials::for_git(&state.keys, project)?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let probed = tokio::time::timeout(
        sluice_core::store::changes::RESOLVE_TIMEOUT * 3,
        sluice_core::git::probe(
            &project.repo_url,
            &project.default_branch,
            &state.repo_access,
            credential.as_ref(),
            &cancel,
        ),
    )
    .await;
    Ok(match probed {
        Err(_) => ConnectionTest {
            ok: false,
            commit: None,
            error: Some("the repository did not answer within 30 s".into()),
            pinned_host_keys: None,
        },
        Ok(Err(err)) => ConnectionTest {
            ok: false,
            commit: None,
            error: Some(err.to_string()),
            pinned_host_keys: None,
        },
        Ok(Ok(probe)) => {
            if let Some(keys) = &probe.learned_host_keys {
                repo_credentials::pin_host_keys(&state.db, project, keys).await?;
            }
            match probe.found {
                Some(found) => ConnectionTest {
                    ok: true,
                    commit: Some(found.sha),
                    error: None,
                    pinned_host_keys: probe.learned_host_keys,
                },
                None => ConnectionTest {
                    ok: false,
                    commit: None,
                    error: Some(format!(
                        "connected, but the repository has no branch `{}` (the project's default branch)",
                        project.default_branch
                    )),
                    pinned_host_keys: probe.learned_host_keys,
                },
            }
        }
    })
}

/// `POST .../repository/test` (developer): `git ls-remote` of the default branch, under the
/// checkout's address rules and with the project's credential; reports what failed.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects/{project}/repository/test", tag = "projects", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web")), responses((status = 200, description = "What the test found (`ok` false with `error` when it failed)", body = ConnectionTest), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn test(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    scope.require(sluice_core::tenancy::Role::Developer)?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    Ok(HttpResponse::Ok().json(test_connection(&state, &project).await?))
}
