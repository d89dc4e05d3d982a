//! Sluice's HTTP face: the actix-web application, its routes, middleware and pages.
#![forbid(unsafe_code)]

pub mod error;
mod middleware;
mod routes;
mod startup;
mod state;

pub use error::ApiError;
pub use startup::Application;
pub use state::AppState;
