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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Orgs::Table)
                    .add_column(integer_null(Orgs::DefaultKeepRuns))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .add_column(timestamp_with_time_zone_null(Runs::DiscardedAt))
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE.
        for column in [
            Projects::BuildKeepDays,
            Projects::ArtifactKeep,
            Projects::ArtifactKeepDays,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Projects::Table)
                        .add_column(integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Projects::ArtifactKeepDays,
            Projects::ArtifactKeep,
            Projects::BuildKeepDays,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Projects::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .drop_column(Runs::DiscardedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orgs::Table)
                    .drop_column(Orgs::DefaultKeepRuns)
                    .to_owned(),
            )
            .await
    }
}
