//! End-to-end tests of Sluice through its public HTTP API and the `sluice` binary.
//!
//! Every test gets its own database: a temp SQLite file by default, or a fresh PostgreSQL
//! database (dropped afterwards) when `SLUICE_TEST_DATABASE_URL` names a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod agents;
mod binary;
mod browser;
mod deep_input;
mod dispatch;
mod errors;
mod execution;
mod fleet;
mod github_standin;
mod groovy_scripts;
mod hardening_web;
mod health;
mod helpers;
mod jenkins;
mod kube_executor;
mod kube_failures;
mod kube_manifests;
mod kube_orphans;
mod kube_provisioner;
mod kube_standin;
mod kube_standin_api;
mod kube_standin_exec;
mod lint;
mod metrics;
mod migrations;
mod oauth;
mod openapi;
mod orgs;
mod pages;
mod process_isolation;
mod projects;
mod queue;
mod release_api;
mod release_kube;
mod release_rollbacks;
mod release_router;
mod release_support;
mod release_workers;
mod releases;
mod repo_addresses;
mod run_gates;
mod run_logs;
mod runs;
mod scheduling;
mod secret_masking;
mod strings_credentials;
mod tenancy;
mod tokens;
mod webhooks;
mod worker_processes;
mod workers;
