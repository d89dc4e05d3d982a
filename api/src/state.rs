//! What every handler may reach: the database, metrics and the readiness probe.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use sluice_core::metrics::Metrics;
use sluice_core::readiness::Readiness;

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub metrics: Metrics,
    pub readiness: Arc<Readiness>,
}

impl AppState {
    /// Assembles the state; a malformed Redis URL fails here, an unreachable one in `/readyz`.
    pub fn new(
        settings: &sluice_core::config::Settings,
        db: DatabaseConnection,
        metrics: Metrics,
    ) -> sluice_core::Result<AppState> {
        let readiness = Readiness::new(db.clone(), settings.redis_url.as_ref())?;
        Ok(AppState {
            db,
            metrics,
            readiness: Arc::new(readiness),
        })
    }
}
