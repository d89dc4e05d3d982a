//! Projects and their secrets. Webhook secrets and secret values are encrypted at rest and
//! bound to their org and project, so a ciphertext copied to another row does not decrypt.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;

use crate::crypto::{Keyring, random_base62};
use crate::entities::{project, project_secret};
use crate::store::changes::BranchFilter;
use crate::store::{Page, PageRequest, audit, conflict_on_unique};
use crate::tenancy::{Role, TenantScope};
use crate::{Error, Result, validate};

/// Largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// What creating a project takes.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub slug: String,
    pub name: String,
    pub repo_url: String,
    pub default_branch: Option<String>,
    pub pipeline_path: Option<String>,
    /// Which branches build on a push (globs); every branch when None.
    pub branches: Option<Vec<String>>,
    /// Whether a fork's change request gets the project's secrets (admin); false when None.
    pub fork_secrets: Option<bool>,
}

/// Changes to a project; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub repo_url: Option<String>,
    pub default_branch: Option<String>,
    pub pipeline_path: Option<String>,
    pub branches: Option<Vec<String>>,
    /// Admin only, as it hands secrets to other people's code.
    pub fork_secrets: Option<bool>,
}

/// Giving forks the secrets is an admin's decision.
fn check_fork_secrets(scope: &TenantScope, fork_secrets: Option<bool>) -> Result<()> {
    if fork_secrets == Some(true) {
        scope.require(Role::Admin).map_err(|_| {
            Error::Forbidden("only an org admin can give change requests from forks the project's secrets (fork_secrets)".into())
        })?;
    }
    Ok(())
}

fn webhook_context(org_id: i64, slug: &str) -> String {
    format!("webhook:{org_id}:{slug}")
}

fn secret_context(project_id: i64, name: &str) -> String {
    format!("secret:{project_id}:{name}")
}

/// Creates a project (developer) with a fresh webhook secret; returns it in clear once.
pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    keys: &Keyring,
    new: NewProject,
) -> Result<(project::Model, String)> {
    scope.require(Role::Developer)?;
    validate::slug("slug", &new.slug)?;
    let name = validate::name("name", &new.name)?;
    validate::repo_url(&new.repo_url)?;
    let branch = new.default_branch.unwrap_or_else(|| "main".to_owned());
    validate::path_like("default_branch", &branch, 255)?;
    let pipeline_path = new
        .pipeline_path
        .unwrap_or_else(|| "Jenkinsfile".to_owned());
    validate::path_like("pipeline_path", &pipeline_path, 1024)?;
    let branches = new.branches.map(BranchFilter::new).transpose()?;
    check_fork_secrets(scope, new.fork_secrets)?;

    let secret = random_base62(32);
    let sealed = keys.encrypt(
        secret.as_bytes(),
        &webhook_context(scope.org_id(), &new.slug),
    )?;
    let now = Utc::now();
    let project = project::ActiveModel {
        org_id: Set(scope.org_id()),
        slug: Set(new.slug.clone()),
        name: Set(name),
        repo_url: Set(new.repo_url.trim().to_owned()),
        default_branch: Set(branch),
        pipeline_path: Set(pipeline_path),
        branches: Set(branches.as_ref().map(BranchFilter::to_json)),
        fork_secrets: Set(new.fork_secrets.unwrap_or(false)),
        webhook_secret_enc: Set(sealed),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| conflict_on_unique(e, "a project with this slug already exists in this org"))?;
    audit::record(
        db,
        scope,
        "project.create",
        "project",
        &project.slug,
        json!({"repo_url": project.repo_url}),
    )
    .await?;
    Ok((project, secret))
}

/// The org's projects, by id.
pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: &PageRequest,
) -> Result<Page<project::Model>> {
    let limit = page.limit()?;
    let mut query = project::Entity::find()
        .filter(project::Column::OrgId.eq(scope.org_id()))
        .order_by_asc(project::Column::Id)
        .limit(limit + 1);
    if let Some(after) = page.after()? {
        query = query.filter(project::Column::Id.gt(after));
    }
    Ok(Page::from_rows(query.all(db).await?, limit, |p| p.id))
}

/// One project of the scope's org.
pub async fn get(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    slug: &str,
) -> Result<project::Model> {
    validate::slug("project", slug).map_err(|_| Error::NotFound)?;
    project::Entity::find()
        .filter(project::Column::OrgId.eq(scope.org_id()))
        .filter(project::Column::Slug.eq(slug))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// One project of the scope's org, by id.
pub async fn get_by_id(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: i64,
) -> Result<project::Model> {
    project::Entity::find_by_id(id)
        .filter(project::Column::OrgId.eq(scope.org_id()))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// A project by org and project slug, for webhooks only: they authenticate with the
/// project's webhook secret, which the caller must check before acting.
pub async fn find_for_webhook(
    db: &impl ConnectionTrait,
    org_slug: &str,
    project_slug: &str,
) -> Result<project::Model> {
    validate::slug("org", org_slug).map_err(|_| Error::NotFound)?;
    validate::slug("project", project_slug).map_err(|_| Error::NotFound)?;
    let org = crate::entities::org::Entity::find()
        .filter(crate::entities::org::Column::Slug.eq(org_slug))
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    project::Entity::find()
        .filter(project::Column::OrgId.eq(org.id))
        .filter(project::Column::Slug.eq(project_slug))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// The project's webhook secret in clear.
pub fn webhook_secret(keys: &Keyring, project: &project::Model) -> Result<String> {
    let plain = keys.decrypt(
        &project.webhook_secret_enc,
        &webhook_context(project.org_id, &project.slug),
    )?;
    String::from_utf8(plain).map_err(|_| Error::Crypto("webhook secret is not text"))
}

/// Updates a project (developer).
pub async fn update(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    slug: &str,
    changes: ProjectChanges,
) -> Result<project::Model> {
    scope.require(Role::Developer)?;
    let current = get(db, scope, slug).await?;
    let current_url = current.repo_url.clone();
    let mut active: project::ActiveModel = current.into();
    let mut changed = serde_json::Map::new();
    if let Some(name) = changes.name {
        let name = validate::name("name", &name)?;
        changed.insert("name".into(), json!(name));
        active.name = Set(name);
    }
    if let Some(url) = changes.repo_url {
        validate::repo_url(&url)?;
        changed.insert("repo_url".into(), json!(url.trim()));
        // Another address may be another host: its SSH host keys are learned again.
        if url.trim() != current_url {
            active.ssh_known_hosts = Set(None);
        }
        active.repo_url = Set(url.trim().to_owned());
    }
    if let Some(branch) = changes.default_branch {
        validate::path_like("default_branch", &branch, 255)?;
        changed.insert("default_branch".into(), json!(branch));
        active.default_branch = Set(branch);
    }
    if let Some(path) = changes.pipeline_path {
        validate::path_like("pipeline_path", &path, 1024)?;
        changed.insert("pipeline_path".into(), json!(path));
        active.pipeline_path = Set(path);
    }
    if let Some(patterns) = changes.branches {
        let filter = BranchFilter::new(patterns)?;
        changed.insert("branches".into(), json!(filter.patterns()));
        active.branches = Set(Some(filter.to_json()));
    }
    if let Some(fork_secrets) = changes.fork_secrets {
        check_fork_secrets(scope, Some(fork_secrets))?;
        changed.insert("fork_secrets".into(), json!(fork_secrets));
        active.fork_secrets = Set(fork_secrets);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await?;
    audit::record(db, scope, "project.update", "project", slug, changed.into()).await?;
    Ok(updated)
}

/// Gives the project a new webhook secret (developer); returns it in clear. Deliveries signed
/// with the old one are refused from then on.
pub async fn rotate_webhook_secret(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    keys: &Keyring,
    slug: &str,
) -> Result<String> {
    scope.require(Role::Developer)?;
    let project = get(db, scope, slug).await?;
    let secret = random_base62(32);
    let sealed = keys.encrypt(
        secret.as_bytes(),
        &webhook_context(project.org_id, &project.slug),
    )?;
    let mut active: project::ActiveModel = project.into();
    active.webhook_secret_enc = Set(sealed);
    active.updated_at = Set(Utc::now());
    active.update(db).await?;
    audit::record(db, scope, "webhook.rotate", "project", slug, json!({})).await?;
    Ok(secret)
}

/// Deletes a project and its secrets (admin).
pub async fn delete(db: &impl ConnectionTrait, scope: &TenantScope, slug: &str) -> Result<()> {
    scope.require(Role::Admin)?;
    let project = get(db, scope, slug).await?;
    project::Entity::delete_by_id(project.id).exec(db).await?;
    audit::record(db, scope, "project.delete", "project", slug, json!({})).await?;
    Ok(())
}

/// Sets a secret (developer); returns whether it was created (vs replaced).
pub async fn put_secret(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    keys: &Keyring,
    slug: &str,
    name: &str,
    value: &str,
) -> Result<bool> {
    scope.require(Role::Developer)?;
    validate::secret_name(name)?;
    if value.len() > MAX_SECRET_BYTES {
        return Err(Error::invalid(
            "value",
            format!("must be at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    let project = get(db, scope, slug).await?;
    let sealed = keys.encrypt(value.as_bytes(), &secret_context(project.id, name))?;
    let now = Utc::now();
    let existing = project_secret::Entity::find()
        .filter(project_secret::Column::ProjectId.eq(project.id))
        .filter(project_secret::Column::Name.eq(name))
        .one(db)
        .await?;
    let created = existing.is_none();
    match existing {
        Some(row) => {
            let mut active: project_secret::ActiveModel = row.into();
            active.value_enc = Set(sealed);
            active.updated_at = Set(now);
            active.update(db).await?;
        }
        None => {
            project_secret::ActiveModel {
                project_id: Set(project.id),
                name: Set(name.to_owned()),
                value_enc: Set(sealed),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    audit::record(
        db,
        scope,
        "secret.put",
        "project",
        slug,
        json!({"name": name}),
    )
    .await?;
    Ok(created)
}

/// The project's secrets without values, by name.
pub async fn list_secrets(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    slug: &str,
) -> Result<Vec<project_secret::Model>> {
    let project = get(db, scope, slug).await?;
    Ok(project_secret::Entity::find()
        .filter(project_secret::Column::ProjectId.eq(project.id))
        .order_by_asc(project_secret::Column::Name)
        .all(db)
        .await?)
}

/// A secret's value in clear, for the executor.
pub async fn secret_value(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    keys: &Keyring,
    slug: &str,
    name: &str,
) -> Result<String> {
    validate::secret_name(name).map_err(|_| Error::NotFound)?;
    let project = get(db, scope, slug).await?;
    let row = project_secret::Entity::find()
        .filter(project_secret::Column::ProjectId.eq(project.id))
        .filter(project_secret::Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    let plain = keys.decrypt(&row.value_enc, &secret_context(project.id, name))?;
    String::from_utf8(plain).map_err(|_| Error::Crypto("secret is not text"))
}

/// Every secret of a project in clear, by name: for the worker running one of its runs.
pub async fn secrets_for_run(
    db: &impl ConnectionTrait,
    keys: &Keyring,
    project_id: i64,
) -> Result<std::collections::BTreeMap<String, String>> {
    let rows = project_secret::Entity::find()
        .filter(project_secret::Column::ProjectId.eq(project_id))
        .all(db)
        .await?;
    let mut out = std::collections::BTreeMap::new();
    for row in rows {
        let plain = keys.decrypt(&row.value_enc, &secret_context(project_id, &row.name))?;
        let value = String::from_utf8(plain).map_err(|_| Error::Crypto("secret is not text"))?;
        out.insert(row.name, value);
    }
    Ok(out)
}

/// Deletes a secret (developer).
pub async fn delete_secret(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    slug: &str,
    name: &str,
) -> Result<()> {
    validate::secret_name(name).map_err(|_| Error::NotFound)?;
    scope.require(Role::Developer)?;
    let project = get(db, scope, slug).await?;
    let deleted = project_secret::Entity::delete_many()
        .filter(project_secret::Column::ProjectId.eq(project.id))
        .filter(project_secret::Column::Name.eq(name))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        db,
        scope,
        "secret.delete",
        "project",
        slug,
        json!({"name": name}),
    )
    .await?;
    Ok(())
}
