//! Run pages: a project's recent runs with a duration chart, and a run's page with its stage
//! graph, live log, gate, artifacts and test results. Actions are plain forms (they work
//! without JavaScript); `run.js` keeps the graph, status and log live.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sluice_core::entities::{project, run};
use sluice_core::store::PageRequest;
use sluice_core::store::artifacts::{self, TestSummary};
use sluice_core::store::execution;
use sluice_core::store::gates::WaitingFor;
use sluice_core::store::runs::{self, Trigger};
use sluice_core::tenancy::Role;

use crate::pages::{Nav, PageError, Visitor, render};
use crate::state::AppState;
use sluice_core::store::changes::ChangeRequest;

/// A run as a row of the project page.
pub struct RunRow {
    pub number: i64,
    pub status: String,
    /// What was built, as people name it: `main`, `tag v1.2`, `PR-12`.
    pub git_ref: String,
    pub commit: String,
    /// The commit message's first line, and its author.
    pub subject: String,
    pub author: String,
    pub change: Option<ChangeRequest>,
    /// What the run's Groovy set as `currentBuild.displayName` and `.description`.
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Who or what started it, in words: "Started by Ada", "Push by Ada", "PR #12 by bob".
    pub started_by: String,
    pub duration: String,
    pub queued: String,
}

/// One bar of the duration chart (SVG units).
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub status: String,
    pub label: String,
    pub number: i64,
    pub seconds: i64,
    pub duration: String,
}

pub fn human_duration(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    let Some(from) = from else {
        return String::new();
    };
    let secs = (to.unwrap_or_else(Utc::now) - from).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The name part of `Name <email>`.
fn person_name(author: &str) -> &str {
    author.split(" <").next().unwrap_or(author).trim()
}

/// Who or what started `r`, in words; `person` is the name of the user who did, if any.
pub fn started_by(r: &run::Model, change: Option<&ChangeRequest>, person: Option<&str>) -> String {
    let author = r.commit_author.as_deref().map(person_name);
    if let Some(change) = change {
        let (kind, mark) = if change.provider == "gitlab" {
            ("MR", "!")
        } else {
            ("PR", "#")
        };
        return format!("{kind} {mark}{} by {}", change.id, change.author);
    }
    match (Trigger::parse(&r.trigger), person) {
        (Some(Trigger::Github | Trigger::Gitlab), _) => {
            let what = if r.ref_type.as_deref() == Some("tag") {
                "Tag push"
            } else {
                "Push"
            };
            match author {
                Some(name) if !name.is_empty() => format!("{what} by {name}"),
                _ => what.to_owned(),
            }
        }
        (Some(Trigger::Cron), _) => "Started by the schedule".to_owned(),
        (Some(Trigger::Rerun), Some(name)) => format!("Rerun by {name}"),
        (Some(Trigger::Jenkins), Some(name)) => format!("Started by {name} (Jenkins API)"),
        (_, Some(name)) => format!("Started by {name}"),
        _ => "Started through the API".to_owned(),
    }
}

/// The names of the users who started `runs`, by user id.
pub async fn starters(
    state: &AppState,
    runs: &[run::Model],
) -> Result<std::collections::HashMap<i64, String>, PageError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let ids: std::collections::HashSet<i64> = runs.iter().filter_map(|r| r.created_by).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(sluice_core::entities::user::Entity::find()
        .filter(sluice_core::entities::user::Column::Id.is_in(ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect())
}

fn row(r: &run::Model, people: &std::collections::HashMap<i64, String>) -> RunRow {
    let change = r.change.as_deref().and_then(ChangeRequest::from_json);
    let person = r
        .created_by
        .and_then(|id| people.get(&id))
        .map(String::as_str);
    let started = started_by(r, change.as_ref(), person);
    let git_ref = r.git_ref.clone().unwrap_or_default();
    let git_ref = match (&change, r.ref_type.as_deref()) {
        (Some(change), _) => change.name(),
        (None, Some("tag")) => format!("tag {git_ref}"),
        _ => git_ref,
    };
    RunRow {
        number: r.number,
        status: r.status.clone(),
        git_ref,
        subject: r
            .commit_message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or_default()
            .to_owned(),
        author: r.commit_author.clone().unwrap_or_default(),
        change,
        display_name: r.display_name.clone(),
        description: r.description.clone(),
        commit: r
            .commit_sha
            .as_deref()
            .map(|c| c.chars().take(10).collect())
            .unwrap_or_default(),
        started_by: started,
        duration: human_duration(r.started_at, r.finished_at),
        queued: r.queued_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// The project page's runs (newest first), the chart of the ended ones (oldest left), and
/// the runs' ids (in the rows' order).
pub async fn recent(
    state: &AppState,
    scope: &sluice_core::tenancy::TenantScope,
    slug: &str,
) -> Result<(Vec<RunRow>, Vec<Bar>, Vec<i64>), PageError> {
    let page = runs::list(
        &state.db,
        scope,
        slug,
        None,
        &PageRequest {
            limit: Some(30),
            cursor: None,
        },
    )
    .await?;
    let people = starters(state, &page.items).await?;
    let rows = page.items.iter().map(|r| row(r, &people)).collect();
    let ended: Vec<&run::Model> = page
        .items
        .iter()
        .rev()
        .filter(|r| r.finished_at.is_some() && r.started_at.is_some())
        .collect();
    let secs = |r: &run::Model| {
        r.finished_at
            .zip(r.started_at)
            .map_or(0, |(f, s)| (f - s).num_seconds().max(0))
    };
    let longest = ended.iter().map(|r| secs(r)).max().unwrap_or(0).max(1);
    let bars = ended
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let height = ((secs(r) * 56) / longest).max(2) as u32;
            Bar {
                x: i as u32 * 10,
                y: 60 - height,
                height,
                number: r.number,
                seconds: secs(r),
                duration: human_duration(r.started_at, r.finished_at),
                status: r.status.clone(),
                label: format!(
                    "#{} {} in {}",
                    r.number,
                    r.status,
                    human_duration(r.started_at, r.finished_at)
                ),
            }
        })
        .collect();
    let ids = page.items.iter().map(|r| r.id).collect();
    Ok((rows, bars, ids))
}

pub struct StageRow {
    pub name: String,
    pub status: String,
    pub depth: usize,
    pub duration: String,
}

/// One run's test results in the trend beside the failures (SVG units).
pub struct TrendBar {
    pub number: i64,
    pub x: u32,
    pub passed_height: u32,
    pub failed_height: u32,
    pub passed: u64,
    pub failed: u64,
    pub current: bool,
}

/// Pass/fail counts of the project's last 20 runs with test results up to run `number`,
/// oldest first.
async fn test_trend(
    state: &AppState,
    project_id: i64,
    number: i64,
) -> Result<Vec<TrendBar>, PageError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let rows: Vec<(i64, Option<String>)> = run::Entity::find()
        .select_only()
        .column(run::Column::Number)
        .column(run::Column::Tests)
        .filter(run::Column::ProjectId.eq(project_id))
        .filter(run::Column::Number.lte(number))
        .filter(run::Column::Tests.is_not_null())
        .order_by_desc(run::Column::Number)
        .limit(20)
        .into_tuple()
        .all(&state.db)
        .await?;
    let counts: Vec<(i64, u64, u64)> = rows
        .into_iter()
        .rev()
        .filter_map(|(n, t)| {
            let t: TestSummary = serde_json::from_str(t.as_deref()?).ok()?;
            Some((n, t.passed, t.failed))
        })
        .collect();
    let most = counts
        .iter()
        .map(|(_, p, f)| p + f)
        .max()
        .unwrap_or(0)
        .max(1);
    Ok(counts
        .into_iter()
        .enumerate()
        .map(|(i, (n, passed, failed))| TrendBar {
            number: n,
            x: i as u32 * 12,
            passed_height: ((passed * 40) / most) as u32,
            failed_height: ((failed * 40) / most) as u32,
            passed,
            failed,
            current: n == number,
        })
        .collect())
}

pub struct ArtifactRow {
    pub path: String,
    pub size: i64,
    pub sha256: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: Nav,
    org: String,
    org_name: String,
    project: project::Model,
    run: RunRow,
    reason: Option<String>,
    attempt: i32,
    active: bool,
    can_act: bool,
    cancel_requested: bool,
    waiting: Option<WaitingFor>,
    stages: Vec<StageRow>,
    artifacts: Vec<ArtifactRow>,
    tests: Option<TestSummary>,
    trend: Vec<TrendBar>,
    api: String,
    page: String,
}

/// `GET /orgs/{org}/projects/{project}/runs/{number}`.
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug, number) = path.into_inner();
    let scope = who.scope(&state, &org).await?;
    let project = sluice_core::store::projects::get(&state.db, &scope, &slug).await?;
    let found = runs::get(&state.db, &scope, &slug, number).await?;
    let stages = execution::stages_of(&state.db, &[found.id])
        .await?
        .remove(&found.id)
        .unwrap_or_default();
    let depth_of = |mut parent: Option<i32>| {
        let mut depth = 0;
        while let Some(p) = parent {
            depth += 1;
            parent = stages.iter().find(|s| s.seq == p).and_then(|s| s.parent);
            if depth > 16 {
                break;
            }
        }
        depth
    };
    let stage_rows = stages
        .iter()
        .map(|s| StageRow {
            name: s.name.clone(),
            status: s.status.clone(),
            depth: depth_of(s.parent),
            duration: human_duration(s.started_at, s.finished_at),
        })
        .collect();
    let artifacts = artifacts::list(&state.db, found.id)
        .await?
        .into_iter()
        .map(|a| ArtifactRow {
            path: a.path,
            size: a.size,
            sha256: a.sha256,
        })
        .collect();
    let active = matches!(found.status.as_str(), "queued" | "running" | "waiting");
    let trend = test_trend(&state, project.id, found.number).await?;
    let page = RunPage {
        trend,
        org_name: scope.org().name.clone(),
        nav: who.nav(&state, Some(&org)).await?,
        api: format!("/api/v1/orgs/{org}/projects/{slug}/runs/{number}"),
        page: format!("/orgs/{org}/projects/{slug}/runs/{number}"),
        org,
        run: row(
            &found,
            &starters(&state, std::slice::from_ref(&found)).await?,
        ),
        reason: found.reason.clone(),
        attempt: found.attempt,
        active,
        can_act: scope.role() >= Role::Developer,
        cancel_requested: found.cancel_requested,
        waiting: found
            .waiting_for
            .as_deref()
            .and_then(|w| serde_json::from_str(w).ok())
            .filter(|_| found.status == "waiting"),
        stages: stage_rows,
        artifacts,
        tests: found
            .tests
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok()),
        project,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf_token: String,
}

impl CsrfForm {
    pub(crate) fn token(&self) -> &str {
        &self.csrf_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(trigger: &str, created_by: Option<i64>, ref_type: &str) -> run::Model {
        run::Model {
            id: 1,
            org_id: 1,
            project_id: 1,
            number: 1,
            status: "succeeded".into(),
            trigger: trigger.into(),
            git_ref: Some("main".into()),
            commit_sha: None,
            params: "{}".into(),
            created_by,
            queued_at: Utc::now(),
            started_at: None,
            finished_at: None,
            attempt: 1,
            worker: None,
            heartbeat_at: None,
            reason: None,
            waiting_for: None,
            input_answer: None,
            cancel_requested: false,
            log_lines: 0,
            log_bytes: 0,
            tests: None,
            ref_type: Some(ref_type.into()),
            change: None,
            commit_message: None,
            commit_author: Some("Ada Lovelace <ada@example.com>".into()),
            display_name: None,
            description: None,
            discarded_at: None,
        }
    }

    #[test]
    fn runs_say_who_or_what_started_them() {
        let said = |trigger, person, ref_type| {
            started_by(&run_of(trigger, Some(7), ref_type), None, person)
        };
        assert_eq!(said("api", Some("Ada"), "branch"), "Started by Ada");
        assert_eq!(
            said("jenkins", Some("Ada"), "branch"),
            "Started by Ada (Jenkins API)"
        );
        assert_eq!(said("rerun", Some("Ada"), "branch"), "Rerun by Ada");
        assert_eq!(said("cron", None, "branch"), "Started by the schedule");
        assert_eq!(said("github", None, "branch"), "Push by Ada Lovelace");
        assert_eq!(said("gitlab", None, "tag"), "Tag push by Ada Lovelace");
        assert_eq!(said("api", None, "branch"), "Started through the API");
        let change = |provider: &str| ChangeRequest {
            provider: provider.into(),
            id: 12,
            target: "main".into(),
            branch: "feature".into(),
            fork: None,
            url: String::new(),
            author: "bob".into(),
            title: "Add it".into(),
        };
        let pr = run_of("github", None, "change_request");
        assert_eq!(
            started_by(&pr, Some(&change("github")), None),
            "PR #12 by bob"
        );
        assert_eq!(
            started_by(&pr, Some(&change("gitlab")), None),
            "MR !12 by bob"
        );
    }
}
