//! The embedded job queue of `sluice serve`: durable in the same database as the runs.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000003_create_queue_jobs"
    }
}

#[derive(DeriveIden)]
enum QueueJobs {
    Table,
    Id,
    RunId,
    OrgId,
    EnqueuedAt,
    ClaimedBy,
    LeaseUntil,
    Deliveries,
    Dead,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(QueueJobs::Table)
                    .col(big_pk_auto(QueueJobs::Id))
                    .col(big_integer(QueueJobs::RunId))
                    .col(big_integer(QueueJobs::OrgId))
                    .col(timestamp_with_time_zone(QueueJobs::EnqueuedAt))
                    .col(string_len_null(QueueJobs::ClaimedBy, 128))
                    .col(timestamp_with_time_zone_null(QueueJobs::LeaseUntil))
                    .col(integer(QueueJobs::Deliveries).default(0))
                    .col(boolean(QueueJobs::Dead).default(false))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_queue_jobs_claim")
                    .table(QueueJobs::Table)
                    .col(QueueJobs::Dead)
                    .col(QueueJobs::Id)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QueueJobs::Table).take())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
