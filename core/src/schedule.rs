//! Which queued runs go to the job queue next: fair between orgs, within each org's limits.
//!
//! Queued runs wait in the database (their outbox entry unpublished) and only a bounded
//! backlog waits in the job queue. Each pass fills that backlog one run at a time, always from
//! the org using the smallest share of its weight (running runs plus runs already handed to
//! the queue, divided by `fair_share_weight`), never past an org's `max_concurrent_runs`, and
//! never a second run of a project whose Jenkinsfile said `disableConcurrentBuilds()`, never a
//! run still in its project's `quietPeriod`, and runs of a project with `rateLimitBuilds` spaced
//! out as its throttle says. So one
//! org's flood of 500 runs takes its turn beside another org's 5 instead of ahead of them.
//! Passes are serialised across processes (an advisory lock on PostgreSQL, the write lock on
//! SQLite), so limits hold however many dispatchers run.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QuerySelect, Statement,
};

use crate::entities::{org, project, run, run_outbox};
use crate::queue::Job;

/// Any number unique to this lock in the installation's PostgreSQL database.
const SCHEDULER_LOCK: i64 = 7_351_114_269;

/// A run chosen for the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub outbox_id: i64,
    pub job: Job,
}

/// A queued run whose outbox entry is unpublished.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    outbox_id: i64,
    run_id: i64,
    org_id: i64,
    project_id: i64,
    /// Started by a person (not a push or a schedule).
    person: bool,
}

/// What one org may still take in this pass.
#[derive(Debug)]
struct OrgState {
    active: i64,
    limit: i64,
    weight: i64,
    /// Oldest first.
    waiting: Vec<Candidate>,
}

/// Marks published the waiting outbox entries whose run is no longer queued (cancelled
/// before it was admitted): they have nothing to publish. Housekeeping for the reconciler;
/// [`admit`] skips them anyway.
pub async fn close_cancelled(db: &impl ConnectionTrait) -> crate::Result<u64> {
    let sql = "UPDATE run_outbox SET published_at = ? \
         WHERE published_at IS NULL AND NOT EXISTS \
         (SELECT 1 FROM runs r WHERE r.id = run_outbox.run_id AND r.status = 'queued')";
    let backend = db.get_database_backend();
    let sql = crate::db::placeholders(backend, sql);
    Ok(db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Utc::now().into()],
        ))
        .await?
        .rows_affected())
}

async fn rows(
    db: &impl ConnectionTrait,
    sql: &str,
) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
}

/// Chooses up to `backlog` minus what the queue already holds, marks their outbox entries
/// published and returns them, in one transaction. The caller publishes them to the queue
/// after the commit; if it dies first, the reconciler republishes them.
pub async fn admit(db: &DatabaseConnection, backlog: u32) -> crate::Result<Vec<Admission>> {
    let txn = crate::db::begin_write(db).await?;
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({SCHEDULER_LOCK})"))
            .await?;
    }
    // Every query here starts from what is waiting (the outbox's unpublished entries) or in
    // play (`ix_runs_active`), never from all runs: a pass costs the same with a million
    // ended runs as with none (`scripts/bench-dataset.sh`).
    let now = Utc::now();
    // What holds a place, by org and project: runs running or waiting for input, and runs
    // admitted to the queue that no worker has taken yet (queued, their outbox entry
    // published). The latter, summed, is what the queue holds.
    let mut active_by_org: HashMap<i64, i64> = HashMap::new();
    let mut active_by_project: HashMap<i64, i64> = HashMap::new();
    let mut in_queue = 0i64;
    for row in rows(
        &txn,
        "SELECT r.org_id, r.project_id, CASE WHEN r.status = 'queued' THEN 1 ELSE 0 END, COUNT(*) \
         FROM runs r \
         WHERE r.status IN ('queued', 'running', 'waiting') \
         AND (r.status <> 'queued' OR NOT EXISTS \
           (SELECT 1 FROM run_outbox o WHERE o.run_id = r.id AND o.published_at IS NULL)) \
         GROUP BY 1, 2, 3",
    )
    .await?
    {
        let (org_id, project_id, queued, n): (i64, i64, i32, i64) = (
            row.try_get_by_index(0)?,
            row.try_get_by_index(1)?,
            row.try_get_by_index(2)?,
            row.try_get_by_index(3)?,
        );
        *active_by_org.entry(org_id).or_default() += n;
        *active_by_project.entry(project_id).or_default() += n;
        if queued == 1 {
            in_queue += n;
        }
    }
    let mut budget = i64::from(backlog) - in_queue;
    if budget <= 0 {
        txn.commit().await?;
        return Ok(Vec::new());
    }

    // Each org's oldest waiting runs, in one query: enough to fill the whole budget from any
    // one org even past runs of serial projects.
    // Runs still in their project's quiet period are not candidates yet.
    let mut waiting_by_org: HashMap<i64, Vec<Candidate>> = HashMap::new();
    let backend = txn.get_database_backend();
    let now_param = match backend {
        DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    for row in txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT id, run_id, org_id, project_id, person FROM ( \
               SELECT o.id, r.id AS run_id, r.org_id, r.project_id, \
                 CASE WHEN r.created_by IS NULL THEN 0 ELSE 1 END AS person, \
                 ROW_NUMBER() OVER (PARTITION BY r.org_id ORDER BY o.id) AS place \
               FROM run_outbox o JOIN runs r ON r.id = o.run_id \
               WHERE o.published_at IS NULL AND r.status = 'queued' \
                 AND (o.not_before IS NULL OR o.not_before <= {now_param})) waiting \
             WHERE place <= {} ORDER BY id",
                budget + 64
            ),
            [now.into()],
        ))
        .await?
    {
        let candidate = Candidate {
            outbox_id: row.try_get_by_index(0)?,
            run_id: row.try_get_by_index(1)?,
            org_id: row.try_get_by_index(2)?,
            project_id: row.try_get_by_index(3)?,
            person: row.try_get_by_index::<i32>(4)? == 1,
        };
        waiting_by_org
            .entry(candidate.org_id)
            .or_default()
            .push(candidate);
    }
    if waiting_by_org.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }

    let orgs = org::Entity::find()
        .filter(org::Column::Id.is_in(waiting_by_org.keys().copied()))
        .all(&txn)
        .await?;
    let mut states: HashMap<i64, OrgState> = HashMap::new();
    let mut project_ids = HashSet::new();
    for o in orgs {
        let active = active_by_org.get(&o.id).copied().unwrap_or(0);
        let limit = i64::from(o.max_concurrent_runs.max(1));
        let Some(waiting) = waiting_by_org.remove(&o.id).filter(|_| active < limit) else {
            continue;
        };
        project_ids.extend(waiting.iter().map(|c| c.project_id));
        states.insert(
            o.id,
            OrgState {
                active,
                limit,
                weight: i64::from(o.fair_share_weight.max(1)),
                waiting,
            },
        );
    }
    let limited = project::Entity::find()
        .filter(project::Column::Id.is_in(project_ids))
        .filter(
            Condition::any()
                .add(project::Column::ConcurrentBuilds.eq(false))
                .add(project::Column::RateLimitCount.is_not_null()),
        )
        .all(&txn)
        .await?;
    let serial: HashSet<i64> = limited
        .iter()
        .filter(|p| !p.concurrent_builds)
        .map(|p| p.id)
        .collect();
    let mut throttles: HashMap<i64, Throttle> = HashMap::new();
    for p in &limited {
        if let Some(throttle) = Throttle::of(&txn, p, now).await? {
            throttles.insert(p.id, throttle);
        }
    }

    let mut chosen = Vec::new();
    while budget > 0 {
        let Some(org_id) = fairest(&states) else {
            break;
        };
        let Some(state) = states.get_mut(&org_id) else {
            break;
        };
        let pick = state.waiting.iter().position(|c| {
            (!serial.contains(&c.project_id)
                || active_by_project.get(&c.project_id).copied().unwrap_or(0) == 0)
                && throttles.get(&c.project_id).is_none_or(|t| t.admits(c))
        });
        let Some(pick) = pick else {
            // Everything it has waiting is behind a run of a serial project.
            states.remove(&org_id);
            continue;
        };
        let candidate = state.waiting.remove(pick);
        state.active += 1;
        *active_by_project.entry(candidate.project_id).or_default() += 1;
        if let Some(throttle) = throttles.get_mut(&candidate.project_id) {
            throttle.next_at = now + throttle.spacing;
        }
        if state.active >= state.limit || state.waiting.is_empty() {
            states.remove(&org_id);
        }
        budget -= 1;
        chosen.push(Admission {
            outbox_id: candidate.outbox_id,
            job: Job {
                run_id: candidate.run_id,
                org_id: candidate.org_id,
            },
        });
    }
    if !chosen.is_empty() {
        run_outbox::Entity::update_many()
            .col_expr(run_outbox::Column::PublishedAt, Expr::value(now))
            .filter(run_outbox::Column::Id.is_in(chosen.iter().map(|a| a.outbox_id)))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(chosen)
}

/// `rateLimitBuilds`: as in Jenkins, runs of the project start at least `period / count`
/// apart (admission to the queue counts as the start).
struct Throttle {
    spacing: chrono::Duration,
    user_boost: bool,
    /// When the next run may be admitted.
    next_at: DateTime<Utc>,
}

impl Throttle {
    async fn of(
        db: &impl ConnectionTrait,
        p: &project::Model,
        now: DateTime<Utc>,
    ) -> crate::Result<Option<Throttle>> {
        let (Some(count), Some(period)) = (p.rate_limit_count, p.rate_limit_period) else {
            return Ok(None);
        };
        let spacing = chrono::Duration::milliseconds(
            i64::from(period.max(1)) * 1000 / i64::from(count.max(1)),
        );
        // The last admitted run that started or still waits to (not one cancelled unstarted).
        let last: Option<DateTime<Utc>> = run_outbox::Entity::find()
            .select_only()
            .column_as(run_outbox::Column::PublishedAt.max(), "last")
            .filter(run_outbox::Column::PublishedAt.gt(now - spacing))
            .filter(
                run_outbox::Column::RunId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(run::Column::Id)
                        .from(run::Entity)
                        .and_where(run::Column::ProjectId.eq(p.id))
                        .cond_where(
                            Condition::any()
                                .add(run::Column::StartedAt.is_not_null())
                                .add(run::Column::Status.eq("queued")),
                        )
                        .take(),
                ),
            )
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(db)
            .await?
            .flatten();
        Ok(Some(Throttle {
            spacing,
            user_boost: p.rate_limit_user_boost,
            next_at: last.map_or(now, |t| t + spacing),
        }))
    }

    fn admits(&self, c: &Candidate) -> bool {
        (self.user_boost && c.person) || self.next_at <= Utc::now()
    }
}

/// The org with the smallest weighted share in use; ties go to the one waiting longest.
fn fairest(states: &HashMap<i64, OrgState>) -> Option<i64> {
    states
        .iter()
        .filter(|(_, s)| !s.waiting.is_empty() && s.active < s.limit)
        .min_by(|(_, a), (_, b)| {
            // a.active / a.weight < b.active / b.weight, without division.
            (a.active * b.weight)
                .cmp(&(b.active * a.weight))
                .then_with(|| {
                    let oldest = |s: &OrgState| s.waiting.first().map_or(i64::MAX, |c| c.outbox_id);
                    oldest(a).cmp(&oldest(b))
                })
        })
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(active: i64, weight: i64, oldest: i64) -> OrgState {
        OrgState {
            active,
            limit: 100,
            weight,
            waiting: vec![Candidate {
                outbox_id: oldest,
                run_id: oldest,
                org_id: 0,
                project_id: 0,
                person: false,
            }],
        }
    }

    #[test]
    fn the_org_using_the_least_of_its_share_goes_first() {
        let states = HashMap::from([(1, state(8, 1, 1)), (2, state(0, 1, 900))]);
        assert_eq!(fairest(&states), Some(2));
        // Weight 4 with 8 running uses the same share as weight 1 with 2 running: the older
        // waiting run breaks the tie.
        let states = HashMap::from([(1, state(8, 4, 1)), (2, state(2, 1, 900))]);
        assert_eq!(fairest(&states), Some(1));
        let states = HashMap::from([(1, state(9, 4, 1)), (2, state(2, 1, 900))]);
        assert_eq!(fairest(&states), Some(2));
    }

    #[test]
    fn orgs_at_their_limit_or_with_nothing_waiting_are_skipped() {
        let mut full = state(0, 1, 1);
        full.limit = 0;
        let mut empty = state(0, 1, 2);
        empty.waiting.clear();
        let states = HashMap::from([(1, full), (2, empty)]);
        assert_eq!(fairest(&states), None);
    }
}
