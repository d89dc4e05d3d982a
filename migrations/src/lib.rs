//! The Sluice database schema as an ordered list of migrations.
//!
//! Every change is its own module named `mYYYYMMDD_HHMMSS_what` and is never edited after it
//! has landed; the same statements run on SQLite and PostgreSQL.
#![forbid(unsafe_code)]

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_create_tenancy;
mod m20261129_000002_create_runs;
mod m20261129_000003_create_queue_jobs;
mod m20261129_000004_run_execution;
mod m20261129_000005_run_outputs;
mod m20261201_000006_releases;
mod m20261201_000007_change_requests;
mod m20261202_000008_private_repos_and_throttles;
mod m20261202_000009_scale_indexes;
mod m20261202_000010_retention;

/// Applies the schema; used by `sluice migrate` and at the start of `serve`, `api` and `worker`.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_tenancy::Migration),
            Box::new(m20261129_000002_create_runs::Migration),
            Box::new(m20261129_000003_create_queue_jobs::Migration),
            Box::new(m20261129_000004_run_execution::Migration),
            Box::new(m20261129_000005_run_outputs::Migration),
            Box::new(m20261201_000006_releases::Migration),
            Box::new(m20261201_000007_change_requests::Migration),
            Box::new(m20261202_000008_private_repos_and_throttles::Migration),
            Box::new(m20261202_000009_scale_indexes::Migration),
            Box::new(m20261202_000010_retention::Migration),
        ]
    }
}
