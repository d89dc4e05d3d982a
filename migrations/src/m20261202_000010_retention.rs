//! Retention: an org's default number of runs to keep per project when a pipeline declares no
//! `buildDiscarder` (`default_keep_runs`; null keeps every run), when a run's log and
//! artifacts were discarded (`discarded_at`; its record, stages and tests stay), and the rest
//! of a pipeline's `logRotator` (`build_keep_days`, `artifact_keep`, `artifact_keep_days`).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000010_retention"
    }
}

#[derive(DeriveIden)]
enum Orgs {
    Table,
    DefaultKeepRuns,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    DiscardedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    BuildKeepDays,
    ArtifactKeep,
    ArtifactKeepDays,
}

/// Every column this migration adds, as (table, column, definition).
fn columns() -> Vec<(DynIden, DynIden, ColumnDef)> {
    let int = |table: DynIden, column: DynIden| {
        let def = integer_null(column.clone());
        (table, column, def)
    };
    vec![
        int(Orgs::Table.into_iden(), Orgs::DefaultKeepRuns.into_iden()),
        (
            Runs::Table.into_iden(),
            Runs::DiscardedAt.into_iden(),
            timestamp_with_time_zone_null(Runs::DiscardedAt),
        ),
        int(
            Projects::Table.into_iden(),
            Projects::BuildKeepDays.into_iden(),
        ),
        int(
            Projects::Table.into_iden(),
            Projects::ArtifactKeep.into_iden(),
        ),
        int(
            Projects::Table.into_iden(),
            Projects::ArtifactKeepDays.into_iden(),
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // SQLite adds or drops one column per ALTER TABLE.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, _, mut def) in columns() {
            manager
                .alter_table(Table::alter().table(table).add_column(&mut def).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, _) in columns().into_iter().rev() {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
