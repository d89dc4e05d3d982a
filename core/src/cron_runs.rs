//! `triggers { cron('…') }`: every dispatcher looks at the slots that came due since it last
//! looked and queues a run for each. Many processes look at the same slots; a unique
//! (project, slot) row written in the run's own transaction lets exactly one of them fire it.
//! Slots missed while no process was running are not caught up (as in Jenkins), except the
//! last two minutes before a process starts, which covers a restart.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::entities::{cron_fire, project};
use crate::pipeline::cron::Schedule;
use crate::store::runs::{self, NewRun, Trigger};

/// The `H` seed of a project's schedule: stable for the project, different between projects.
pub fn seed(project: &project::Model) -> String {
    format!("{}/{}", project.org_id, project.slug)
}

/// Queues a run for every cron slot in `(after, until]` of every project with a cron trigger,
/// unless another process fired that slot; returns how many this call fired.
/// With `access`, each fired run's ref is then looked up in the background (as a run from the
/// API is when created, without holding up the dispatcher): its commit is recorded while it
/// is still queued.
pub async fn fire_due(
    db: &DatabaseConnection,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    access: Option<&crate::git::RepoAccess>,
) -> crate::Result<usize> {
    let projects = project::Entity::find()
        .filter(project::Column::PipelineCron.is_not_null())
        .all(db)
        .await?;
    let mut fired = 0;
    for project in projects {
        let spec = project.pipeline_cron.clone().unwrap_or_default();
        let mut slots: Vec<DateTime<Utc>> = Vec::new();
        for line in spec.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(schedule) = Schedule::parse(line, &seed(&project)) else {
                tracing::warn!(project = project.id, spec = line, "unparsable cron trigger");
                continue;
            };
            let mut t = after;
            while let Some(next) = schedule.next_after(t) {
                if next > until {
                    break;
                }
                slots.push(next);
                t = next;
            }
        }
        slots.sort();
        slots.dedup();
        for slot in slots {
            if let Some(run_id) = fire(db, &project, slot).await? {
                fired += 1;
                if let Some(access) = access {
                    let (db, project, access) = (db.clone(), project.clone(), access.clone());
                    tokio::spawn(async move {
                        crate::store::changes::resolve_queued(&db, &project, run_id, &access).await;
                    });
                }
            }
        }
    }
    Ok(fired)
}

/// Fires one slot: the slot's row and the run in one transaction; the run's id, None when
/// already fired.
async fn fire(
    db: &DatabaseConnection,
    project: &project::Model,
    slot: DateTime<Utc>,
) -> crate::Result<Option<i64>> {
    let txn = crate::db::begin_write(db).await?;
    let inserted = cron_fire::ActiveModel {
        project_id: Set(project.id),
        slot: Set(slot),
        run_id: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(err)
            if matches!(
                err.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    let new = NewRun::of(Trigger::Cron, None, None);
    let run = match runs::create_for_project(&txn, project, new, None).await {
        Ok(run) => run,
        Err(err) => {
            tracing::warn!(project = project.id, error = %err, "cron run could not be queued");
            return Ok(None);
        }
    };
    let mut active: cron_fire::ActiveModel = row.into();
    active.run_id = Set(Some(run.id));
    active.update(&txn).await?;
    txn.commit().await?;
    tracing::info!(project = project.id, run = run.number, %slot, "cron trigger fired");
    Ok(Some(run.id))
}
