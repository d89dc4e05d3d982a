//! `GET /` for a signed-in person: their orgs and projects with each project's last run, the
//! runs waiting for their approval, and the latest runs across their orgs. Someone in no org
//! yet is sent to create one.

use std::collections::{HashMap, HashSet};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sluice_core::entities::{project, run};
use sluice_core::store::PageRequest;
use sluice_core::store::gates::WaitingFor;
use sluice_core::store::orgs;
use sluice_core::tenancy::{Principal, Role};

use crate::pages::run_pages::{human_duration, started_by, starters};
use crate::pages::{Nav, PageError, SignedIn, render, see_other};
use crate::state::AppState;

/// Most projects listed, and latest runs shown.
const MAX_PROJECTS: u64 = 300;
const RECENT_RUNS: u64 = 15;

pub struct ProjectLine {
    pub org: String,
    pub slug: String,
    pub name: String,
    /// The last run: number, status and when it was queued.
    pub last: Option<(i64, String, String)>,
}

pub struct OrgBlock {
    pub slug: String,
    pub name: String,
    pub role: String,
    pub projects: Vec<ProjectLine>,
}

pub struct RunLine {
    pub org: String,
    pub project: String,
    pub project_name: String,
    pub number: i64,
    pub status: String,
    pub started_by: String,
    pub when: String,
    pub duration: String,
    /// The gate's question, for a run waiting for approval.
    pub question: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    nav: Nav,
    orgs: Vec<OrgBlock>,
    waiting: Vec<RunLine>,
    recent: Vec<RunLine>,
}

fn line(
    r: &run::Model,
    projects: &HashMap<i64, (String, String, String)>,
    people: &HashMap<i64, String>,
) -> Option<RunLine> {
    let (org, slug, name) = projects.get(&r.project_id)?;
    let change = r
        .change
        .as_deref()
        .and_then(sluice_core::store::changes::ChangeRequest::from_json);
    let person = r
        .created_by
        .and_then(|id| people.get(&id))
        .map(String::as_str);
    Some(RunLine {
        org: org.clone(),
        project: slug.clone(),
        project_name: name.clone(),
        number: r.number,
        status: r.status.clone(),
        started_by: started_by(r, change.as_ref(), person),
        when: r.queued_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        duration: human_duration(r.started_at, r.finished_at),
        question: r
            .waiting_for
            .as_deref()
            .and_then(|w| serde_json::from_str::<WaitingFor>(w).ok())
            .map(|w| w.message),
    })
}

pub async fn dashboard(state: &AppState, who: &SignedIn) -> Result<HttpResponse, PageError> {
    let memberships = orgs::list_for_principal(
        &state.db,
        &Principal::User(who.user.clone()),
        &PageRequest {
            limit: Some(200),
            cursor: None,
        },
    )
    .await?
    .items;
    if memberships.is_empty() {
        return Ok(see_other("/orgs"));
    }
    let org_ids: Vec<i64> = memberships.iter().map(|(o, _)| o.id).collect();
    let roles: HashMap<i64, Role> = memberships.iter().map(|(o, r)| (o.id, *r)).collect();
    let org_slugs: HashMap<i64, String> = memberships
        .iter()
        .map(|(o, _)| (o.id, o.slug.clone()))
        .collect();
    let all_projects = project::Entity::find()
        .filter(project::Column::OrgId.is_in(org_ids.clone()))
        .order_by_asc(project::Column::Name)
        .limit(MAX_PROJECTS)
        .all(&state.db)
        .await?;
    let project_ids: Vec<i64> = all_projects.iter().map(|p| p.id).collect();
    let by_id: HashMap<i64, (String, String, String)> = all_projects
        .iter()
        .map(|p| {
            let org = org_slugs.get(&p.org_id).cloned().unwrap_or_default();
            (p.id, (org, p.slug.clone(), p.name.clone()))
        })
        .collect();
    // Each project's newest run (runs' ids grow with their numbers).
    let latest = run::Entity::find()
        .filter(
            run::Column::Id.in_subquery(
                Query::select()
                    .expr(sea_orm::sea_query::Func::max(Expr::col(run::Column::Id)))
                    .from(run::Entity)
                    .and_where(run::Column::ProjectId.is_in(project_ids.clone()))
                    .group_by_col(run::Column::ProjectId)
                    .take(),
            ),
        )
        .all(&state.db)
        .await?;
    let last: HashMap<i64, &run::Model> = latest.iter().map(|r| (r.project_id, r)).collect();
    let waiting_runs = run::Entity::find()
        .filter(run::Column::OrgId.is_in(org_ids.clone()))
        .filter(run::Column::Status.eq("waiting"))
        .order_by_asc(run::Column::Id)
        .limit(50)
        .all(&state.db)
        .await?;
    // Waiting for you: gates you may answer (developers, or a gate naming you).
    let me: HashSet<String> = [who.user.email.to_lowercase(), who.user.name.to_lowercase()]
        .into_iter()
        .collect();
    let waiting_runs: Vec<run::Model> = waiting_runs
        .into_iter()
        .filter(|r| {
            let named = r
                .waiting_for
                .as_deref()
                .and_then(|w| serde_json::from_str::<WaitingFor>(w).ok())
                .and_then(|w| w.submitter)
                .is_some_and(|s| {
                    s.split(',')
                        .any(|one| me.contains(&one.trim().to_lowercase()))
                });
            named || roles.get(&r.org_id).is_some_and(|r| *r >= Role::Developer)
        })
        .collect();
    let recent_runs = run::Entity::find()
        .filter(run::Column::OrgId.is_in(org_ids))
        .order_by_desc(run::Column::Id)
        .limit(RECENT_RUNS)
        .all(&state.db)
        .await?;
    let mut everyone: Vec<run::Model> = waiting_runs.clone();
    everyone.extend(recent_runs.iter().cloned());
    let people = starters(state, &everyone).await?;
    let orgs = memberships
        .iter()
        .map(|(o, role)| OrgBlock {
            slug: o.slug.clone(),
            name: o.name.clone(),
            role: role.as_str().to_owned(),
            projects: all_projects
                .iter()
                .filter(|p| p.org_id == o.id)
                .map(|p| ProjectLine {
                    org: o.slug.clone(),
                    slug: p.slug.clone(),
                    name: p.name.clone(),
                    last: last.get(&p.id).map(|r| {
                        (
                            r.number,
                            r.status.clone(),
                            r.queued_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                        )
                    }),
                })
                .collect(),
        })
        .collect();
    let page = Dashboard {
        nav: who.nav(state, None).await?,
        orgs,
        waiting: waiting_runs
            .iter()
            .filter_map(|r| line(r, &by_id, &people))
            .collect(),
        recent: recent_runs
            .iter()
            .filter_map(|r| line(r, &by_id, &people))
            .collect(),
    };
    render(StatusCode::OK, &page)
}
