//! The runs part of a project page, which also answers on its own for the page to refresh
//! it live: a stage view (recent runs × their stages, with durations and colours, as Jenkins'
//! stage view has), the duration chart with its axes, and the run table. Runs waiting for
//! approval stand out.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use sluice_core::store::execution;
use sluice_core::tenancy::TenantScope;

use crate::pages::run_pages::{Bar, RunRow, human_duration, recent};
use crate::pages::{PageError, Visitor, render};
use crate::state::AppState;

/// Runs shown in the stage view.
const GRID_RUNS: usize = 12;

/// One cell of the stage view: how that stage of that run went.
pub struct GridCell {
    pub status: String,
    pub duration: String,
}

pub struct GridRow {
    pub number: i64,
    pub status: String,
    pub started_by: String,
    pub cells: Vec<Option<GridCell>>,
}

/// Recent runs × the stages they ran (top-level stages, in the order the newest runs ran them).
#[derive(Default)]
pub struct StageGrid {
    pub columns: Vec<String>,
    pub rows: Vec<GridRow>,
}

/// The chart's axes: the longest duration (top of the y axis) and the runs at either end.
#[derive(Default)]
pub struct ChartAxes {
    pub longest: String,
    pub first: String,
    pub last: String,
}

/// What the runs part shows.
pub struct RunsPart {
    pub runs: Vec<RunRow>,
    pub bars: Vec<Bar>,
    pub axes: ChartAxes,
    pub grid: StageGrid,
    /// Runs waiting at an approval gate.
    pub waiting: usize,
    /// Some run is queued, running or waiting: the page keeps refreshing this part.
    pub active: bool,
}

pub async fn runs_part(
    state: &AppState,
    scope: &TenantScope,
    slug: &str,
) -> Result<RunsPart, PageError> {
    let (runs, bars, ids) = recent(state, scope, slug).await?;
    let grid_ids: Vec<i64> = ids.iter().take(GRID_RUNS).copied().collect();
    let mut stages = execution::stages_of(&state.db, &grid_ids).await?;
    // Columns: top-level stage names, newest run's order first, then any others as met.
    let mut columns: Vec<String> = Vec::new();
    for id in &grid_ids {
        for s in stages.get(id).into_iter().flatten() {
            if s.parent.is_none() && !columns.contains(&s.name) {
                columns.push(s.name.clone());
            }
        }
    }
    columns.truncate(20);
    let rows = runs
        .iter()
        .zip(&ids)
        .take(GRID_RUNS)
        .map(|(r, id)| {
            let mine = stages.remove(id).unwrap_or_default();
            GridRow {
                number: r.number,
                status: r.status.clone(),
                started_by: r.started_by.clone(),
                cells: columns
                    .iter()
                    .map(|name| {
                        mine.iter()
                            .rev()
                            .find(|s| s.parent.is_none() && &s.name == name)
                            .map(|s| GridCell {
                                status: s.status.clone(),
                                duration: human_duration(s.started_at, s.finished_at),
                            })
                    })
                    .collect(),
            }
        })
        .collect();
    let axes = ChartAxes {
        longest: bars
            .iter()
            .map(|b| (b.seconds, b.duration.clone()))
            .max_by_key(|(s, _)| *s)
            .map(|(_, d)| d)
            .unwrap_or_default(),
        first: bars
            .first()
            .map(|b| format!("#{}", b.number))
            .unwrap_or_default(),
        last: bars
            .last()
            .map(|b| format!("#{}", b.number))
            .unwrap_or_default(),
    };
    Ok(RunsPart {
        waiting: runs.iter().filter(|r| r.status == "waiting").count(),
        active: runs
            .iter()
            .any(|r| matches!(r.status.as_str(), "queued" | "running" | "waiting")),
        runs,
        bars,
        axes,
        grid: StageGrid { columns, rows },
    })
}

#[derive(Template)]
#[template(path = "project_runs.html")]
struct RunsFragment {
    org: String,
    slug: String,
    part: RunsPart,
}

/// `GET /orgs/{org}/projects/{project}/runs-part`: the runs part alone, for the page to
/// refresh it without a reload.
pub async fn fragment(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let scope = who.scope(&state, &org).await?;
    sluice_core::store::projects::get(&state.db, &scope, &slug).await?;
    let part = runs_part(&state, &scope, &slug).await?;
    render(StatusCode::OK, &RunsFragment { org, slug, part })
}
