//! The Kubernetes executor inside a worker: the agents that start a Pod per attempt, and the
//! two controllers that run beside them until shutdown: the tenant provisioner (a pass every
//! few minutes and soon after an org changes) and the orphan collector (every
//! `kube_orphan_scan_secs`, a minute by default).

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use sea_orm::DatabaseConnection;
use sluice_core::config::Settings;
use sluice_core::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use crate::agent::{HEARTBEAT_STALE, KubeAgents};
use crate::provisioner::{self, Provisioner};

/// How often the provisioner passes over every org, and how often it looks for org changes.
pub const PROVISION_EVERY: Duration = Duration::from_secs(300);
pub const PROVISION_POLL: Duration = Duration::from_secs(2);
/// The agents for a worker on Kubernetes, with the provisioner and the orphan collector
/// running until `shutdown`.
pub async fn start(
    settings: &Settings,
    db: DatabaseConnection,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<Arc<KubeAgents>, String> {
    let client = provisioner::client()
        .await
        .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
    start_with(client, settings, db, metrics, shutdown)
}

/// [`start`] with a given client.
pub fn start_with(
    client: Client,
    settings: &Settings,
    db: DatabaseConnection,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<Arc<KubeAgents>, String> {
    let agents = KubeAgents::new(
        client.clone(),
        db.clone(),
        settings.clone(),
        metrics.clone(),
    )?;
    let provisioner = Provisioner::new(client.clone(), settings.clone());
    tokio::spawn(provisioner.run(
        db.clone(),
        PROVISION_EVERY,
        PROVISION_POLL,
        shutdown.clone(),
    ));
    let controller = settings.kube_controller.clone();
    let collect_every = Duration::from_secs(settings.kube_orphan_scan_secs.max(1));
    tokio::spawn(async move {
        loop {
            match crate::orphans::collect(&client, &db, &controller, HEARTBEAT_STALE, &metrics)
                .await
            {
                Ok(deleted) if !deleted.is_empty() => {
                    tracing::info!(?deleted, "collected orphaned build pods");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "collecting orphaned build pods failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(collect_every) => {}
            }
        }
    });
    Ok(Arc::new(agents))
}
