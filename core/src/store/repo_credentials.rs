//! A project's repository credential, for private repositories: an HTTPS token, or an SSH
//! deploy key that Sluice generates (only its public half is ever shown). Sealed at rest like
//! secrets and bound to the project; used only by checkouts and ref lookups, never handed to a
//! step, never shown again.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde::Serialize;
use serde_json::json;

use crate::crypto::Keyring;
use crate::entities::project;
use crate::git::remote_of;
use crate::git_auth::RepoCredential;
use crate::store::{audit, projects};
use crate::tenancy::{Role, TenantScope};
use crate::{Error, Result};

const TOKEN: &str = "token";
const SSH_KEY: &str = "ssh_key";

/// The user name sent with a token when none is given: GitLab and GitHub both take it.
pub const DEFAULT_TOKEN_USER: &str = "oauth2";

fn context(project_id: i64) -> String {
    format!("repo:{project_id}")
}

/// What is shown of a project's repository credential: never the token or the private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CredentialView {
    /// `none`, `token` or `ssh_key`.
    pub kind: String,
    /// The user name sent with the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The deploy key to add to the repository (GitLab: Settings → Repository → Deploy keys;
    /// GitHub: Settings → Deploy keys), read-only access is enough.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The SSH host keys pinned at the first connection (`known_hosts` lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_keys: Option<String>,
}

pub fn view(project: &project::Model) -> CredentialView {
    CredentialView {
        kind: project
            .repo_auth
            .clone()
            .unwrap_or_else(|| "none".to_owned()),
        username: project
            .repo_username
            .clone()
            .filter(|_| project.repo_auth.as_deref() == Some(TOKEN)),
        public_key: project.ssh_public_key.clone(),
        host_keys: project.ssh_known_hosts.clone(),
    }
}

/// Whether the repository URL is reached over http(s) (else SSH); None for a local path.
fn is_http(repo_url: &str) -> Option<bool> {
    remote_of(repo_url).map(|r| r.http)
}

/// Sets an HTTPS token (developer); the URL must be http(s).
pub async fn set_token(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    keys: &Keyring,
    slug: &str,
    username: Option<&str>,
    token: &str,
) -> Result<CredentialView> {
    scope.require(Role::Developer)?;
    let username = username
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or(DEFAULT_TOKEN_USER);
    if username.len() > 255 || username.contains(':') || username.chars().any(char::is_control) {
        return Err(Error::invalid(
            "username",
            "must be at most 255 characters, without `:` or control characters",
        ));
    }
    let token = token.trim();
    if token.is_empty() || token.len() > 4096 || token.chars().any(|c| c.is_whitespace()) {
        return Err(Error::invalid(
            "token",
            "must be a token of 1 to 4096 characters, without spaces",
        ));
    }
    let project = projects::get(db, scope, slug).await?;
    if is_http(&project.repo_url) != Some(true) {
        return Err(Error::invalid(
            "token",
            "an HTTPS token needs an https:// repository URL: change the URL first, or use an SSH deploy key",
        ));
    }
    let sealed = keys.encrypt(token.as_bytes(), &context(project.id))?;
    let mut active: project::ActiveModel = project.into();
    active.repo_auth = Set(Some(TOKEN.into()));
    active.repo_username = Set(Some(username.to_owned()));
    active.repo_secret_enc = Set(Some(sealed));
    active.ssh_public_key = Set(None);
    active.ssh_known_hosts = Set(None);
    active.updated_at = Set(Utc::now());
    let saved = active.update(db).await?;
    audit::record(
        db,
        scope,
        "repository.credential",
        "project",
        slug,
        json!({"kind": TOKEN, "username": username}),
    )
    .await?;
    Ok(view(&saved))
}

/// Generates a new SSH deploy key (developer), replacing any credential; the URL must be
/// ssh. Returns the public key to add to the repository.
pub async fn generate_ssh_key(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    keys: &Keyring,
    slug: &str,
) -> Result<CredentialView> {
    scope.require(Role::Developer)?;
    let project = projects::get(db, scope, slug).await?;
    if is_http(&project.repo_url) != Some(false) {
        return Err(Error::invalid(
            "kind",
            "an SSH deploy key needs an ssh:// or git@host:path repository URL: change the URL first, or use an HTTPS token",
        ));
    }
    let comment = format!("sluice deploy key {}/{}", scope.org().slug, project.slug);
    let (private_key, public_key) = keygen(&comment).await?;
    let sealed = keys.encrypt(private_key.as_bytes(), &context(project.id))?;
    let mut active: project::ActiveModel = project.into();
    active.repo_auth = Set(Some(SSH_KEY.into()));
    active.repo_username = Set(None);
    active.repo_secret_enc = Set(Some(sealed));
    active.ssh_public_key = Set(Some(public_key));
    active.ssh_known_hosts = Set(None);
    active.updated_at = Set(Utc::now());
    let saved = active.update(db).await?;
    audit::record(
        db,
        scope,
        "repository.credential",
        "project",
        slug,
        json!({"kind": SSH_KEY}),
    )
    .await?;
    Ok(view(&saved))
}

/// A new Ed25519 key pair from OpenSSH's `ssh-keygen` (the one git's SSH transport uses):
/// the private key in OpenSSH format and the public key line.
async fn keygen(comment: &str) -> Result<(String, String)> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-keygen-")
        .tempdir()
        .map_err(|source| Error::Io {
            action: "creating a directory for an SSH key in",
            path: std::env::temp_dir(),
            source,
        })?;
    let path = dir.path().join("key");
    let failed = |source: std::io::Error| Error::Io {
        action: "generating an SSH deploy key with ssh-keygen (OpenSSH's client tools) in",
        path: dir.path().to_owned(),
        source,
    };
    let out = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(failed)?;
    if !out.status.success() {
        return Err(failed(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )));
    }
    let private_key = tokio::fs::read_to_string(&path).await.map_err(failed)?;
    let public_key = tokio::fs::read_to_string(path.with_extension("pub"))
        .await
        .map_err(failed)?;
    Ok((private_key, public_key.trim().to_owned()))
}

/// Removes the credential (developer): the repository is then cloned anonymously.
pub async fn clear(db: &impl ConnectionTrait, scope: &TenantScope, slug: &str) -> Result<()> {
    scope.require(Role::Developer)?;
    let project = projects::get(db, scope, slug).await?;
    let mut active: project::ActiveModel = project.into();
    active.repo_auth = Set(None);
    active.repo_username = Set(None);
    active.repo_secret_enc = Set(None);
    active.ssh_public_key = Set(None);
    active.ssh_known_hosts = Set(None);
    active.updated_at = Set(Utc::now());
    active.update(db).await?;
    audit::record(
        db,
        scope,
        "repository.credential",
        "project",
        slug,
        json!({"kind": "none"}),
    )
    .await?;
    Ok(())
}

/// The credential in clear, for a checkout or a ref lookup of the project.
pub fn for_git(keys: &Keyring, project: &project::Model) -> Result<Option<RepoCredential>> {
    let (Some(kind), Some(sealed)) = (&project.repo_auth, &project.repo_secret_enc) else {
        return Ok(None);
    };
    let plain = keys.decrypt(sealed, &context(project.id))?;
    let secret =
        String::from_utf8(plain).map_err(|_| Error::Crypto("repository credential is not text"))?;
    Ok(Some(match kind.as_str() {
        TOKEN => RepoCredential::Token {
            username: project
                .repo_username
                .clone()
                .unwrap_or_else(|| DEFAULT_TOKEN_USER.to_owned()),
            token: secret,
        },
        _ => RepoCredential::SshKey {
            private_key: secret,
            known_hosts: project.ssh_known_hosts.clone(),
        },
    }))
}

/// Pins the SSH host keys a connection learned, unless some are pinned already.
pub async fn pin_host_keys(
    db: &impl ConnectionTrait,
    project: &project::Model,
    known_hosts: &str,
) -> Result<()> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    project::Entity::update_many()
        .col_expr(
            project::Column::SshKnownHosts,
            Expr::value(known_hosts.trim().to_owned()),
        )
        .filter(project::Column::Id.eq(project.id))
        .filter(project::Column::SshKnownHosts.is_null())
        .filter(project::Column::RepoAuth.eq(SSH_KEY))
        .exec(db)
        .await?;
    Ok(())
}
