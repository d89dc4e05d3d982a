//! Sluice's HTTP face: the actix-web application, its routes, middleware and pages.
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
mod log_hub;
mod middleware;
pub mod oauth;
pub mod openapi;
mod pages;
mod rate_limit;
pub mod read_cache;
mod routes;
mod startup;
mod state;

pub use error::ApiError;
pub use routes::route_table;
pub use startup::Application;
pub use state::AppState;
