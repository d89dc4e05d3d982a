//! Private repositories: how the project's checkout authenticates (`repo_auth`: `token` or
//! `ssh_key`), the token's user name, the sealed token or private key, the deploy key's public
//! half and the SSH host keys pinned at first contact. And `quietPeriod` and
//! `rateLimitBuilds`: what the default branch's Jenkinsfile declared (a
//! project's quiet period in seconds; at most `rate_limit_count` runs started per
//! `rate_limit_period` seconds, runs a person started skipping the line with
//! `rate_limit_user_boost`), and the time before which a queued run may not be admitted.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000008_private_repos_and_throttles"
    }
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    QuietPeriod,
    RateLimitCount,
    RateLimitPeriod,
    RateLimitUserBoost,
    RepoAuth,
    RepoUsername,
    RepoSecretEnc,
    SshPublicKey,
    SshKnownHosts,
}

#[derive(DeriveIden)]
enum RunOutbox {
    Table,
    NotBefore,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            Table::alter()
                .table(Projects::Table)
                .add_column(integer_null(Projects::QuietPeriod))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(integer_null(Projects::RateLimitCount))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(integer_null(Projects::RateLimitPeriod))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(boolean(Projects::RateLimitUserBoost).default(false))
                .take(),
            Table::alter()
                .table(RunOutbox::Table)
                .add_column(timestamp_with_time_zone_null(RunOutbox::NotBefore))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(string_len_null(Projects::RepoAuth, 16))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(string_len_null(Projects::RepoUsername, 255))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(blob_null(Projects::RepoSecretEnc))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(text_null(Projects::SshPublicKey))
                .take(),
            Table::alter()
                .table(Projects::Table)
                .add_column(text_null(Projects::SshKnownHosts))
                .take(),
        ];
        for column in columns {
            manager.alter_table(column).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (
                Projects::Table.into_iden(),
                Projects::SshKnownHosts.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::SshPublicKey.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::RepoSecretEnc.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::RepoUsername.into_iden(),
            ),
            (Projects::Table.into_iden(), Projects::RepoAuth.into_iden()),
            (
                RunOutbox::Table.into_iden(),
                RunOutbox::NotBefore.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::RateLimitUserBoost.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::RateLimitPeriod.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::RateLimitCount.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::QuietPeriod.into_iden(),
            ),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
