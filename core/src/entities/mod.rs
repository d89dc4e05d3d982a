//! sea-orm entities, one per table of the schema in `sluice-migrations`.

pub mod api_token;
pub mod app_slot;
pub mod artifact;
pub mod audit_log;
pub mod cron_fire;
pub mod environment;
pub mod identity;
pub mod invitation;
pub mod membership;
pub mod org;
pub mod project;
pub mod project_secret;
pub mod release;
pub mod resource_lock;
pub mod run;
pub mod run_log_chunk;
pub mod run_outbox;
pub mod run_stage;
pub mod session;
pub mod user;
pub mod webhook_delivery;
