//! The `app_slots` table: one app in one environment — its router port, the release it
//! serves, and the lease of the one controller that drives it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_slots")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub project_id: i64,
    pub environment_id: i64,
    pub app: String,
    /// The router's port, kept across controllers so `APP_URL` never changes.
    pub router_port: Option<i32>,
    /// The release whose version serves when no release is in progress (blue during one).
    pub live_release_id: Option<i64>,
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// The router's URL (`APP_URL`), written by the controller that serves it.
    pub url: Option<String>,
    /// JSON list of `store::releases::InstanceView`: what runs, as the controller last saw it.
    pub instances: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
