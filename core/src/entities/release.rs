//! The `releases` table: one deploy of a version of an app to an environment, its plan's steps
//! and the traffic they leave (the state machine the controller resumes after a crash).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "releases")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub project_id: i64,
    pub environment_id: i64,
    pub slot_id: i64,
    pub app: String,
    /// The run number that built it.
    pub version: i64,
    pub run_id: i64,
    /// Which `deploy` step of the run (its Jenkinsfile position), so a retry finds it again.
    pub step_key: String,
    /// `blueGreen`, `recreate` or `start` (the first deploy to an empty environment).
    pub strategy: String,
    /// JSON `store::releases::Spec`.
    pub spec: String,
    /// `in_progress`, `succeeded`, `rolled_back`, `failed`, `aborted`.
    pub status: String,
    /// JSON list of `store::releases::StepState`.
    pub steps: String,
    /// JSON `release::plan::Traffic`: what runs now.
    pub traffic: String,
    /// The release that served before this one (blue, and the rollback target).
    pub previous_release_id: Option<i64>,
    pub reason: Option<String>,
    /// JSON `store::releases::Smoke`: the smoke test the deploy step runs for the controller.
    pub smoke: Option<String>,
    /// JSON `store::releases::Analysis`: the router's per-colour counters while monitoring.
    pub analysis: Option<String>,
    pub abort_requested: bool,
    pub rollback_requested: bool,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
