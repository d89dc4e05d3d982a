//! Environments and the apps running in them (slots): created on a project's first deploy to
//! them or through the API; a `protected` one takes deploys only from runs its `deployers`
//! started or approved. A slot is driven by one release controller at a time, the holder of
//! its lease, which also writes what it serves (the router's URL and the instances).

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};

use crate::entities::{app_slot, environment, membership, release, run, user};
use crate::tenancy::Role;
use crate::{Error, Result};

/// An instance as the controller last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceView {
    /// `blue` (the version that served before the release) or `green` (the new one).
    pub color: String,
    pub version: i64,
    pub ready: bool,
    pub routed: bool,
}

/// An app in an environment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppView {
    pub app: String,
    /// The version that serves (a run number), if any.
    pub version: Option<i64>,
    /// The routed URL (`APP_URL`).
    pub url: Option<String>,
    /// The release that serves.
    pub release: Option<i64>,
    pub instances: Vec<InstanceView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EnvironmentView {
    pub name: String,
    pub protected: bool,
    /// Roles (`admin`, …) and emails allowed to deploy to a protected environment.
    pub deployers: Vec<String>,
    pub apps: Vec<AppView>,
}

/// An app or environment name: lowercase letters, digits and dashes, starting with a letter.
pub fn check_name(field: &'static str, name: &str) -> Result<()> {
    if crate::pipeline::deploy::is_name(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "must be 1-40 lowercase letters, digits and dashes, starting with a letter",
        ))
    }
}

fn check_deployers(deployers: &[String]) -> Result<()> {
    if deployers.len() > 50 {
        return Err(Error::invalid("deployers", "at most 50 entries"));
    }
    for d in deployers {
        let is_role = Role::parse(d).is_ok();
        let is_email = d.len() <= 254 && d.contains('@') && !d.contains(char::is_whitespace);
        if !is_role && !is_email {
            return Err(Error::invalid(
                "deployers",
                format!("`{d}` is neither a role (owner, admin, developer, viewer) nor an email"),
            ));
        }
    }
    Ok(())
}

pub fn deployers_of(env: &environment::Model) -> Vec<String> {
    serde_json::from_str(&env.deployers).unwrap_or_default()
}

async fn insert(
    db: &impl ConnectionTrait,
    org_id: i64,
    project_id: i64,
    name: &str,
    protected: bool,
    deployers: &[String],
) -> Result<environment::Model> {
    environment::ActiveModel {
        org_id: Set(org_id),
        project_id: Set(project_id),
        name: Set(name.to_owned()),
        protected: Set(protected),
        deployers: Set(serde_json::to_string(deployers).unwrap_or_else(|_| "[]".into())),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| {
        crate::store::conflict_on_unique(e, &format!("environment `{name}` already exists"))
    })
}

pub async fn find(
    db: &impl ConnectionTrait,
    project_id: i64,
    name: &str,
) -> Result<Option<environment::Model>> {
    Ok(environment::Entity::find()
        .filter(environment::Column::ProjectId.eq(project_id))
        .filter(environment::Column::Name.eq(name))
        .one(db)
        .await?)
}

/// The environment `name` of the run's project, created (unprotected) on first deploy.
pub(crate) async fn find_or_create(
    db: &impl ConnectionTrait,
    run: &run::Model,
    name: &str,
) -> Result<environment::Model> {
    check_name("environment", name)?;
    if let Some(env) = find(db, run.project_id, name).await? {
        return Ok(env);
    }
    insert(db, run.org_id, run.project_id, name, false, &[]).await
}

/// Creates an environment through the API.
pub async fn create(
    db: &impl ConnectionTrait,
    org_id: i64,
    project_id: i64,
    name: &str,
    protected: bool,
    deployers: &[String],
) -> Result<environment::Model> {
    check_name("name", name)?;
    check_deployers(deployers)?;
    insert(db, org_id, project_id, name, protected, deployers).await
}

/// Changes an environment's protection.
pub async fn update(
    db: &impl ConnectionTrait,
    env: environment::Model,
    protected: Option<bool>,
    deployers: Option<Vec<String>>,
) -> Result<environment::Model> {
    if let Some(d) = &deployers {
        check_deployers(d)?;
    }
    let mut active: environment::ActiveModel = env.into();
    if let Some(p) = protected {
        active.protected = Set(p);
    }
    if let Some(d) = deployers {
        active.deployers = Set(serde_json::to_string(&d).unwrap_or_else(|_| "[]".into()));
    }
    Ok(active.update(db).await?)
}

/// Refuses a deploy to a protected environment unless one of `people` (the run's starter and
/// its gates' approvers, by email) is a deployer by email or by role in the org.
pub(crate) async fn check_deployer(
    db: &impl ConnectionTrait,
    env: &environment::Model,
    people: &[String],
) -> Result<()> {
    let deployers = deployers_of(env);
    if !env.protected || deployers.is_empty() {
        return Ok(());
    }
    for email in people {
        if deployers.iter().any(|d| d.eq_ignore_ascii_case(email)) {
            return Ok(());
        }
        let role = role_of(db, env.org_id, email).await?;
        let allowed = role.is_some_and(|role| {
            deployers
                .iter()
                .filter_map(|d| Role::parse(d).ok())
                .any(|needed| role >= needed)
        });
        if allowed {
            return Ok(());
        }
    }
    let who = if people.is_empty() {
        "nobody (a push or timer started it and no gate was approved)".to_owned()
    } else {
        people.join(", ")
    };
    Err(Error::Forbidden(format!(
        "environment `{}` is protected: only {} may deploy to it, and this run was started or approved by {who}",
        env.name,
        deployers.join(", ")
    )))
}

async fn role_of(db: &impl ConnectionTrait, org_id: i64, email: &str) -> Result<Option<Role>> {
    let Some(user) = user::Entity::find()
        .filter(user::Column::Email.eq(email.to_ascii_lowercase()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let membership = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(org_id))
        .filter(membership::Column::UserId.eq(user.id))
        .one(db)
        .await?;
    Ok(membership.and_then(|m| Role::parse(&m.role).ok()))
}

pub(crate) async fn slot_find_or_create(
    db: &impl ConnectionTrait,
    env: &environment::Model,
    app: &str,
) -> Result<app_slot::Model> {
    check_name("app", app)?;
    if let Some(slot) = app_slot::Entity::find()
        .filter(app_slot::Column::EnvironmentId.eq(env.id))
        .filter(app_slot::Column::App.eq(app))
        .one(db)
        .await?
    {
        return Ok(slot);
    }
    app_slot::ActiveModel {
        org_id: Set(env.org_id),
        project_id: Set(env.project_id),
        environment_id: Set(env.id),
        app: Set(app.to_owned()),
        router_port: Set(None),
        live_release_id: Set(None),
        lease_holder: Set(None),
        lease_expires_at: Set(None),
        url: Set(None),
        instances: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| crate::store::conflict_on_unique(e, "this app's slot was created concurrently"))
}

/// The slots `holder` may take: nobody's (never held, given up, or their holder stopped
/// renewing) or already its own.
pub async fn free_slots(db: &impl ConnectionTrait, holder: &str) -> Result<Vec<app_slot::Model>> {
    Ok(app_slot::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(app_slot::Column::LeaseHolder.is_null())
                .add(app_slot::Column::LeaseHolder.eq(holder))
                .add(app_slot::Column::LeaseExpiresAt.lt(Utc::now())),
        )
        .order_by_asc(app_slot::Column::Id)
        .all(db)
        .await?)
}

pub async fn slot(db: &impl ConnectionTrait, id: i64) -> Result<app_slot::Model> {
    app_slot::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// Takes or renews the slot's lease for `ttl`: free, expired or already `holder`'s.
pub async fn take_lease(
    db: &impl ConnectionTrait,
    slot_id: i64,
    holder: &str,
    ttl: std::time::Duration,
) -> Result<bool> {
    let now = Utc::now();
    let until = now + Duration::from_std(ttl).unwrap_or(Duration::seconds(10));
    let taken = app_slot::Entity::update_many()
        .col_expr(app_slot::Column::LeaseHolder, Expr::value(holder))
        .col_expr(app_slot::Column::LeaseExpiresAt, Expr::value(until))
        .filter(app_slot::Column::Id.eq(slot_id))
        .filter(
            sea_orm::Condition::any()
                .add(app_slot::Column::LeaseHolder.is_null())
                .add(app_slot::Column::LeaseHolder.eq(holder))
                .add(app_slot::Column::LeaseExpiresAt.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Gives the lease up (a controller stopping cleanly).
pub async fn drop_lease(db: &impl ConnectionTrait, slot_id: i64, holder: &str) -> Result<()> {
    app_slot::Entity::update_many()
        .col_expr(app_slot::Column::LeaseHolder, Expr::value(None::<String>))
        .col_expr(
            app_slot::Column::LeaseExpiresAt,
            Expr::value(None::<chrono::DateTime<Utc>>),
        )
        .filter(app_slot::Column::Id.eq(slot_id))
        .filter(app_slot::Column::LeaseHolder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether `holder` holds the slot's lease now.
pub(crate) async fn holds(db: &impl ConnectionTrait, slot_id: i64, holder: &str) -> Result<bool> {
    let slot = slot(db, slot_id).await?;
    Ok(slot.lease_holder.as_deref() == Some(holder)
        && slot.lease_expires_at.is_some_and(|t| t > Utc::now()))
}

/// What the slot's controller serves: its router port and URL and its instances.
pub async fn observed(
    db: &impl ConnectionTrait,
    slot_id: i64,
    port: u16,
    url: &str,
    instances: &[InstanceView],
) -> Result<()> {
    app_slot::Entity::update_many()
        .col_expr(app_slot::Column::RouterPort, Expr::value(i32::from(port)))
        .col_expr(app_slot::Column::Url, Expr::value(url))
        .col_expr(
            app_slot::Column::Instances,
            Expr::value(serde_json::to_string(instances).unwrap_or_default()),
        )
        .filter(app_slot::Column::Id.eq(slot_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The project's environments with their apps, for the API and pages.
pub async fn list(db: &impl ConnectionTrait, project_id: i64) -> Result<Vec<EnvironmentView>> {
    let envs = environment::Entity::find()
        .filter(environment::Column::ProjectId.eq(project_id))
        .order_by_asc(environment::Column::Id)
        .all(db)
        .await?;
    let slots = app_slot::Entity::find()
        .filter(app_slot::Column::ProjectId.eq(project_id))
        .order_by_asc(app_slot::Column::App)
        .all(db)
        .await?;
    let live_ids: Vec<i64> = slots.iter().filter_map(|s| s.live_release_id).collect();
    let live = release::Entity::find()
        .filter(release::Column::Id.is_in(live_ids))
        .all(db)
        .await?;
    Ok(envs
        .into_iter()
        .map(|env| EnvironmentView {
            name: env.name.clone(),
            protected: env.protected,
            deployers: deployers_of(&env),
            apps: slots
                .iter()
                .filter(|s| s.environment_id == env.id)
                .map(|s| AppView {
                    app: s.app.clone(),
                    version: s
                        .live_release_id
                        .and_then(|id| live.iter().find(|r| r.id == id))
                        .map(|r| r.version),
                    url: s.url.clone(),
                    release: s.live_release_id,
                    instances: s
                        .instances
                        .as_deref()
                        .and_then(|i| serde_json::from_str(i).ok())
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect())
}
