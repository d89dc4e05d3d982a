//! The first schema: people, their sign-in methods and sessions, organisations (tenants) with
//! memberships and invitations, API tokens, projects with their secrets, and the audit log.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000001_create_tenancy"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    EmailVerified,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Identities {
    Table,
    Id,
    UserId,
    Provider,
    Subject,
    Email,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Orgs {
    Table,
    Id,
    Slug,
    Name,
    MaxConcurrentRuns,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    OrgId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    OrgId,
    Email,
    Role,
    TokenHash,
    InvitedBy,
    ExpiresAt,
    AcceptedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    OrgId,
    CreatedBy,
    Name,
    Prefix,
    TokenHash,
    Scopes,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    OrgId,
    Slug,
    Name,
    RepoUrl,
    DefaultBranch,
    PipelinePath,
    WebhookSecretEnc,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProjectSecrets {
    Table,
    Id,
    ProjectId,
    Name,
    ValueEnc,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    OrgId,
    ActorUserId,
    ActorTokenId,
    Action,
    TargetType,
    TargetId,
    Details,
    CreatedAt,
}

fn created_at<T: IntoIden>(col: T) -> ColumnDef {
    timestamp_with_time_zone(col)
        .default(Expr::current_timestamp())
        .take()
}

fn fk(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

fn index(
    table: impl IntoIden,
    name: &str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    if unique {
        stmt.unique();
    }
    stmt.take()
}

fn tables() -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table(Users::Table)
            .col(big_pk_auto(Users::Id))
            .col(string_len_uniq(Users::Email, 320))
            .col(string_len(Users::Name, 200))
            .col(string_null(Users::PasswordHash))
            .col(boolean(Users::EmailVerified).default(false))
            .col(created_at(Users::CreatedAt))
            .col(created_at(Users::UpdatedAt))
            .take(),
        Table::create()
            .table(Identities::Table)
            .col(big_pk_auto(Identities::Id))
            .col(big_integer(Identities::UserId))
            .col(string_len(Identities::Provider, 64))
            .col(string_len(Identities::Subject, 255))
            .col(string_len_null(Identities::Email, 320))
            .col(created_at(Identities::CreatedAt))
            .foreign_key(&mut fk(
                (Identities::Table, Identities::UserId),
                (Users::Table, Users::Id),
            ))
            .take(),
        Table::create()
            .table(Sessions::Table)
            .col(big_pk_auto(Sessions::Id))
            .col(string_len_uniq(Sessions::TokenHash, 64))
            .col(big_integer(Sessions::UserId))
            .col(created_at(Sessions::CreatedAt))
            .col(created_at(Sessions::LastSeenAt))
            .col(timestamp_with_time_zone(Sessions::ExpiresAt))
            .foreign_key(&mut fk(
                (Sessions::Table, Sessions::UserId),
                (Users::Table, Users::Id),
            ))
            .take(),
        Table::create()
            .table(Orgs::Table)
            .col(big_pk_auto(Orgs::Id))
            .col(string_len_uniq(Orgs::Slug, 40))
            .col(string_len(Orgs::Name, 200))
            .col(integer(Orgs::MaxConcurrentRuns).default(5))
            .col(created_at(Orgs::CreatedAt))
            .col(created_at(Orgs::UpdatedAt))
            .take(),
        Table::create()
            .table(Memberships::Table)
            .col(big_pk_auto(Memberships::Id))
            .col(big_integer(Memberships::OrgId))
            .col(big_integer(Memberships::UserId))
            .col(string_len(Memberships::Role, 16))
            .col(created_at(Memberships::CreatedAt))
            .foreign_key(&mut fk(
                (Memberships::Table, Memberships::OrgId),
                (Orgs::Table, Orgs::Id),
            ))
            .foreign_key(&mut fk(
                (Memberships::Table, Memberships::UserId),
                (Users::Table, Users::Id),
            ))
            .take(),
        Table::create()
            .table(Invitations::Table)
            .col(big_pk_auto(Invitations::Id))
            .col(big_integer(Invitations::OrgId))
            .col(string_len(Invitations::Email, 320))
            .col(string_len(Invitations::Role, 16))
            .col(string_len_uniq(Invitations::TokenHash, 64))
            .col(big_integer_null(Invitations::InvitedBy))
            .col(timestamp_with_time_zone(Invitations::ExpiresAt))
            .col(timestamp_with_time_zone_null(Invitations::AcceptedAt))
            .col(created_at(Invitations::CreatedAt))
            .foreign_key(&mut fk(
                (Invitations::Table, Invitations::OrgId),
                (Orgs::Table, Orgs::Id),
            ))
            .foreign_key(
                fk(
                    (Invitations::Table, Invitations::InvitedBy),
                    (Users::Table, Users::Id),
                )
                .on_delete(ForeignKeyAction::SetNull),
            )
            .take(),
        Table::create()
            .table(ApiTokens::Table)
            .col(big_pk_auto(ApiTokens::Id))
            .col(big_integer(ApiTokens::OrgId))
            .col(big_integer(ApiTokens::CreatedBy))
            .col(string_len(ApiTokens::Name, 100))
            .col(string_len_uniq(ApiTokens::Prefix, 16))
            .col(string_len(ApiTokens::TokenHash, 64))
            .col(string_len(ApiTokens::Scopes, 64))
            .col(timestamp_with_time_zone_null(ApiTokens::ExpiresAt))
            .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
            .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
            .col(created_at(ApiTokens::CreatedAt))
            .foreign_key(&mut fk(
                (ApiTokens::Table, ApiTokens::OrgId),
                (Orgs::Table, Orgs::Id),
            ))
            .foreign_key(&mut fk(
                (ApiTokens::Table, ApiTokens::CreatedBy),
                (Users::Table, Users::Id),
            ))
            .take(),
        Table::create()
            .table(Projects::Table)
            .col(big_pk_auto(Projects::Id))
            .col(big_integer(Projects::OrgId))
            .col(string_len(Projects::Slug, 40))
            .col(string_len(Projects::Name, 200))
            .col(string_len(Projects::RepoUrl, 2048))
            .col(string_len(Projects::DefaultBranch, 255).default("main"))
            .col(string_len(Projects::PipelinePath, 1024).default("Jenkinsfile"))
            .col(blob(Projects::WebhookSecretEnc))
            .col(created_at(Projects::CreatedAt))
            .col(created_at(Projects::UpdatedAt))
            .foreign_key(&mut fk(
                (Projects::Table, Projects::OrgId),
                (Orgs::Table, Orgs::Id),
            ))
            .take(),
        Table::create()
            .table(ProjectSecrets::Table)
            .col(big_pk_auto(ProjectSecrets::Id))
            .col(big_integer(ProjectSecrets::ProjectId))
            .col(string_len(ProjectSecrets::Name, 128))
            .col(blob(ProjectSecrets::ValueEnc))
            .col(created_at(ProjectSecrets::CreatedAt))
            .col(created_at(ProjectSecrets::UpdatedAt))
            .foreign_key(&mut fk(
                (ProjectSecrets::Table, ProjectSecrets::ProjectId),
                (Projects::Table, Projects::Id),
            ))
            .take(),
        Table::create()
            .table(AuditLog::Table)
            .col(big_pk_auto(AuditLog::Id))
            .col(big_integer(AuditLog::OrgId))
            .col(big_integer_null(AuditLog::ActorUserId))
            .col(big_integer_null(AuditLog::ActorTokenId))
            .col(string_len(AuditLog::Action, 64))
            .col(string_len(AuditLog::TargetType, 32))
            .col(string_len(AuditLog::TargetId, 128))
            .col(text(AuditLog::Details).default("{}"))
            .col(created_at(AuditLog::CreatedAt))
            .foreign_key(&mut fk(
                (AuditLog::Table, AuditLog::OrgId),
                (Orgs::Table, Orgs::Id),
            ))
            .foreign_key(
                fk(
                    (AuditLog::Table, AuditLog::ActorUserId),
                    (Users::Table, Users::Id),
                )
                .on_delete(ForeignKeyAction::SetNull),
            )
            .take(),
    ]
}

/// Indexes for the lookups API.md needs: by owner (user, org, project), by hash, and the
/// per-tenant unique names.
fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        index(
            Identities::Table,
            "uq_identities_provider_subject",
            &["provider", "subject"],
            true,
        ),
        index(Identities::Table, "ix_identities_user", &["user_id"], false),
        index(Sessions::Table, "ix_sessions_user", &["user_id"], false),
        index(
            Sessions::Table,
            "ix_sessions_expires",
            &["expires_at"],
            false,
        ),
        index(
            Memberships::Table,
            "uq_memberships_org_user",
            &["org_id", "user_id"],
            true,
        ),
        index(
            Memberships::Table,
            "ix_memberships_user",
            &["user_id"],
            false,
        ),
        index(Invitations::Table, "ix_invitations_org", &["org_id"], false),
        index(ApiTokens::Table, "ix_api_tokens_org", &["org_id"], false),
        index(
            ApiTokens::Table,
            "ix_api_tokens_creator",
            &["created_by"],
            false,
        ),
        index(
            Projects::Table,
            "uq_projects_org_slug",
            &["org_id", "slug"],
            true,
        ),
        index(
            ProjectSecrets::Table,
            "uq_project_secrets_project_name",
            &["project_id", "name"],
            true,
        ),
        index(
            AuditLog::Table,
            "ix_audit_log_org_created",
            &["org_id", "created_at"],
            false,
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables().iter().rev() {
            let name = table
                .get_table_name()
                .ok_or_else(|| DbErr::Migration("table without a name".into()))?
                .clone();
            manager.drop_table(Table::drop().table(name).take()).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
