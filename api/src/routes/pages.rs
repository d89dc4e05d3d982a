//! Server-rendered pages (askama templates from `frontend/templates`).

use actix_web::HttpResponse;
use askama::Template;

use crate::error::ApiError;

/// The public landing page.
#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    /// Shown in the footer of every page.
    version: &'static str,
}

/// Renders a template as an HTML response.
fn render(template: &impl Template) -> Result<HttpResponse, ApiError> {
    let html = template
        .render()
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// `GET /`: what Sluice is, with a way to sign in.
pub async fn landing() -> Result<HttpResponse, ApiError> {
    render(&Landing {
        version: env!("CARGO_PKG_VERSION"),
    })
}
