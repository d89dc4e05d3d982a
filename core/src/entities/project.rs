//! The `projects` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub slug: String,
    pub name: String,
    pub repo_url: String,
    pub default_branch: String,
    pub pipeline_path: String,
    pub webhook_secret_enc: Vec<u8>,
    pub next_run_number: i64,
    /// The parameters the last parsed Jenkinsfile declared (JSON), for checking triggers.
    pub pipeline_params: Option<String>,
    /// The last parsed Jenkinsfile's `cron(...)` trigger, evaluated by the scheduler.
    pub pipeline_cron: Option<String>,
    /// False when the last parsed Jenkinsfile said `disableConcurrentBuilds()`.
    pub concurrent_builds: bool,
    /// `buildDiscarder(logRotator(numToKeepStr))`: runs whose artifacts are kept.
    pub build_keep: Option<i32>,
    /// `logRotator(daysToKeepStr)`: runs finished longer ago lose their log and artifacts.
    pub build_keep_days: Option<i32>,
    /// `logRotator(artifactNumToKeepStr)`: runs past the newest this many lose their artifacts.
    pub artifact_keep: Option<i32>,
    /// `logRotator(artifactDaysToKeepStr)`: runs finished longer ago lose their artifacts.
    pub artifact_keep_days: Option<i32>,
    /// Which branches build on a push (JSON list of globs); every branch when None.
    pub branches: Option<String>,
    /// Whether a change request from a fork gets the project's secrets.
    pub fork_secrets: bool,
    /// `quietPeriod(n)`: seconds a run started by a push or a schedule waits.
    pub quiet_period: Option<i32>,
    /// `rateLimitBuilds`: at most this many runs start per `rate_limit_period` seconds.
    pub rate_limit_count: Option<i32>,
    pub rate_limit_period: Option<i32>,
    /// Runs a person started are not held back by the rate limit.
    pub rate_limit_user_boost: bool,
    /// How checkouts authenticate: `token`, `ssh_key`, or None (anonymously).
    pub repo_auth: Option<String>,
    /// The user name sent with a token.
    pub repo_username: Option<String>,
    /// The token or the SSH private key, sealed (see `store::repo_credentials`).
    pub repo_secret_enc: Option<Vec<u8>>,
    /// The generated deploy key's public half, to add to the repository.
    pub ssh_public_key: Option<String>,
    /// The SSH host keys pinned at the first connection (`known_hosts` lines).
    pub ssh_known_hosts: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
