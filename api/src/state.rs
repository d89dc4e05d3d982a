//! What every handler may reach: the database, keys, metrics, limits and the readiness probe.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use sluice_core::config::Settings;
use sluice_core::crypto::Keyring;
use sluice_core::metrics::Metrics;
use sluice_core::readiness::Readiness;

use crate::oauth::OAuthProviders;
use crate::rate_limit::RateLimiter;
use crate::read_cache::ReadCache;

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub metrics: Metrics,
    pub readiness: Arc<Readiness>,
    pub keys: Keyring,
    pub auth_limiter: Arc<RateLimiter>,
    /// Whether email + password accounts are enabled.
    pub local_accounts: bool,
    /// Whether cookies get the `Secure` attribute (public URL is https).
    pub secure_cookies: bool,
    /// Public base URL when configured; otherwise links are built from the request.
    pub public_url: Option<String>,
    /// OAuth / OpenID Connect sign-in providers.
    pub oauth: Arc<OAuthProviders>,
    /// Hot reads kept in memory until the next write.
    pub cache: Arc<ReadCache>,
    /// Run logs and artifacts.
    pub objects: sluice_core::objects::Objects,
    /// One live tail per followed run, shared by its followers.
    pub logs: Arc<crate::log_hub::LogHub>,
    /// The bearer token `/metrics` asks for; None leaves it open.
    pub metrics_token: Option<SecretString>,
    /// Which repositories a run's ref may be looked up in (as the checkout would reach them).
    pub repo_access: sluice_core::git::RepoAccess,
    /// The other processes (replicas, workers), when there can be any.
    pub bus: Option<sluice_core::bus::Bus>,
}

impl AppState {
    /// Assembles the state; a malformed Redis URL fails here, an unreachable one in `/readyz`.
    pub fn new(
        settings: &Settings,
        db: DatabaseConnection,
        metrics: Metrics,
        secret_key: &SecretString,
    ) -> sluice_core::Result<AppState> {
        let readiness = Readiness::new(db.clone(), settings.redis_url.as_ref())?;
        let objects = sluice_core::objects::open(settings)?;
        let logs = Arc::new(crate::log_hub::LogHub::new(db.clone(), objects.clone()));
        let public_url = settings
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned());
        Ok(AppState {
            db,
            metrics,
            readiness: Arc::new(readiness),
            keys: Keyring::new(secret_key),
            auth_limiter: Arc::new(RateLimiter::new(
                settings.auth_attempts_per_minute,
                Duration::from_secs(60),
            )),
            local_accounts: settings.local_accounts,
            secure_cookies: public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            public_url,
            cache: Arc::new(ReadCache::new(settings.read_cache)),
            objects,
            logs,
            metrics_token: settings.metrics_token.clone(),
            // `serve` allows local repositories unless told otherwise; `main` says so.
            repo_access: sluice_core::git::RepoAccess {
                allow_local: settings.allow_local_repos.unwrap_or(false),
                deny: settings.repo_deny(),
                mirror: None,
            },
            bus: None,
            oauth: Arc::new(OAuthProviders::new(&settings.oauth).map_err(|message| {
                sluice_core::Error::InvalidSetting {
                    field: "oauth",
                    message,
                }
            })?),
        })
    }
}

impl AppState {
    /// Joins the other processes: every write here is announced to them, and what they write
    /// makes this replica's cache stale; while the connection is down nothing is served from
    /// the cache. Call before building the application.
    pub fn attach_bus(&mut self, bus: sluice_core::bus::Bus) {
        use sluice_core::bus::Event;
        let cache = self.cache.clone();
        let mut events = bus.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Written | Event::Resynced) => cache.bump(),
                    Ok(Event::Queued) => {}
                    // Missed some: whatever they were, drop what is cached.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.bump(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        self.cache.follow(bus.clone());
        self.bus = Some(bus);
    }
}
