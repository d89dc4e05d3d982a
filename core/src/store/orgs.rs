//! Organisations (tenants) and their memberships.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use crate::entities::{membership, org, user};
use crate::store::{Page, PageRequest, audit, conflict_on_unique};
use crate::tenancy::{Principal, Role, TenantScope};
use crate::{Error, Result, validate};

/// Creates an org with `owner_id` as its owner, and records it in the org's audit log.
pub async fn create(
    db: &impl ConnectionTrait,
    owner_id: i64,
    slug: &str,
    name: &str,
) -> Result<org::Model> {
    validate::slug("slug", slug)?;
    let name = validate::name("name", name)?;
    let now = Utc::now();
    let org = org::ActiveModel {
        slug: Set(slug.to_owned()),
        name: Set(name),
        max_concurrent_runs: Set(5),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| conflict_on_unique(e, "this org slug is taken"))?;
    membership::ActiveModel {
        org_id: Set(org.id),
        user_id: Set(owner_id),
        role: Set(Role::Owner.as_str().to_owned()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit::record_by(
        db,
        (org.id, owner_id, None),
        "org.create",
        "org",
        &org.slug,
        json!({"name": org.name}),
    )
    .await?;
    Ok(org)
}

/// The orgs a principal may see, by org id, with the role it effectively holds in each: a
/// person's memberships, or only a token's own org with the role capped by its scopes.
pub async fn list_for_principal(
    db: &impl ConnectionTrait,
    principal: &Principal,
    page: &PageRequest,
) -> Result<Page<(org::Model, Role)>> {
    let limit = page.limit()?;
    let mut query = membership::Entity::find()
        .filter(membership::Column::UserId.eq(principal.user().id))
        .order_by_asc(membership::Column::OrgId)
        .limit(limit + 1);
    if let Some(org_id) = principal.token_org_id() {
        query = query.filter(membership::Column::OrgId.eq(org_id));
    }
    if let Some(after) = page.after()? {
        query = query.filter(membership::Column::OrgId.gt(after));
    }
    let memberships = query.all(db).await?;
    let ids: Vec<i64> = memberships.iter().map(|m| m.org_id).collect();
    let orgs = org::Entity::find()
        .filter(org::Column::Id.is_in(ids))
        .all(db)
        .await?;
    let mut rows = Vec::with_capacity(memberships.len());
    for m in memberships {
        if let Some(o) = orgs.iter().find(|o| o.id == m.org_id) {
            rows.push((o.clone(), Role::parse(&m.role)?.min(principal.ceiling())));
        }
    }
    Ok(Page::from_rows(rows, limit, |(o, _)| o.id))
}

/// An org by its slug, outside any tenant scope: for the operator's tools (`sluice kube
/// manifests`) and the tenant provisioner, never for a request.
pub async fn find_by_slug(db: &impl ConnectionTrait, slug: &str) -> Result<Option<org::Model>> {
    Ok(org::Entity::find()
        .filter(org::Column::Slug.eq(slug))
        .one(db)
        .await?)
}

/// Every org, by id: for the tenant provisioner's passes.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<org::Model>> {
    Ok(org::Entity::find()
        .order_by_asc(org::Column::Id)
        .all(db)
        .await?)
}

/// Changes when any org is created, changed or deleted: their count and latest update.
pub async fn fingerprint(
    db: &impl ConnectionTrait,
) -> Result<(u64, Option<chrono::DateTime<Utc>>)> {
    let count = org::Entity::find().count(db).await?;
    let latest = org::Entity::find()
        .order_by_desc(org::Column::UpdatedAt)
        .one(db)
        .await?
        .map(|o| o.updated_at);
    Ok((count, latest))
}

/// Changes an org's name and limits (admin).
pub async fn update(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    name: Option<&str>,
    max_concurrent_runs: Option<i32>,
    default_keep_runs: Option<i32>,
) -> Result<org::Model> {
    scope.require(Role::Admin)?;
    let mut active: org::ActiveModel = scope.org().clone().into();
    let mut changes = serde_json::Map::new();
    if let Some(name) = name {
        let name = validate::name("name", name)?;
        changes.insert("name".into(), json!(name));
        active.name = Set(name);
    }
    if let Some(limit) = max_concurrent_runs {
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid(
                "max_concurrent_runs",
                "must be between 1 and 1000",
            ));
        }
        changes.insert("max_concurrent_runs".into(), json!(limit));
        active.max_concurrent_runs = Set(limit);
    }
    if let Some(keep) = default_keep_runs {
        if !(0..=100_000).contains(&keep) {
            return Err(Error::invalid(
                "default_keep_runs",
                "must be between 0 (keep every run) and 100000",
            ));
        }
        changes.insert("default_keep_runs".into(), json!(keep));
        active.default_keep_runs = Set((keep > 0).then_some(keep));
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await?;
    audit::record(
        db,
        scope,
        "org.update",
        "org",
        &updated.slug,
        changes.into(),
    )
    .await?;
    Ok(updated)
}

/// A member as listed.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// The org's members, by user id.
pub async fn members(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: &PageRequest,
) -> Result<Page<Member>> {
    let limit = page.limit()?;
    let mut query = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(scope.org_id()))
        .order_by_asc(membership::Column::UserId)
        .limit(limit + 1);
    if let Some(after) = page.after()? {
        query = query.filter(membership::Column::UserId.gt(after));
    }
    let rows = query.all(db).await?;
    let ids: Vec<i64> = rows.iter().map(|m| m.user_id).collect();
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?;
    let mut members = Vec::with_capacity(rows.len());
    for m in rows {
        if let Some(u) = users.iter().find(|u| u.id == m.user_id) {
            members.push(Member {
                user_id: u.id,
                email: u.email.clone(),
                name: u.name.clone(),
                role: Role::parse(&m.role)?,
            });
        }
    }
    Ok(Page::from_rows(members, limit, |m| m.user_id))
}

async fn membership_of(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: i64,
) -> Result<membership::Model> {
    membership::Entity::find()
        .filter(membership::Column::OrgId.eq(scope.org_id()))
        .filter(membership::Column::UserId.eq(user_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

async fn owner_count(db: &impl ConnectionTrait, org_id: i64) -> Result<u64> {
    Ok(membership::Entity::find()
        .filter(membership::Column::OrgId.eq(org_id))
        .filter(membership::Column::Role.eq(Role::Owner.as_str()))
        .count(db)
        .await?)
}

/// Only owners may make owners or change an owner; nobody may remove the last owner.
async fn check_role_change(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    current: Role,
    new: Option<Role>,
) -> Result<()> {
    scope.require(Role::Admin)?;
    if (current == Role::Owner || new == Some(Role::Owner)) && scope.role() < Role::Owner {
        return Err(Error::Forbidden(
            "only an owner can grant or change the owner role".into(),
        ));
    }
    if current == Role::Owner
        && new != Some(Role::Owner)
        && owner_count(db, scope.org_id()).await? <= 1
    {
        return Err(Error::Conflict(
            "the last owner cannot be removed or demoted".into(),
        ));
    }
    Ok(())
}

/// Changes a member's role (admin).
pub async fn set_role(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: i64,
    role: Role,
) -> Result<Member> {
    let member = membership_of(db, scope, user_id).await?;
    let current = Role::parse(&member.role)?;
    check_role_change(db, scope, current, Some(role)).await?;
    let mut active: membership::ActiveModel = member.into();
    active.role = Set(role.as_str().to_owned());
    active.update(db).await?;
    audit::record(
        db,
        scope,
        "member.role",
        "user",
        user_id,
        json!({"from": current, "to": role}),
    )
    .await?;
    let user = crate::store::users::get(db, user_id).await?;
    Ok(Member {
        user_id,
        email: user.email,
        name: user.name,
        role,
    })
}

/// Removes a member (admin).
pub async fn remove_member(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: i64,
) -> Result<()> {
    let member = membership_of(db, scope, user_id).await?;
    let current = Role::parse(&member.role)?;
    check_role_change(db, scope, current, None).await?;
    membership::Entity::delete_by_id(member.id).exec(db).await?;
    audit::record(
        db,
        scope,
        "member.remove",
        "user",
        user_id,
        json!({"role": current}),
    )
    .await?;
    Ok(())
}

/// Adds `user_id` to the org with `role`, or keeps the existing membership.
pub(crate) async fn add_member(
    db: &impl ConnectionTrait,
    org_id: i64,
    user_id: i64,
    role: Role,
) -> Result<()> {
    let existing = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(org_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(db)
        .await?;
    if existing.is_none() {
        membership::ActiveModel {
            org_id: Set(org_id),
            user_id: Set(user_id),
            role: Set(role.as_str().to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}
