//! Releases (API.md, "Releases"): a project's environments, each app running in one (a slot:
//! its router port, the version it serves and the lease of the one controller driving it),
//! and the releases the `deploy` step asks for, with their plan's steps and traffic.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_releases"
    }
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Environments {
    Table,
    Id,
    OrgId,
    ProjectId,
    Name,
    Protected,
    Deployers,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AppSlots {
    Table,
    Id,
    OrgId,
    ProjectId,
    EnvironmentId,
    App,
    RouterPort,
    LiveReleaseId,
    LeaseHolder,
    LeaseExpiresAt,
    Url,
    Instances,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    Id,
    OrgId,
    ProjectId,
    EnvironmentId,
    SlotId,
    App,
    Version,
    RunId,
    StepKey,
    Strategy,
    Spec,
    Status,
    Steps,
    Traffic,
    PreviousReleaseId,
    Reason,
    Smoke,
    Analysis,
    AbortRequested,
    RollbackRequested,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

fn cascade(from: (Environments, Environments)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(Projects::Table, Projects::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Environments::Table)
                    .col(big_pk_auto(Environments::Id))
                    .col(big_integer(Environments::OrgId))
                    .col(big_integer(Environments::ProjectId))
                    .col(string_len(Environments::Name, 40))
                    .col(boolean(Environments::Protected).default(false))
                    .col(text(Environments::Deployers).default("[]"))
                    .col(timestamp_with_time_zone(Environments::CreatedAt))
                    .foreign_key(&mut cascade((Environments::Table, Environments::ProjectId)))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AppSlots::Table)
                    .col(big_pk_auto(AppSlots::Id))
                    .col(big_integer(AppSlots::OrgId))
                    .col(big_integer(AppSlots::ProjectId))
                    .col(big_integer(AppSlots::EnvironmentId))
                    .col(string_len(AppSlots::App, 40))
                    .col(integer_null(AppSlots::RouterPort))
                    .col(big_integer_null(AppSlots::LiveReleaseId))
                    .col(string_len_null(AppSlots::LeaseHolder, 200))
                    .col(timestamp_with_time_zone_null(AppSlots::LeaseExpiresAt))
                    .col(string_len_null(AppSlots::Url, 300))
                    .col(text_null(AppSlots::Instances))
                    .col(timestamp_with_time_zone(AppSlots::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AppSlots::Table, AppSlots::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Releases::Table)
                    .col(big_pk_auto(Releases::Id))
                    .col(big_integer(Releases::OrgId))
                    .col(big_integer(Releases::ProjectId))
                    .col(big_integer(Releases::EnvironmentId))
                    .col(big_integer(Releases::SlotId))
                    .col(string_len(Releases::App, 40))
                    .col(big_integer(Releases::Version))
                    .col(big_integer(Releases::RunId))
                    .col(string_len(Releases::StepKey, 200))
                    .col(string_len(Releases::Strategy, 20))
                    .col(text(Releases::Spec))
                    .col(string_len(Releases::Status, 20))
                    .col(text(Releases::Steps))
                    .col(text(Releases::Traffic))
                    .col(big_integer_null(Releases::PreviousReleaseId))
                    .col(text_null(Releases::Reason))
                    .col(text_null(Releases::Smoke))
                    .col(text_null(Releases::Analysis))
                    .col(boolean(Releases::AbortRequested).default(false))
                    .col(boolean(Releases::RollbackRequested).default(false))
                    .col(big_integer_null(Releases::CreatedBy))
                    .col(timestamp_with_time_zone(Releases::CreatedAt))
                    .col(timestamp_with_time_zone(Releases::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Releases::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Releases::Table, Releases::SlotId)
                            .to(AppSlots::Table, AppSlots::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("uq_environments_project_name")
                .table(Environments::Table)
                .col(Environments::ProjectId)
                .col(Environments::Name)
                .unique()
                .take(),
            Index::create()
                .name("uq_app_slots_environment_app")
                .table(AppSlots::Table)
                .col(AppSlots::EnvironmentId)
                .col(AppSlots::App)
                .unique()
                .take(),
            // A retried run's deploy step finds the release its earlier attempt started.
            Index::create()
                .name("uq_releases_run_step")
                .table(Releases::Table)
                .col(Releases::RunId)
                .col(Releases::StepKey)
                .unique()
                .take(),
            Index::create()
                .name("ix_releases_project_id")
                .table(Releases::Table)
                .col(Releases::ProjectId)
                .col(Releases::Id)
                .take(),
            Index::create()
                .name("ix_releases_slot_status")
                .table(Releases::Table)
                .col(Releases::SlotId)
                .col(Releases::Status)
                .take(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Releases::Table.into_iden(),
            AppSlots::Table.into_iden(),
            Environments::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
