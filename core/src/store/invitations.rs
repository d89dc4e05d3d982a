//! Invitations by link: the raw token is in the link only; the database keeps its hash.

use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

use crate::crypto::{hash_token, random_base62};
use crate::entities::{invitation, org, user};
use crate::store::{audit, orgs};
use crate::tenancy::{Role, TenantScope};
use crate::{Error, Result, validate};

/// How long an invitation link stays valid.
pub const VALID_FOR: Duration = Duration::days(7);

/// Invites `email` with `role` (admin; owners alone may invite owners). Returns the raw token.
pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    email: &str,
    role: Role,
) -> Result<(invitation::Model, String)> {
    scope.require(Role::Admin)?;
    if role == Role::Owner && scope.role() < Role::Owner {
        return Err(Error::Forbidden("only an owner can invite an owner".into()));
    }
    let email = validate::email(email)?;
    let raw = random_base62(32);
    let now = Utc::now();
    let invitation = invitation::ActiveModel {
        org_id: Set(scope.org_id()),
        email: Set(email.clone()),
        role: Set(role.as_str().to_owned()),
        token_hash: Set(hash_token(&raw)),
        invited_by: Set(Some(scope.user_id())),
        expires_at: Set(now + VALID_FOR),
        accepted_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit::record(
        db,
        scope,
        "invitation.create",
        "invitation",
        invitation.id,
        json!({"email": email, "role": role}),
    )
    .await?;
    Ok((invitation, raw))
}

/// Accepts the invitation with raw token `raw` for `user`, whose email must be the invited one.
/// Returns the org joined and the role granted.
pub async fn accept(
    db: &impl ConnectionTrait,
    user: &user::Model,
    raw: &str,
) -> Result<(org::Model, Role)> {
    let invitation = invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(hash_token(raw)))
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    if invitation.accepted_at.is_some() {
        return Err(Error::Conflict(
            "this invitation has already been accepted".into(),
        ));
    }
    if Utc::now() >= invitation.expires_at {
        return Err(Error::Conflict(
            "this invitation has expired; ask for a new one".into(),
        ));
    }
    if !invitation.email.eq_ignore_ascii_case(&user.email) {
        return Err(Error::Forbidden(format!(
            "this invitation is for another email address than {}",
            user.email
        )));
    }
    let role = Role::parse(&invitation.role)?;
    let org = org::Entity::find_by_id(invitation.org_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    orgs::add_member(db, org.id, user.id, role).await?;
    let id = invitation.id;
    let mut active: invitation::ActiveModel = invitation.into();
    active.accepted_at = Set(Some(Utc::now()));
    active.update(db).await?;
    audit::record_by(
        db,
        (org.id, user.id, None),
        "invitation.accept",
        "invitation",
        id,
        json!({"role": role}),
    )
    .await?;
    Ok((org, role))
}

/// What an invitation link shows before anyone signs in: the org, the role and the address it
/// is for. Holding the link is what entitles one to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub org_name: String,
    pub org_slug: String,
    pub role: Role,
    pub email: String,
    /// Why it can no longer be accepted, if so.
    pub closed: Option<String>,
}

/// The invitation behind raw token `raw` (NotFound for an unknown or revoked one).
pub async fn preview(db: &impl ConnectionTrait, raw: &str) -> Result<Preview> {
    let invitation = invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(hash_token(raw)))
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    let org = org::Entity::find_by_id(invitation.org_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    let closed = if invitation.accepted_at.is_some() {
        Some("This invitation has already been accepted.".to_owned())
    } else if Utc::now() >= invitation.expires_at {
        Some("This invitation has expired: ask for a new one.".to_owned())
    } else {
        None
    };
    Ok(Preview {
        org_name: org.name,
        org_slug: org.slug,
        role: Role::parse(&invitation.role)?,
        email: invitation.email,
        closed,
    })
}

/// The org's invitations not accepted yet and not expired, newest first (admin).
pub async fn pending(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
) -> Result<Vec<invitation::Model>> {
    use sea_orm::QueryOrder;
    scope.require(Role::Admin)?;
    Ok(invitation::Entity::find()
        .filter(invitation::Column::OrgId.eq(scope.org_id()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .order_by_desc(invitation::Column::Id)
        .all(db)
        .await?)
}

/// Revokes a pending invitation of the org (admin): its link stops working.
pub async fn revoke(db: &impl ConnectionTrait, scope: &TenantScope, id: i64) -> Result<()> {
    scope.require(Role::Admin)?;
    let found = invitation::Entity::find_by_id(id)
        .filter(invitation::Column::OrgId.eq(scope.org_id()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    invitation::Entity::delete_by_id(found.id).exec(db).await?;
    audit::record(
        db,
        scope,
        "invitation.revoke",
        "invitation",
        found.id,
        json!({"email": found.email, "role": found.role}),
    )
    .await?;
    Ok(())
}
