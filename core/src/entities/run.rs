//! The `runs` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub project_id: i64,
    pub number: i64,
    pub status: String,
    pub trigger: String,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    pub params: String,
    pub created_by: Option<i64>,
    pub queued_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// How many times a worker started this run (a reclaimed run is taken over with +1).
    pub attempt: i32,
    /// The worker running it.
    pub worker: Option<String>,
    /// When that worker last said it was alive.
    pub heartbeat_at: Option<DateTimeUtc>,
    /// Why the run failed or was cancelled, when Sluice knows.
    pub reason: Option<String>,
    /// The approval gate the run waits at (JSON `store::gates::WaitingFor`).
    pub waiting_for: Option<String>,
    /// The answer to that gate (JSON `store::gates::Answer`), read by the worker.
    pub input_answer: Option<String>,
    /// Someone asked to cancel the running run; its worker stops it.
    pub cancel_requested: bool,
    pub log_lines: i64,
    pub log_bytes: i64,
    /// JUnit results (JSON `store::tests::TestSummary`).
    pub tests: Option<String>,
    /// `branch`, `tag` or `change_request`; None on runs from before it was recorded.
    pub ref_type: Option<String>,
    /// The change request built (JSON `store::changes::ChangeRequest`).
    pub change: Option<String>,
    /// The commit's message and author, from the webhook or the checkout.
    pub commit_message: Option<String>,
    pub commit_author: Option<String>,
    /// `currentBuild.displayName` and `.description` as the run's Groovy set them.
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// When retention deleted the run's log and artifacts (`store::retention`).
    pub discarded_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
