//! The tenant provisioner: a level-based controller that makes every org's build namespace
//! match [`crate::tenant::objects`]. Each pass applies every org's objects with server-side
//! apply (field manager `sluice`, forced, so drift is repaired) and deletes the namespaces
//! Sluice manages whose org is gone. Passes run every few minutes and soon after an org is
//! created, changed or deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_core::config::Settings;
use tokio_util::sync::CancellationToken;

use crate::tenant::{MANAGED_BY, ORG_LABEL, TenantPlan, namespace_of, objects};

/// The field manager of everything Sluice applies.
pub const FIELD_MANAGER: &str = "sluice";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("database: {0}")]
    Db(#[from] sluice_core::Error),
    #[error("Kubernetes configuration: {0}")]
    Config(String),
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Orgs whose objects were applied.
    pub applied: usize,
    /// Namespaces deleted because their org is gone.
    pub deleted: Vec<String>,
    /// Orgs that failed, with the error (the pass goes on with the others).
    pub failed: Vec<(String, String)>,
}

/// A client for the cluster in `KUBECONFIG` (or `~/.kube/config`), else the one this pod runs
/// in.
pub async fn client() -> Result<Client, Error> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(Client::try_from(config)?)
}

/// Applies tenant objects through `client`.
#[derive(Clone)]
pub struct Provisioner {
    client: Client,
    settings: Settings,
}

impl Provisioner {
    pub fn new(client: Client, settings: Settings) -> Provisioner {
        Provisioner { client, settings }
    }

    fn params() -> PatchParams {
        PatchParams::apply(FIELD_MANAGER).force()
    }

    async fn apply_in<K>(&self, namespace: &str, object: &K) -> Result<(), Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        api.patch(&name, &Self::params(), &Patch::Apply(object))
            .await?;
        Ok(())
    }

    /// Applies one org's objects (the namespace first).
    pub async fn apply_org(&self, slug: &str, max_concurrent_runs: i32) -> Result<(), Error> {
        let plan = TenantPlan::new(&self.settings, max_concurrent_runs);
        let wanted = objects(slug, &plan);
        let ns = namespace_of(slug);
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .patch(&ns, &Self::params(), &Patch::Apply(&wanted.namespace))
            .await?;
        self.apply_in(&ns, &wanted.quota).await?;
        self.apply_in(&ns, &wanted.limits).await?;
        self.apply_in(&ns, &wanted.policy).await?;
        self.apply_in(&ns, &wanted.account).await?;
        Ok(())
    }

    /// One level-based pass over every org.
    pub async fn pass(&self, db: &DatabaseConnection) -> Result<Pass, Error> {
        let orgs = sluice_core::store::orgs::all(db).await?;
        let mut pass = Pass::default();
        let mut live = BTreeSet::new();
        for org in &orgs {
            live.insert(namespace_of(&org.slug));
            match self.apply_org(&org.slug, org.max_concurrent_runs).await {
                Ok(()) => pass.applied += 1,
                Err(err) => pass.failed.push((org.slug.clone(), err.to_string())),
            }
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let managed = namespaces
            .list(&ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)))
            .await?;
        for ns in managed.items {
            let Some(name) = ns.metadata.name.clone() else {
                continue;
            };
            let is_tenant = ns
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(ORG_LABEL));
            if is_tenant && !live.contains(&name) {
                namespaces.delete(&name, &DeleteParams::default()).await?;
                pass.deleted.push(name);
            }
        }
        Ok(pass)
    }

    /// Runs passes until `shutdown`: every `every`, and within `poll` of an org change.
    pub async fn run(
        self,
        db: DatabaseConnection,
        every: Duration,
        poll: Duration,
        shutdown: CancellationToken,
    ) {
        let mut seen = None;
        let mut last_pass: Option<tokio::time::Instant> = None;
        loop {
            let fingerprint = sluice_core::store::orgs::fingerprint(&db).await.ok();
            let due = last_pass.is_none_or(|at| at.elapsed() >= every);
            if due || fingerprint != seen {
                match self.pass(&db).await {
                    Ok(pass) => {
                        for (org, err) in &pass.failed {
                            tracing::warn!(org, error = %err, "applying a tenant namespace failed");
                        }
                        if !pass.deleted.is_empty() {
                            tracing::info!(deleted = ?pass.deleted, "deleted namespaces of deleted orgs");
                        }
                        // A failed org is retried on the next poll, not a whole period later.
                        if pass.failed.is_empty() {
                            seen = fingerprint;
                            last_pass = Some(tokio::time::Instant::now());
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "tenant provisioning pass failed"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}
