//! Approval gates and cancel requests: what people do to a run a worker holds.
//!
//! A worker parks the run in `waiting` with `waiting_for`; a member allowed by the gate's
//! `submitter` answers it (once: a compare-and-set on the gate's id); the worker, polling,
//! reads the answer and resumes. A cancel request on a queued run cancels it at once; on a
//! running or waiting one it sets `cancel_requested`, which the worker acts on.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::entities::run;
use crate::tenancy::Role;
use crate::{Error, Result};

/// The gate a waiting run is parked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitingFor {
    /// Answer with this id (a new gate gets a new id, so a stale answer cannot pass it).
    pub id: String,
    pub message: String,
    /// The approve button's label.
    pub ok: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Who may answer: emails or role names, comma-separated; developers and above if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter: Option<String>,
    pub since: DateTime<Utc>,
    /// What the approver may fill in (the gate's `parameters`); the values become environment
    /// variables for the rest of the stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<crate::store::params::ParamSpec>,
}

/// How a gate was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub approve: bool,
    pub by: String,
    pub at: DateTime<Utc>,
    /// The gate's parameters, checked, with defaults filled in (approvals only).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
}

/// Whether someone with `email` and `role` may answer the gate.
pub fn may_answer(gate: &WaitingFor, email: &str, role: Role) -> bool {
    let Some(list) = gate.submitter.as_deref().filter(|s| !s.trim().is_empty()) else {
        return role >= Role::Developer;
    };
    list.split(',').map(str::trim).any(|who| {
        who.eq_ignore_ascii_case(email)
            || Role::parse(&who.to_ascii_lowercase()).is_ok_and(|needed| role >= needed)
    })
}

fn held(run_id: i64, attempt: i32, status: &str) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(run::Column::Id.eq(run_id))
        .add(run::Column::Status.eq(status))
        .add(run::Column::Attempt.eq(attempt))
}

/// The worker parks its run at a gate; false when it no longer holds the run.
pub async fn park(
    db: &impl ConnectionTrait,
    run_id: i64,
    attempt: i32,
    gate: &WaitingFor,
) -> Result<bool> {
    let json = serde_json::to_string(gate).map_err(|e| Error::Conflict(e.to_string()))?;
    Ok(run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value("waiting"))
        .col_expr(run::Column::WaitingFor, Expr::value(json))
        .col_expr(
            run::Column::InputAnswer,
            Expr::value(Option::<String>::None),
        )
        .filter(held(run_id, attempt, "running"))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// The worker leaves the gate (answered, or the run is being stopped).
pub async fn resume(db: &impl ConnectionTrait, run_id: i64, attempt: i32) -> Result<bool> {
    Ok(run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value("running"))
        .col_expr(run::Column::WaitingFor, Expr::value(Option::<String>::None))
        .col_expr(
            run::Column::InputAnswer,
            Expr::value(Option::<String>::None),
        )
        .filter(held(run_id, attempt, "waiting"))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// What the worker polls for while it runs: a cancel request and a gate's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub cancel: bool,
    pub answer: Option<Answer>,
    /// False when the run is no longer this attempt's.
    pub held: bool,
}

pub async fn requests(db: &impl ConnectionTrait, run_id: i64, attempt: i32) -> Result<Requests> {
    let Some(r) = run::Entity::find_by_id(run_id).one(db).await? else {
        return Ok(Requests::default());
    };
    Ok(Requests {
        cancel: r.cancel_requested,
        answer: r
            .input_answer
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok()),
        held: r.attempt == attempt && matches!(r.status.as_str(), "running" | "waiting"),
    })
}

/// Records an answer to the gate `id` of a waiting run; Conflict when the run is not waiting
/// there (answered already, moved on, or another gate).
pub async fn answer(db: &impl ConnectionTrait, found: &run::Model, answer: &Answer) -> Result<()> {
    let gate: Option<WaitingFor> = found
        .waiting_for
        .as_deref()
        .and_then(|w| serde_json::from_str(w).ok());
    if found.status != "waiting" || gate.as_ref().is_none_or(|g| g.id != answer.id) {
        return Err(Error::Conflict(format!(
            "run {} is not waiting at gate `{}`",
            found.number, answer.id
        )));
    }
    let json = serde_json::to_string(answer).map_err(|e| Error::Conflict(e.to_string()))?;
    let changed = run::Entity::update_many()
        .col_expr(run::Column::InputAnswer, Expr::value(json))
        .filter(run::Column::Id.eq(found.id))
        .filter(run::Column::Status.eq("waiting"))
        .filter(run::Column::Attempt.eq(found.attempt))
        .filter(run::Column::InputAnswer.is_null())
        .exec(db)
        .await?
        .rows_affected;
    if changed != 1 {
        return Err(Error::Conflict(format!(
            "the gate of run {} has already been answered",
            found.number
        )));
    }
    Ok(())
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// A queued run: cancelled now.
    Now,
    /// A running or waiting run: its worker stops it (within a second or two).
    Requested,
}

pub async fn cancel(db: &impl ConnectionTrait, found: &run::Model, by: &str) -> Result<Cancelled> {
    match found.status.as_str() {
        "queued" => {
            let changed = run::Entity::update_many()
                .col_expr(run::Column::Status, Expr::value("cancelled"))
                .col_expr(run::Column::FinishedAt, Expr::value(Utc::now()))
                .col_expr(
                    run::Column::Reason,
                    Expr::value(format!("cancelled by {by} before it started")),
                )
                .filter(run::Column::Id.eq(found.id))
                .filter(run::Column::Status.eq("queued"))
                .exec(db)
                .await?
                .rows_affected;
            if changed == 1 {
                return Ok(Cancelled::Now);
            }
        }
        "running" | "waiting" => {
            let changed = run::Entity::update_many()
                .col_expr(run::Column::CancelRequested, Expr::value(true))
                .col_expr(
                    run::Column::Reason,
                    Expr::value(format!("cancelled by {by}")),
                )
                .filter(run::Column::Id.eq(found.id))
                .filter(run::Column::Status.is_in(["running", "waiting"]))
                .exec(db)
                .await?
                .rows_affected;
            if changed == 1 {
                return Ok(Cancelled::Requested);
            }
        }
        _ => {}
    }
    Err(Error::Conflict(format!(
        "run {} has already ended",
        found.number
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(submitter: Option<&str>) -> WaitingFor {
        WaitingFor {
            id: "g".into(),
            message: "Ship?".into(),
            ok: "Ship".into(),
            stage: None,
            submitter: submitter.map(str::to_owned),
            since: Utc::now(),
            parameters: Vec::new(),
        }
    }

    #[test]
    fn developers_and_above_answer_by_default() {
        assert!(may_answer(&gate(None), "a@x", Role::Developer));
        assert!(!may_answer(&gate(None), "a@x", Role::Viewer));
    }

    #[test]
    fn submitter_names_emails_or_roles() {
        let g = gate(Some("qa@example.com, admin"));
        assert!(may_answer(&g, "QA@example.com", Role::Viewer));
        assert!(may_answer(&g, "boss@example.com", Role::Owner));
        assert!(!may_answer(&g, "dev@example.com", Role::Developer));
    }
}
