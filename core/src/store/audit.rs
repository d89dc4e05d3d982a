//! The audit log: who did what to which target, when. Written in the same transaction as the
//! change it records.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::Value;

use crate::Result;
use crate::entities::audit_log;
use crate::store::{Page, PageRequest};
use crate::tenancy::TenantScope;

/// Records an admin action in the scope's org, by the scope's principal.
pub async fn record(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    action: &str,
    target_type: &str,
    target_id: impl ToString,
    details: Value,
) -> Result<()> {
    let actor = (scope.org_id(), scope.user_id(), scope.token_id());
    record_by(db, actor, action, target_type, target_id, details).await
}

/// Records an action by `(org_id, user_id, token_id)` for callers without a scope yet (a
/// person accepting an invitation).
pub async fn record_by(
    db: &impl ConnectionTrait,
    (org_id, user_id, token_id): (i64, i64, Option<i64>),
    action: &str,
    target_type: &str,
    target_id: impl ToString,
    details: Value,
) -> Result<()> {
    audit_log::ActiveModel {
        org_id: Set(org_id),
        actor_user_id: Set(Some(user_id)),
        actor_token_id: Set(token_id),
        action: Set(action.to_owned()),
        target_type: Set(target_type.to_owned()),
        target_id: Set(target_id.to_string()),
        details: Set(details.to_string()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The org's audit log, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: &PageRequest,
) -> Result<Page<audit_log::Model>> {
    let limit = page.limit()?;
    let mut query = audit_log::Entity::find()
        .filter(audit_log::Column::OrgId.eq(scope.org_id()))
        .order_by_desc(audit_log::Column::Id)
        .limit(limit + 1);
    if let Some(before) = page.after()? {
        query = query.filter(audit_log::Column::Id.lt(before));
    }
    Ok(Page::from_rows(query.all(db).await?, limit, |row| row.id))
}
