//! The Jenkins-compatible remote API under `/jenkins/{org}/`, so existing scripts and plugins
//! keep working: trigger builds, follow the queue item, read job and build JSON, and accept
//! GitLab's Jenkins integration at `project/{project}`. Authentication is HTTP Basic
//! `email:api-token` or a Bearer token; token calls need no crumb.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use sluice_core::db::begin_write;
use sluice_core::entities::run;
use sluice_core::store::runs::{self, NewRun, RunStatus, Trigger};
use sluice_core::store::{PageRequest, projects};

use crate::auth::Authn;
use crate::error::ApiError;
use crate::routes::{base_url, hooks};
use crate::state::AppState;

fn job_url(base: &str, org: &str, project: &str) -> String {
    format!("{base}/jenkins/{org}/job/{project}/")
}

/// Jenkins' result for a run: null while it is not finished.
fn result(status: RunStatus) -> Value {
    match status {
        RunStatus::Succeeded => json!("SUCCESS"),
        RunStatus::Unstable => json!("UNSTABLE"),
        RunStatus::Failed => json!("FAILURE"),
        RunStatus::Cancelled => json!("ABORTED"),
        RunStatus::Queued | RunStatus::Running | RunStatus::Waiting => Value::Null,
    }
}

fn build_json(base: &str, org: &str, project: &str, r: &run::Model) -> Value {
    let status = RunStatus::parse(&r.status).unwrap_or(RunStatus::Queued);
    let duration = match (r.started_at, r.finished_at) {
        (Some(start), Some(end)) => (end - start).num_milliseconds(),
        _ => 0,
    };
    json!({
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "number": r.number,
        "id": r.number.to_string(),
        "result": result(status),
        "building": matches!(status, RunStatus::Running | RunStatus::Waiting),
        "inProgress": matches!(status, RunStatus::Queued | RunStatus::Running | RunStatus::Waiting),
        "duration": duration,
        "timestamp": r.started_at.unwrap_or(r.queued_at).timestamp_millis(),
        "displayName": r.display_name.clone().unwrap_or_else(|| format!("#{}", r.number)),
        "description": r.description,
        "url": format!("{}{}/", job_url(base, org, project), r.number),
        // The git plugin's view of the commit built, and its change set, where scripts
        // read them (`actions[].lastBuiltRevision.SHA1`, `changeSets[].items[]`).
        "actions": r.commit_sha.as_ref().map(|sha| vec![json!({
            "_class": "hudson.plugins.git.util.BuildData",
            "lastBuiltRevision": {
                "SHA1": sha,
                "branch": [{"SHA1": sha, "name": format!("refs/remotes/origin/{}", r.git_ref.as_deref().unwrap_or_default())}],
            },
        })]).unwrap_or_default(),
        "changeSets": r.commit_sha.as_ref().map(|sha| vec![json!({
            "_class": "hudson.plugins.git.GitChangeSetList",
            "kind": "git",
            "items": [{
                "commitId": sha,
                "msg": r.commit_message.as_deref().and_then(|m| m.lines().next()).unwrap_or_default(),
                "comment": r.commit_message.as_deref().unwrap_or_default(),
                "author": {"fullName": r.commit_author.as_deref().unwrap_or_default()},
            }],
        })]).unwrap_or_default(),
    })
}

async fn queue_build(
    state: &AppState,
    req: &HttpRequest,
    authn: &Authn,
    org: &str,
    project: &str,
    params: BTreeMap<String, String>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(state, org).await?;
    let mut new = NewRun::of(Trigger::Jenkins, None, None);
    new.params = params;
    crate::routes::runs::resolve(state, &scope, project, &mut new).await?;
    let txn = begin_write(&state.db).await?;
    let run = runs::create(&txn, &scope, project, new).await?;
    txn.commit().await?;
    sluice_core::dispatch::wake();
    let location = format!(
        "{}/jenkins/{org}/queue/item/{}/",
        base_url(state, req),
        run.id
    );
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .finish())
}

/// `POST job/{project}/build`.
pub async fn build(
    state: web::Data<AppState>,
    req: HttpRequest,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    queue_build(&state, &req, &authn, &org, &project, BTreeMap::new()).await
}

/// `POST job/{project}/buildWithParameters?NAME=value` (form fields are read too).
pub async fn build_with_parameters(
    state: web::Data<AppState>,
    req: HttpRequest,
    authn: Authn,
    path: web::Path<(String, String)>,
    query: web::Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (org, project) = path.into_inner();
    let mut params = query.into_inner();
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        let form: BTreeMap<String, String> = serde_urlencoded_pairs(&body)?;
        params.extend(form);
    }
    params.remove("token");
    params.remove("delay");
    queue_build(&state, &req, &authn, &org, &project, params).await
}

fn serde_urlencoded_pairs(body: &[u8]) -> Result<BTreeMap<String, String>, ApiError> {
    web::Query::<BTreeMap<String, String>>::from_query(&String::from_utf8_lossy(body))
        .map(|q| q.into_inner())
        .map_err(|e| ApiError::BadRequest {
            message: format!("unreadable form: {e}"),
            details: None,
        })
}

/// `GET queue/item/{id}/api/json`: runs start at once, so an item always has its build.
pub async fn queue_item(
    state: web::Data<AppState>,
    req: HttpRequest,
    authn: Authn,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let run = runs::get_by_id(&state.db, &scope, id).await?;
    let project = projects::get_by_id(&state.db, &scope, run.project_id).await?;
    let base = base_url(&state, &req);
    Ok(HttpResponse::Ok().json(json!({
        "_class": "hudson.model.Queue$LeftItem",
        "id": run.id,
        "blocked": false,
        "buildable": false,
        "cancelled": run.status == "cancelled",
        "task": { "name": project.slug, "url": job_url(&base, &org, &project.slug) },
        "executable": { "number": run.number, "url": format!("{}{}/", job_url(&base, &org, &project.slug), run.number) },
    })))
}

/// `GET job/{project}/api/json`.
pub async fn job(
    state: web::Data<AppState>,
    req: HttpRequest,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let project = projects::get(&state.db, &scope, &slug).await?;
    let recent = runs::list(
        &state.db,
        &scope,
        &slug,
        None,
        &PageRequest {
            limit: Some(50),
            cursor: None,
        },
    )
    .await?
    .items;
    let base = base_url(&state, &req);
    let url = job_url(&base, &org, &slug);
    let builds: Vec<Value> = recent
        .iter()
        .map(|r| json!({ "number": r.number, "url": format!("{url}{}/", r.number) }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
        "name": project.slug,
        "displayName": project.name,
        "url": url,
        "buildable": true,
        "builds": builds,
        "lastBuild": builds.first(),
        "inQueue": recent.iter().any(|r| r.status == "queued"),
        "nextBuildNumber": project.next_run_number,
    })))
}

/// `GET job/{project}/{number}/api/json`.
pub async fn build_info(
    state: web::Data<AppState>,
    req: HttpRequest,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let run = runs::get(&state.db, &scope, &slug, number).await?;
    Ok(HttpResponse::Ok().json(build_json(&base_url(&state, &req), &org, &slug, &run)))
}

/// `GET job/{project}/lastBuild/api/json`.
pub async fn last_build(
    state: web::Data<AppState>,
    req: HttpRequest,
    authn: Authn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let run = runs::latest(&state.db, &scope, &slug)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(build_json(&base_url(&state, &req), &org, &slug, &run)))
}

/// `GET job/{project}/{number}/consoleText`: the run's log so far, as text.
pub async fn console_text(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let found = runs::get(&state.db, &scope, &slug, number).await?;
    Ok(crate::routes::run_outputs::stream_log(&state, found.id, 0))
}

/// `GET job/{project}/` and `GET job/{project}/{number}/`: the `url`s the Jenkins API gives,
/// opened in a browser, lead to the project's or the run's page (to sign in first when there
/// is no session; another org's answer 404, as everywhere).
pub async fn browse(
    state: web::Data<AppState>,
    authn: Option<Authn>,
    path: web::Path<(String, String)>,
    number: Option<web::Path<(String, String, i64)>>,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let number = number.map(|p| p.into_inner().2);
    let page = match number {
        Some(n) => format!("/orgs/{org}/projects/{slug}/runs/{n}"),
        None => format!("/orgs/{org}/projects/{slug}"),
    };
    let Some(authn) = authn else {
        return Ok(crate::pages::see_other(&format!(
            "/login?next={}",
            crate::pages::urlencode(&page)
        )));
    };
    let scope = authn.scope(&state, &org).await?;
    match number {
        Some(n) => {
            runs::get(&state.db, &scope, &slug, n).await?;
        }
        None => {
            projects::get(&state.db, &scope, &slug).await?;
        }
    }
    Ok(crate::pages::see_other(&page))
}

/// `GET crumbIssuer/api/json`: scripts fetch a crumb before POSTing; token calls need none.
pub async fn crumb(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = authn.scope(&state, &path).await?;
    let crumb = state.keys.mac_hex(&format!("crumb:{}", scope.user_id()));
    Ok(HttpResponse::Ok().json(json!({
        "_class": "hudson.security.csrf.DefaultCrumbIssuer",
        "crumbRequestField": "Jenkins-Crumb",
        "crumb": crumb,
    })))
}

/// `POST project/{project}`: GitLab's Jenkins integration and the gitlab-plugin, handled
/// exactly like `/hooks/gitlab/{org}/{project}`.
pub async fn gitlab_project(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    hooks::gitlab(state, req, path, body).await
}
