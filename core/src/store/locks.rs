//! `lock('resource') { … }`: at most one run of an org holds a resource at a time, across
//! every worker. A lock is a row (unique per org and resource) inserted in its own
//! transaction; a holder that ended without releasing (its worker died) loses the lock to the
//! next run that asks.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::entities::{resource_lock, run};
use crate::store::runs::RunStatus;
use crate::{Error, Result, validate};

/// Who holds a resource someone else asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub run_id: i64,
    pub project_id: i64,
    pub number: i64,
}

/// Takes `resource` for `run_id` when nobody else holds it; otherwise says who does (None
/// when another run took it a moment ago). A row left by a run that has ended is taken over.
pub async fn try_acquire(
    db: &impl ConnectionTrait,
    org_id: i64,
    resource: &str,
    run_id: i64,
) -> Result<std::result::Result<(), Option<Holder>>> {
    validate::path_like("resource", resource, 255)?;
    let held = resource_lock::Entity::find()
        .filter(resource_lock::Column::OrgId.eq(org_id))
        .filter(resource_lock::Column::Resource.eq(resource))
        .one(db)
        .await?;
    if let Some(row) = held {
        if row.run_id == run_id {
            return Err(Error::invalid(
                "resource",
                format!("this run holds `{resource}` already (locks are not re-entrant)"),
            ));
        }
        let holder = run::Entity::find_by_id(row.run_id).one(db).await?;
        if let Some(r) = holder.filter(|r| {
            matches!(
                RunStatus::parse(&r.status),
                Ok(RunStatus::Running | RunStatus::Waiting | RunStatus::Queued)
            )
        }) {
            return Ok(Err(Some(Holder {
                run_id: r.id,
                project_id: r.project_id,
                number: r.number,
            })));
        }
        // The holder ended without releasing it (its worker was lost).
        resource_lock::Entity::delete_by_id(row.id).exec(db).await?;
    }
    let inserted = resource_lock::ActiveModel {
        org_id: Set(org_id),
        resource: Set(resource.to_owned()),
        run_id: Set(run_id),
        acquired_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(Ok(())),
        // Another run took it between the look and the insert: it holds it now.
        Err(err)
            if matches!(
                err.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Ok(Err(None))
        }
        Err(err) => Err(err.into()),
    }
}

/// Gives `resource` back.
pub async fn release(
    db: &impl ConnectionTrait,
    org_id: i64,
    resource: &str,
    run_id: i64,
) -> Result<()> {
    resource_lock::Entity::delete_many()
        .filter(resource_lock::Column::OrgId.eq(org_id))
        .filter(resource_lock::Column::Resource.eq(resource))
        .filter(resource_lock::Column::RunId.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives back everything a run still holds (when it ends).
pub async fn release_all(db: &impl ConnectionTrait, run_id: i64) -> Result<()> {
    resource_lock::Entity::delete_many()
        .filter(resource_lock::Column::RunId.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}
