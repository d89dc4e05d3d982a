//! Runs of a project's pipeline, numbered per project without races; the outbox that hands
//! each queued run to the job queue; and webhook deliveries seen, for deduplication.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000002_create_runs"
    }
}

#[derive(DeriveIden)]
enum Orgs {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    NextRunNumber,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    OrgId,
    ProjectId,
    Number,
    Status,
    Trigger,
    GitRef,
    CommitSha,
    Params,
    CreatedBy,
    QueuedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum RunOutbox {
    Table,
    Id,
    RunId,
    CreatedAt,
    PublishedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    ProjectId,
    Provider,
    DeliveryId,
    RunId,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(big_integer(Projects::NextRunNumber).default(1))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .col(big_pk_auto(Runs::Id))
                    .col(big_integer(Runs::OrgId))
                    .col(big_integer(Runs::ProjectId))
                    .col(big_integer(Runs::Number))
                    .col(string_len(Runs::Status, 16))
                    .col(string_len(Runs::Trigger, 16))
                    .col(string_len_null(Runs::GitRef, 255))
                    .col(string_len_null(Runs::CommitSha, 64))
                    .col(text(Runs::Params).default("{}"))
                    .col(big_integer_null(Runs::CreatedBy))
                    .col(timestamp_with_time_zone(Runs::QueuedAt))
                    .col(timestamp_with_time_zone_null(Runs::StartedAt))
                    .col(timestamp_with_time_zone_null(Runs::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Runs::Table, Runs::OrgId)
                            .to(Orgs::Table, Orgs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Runs::Table, Runs::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Runs::Table, Runs::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RunOutbox::Table)
                    .col(big_pk_auto(RunOutbox::Id))
                    .col(big_integer(RunOutbox::RunId))
                    .col(timestamp_with_time_zone(RunOutbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(RunOutbox::PublishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RunOutbox::Table, RunOutbox::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(big_integer(WebhookDeliveries::ProjectId))
                    .col(string_len(WebhookDeliveries::Provider, 16))
                    .col(string_len(WebhookDeliveries::DeliveryId, 128))
                    .col(big_integer_null(WebhookDeliveries::RunId))
                    .col(timestamp_with_time_zone(WebhookDeliveries::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .take(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("uq_runs_project_number")
                .table(Runs::Table)
                .col(Runs::ProjectId)
                .col(Runs::Number)
                .unique()
                .take(),
            Index::create()
                .name("ix_runs_project_status")
                .table(Runs::Table)
                .col(Runs::ProjectId)
                .col(Runs::Status)
                .take(),
            Index::create()
                .name("ix_runs_org_status")
                .table(Runs::Table)
                .col(Runs::OrgId)
                .col(Runs::Status)
                .take(),
            Index::create()
                .name("ix_run_outbox_unpublished")
                .table(RunOutbox::Table)
                .col(RunOutbox::PublishedAt)
                .take(),
            Index::create()
                .name("uq_webhook_deliveries")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::ProjectId)
                .col(WebhookDeliveries::Provider)
                .col(WebhookDeliveries::DeliveryId)
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
            .drop_table(Table::drop().table(WebhookDeliveries::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(RunOutbox::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(Runs::Table).take())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .drop_column(Projects::NextRunNumber)
                    .take(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
