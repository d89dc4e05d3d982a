//! Indexes for a SaaS-sized database (a million runs; `scripts/bench-dataset.sh`), each found
//! with EXPLAIN on that dataset:
//! - the runs still in play (queued, running, waiting) and the outbox entries still waiting,
//!   which the scheduler and the reconciler read several times a second, as partial indexes
//!   holding what those queries read: a few thousand entries however many runs have ended;
//! - an org's latest runs;
//! - the outbox entry of a run, and the references from webhook deliveries and cron fires to a
//!   run and from runs to their creator, so deleting runs (retention) or a user looks them up
//!   instead of scanning those tables.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000009_scale_indexes"
    }
}

/// The same statements on SQLite and PostgreSQL (both have partial indexes).
const CREATE: &[&str] = &[
    // Holds every column the scheduler reads of these runs: answered from the index alone.
    "CREATE INDEX ix_runs_active ON runs (status, org_id, project_id, id, created_by) \
     WHERE status IN ('queued', 'running', 'waiting')",
    // An org's latest runs (the dashboard) without walking every org's newer runs.
    "CREATE INDEX ix_runs_org_recent ON runs (org_id, id)",
    // The outbox entries still waiting to be admitted, with what the scheduler reads.
    "CREATE INDEX ix_run_outbox_waiting ON run_outbox (run_id, id, not_before) \
     WHERE published_at IS NULL",
    "CREATE INDEX ix_run_outbox_run ON run_outbox (run_id)",
    "CREATE INDEX ix_webhook_deliveries_run ON webhook_deliveries (run_id)",
    "CREATE INDEX ix_cron_fires_run ON cron_fires (run_id)",
    "CREATE INDEX ix_runs_created_by ON runs (created_by)",
];

const DROP: &[&str] = &[
    "DROP INDEX ix_runs_created_by",
    "DROP INDEX ix_cron_fires_run",
    "DROP INDEX ix_webhook_deliveries_run",
    "DROP INDEX ix_run_outbox_run",
    "DROP INDEX ix_run_outbox_waiting",
    "DROP INDEX ix_runs_org_recent",
    "DROP INDEX ix_runs_active",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in CREATE {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in DROP {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
