//! The `run_log_chunks` table: the index of a run's log, whose lines are in object storage.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_log_chunks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub seq: i32,
    /// The number of the chunk's first line (lines are numbered from 0 across the run).
    pub first_line: i64,
    pub lines: i32,
    pub bytes: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
