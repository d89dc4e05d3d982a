//! What a run leaves behind and how people act on it: its log (chunks in object storage, an
//! index here), its artifacts (object storage, size and sha256 here), its test results, an
//! approval gate (`waiting_for`, the answer), a cancel request, and each stage's parent so
//! parallel branches can be drawn side by side. Projects remember `buildDiscarder`'s count.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000005_run_outputs"
    }
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    BuildKeep,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    WaitingFor,
    InputAnswer,
    CancelRequested,
    LogLines,
    LogBytes,
    Tests,
}

#[derive(DeriveIden)]
enum RunStages {
    Table,
    Parent,
}

#[derive(DeriveIden)]
enum RunLogChunks {
    Table,
    Id,
    RunId,
    Seq,
    FirstLine,
    Lines,
    Bytes,
}

#[derive(DeriveIden)]
enum Artifacts {
    Table,
    Id,
    RunId,
    Path,
    Size,
    Sha256,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            Table::alter()
                .table(Projects::Table)
                .add_column(integer_null(Projects::BuildKeep))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::WaitingFor))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::InputAnswer))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(boolean(Runs::CancelRequested).default(false))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(big_integer(Runs::LogLines).default(0))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(big_integer(Runs::LogBytes).default(0))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::Tests))
                .take(),
            Table::alter()
                .table(RunStages::Table)
                .add_column(integer_null(RunStages::Parent))
                .take(),
        ];
        for column in columns {
            manager.alter_table(column).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RunLogChunks::Table)
                    .col(big_pk_auto(RunLogChunks::Id))
                    .col(big_integer(RunLogChunks::RunId))
                    .col(integer(RunLogChunks::Seq))
                    .col(big_integer(RunLogChunks::FirstLine))
                    .col(integer(RunLogChunks::Lines))
                    .col(integer(RunLogChunks::Bytes))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RunLogChunks::Table, RunLogChunks::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Artifacts::Table)
                    .col(big_pk_auto(Artifacts::Id))
                    .col(big_integer(Artifacts::RunId))
                    .col(string_len(Artifacts::Path, 1024))
                    .col(big_integer(Artifacts::Size))
                    .col(string_len(Artifacts::Sha256, 64))
                    .col(timestamp_with_time_zone(Artifacts::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Artifacts::Table, Artifacts::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("uq_run_log_chunks_run_seq")
                .table(RunLogChunks::Table)
                .col(RunLogChunks::RunId)
                .col(RunLogChunks::Seq)
                .unique()
                .take(),
            Index::create()
                .name("uq_artifacts_run_path")
                .table(Artifacts::Table)
                .col(Artifacts::RunId)
                .col(Artifacts::Path)
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
            .drop_table(Table::drop().table(Artifacts::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(RunLogChunks::Table).take())
            .await?;
        let columns = [
            (RunStages::Table.into_iden(), RunStages::Parent.into_iden()),
            (Runs::Table.into_iden(), Runs::Tests.into_iden()),
            (Runs::Table.into_iden(), Runs::LogBytes.into_iden()),
            (Runs::Table.into_iden(), Runs::LogLines.into_iden()),
            (Runs::Table.into_iden(), Runs::CancelRequested.into_iden()),
            (Runs::Table.into_iden(), Runs::InputAnswer.into_iden()),
            (Runs::Table.into_iden(), Runs::WaitingFor.into_iden()),
            (Projects::Table.into_iden(), Projects::BuildKeep.into_iden()),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
