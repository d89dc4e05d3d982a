//! The route table. Each resource has its own module.

use actix_web::{Route, web};

use crate::error::ApiError;

mod assets;
mod health;
mod metrics;
mod pages;

/// Registers every route of the application.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz", web::get().to(health::healthz)))
        .service(resource("/readyz", web::get().to(health::readyz)))
        .service(resource("/metrics", web::get().to(metrics::metrics)))
        .service(resource("/", web::get().to(pages::landing)))
        .service(resource("/static/{file}", web::get().to(assets::asset)));
}

/// A resource answering 405 (with `Allow`-less JSON) to methods it has no route for, instead of
/// falling through to the application's 404.
fn resource(path: &str, route: Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| async {
            Err::<(), _>(ApiError::MethodNotAllowed)
        }))
}
