//! Sluice's domain core: configuration, the database, the metrics registry and readiness.
//!
//! `api` and `worker` meet only through this crate; it holds no HTTP.
#![forbid(unsafe_code)]

pub mod addresses;
pub mod bus;
pub mod config;
pub mod cron_runs;
pub mod crypto;
pub mod db;
pub mod dispatch;
pub mod entities;
pub mod error;
pub mod git;
pub mod git_auth;
pub mod groovy;
pub mod host_env;
pub mod logs;
pub mod metrics;
pub mod objects;
pub mod pipeline;
pub mod queue;
pub mod readiness;
pub mod release;
pub mod schedule;
pub mod secret_key;
pub mod startup;
pub mod store;
pub mod tenancy;
pub mod validate;

pub use error::{Error, Result};
