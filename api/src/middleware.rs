//! Cross-cutting request handling: metrics and access logs by route template, the request id
//! header, the JSON error shape for errors raised outside our handlers, the longest URL
//! answered and the security headers of every response.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{Error, HttpMessage, web};
use tracing_actix_web::RequestId;

use crate::error::error_response;
use crate::state::AppState;

/// The response header carrying the request id that also appears in every log line.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Label used for requests that matched no route, so raw paths never become label values.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Route templates by request path. `match_pattern` walks the whole route table again with
/// its regexes (a tenth of a cached API request's CPU), and a path always matches the same
/// template, so each path is looked up once; the map is emptied when it reaches
/// [`TEMPLATES_KEPT`] paths.
static TEMPLATES: LazyLock<Mutex<HashMap<String, Arc<str>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
const TEMPLATES_KEPT: usize = 4096;

/// The route template `req` matched (`/api/v1/orgs/{org}`), or [`UNMATCHED_ROUTE`].
fn route_template(req: &actix_web::HttpRequest) -> Arc<str> {
    let path = req.path();
    if let Ok(templates) = TEMPLATES.lock()
        && let Some(template) = templates.get(path)
    {
        return template.clone();
    }
    let template: Arc<str> = req
        .match_pattern()
        .map_or_else(|| Arc::from(UNMATCHED_ROUTE), Arc::from);
    if let Ok(mut templates) = TEMPLATES.lock() {
        if templates.len() >= TEMPLATES_KEPT {
            templates.clear();
        }
        templates.insert(path.to_owned(), template.clone());
    }
    template
}

/// Records `sluice_http_requests_total` and `sluice_http_request_duration_seconds` with the
/// route template, writes one access log line, and returns the request id to the caller.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());

    let mut res = next.call(req).await?.map_into_boxed_body();

    let route = route_template(res.request());
    let status = res.status();
    let elapsed = started.elapsed();
    if let Some(state) = &state
        && !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS")
    {
        // Before the response leaves: whoever reads next after this write sees it, here and
        // on every other replica.
        state.cache.bump();
        if let Some(bus) = &state.bus {
            bus.publish(sluice_core::bus::Event::Written).await;
        }
    }
    if let Some(state) = state {
        state
            .metrics
            .http_requests
            .with_label_values(&[method.as_str(), &*route, status.as_str()])
            .inc();
        state
            .metrics
            .http_request_duration
            .with_label_values(&[method.as_str(), &*route])
            .observe(elapsed.as_secs_f64());
    }
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    tracing::info!(
        http.method = %method,
        http.route = %route,
        http.status = status.as_u16(),
        elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}

/// Gives errors produced by actix itself (no route, wrong method, unreadable payload) the
/// JSON error shape of API.md. Responses already in JSON (or HTML error pages) are left alone.
pub async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_json {
        return Ok(res);
    }
    let (code, message) = match status.as_u16() {
        404 => ("not_found", "no such route".to_owned()),
        405 => (
            "method_not_allowed",
            "method not allowed on this route".to_owned(),
        ),
        413 => ("payload_too_large", "request body too large".to_owned()),
        400..=499 => ("bad_request", describe(&res, status)),
        _ => ("internal_error", "internal error".to_owned()),
    };
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut replacement = error_response(status, code, message, None);
    if let Some(allow) = allow {
        replacement.headers_mut().insert(header::ALLOW, allow);
    }
    Ok(res.into_response(replacement))
}

fn describe(res: &ServiceResponse<BoxBody>, status: actix_web::http::StatusCode) -> String {
    match res.response().error() {
        Some(err) => err.to_string(),
        None => status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_lowercase(),
    }
}

/// The longest request target (path and query) answered, in bytes: what Jetty, and so
/// Jenkins, accept by default. Longer ones get a 414 in the JSON error shape. (Past 64 KiB
/// actix-http refuses the request line itself, with a bare 400, before any of this runs.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Answers 414 `uri_too_long` to a request whose URL is longer than [`MAX_URI_BYTES`].
pub async fn limit_uri(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let uri = req.uri();
    let len = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if len > MAX_URI_BYTES {
        let res = error_response(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the URL is longer than {MAX_URI_BYTES} bytes"),
            None,
        );
        return Ok(req.into_response(res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// What the pages need, and no more: scripts, styles, images and connections from this site
/// only; inline `style` attributes (the run page indents its stage graph with them) but no
/// inline scripts; forms post here; nobody frames us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Headers on every response, API and pages alike (a handler's own value wins).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
}

/// A redirect that a page handler returned as an error (`PageError::SignIn`: "sign in first")
/// is an ordinary 303: the error is dropped from the response, so the request log does not
/// report it as a failure.
pub async fn redirects_are_not_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?.map_into_boxed_body();
    if !(res.status().is_redirection() && res.response().error().is_some()) {
        return Ok(res);
    }
    let (req, response) = res.into_parts();
    let mut plain = actix_web::HttpResponse::new(response.status());
    *plain.headers_mut() = response.headers().clone();
    Ok(ServiceResponse::new(
        req,
        plain.set_body(response.into_body()),
    ))
}
