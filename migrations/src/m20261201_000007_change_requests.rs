//! Multibranch projects and change requests: a project's `branches` filter (JSON list of
//! globs, every branch when null) and whether a fork's change request sees its secrets; each
//! run's ref type (branch, tag or change request), the change request it builds (JSON), and
//! its commit's message and author.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_change_requests"
    }
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Branches,
    ForkSecrets,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    RefType,
    Change,
    CommitMessage,
    CommitAuthor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            Table::alter()
                .table(Projects::Table)
                .add_column(text_null(Projects::Branches))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(boolean(Projects::ForkSecrets).default(false))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::RefType))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::Change))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::CommitMessage))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::CommitAuthor))
                .take(),
        ];
        for column in columns {
            manager.alter_table(column).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (Runs::Table.into_iden(), Runs::CommitAuthor.into_iden()),
            (Runs::Table.into_iden(), Runs::CommitMessage.into_iden()),
            (Runs::Table.into_iden(), Runs::Change.into_iden()),
            (Runs::Table.into_iden(), Runs::RefType.into_iden()),
            (
                Projects::Table.into_iden(),
                Projects::ForkSecrets.into_iden(),
            ),
            (Projects::Table.into_iden(), Projects::Branches.into_iden()),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
