//! Multibranch projects and change requests: a project's `branches` filter (JSON list of
//! globs, every branch when null) and whether a fork's change request sees its secrets; each
//! run's ref type (branch, tag or change request), the change request it builds (JSON), and
//! its commit's message and author, and the display name and description its Groovy set. And `lock('resource')`: which run of an org holds which
//! resource, one row per held resource.

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
enum Orgs {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ResourceLocks {
    Table,
    Id,
    OrgId,
    Resource,
    RunId,
    AcquiredAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    RefType,
    Change,
    CommitMessage,
    CommitAuthor,
    DisplayName,
    Description,
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
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::DisplayName))
                .take(),
            Table::alter()
                .table(Runs::Table)
                .add_column(text_null(Runs::Description))
                .take(),
        ];
        for column in columns {
            manager.alter_table(column).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ResourceLocks::Table)
                    .col(big_pk_auto(ResourceLocks::Id))
                    .col(big_integer(ResourceLocks::OrgId))
                    .col(string_len(ResourceLocks::Resource, 255))
                    .col(big_integer(ResourceLocks::RunId))
                    .col(timestamp_with_time_zone(ResourceLocks::AcquiredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ResourceLocks::Table, ResourceLocks::OrgId)
                            .to(Orgs::Table, Orgs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ResourceLocks::Table, ResourceLocks::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_resource_locks_org_resource")
                    .table(ResourceLocks::Table)
                    .col(ResourceLocks::OrgId)
                    .col(ResourceLocks::Resource)
                    .unique()
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ResourceLocks::Table).take())
            .await?;
        let columns = [
            (Runs::Table.into_iden(), Runs::Description.into_iden()),
            (Runs::Table.into_iden(), Runs::DisplayName.into_iden()),
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
