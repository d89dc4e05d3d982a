//! Release pages: a project's environments and release history, and a release's page with its
//! plan's steps, the traffic split between blue and green, each colour's success rate and
//! p99, and the rollback and abort buttons (plain forms; `release.js` keeps the page live).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use sluice_core::entities::project;
use sluice_core::release::plan::{ReleaseStatus, Traffic};
use sluice_core::store::environments::{self, EnvironmentView};
use sluice_core::store::releases::{self, ReleaseView, Request};
use sluice_core::store::{PageRequest, projects};
use sluice_core::tenancy::Role;

use crate::pages::flash::see_other_notice;
use crate::pages::run_pages::{CsrfForm, human_duration};
use crate::pages::{Nav, PageError, Visitor, render};
use crate::state::AppState;

/// A plan step as a row of the release page.
pub struct StepRow {
    pub name: String,
    pub status: String,
    pub detail: String,
    pub took: String,
}

/// One colour's line of the traffic table.
pub struct ColourRow {
    pub colour: &'static str,
    pub instances: u32,
    pub routed: u32,
    pub share: u32,
    pub requests: String,
    pub success_rate: String,
    pub p99: String,
}

#[derive(Template)]
#[template(path = "releases.html")]
struct ReleasesPage {
    nav: Nav,
    org: String,
    org_name: String,
    project: project::Model,
    environments: Vec<EnvironmentView>,
    releases: Vec<ReleaseView>,
}

#[derive(Template)]
#[template(path = "release.html")]
struct ReleasePage {
    nav: Nav,
    org: String,
    org_name: String,
    project: project::Model,
    release: ReleaseView,
    status: &'static str,
    reason: String,
    steps: Vec<StepRow>,
    colours: Vec<ColourRow>,
    /// Blue's share of the bar, 0-100 (green has the rest of what is routed).
    blue_share: u32,
    green_share: u32,
    api: String,
    page: String,
    can_act: bool,
    in_progress: bool,
    can_rollback: bool,
}

fn shares(traffic: &Traffic) -> (u32, u32) {
    let routed = traffic.blue.routed + traffic.green.routed;
    if routed == 0 {
        return (0, 0);
    }
    let green = (f64::from(traffic.green.routed) * 100.0 / f64::from(routed)).round() as u32;
    (100 - green, green)
}

fn colours(release: &ReleaseView) -> Vec<ColourRow> {
    let (blue_share, green_share) = shares(&release.traffic);
    let row = |colour,
               c: sluice_core::release::plan::Colour,
               share,
               a: Option<releases::ColourAnalysis>| ColourRow {
        colour,
        instances: c.instances,
        routed: c.routed,
        share,
        requests: a
            .map(|a| a.requests.to_string())
            .unwrap_or_else(|| "—".into()),
        success_rate: a
            .map(|a| format!("{:.2}%", a.success_rate * 100.0))
            .unwrap_or_else(|| "—".into()),
        p99: a
            .map(|a| format!("{:.0} ms", a.p99_ms))
            .unwrap_or_else(|| "—".into()),
    };
    vec![
        row(
            "blue",
            release.traffic.blue,
            blue_share,
            release.analysis.map(|a| a.blue),
        ),
        row(
            "green",
            release.traffic.green,
            green_share,
            release.analysis.map(|a| a.green),
        ),
    ]
}

/// `GET /orgs/{org}/projects/{project}/releases`: environments and release history.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = who.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    let page = releases::list(
        &state.db,
        project.id,
        &PageRequest {
            limit: Some(100),
            cursor: None,
        },
    )
    .await?;
    let page = ReleasesPage {
        org_name: scope.org().name.clone(),
        nav: who.nav(&state, Some(&org)).await?,
        environments: environments::list(&state.db, project.id).await?,
        releases: releases::views(&state.db, page.items).await?,
        org,
        project,
    };
    render(StatusCode::OK, &page)
}

/// `GET /orgs/{org}/projects/{project}/releases/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug, id) = path.into_inner();
    let scope = who.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    let model = releases::get(&state.db, project.id, id).await?;
    let release = releases::views(&state.db, vec![model])
        .await?
        .pop()
        .ok_or(PageError::NotFound)?;
    let steps = release
        .steps
        .iter()
        .map(|s| StepRow {
            name: s.name.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            detail: s.detail.clone().unwrap_or_default(),
            took: s
                .started_at
                .map(|from| human_duration(Some(from), s.finished_at))
                .unwrap_or_default(),
        })
        .collect();
    let (blue_share, green_share) = shares(&release.traffic);
    let in_progress = release.status == ReleaseStatus::InProgress;
    let page = ReleasePage {
        org_name: scope.org().name.clone(),
        nav: who.nav(&state, Some(&org)).await?,
        api: format!("/api/v1/orgs/{org}/projects/{slug}/releases/{id}"),
        page: format!("/orgs/{org}/projects/{slug}/releases/{id}"),
        status: release.status.as_str(),
        reason: release.reason.clone().unwrap_or_default(),
        colours: colours(&release),
        can_act: scope.role() >= Role::Developer,
        in_progress,
        can_rollback: in_progress
            || (release.status == ReleaseStatus::Succeeded && release.previous_version.is_some()),
        steps,
        blue_share,
        green_share,
        org,
        project,
        release,
    };
    render(StatusCode::OK, &page)
}

async fn act(
    state: &AppState,
    req: &HttpRequest,
    visitor: Visitor,
    (org, slug, id): (String, String, i64),
    form: &CsrfForm,
    what: Request,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(req)?;
    let scope = who.form_scope(state, &org, form.token()).await?;
    crate::routes::releases::request_release(state, &scope, &slug, id, what).await?;
    Ok(see_other_notice(
        &format!("/orgs/{org}/projects/{slug}/releases/{id}"),
        "Asked: the release controller acts on it within a moment.",
    ))
}

/// `POST .../releases/{id}/rollback` (developer).
pub async fn rollback(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    act(
        &state,
        &req,
        visitor,
        path.into_inner(),
        &form,
        Request::Rollback,
    )
    .await
}

/// `POST .../releases/{id}/abort` (developer).
pub async fn abort(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    act(
        &state,
        &req,
        visitor,
        path.into_inner(),
        &form,
        Request::Abort,
    )
    .await
}
