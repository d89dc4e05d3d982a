//! What `sluice kube manifests` and `sluice kube reconcile` do; `src/main.rs` only parses the
//! command line and maps the outcome to an exit code.

use std::time::Duration;

use sluice_core::config::Settings;
use tokio_util::sync::CancellationToken;

use crate::provisioner::{self, Pass, Provisioner};
use crate::tenant::{TenantPlan, manifests, to_yaml};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no organisation `{0}`")]
    NoSuchOrg(String),
    #[error("{0}")]
    Failed(String),
}

/// The YAML documents of `slug`'s namespace objects, from the org in the database.
pub async fn manifests_of(settings: &Settings, slug: &str) -> Result<String, CommandError> {
    let failed = |e: &dyn std::fmt::Display| CommandError::Failed(e.to_string());
    let db = sluice_core::db::connect(&settings.database_url(), 1)
        .await
        .map_err(|e| failed(&e))?;
    let org = sluice_core::store::orgs::find_by_slug(&db, slug)
        .await
        .map_err(|e| failed(&e))?
        .ok_or_else(|| CommandError::NoSuchOrg(slug.to_owned()))?;
    let plan = TenantPlan::new(settings, org.max_concurrent_runs);
    to_yaml(&manifests(&org.slug, &plan)).map_err(|e| failed(&e))
}

/// One provisioning pass (`once`), or passes until `shutdown`: every `every`, and within
/// `poll` of an org change. Returns the pass made with `once`.
pub async fn reconcile(
    settings: Settings,
    once: bool,
    every: Duration,
    poll: Duration,
    shutdown: CancellationToken,
) -> Result<Option<Pass>, CommandError> {
    let db = sluice_core::db::connect(&settings.database_url(), 2)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    let client = provisioner::client()
        .await
        .map_err(|e| CommandError::Failed(format!("cannot reach Kubernetes: {e}")))?;
    let provisioner = Provisioner::new(client, settings);
    if once {
        return provisioner
            .pass(&db)
            .await
            .map(Some)
            .map_err(|e| CommandError::Failed(e.to_string()));
    }
    provisioner.run(db, every, poll, shutdown).await;
    Ok(None)
}

impl Pass {
    /// One line for people: `2 applied, 1 deleted (sluice-t-gone), 0 failed`.
    pub fn summary(&self) -> String {
        let deleted = if self.deleted.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.deleted.join(", "))
        };
        format!(
            "tenant namespaces: {} applied, {} deleted{deleted}, {} failed",
            self.applied,
            self.deleted.len(),
            self.failed.len()
        )
    }
}
