//! Building and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use sluice_core::config::Settings;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::error::{ApiError, json_config};
use crate::middleware::{json_errors, limit_uri, observe, security_headers};
use crate::routes;
use crate::state::AppState;

/// A bound, not yet running HTTP server.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
}

impl Application {
    /// Binds `settings.bind` (port 0 picks a free port) and prepares the server.
    pub fn build(settings: &Settings, state: AppState) -> std::io::Result<Application> {
        let listener = TcpListener::bind(settings.bind)?;
        let local_addr = listener.local_addr()?;
        let limit = settings.max_body_bytes;
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(crate::middleware::redirects_are_not_errors))
                .wrap(from_fn(crate::pages::error_pages::html_errors))
                .wrap(from_fn(crate::pages::flash::clear_shown_notice))
                .wrap(from_fn(limit_uri))
                .wrap(from_fn(json_errors))
                .wrap(from_fn(observe))
                .wrap(TracingLogger::default())
                .wrap(security_headers())
                .app_data(data.clone())
                .app_data(json_config(limit))
                .app_data(web::PayloadConfig::new(limit))
                .configure(routes::configure)
                .default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(30))
        .run();
        Ok(Application { server, local_addr })
    }

    /// Only `/healthz`, `/readyz` and `/metrics`: what a `sluice worker` process serves so
    /// Prometheus and the orchestrator can see it.
    pub fn build_probes(settings: &Settings, state: AppState) -> std::io::Result<Application> {
        let listener = TcpListener::bind(settings.bind)?;
        let local_addr = listener.local_addr()?;
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(json_errors))
                .wrap(security_headers())
                .app_data(data.clone())
                .route("/healthz", web::get().to(routes::health::healthz))
                .route("/readyz", web::get().to(routes::health::readyz))
                .route("/metrics", web::get().to(routes::metrics::metrics))
                .default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }))
        })
        .listen(listener)?
        .disable_signals()
        .workers(1)
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .run();
        Ok(Application { server, local_addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then stops accepting connections and lets
    /// in-flight requests finish (bounded by the configured shutdown timeout).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let handle = self.server.handle();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            tracing::info!("stopping the HTTP server");
            handle.stop(true).await;
        });
        let result = self.server.await;
        stopper.abort();
        result
    }
}
