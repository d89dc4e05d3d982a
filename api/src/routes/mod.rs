//! The route table: one list of (method, path, handler), registered as actix resources and
//! exported so tests can walk every route (the cross-tenant test covers new routes by itself).

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, Route, web};
use serde::Serialize;
use sluice_core::store::Page;

use crate::error::ApiError;
use crate::pages::{account, landing, oauth_pages};
use crate::state::AppState;

pub(crate) mod assets;
pub(crate) mod auth;
pub(crate) mod health;
pub(crate) mod hook_events;
pub(crate) mod hooks;
pub(crate) mod jenkins;
pub(crate) mod lint;
pub(crate) mod members;
pub(crate) mod metrics;
pub(crate) mod orgs;
pub(crate) mod projects;
pub(crate) mod releases;
pub(crate) mod repository;
pub(crate) mod run_actions;
pub(crate) mod run_outputs;
pub(crate) mod runs;
pub(crate) mod secrets;
pub(crate) mod tokens;
pub(crate) mod user;

fn table() -> Vec<(Method, &'static str, Route)> {
    use web::{delete, get, patch, post, put};
    let mut routes = vec![
        (Method::GET, "/healthz", get().to(health::healthz)),
        (Method::GET, "/readyz", get().to(health::readyz)),
        (Method::GET, "/metrics", get().to(metrics::metrics)),
        (
            Method::GET,
            "/api/v1/openapi.json",
            get().to(crate::openapi::openapi_json),
        ),
        (
            Method::GET,
            "/lint",
            get().to(crate::pages::lint_page::show),
        ),
        (
            Method::POST,
            "/lint",
            post().to(crate::pages::lint_page::check),
        ),
        (
            Method::GET,
            "/api/docs",
            get().to(crate::pages::api_docs::api_docs),
        ),
        (Method::GET, "/", get().to(landing::landing)),
        (Method::GET, "/static/{file}", get().to(assets::asset)),
        (Method::POST, "/auth/signup", post().to(auth::signup)),
        (Method::POST, "/auth/login", post().to(auth::login)),
        (Method::POST, "/auth/logout", post().to(auth::logout)),
        (Method::GET, "/api/v1/user", get().to(user::me)),
        (
            Method::POST,
            "/hooks/github/{org}/{project}",
            post().to(hooks::github),
        ),
        (
            Method::GET,
            "/jenkins/{org}/crumbIssuer/api/json",
            get().to(jenkins::crumb),
        ),
        (
            Method::POST,
            "/jenkins/{org}/job/{project}/build",
            post().to(jenkins::build),
        ),
        (
            Method::POST,
            "/jenkins/{org}/job/{project}/buildWithParameters",
            post().to(jenkins::build_with_parameters),
        ),
        (
            Method::GET,
            "/jenkins/{org}/queue/item/{id}/api/json",
            get().to(jenkins::queue_item),
        ),
        (
            Method::GET,
            "/jenkins/{org}/job/{project}/api/json",
            get().to(jenkins::job),
        ),
        (
            Method::GET,
            "/jenkins/{org}/job/{project}/lastBuild/api/json",
            get().to(jenkins::last_build),
        ),
        (
            Method::GET,
            "/jenkins/{org}/job/{project}/{number}/api/json",
            get().to(jenkins::build_info),
        ),
        (
            Method::GET,
            "/jenkins/{org}/job/{project}/{number}/consoleText",
            get().to(jenkins::console_text),
        ),
        (
            Method::GET,
            "/jenkins/{org}/job/{project}/",
            get().to(jenkins::browse),
        ),
        (
            Method::GET,
            "/jenkins/{org}/job/{project}/{number}/",
            get().to(jenkins::browse),
        ),
        (
            Method::POST,
            "/jenkins/{org}/project/{project}",
            post().to(jenkins::gitlab_project),
        ),
        (
            Method::POST,
            "/hooks/gitlab/{org}/{project}",
            post().to(hooks::gitlab),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/runs",
            post().to(runs::create),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/runs",
            get().to(runs::index),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/runs/{number}",
            get().to(runs::show),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/runs/{number}/log",
            get().to(run_outputs::log),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/runs/{number}/artifacts",
            get().to(run_outputs::artifact_index),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/runs/{number}/artifacts/{path:.*}",
            get().to(run_outputs::artifact_download),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/runs/{number}/cancel",
            post().to(run_actions::cancel),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/runs/{number}/approve",
            post().to(run_actions::approve),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/runs/{number}/rerun",
            post().to(run_actions::rerun),
        ),
        (Method::POST, "/api/v1/lint", post().to(lint::lint)),
        (Method::POST, "/api/v1/orgs", post().to(orgs::create)),
        (Method::GET, "/api/v1/orgs", get().to(orgs::index)),
        (Method::GET, "/api/v1/orgs/{org}", get().to(orgs::show)),
        (
            Method::PATCH,
            "/api/v1/orgs/{org}",
            patch().to(orgs::update),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/members",
            get().to(members::index),
        ),
        (
            Method::PATCH,
            "/api/v1/orgs/{org}/members/{user_id}",
            patch().to(members::update),
        ),
        (
            Method::DELETE,
            "/api/v1/orgs/{org}/members/{user_id}",
            delete().to(members::remove),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/invitations",
            post().to(members::invite),
        ),
        (
            Method::POST,
            "/api/v1/invitations/{token}/accept",
            post().to(members::accept),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/audit",
            get().to(members::audit_log),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/tokens",
            post().to(tokens::create),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/tokens",
            get().to(tokens::index),
        ),
        (
            Method::DELETE,
            "/api/v1/orgs/{org}/tokens/{id}",
            delete().to(tokens::revoke),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects",
            post().to(projects::create),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects",
            get().to(projects::index),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}",
            get().to(projects::show),
        ),
        (
            Method::PATCH,
            "/api/v1/orgs/{org}/projects/{project}",
            patch().to(projects::update),
        ),
        (
            Method::DELETE,
            "/api/v1/orgs/{org}/projects/{project}",
            delete().to(projects::delete),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/secrets",
            get().to(secrets::index),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/webhook/rotate",
            post().to(projects::rotate_webhook),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/repository",
            get().to(repository::show),
        ),
        (
            Method::PUT,
            "/api/v1/orgs/{org}/projects/{project}/repository/credential",
            put().to(repository::put_credential),
        ),
        (
            Method::DELETE,
            "/api/v1/orgs/{org}/projects/{project}/repository/credential",
            delete().to(repository::delete_credential),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/repository/test",
            post().to(repository::test),
        ),
        (
            Method::PUT,
            "/api/v1/orgs/{org}/projects/{project}/secrets/{name}",
            put().to(secrets::put),
        ),
        (
            Method::DELETE,
            "/api/v1/orgs/{org}/projects/{project}/secrets/{name}",
            delete().to(secrets::delete),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/environments",
            get().to(releases::environment_index),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/environments",
            post().to(releases::environment_create),
        ),
        (
            Method::PATCH,
            "/api/v1/orgs/{org}/projects/{project}/environments/{name}",
            patch().to(releases::environment_update),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/releases",
            get().to(releases::index),
        ),
        (
            Method::GET,
            "/api/v1/orgs/{org}/projects/{project}/releases/{id}",
            get().to(releases::show),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/releases/{id}/rollback",
            post().to(releases::rollback),
        ),
        (
            Method::POST,
            "/api/v1/orgs/{org}/projects/{project}/releases/{id}/abort",
            post().to(releases::abort),
        ),
        // Pages (session cookie + form CSRF field).
        (Method::GET, "/login", get().to(account::login_form)),
        (Method::POST, "/login", post().to(account::login)),
        (Method::GET, "/signup", get().to(account::signup_form)),
        (Method::POST, "/signup", post().to(account::signup)),
        (Method::POST, "/logout", post().to(account::logout)),
        (
            Method::GET,
            "/auth/oauth/{provider}/start",
            get().to(oauth_pages::start),
        ),
        (
            Method::GET,
            "/auth/oauth/{provider}/callback",
            get().to(oauth_pages::callback),
        ),
    ];
    routes.extend(crate::pages::routes::org_pages());
    routes
}

/// Every (method, path template) the application answers.
pub fn route_table() -> Vec<(Method, &'static str)> {
    table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// Path prefixes registered as actix scopes, most specific first. Actix tries an app's
/// services one after another, so without scopes a late route pays for matching every earlier
/// one (measured: a third of the throughput of the projects list).
const SCOPES: [&str; 6] = [
    "/jenkins/{org}",
    "/api/v1/orgs/{org}/projects",
    "/api/v1/orgs/{org}",
    "/api/v1",
    "/orgs/{org}",
    "/auth",
];

/// Registers every route; each path is one resource answering 405 to other methods.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut resources: Vec<(&'static str, Vec<Route>)> = Vec::new();
    for (_, path, route) in table() {
        match resources.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push(route),
            None => resources.push((path, vec![route])),
        }
    }
    let mut scoped: Vec<Vec<actix_web::Resource>> = SCOPES.iter().map(|_| Vec::new()).collect();
    for (path, routes) in resources {
        let scope = SCOPES.iter().position(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        let relative = scope.map_or(path, |i| &path[SCOPES[i].len()..]);
        let resource = routes
            .into_iter()
            .fold(web::resource(relative), |resource, route| {
                resource.route(route)
            })
            .default_service(web::to(|| async {
                Err::<(), _>(ApiError::MethodNotAllowed)
            }));
        match scope {
            Some(i) => scoped[i].push(resource),
            None => {
                cfg.service(resource);
            }
        }
    }
    for (prefix, resources) in SCOPES.iter().zip(scoped) {
        cfg.service(
            resources
                .into_iter()
                .fold(web::scope(prefix), |scope, r| scope.service(r)),
        );
    }
}

/// A page of a list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A paginated list response: `{"items": [...], "next_cursor": null|"..."}`.
pub(crate) fn list<T: Serialize>(page: Page<T>) -> HttpResponse {
    HttpResponse::Ok().json(List {
        items: page.items,
        next_cursor: page.next_cursor,
    })
}

/// The JSON of a paginated list, for responses that are also cached.
pub(crate) fn list_body<T: Serialize>(page: Page<T>) -> Result<actix_web::web::Bytes, ApiError> {
    serde_json::to_vec(&List {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .map(Into::into)
    .map_err(|e| ApiError::Internal(Box::new(e)))
}

/// The public base URL: configured, else what the request was addressed to.
pub(crate) fn base_url(state: &AppState, req: &HttpRequest) -> String {
    match &state.public_url {
        Some(url) => url.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}
