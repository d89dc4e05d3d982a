//! Static files from `frontend/static`, compiled into the binary so it runs anywhere.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Embedded assets: (file name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../frontend/static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../frontend/static/app.js"),
    ),
    (
        "run.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../frontend/static/run.js"),
    ),
    (
        "project.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../frontend/static/project.js"),
    ),
    (
        "release.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../frontend/static/release.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../frontend/static/favicon.svg"),
    ),
];

/// `GET /static/{file}`.
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(*bytes))
}
