//! Error pages for browsers: a page (or an unknown address) that fails answers an HTML page
//! with the visitor's own header when they are signed in, while API, Jenkins-API and webhook
//! clients keep their JSON errors.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use chrono::Utc;
use sluice_core::store::sessions;

use crate::auth::SESSION_COOKIE;
use crate::pages::{Nav, PageError, SignedIn, error_page};
use crate::state::AppState;

/// Paths whose clients are programs: their errors stay JSON whatever they accept.
const MACHINE_PATHS: &[&str] = &[
    "/api/",
    "/jenkins/",
    "/hooks/",
    "/metrics",
    "/healthz",
    "/readyz",
    "/static/",
];

fn wants_html(req: &ServiceRequest) -> bool {
    let path = req.path();
    if MACHINE_PATHS.iter().any(|p| path.starts_with(p)) {
        return false;
    }
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The layout for the request's session, or the signed-out one.
async fn nav_for(state: &AppState, session: Option<String>) -> Nav {
    let Some(raw) = session else {
        return Nav::anonymous();
    };
    match sessions::authenticate(&state.db, &raw, Utc::now()).await {
        Ok(Some(user)) => {
            let who = SignedIn {
                user,
                session: raw,
                notice: None,
            };
            who.nav(state, None)
                .await
                .unwrap_or_else(|_| Nav::anonymous())
        }
        _ => Nav::anonymous(),
    }
}

/// Renders browsers' 404 and 5xx answers (and the pages' own errors) as HTML pages with the
/// signed-in header.
pub async fn html_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let html = wants_html(&req);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let session = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty());
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    let (Some(state), true) = (state, html) else {
        return Ok(res);
    };
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let page_error = res
        .response()
        .error()
        .and_then(|e| e.as_error::<PageError>());
    let (title, message) = match page_error {
        Some(err) => (err.title(), err.message()),
        None if status == StatusCode::NOT_FOUND => (
            "Page not found",
            "There is nothing at this address. Check the link, or start again from your organisations."
                .to_owned(),
        ),
        None if status.is_server_error() => (
            "Something went wrong",
            "The error was logged. Please try again.".to_owned(),
        ),
        None => return Ok(res),
    };
    // Signed out, a page's own error page is already right.
    if page_error.is_some() && session.is_none() {
        return Ok(res);
    }
    let nav = nav_for(&state, session).await;
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(
        req,
        error_page(status, title, &message, nav),
    ))
}
