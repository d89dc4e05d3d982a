//! What running a run needs: its attempt (a reclaimed run is taken over by bumping it), the
//! worker's heartbeat, the reason a run failed, the stages as they start and end, what the
//! last parsed Jenkinsfile declared (parameters, cron trigger, `disableConcurrentBuilds`), a
//! fair-share weight per org, and the cron slots already fired.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000004_run_execution"
    }
}

#[derive(DeriveIden)]
enum Orgs {
    Table,
    FairShareWeight,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    PipelineParams,
    PipelineCron,
    ConcurrentBuilds,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    Attempt,
    Worker,
    HeartbeatAt,
    Reason,
}

#[derive(DeriveIden)]
enum RunStages {
    Table,
    Id,
    RunId,
    Seq,
    Name,
    Status,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum CronFires {
    Table,
    Id,
    ProjectId,
    Slot,
    RunId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            Table::alter()
                .table(Orgs::Table)
                .add_column(integer(Orgs::FairShareWeight).default(1))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(text_null(Projects::PipelineParams))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(string_len_null(Projects::PipelineCron, 255))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(boolean(Projects::ConcurrentBuilds).default(true))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(integer(Runs::Attempt).default(0))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(string_len_null(Runs::Worker, 128))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(timestamp_with_time_zone_null(Runs::HeartbeatAt))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::Reason))
                .take(),
        ];
        for column in columns {
            manager.alter_table(column).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RunStages::Table)
                    .col(big_pk_auto(RunStages::Id))
                    .col(big_integer(RunStages::RunId))
                    .col(integer(RunStages::Seq))
                    .col(string_len(RunStages::Name, 255))
                    .col(string_len(RunStages::Status, 16))
                    .col(timestamp_with_time_zone_null(RunStages::StartedAt))
                    .col(timestamp_with_time_zone_null(RunStages::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RunStages::Table, RunStages::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CronFires::Table)
                    .col(big_pk_auto(CronFires::Id))
                    .col(big_integer(CronFires::ProjectId))
                    .col(timestamp_with_time_zone(CronFires::Slot))
                    .col(big_integer_null(CronFires::RunId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CronFires::Table, CronFires::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CronFires::Table, CronFires::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .take(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("uq_run_stages_run_seq")
                .table(RunStages::Table)
                .col(RunStages::RunId)
                .col(RunStages::Seq)
                .unique()
                .take(),
            Index::create()
                .name("uq_cron_fires_project_slot")
                .table(CronFires::Table)
                .col(CronFires::ProjectId)
                .col(CronFires::Slot)
                .unique()
                .take(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CronFires::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(RunStages::Table).take())
            .await?;
        let columns = [
            (Runs::Table.into_iden(), Runs::Reason.into_iden()),
            (Runs::Table.into_iden(), Runs::HeartbeatAt.into_iden()),
            (Runs::Table.into_iden(), Runs::Worker.into_iden()),
            (Runs::Table.into_iden(), Runs::Attempt.into_iden()),
            (
                Projects::Table.into_iden(),
                Projects::ConcurrentBuilds.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::PipelineCron.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::PipelineParams.into_iden(),
            ),
            (Orgs::Table.into_iden(), Orgs::FairShareWeight.into_iden()),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).take())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
