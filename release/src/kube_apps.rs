//! The Kubernetes runtime of releases: each release of an app environment is a Deployment in
//! the tenant's namespace (its pods labelled with the slot and the release, ready on
//! `healthPath`); a preview Service selects the green release's pods for the smoke test; the
//! live Service has no selector: its EndpointSlice, which the controller writes, lists the
//! routed pods, so kube-proxy spreads requests over them and each colour's share follows its
//! count of routed ready pods.
//!
//! Make before break, as on the local runtime: Deployments are scaled up and their pods ready
//! before they are routed; pods leave the EndpointSlice, then after the scale-down delay (for
//! proxies to notice) their Deployment is scaled down, with `pod-deletion-cost` steering the
//! ReplicaSet to delete the unrouted ones. A stopped release keeps its Deployment at 0
//! replicas, for rollback.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use sluice_core::store::environments::InstanceView;

pub use crate::kube_objects::{
    APP_LABEL, AppObjects, ENV_LABEL, PORT, RELEASE_LABEL, SLOT_LABEL, VERSION_LABEL,
};
use crate::slot::{Want, colour_of};

const FIELD_MANAGER: &str = "sluice-releases";
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// How the Kubernetes runtime is set up.
#[derive(Clone)]
pub struct KubeConfig {
    pub client: kube::Client,
    /// How long pods stay up after they left the live Service's endpoints.
    pub scale_down_delay: Duration,
    /// Each app pod's CPU and memory limits.
    pub cpu: String,
    pub memory: String,
}

impl std::fmt::Debug for KubeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeConfig")
            .field("scale_down_delay", &self.scale_down_delay)
            .finish()
    }
}

/// A pod of the slot as last seen.
#[derive(Debug, Clone)]
struct PodView {
    name: String,
    release_id: i64,
    version: i64,
    ready: bool,
    ip: Option<String>,
    /// Why it is not running, when the kubelet says (`ErrImagePull`, …).
    waiting: Option<String>,
    /// Its `pod-deletion-cost` annotation.
    cost: Option<String>,
}

/// The Kubernetes side of one slot.
pub(crate) struct KubeApps {
    config: KubeConfig,
    pub objects: AppObjects,
    pods: Vec<PodView>,
    routed: BTreeSet<String>,
    live_ready: bool,
    /// Each release's replicas as last read or written (a controller pass every 200 ms must
    /// not cost a request per Deployment).
    replicas: BTreeMap<i64, i32>,
    /// The endpoints as this controller last wrote them (`None`: not yet).
    written: Option<Vec<(String, String, bool)>>,
}

impl KubeApps {
    pub(crate) fn new(config: KubeConfig, objects: AppObjects) -> KubeApps {
        KubeApps {
            config,
            objects,
            pods: Vec::new(),
            routed: BTreeSet::new(),
            live_ready: false,
            replicas: BTreeMap::new(),
            written: None,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.config.client.clone(), &self.objects.namespace)
    }

    async fn apply<K>(&self, name: &str, object: &K) -> Result<(), String>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        self.api::<K>()
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("applying {name} in {}: {e}", self.objects.namespace))
    }

    pub(crate) fn url(&self) -> String {
        self.objects.url_of(&self.objects.live_name())
    }

    async fn observe(&mut self) -> Result<(), String> {
        let selector = format!("{SLOT_LABEL}={}", self.objects.slot_id);
        let pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| format!("listing the app's pods: {e}"))?;
        self.pods = pods
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                let release_id = labels.get(RELEASE_LABEL)?.parse().ok()?;
                let version = labels
                    .get(VERSION_LABEL)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default();
                let status = p.status.clone().unwrap_or_default();
                let ready = status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                let waiting = status
                    .container_statuses
                    .iter()
                    .flatten()
                    .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
                let cost = p
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DELETION_COST).cloned());
                Some(PodView {
                    cost,
                    name: p.metadata.name.clone()?,
                    release_id,
                    version,
                    ready,
                    ip: status.pod_ip.clone(),
                    waiting,
                })
            })
            .collect();
        Ok(())
    }

    /// A release's replicas (`None`: no Deployment yet), read once, then as this controller
    /// set them.
    async fn replicas(&mut self, release_id: i64) -> Option<i32> {
        if let Some(n) = self.replicas.get(&release_id) {
            return Some(*n);
        }
        let read = self
            .api::<Deployment>()
            .get_opt(&self.objects.deployment_name(release_id))
            .await
            .ok()
            .flatten()
            .and_then(|d| d.spec?.replicas);
        if let Some(n) = read {
            self.replicas.insert(release_id, n);
        }
        read
    }

    async fn set_replicas(&mut self, release_id: i64, replicas: i32) -> Result<(), String> {
        let name = self.objects.deployment_name(release_id);
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        self.api::<Deployment>()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("scaling {name} to {replicas}: {e}"))?;
        self.replicas.insert(release_id, replicas);
        Ok(())
    }

    /// Sets a release's replicas: its Deployment is created the first time (with the colour it
    /// starts as), and only scaled afterwards, so its pods are never rolled.
    async fn scale(&mut self, want: &Want, replicas: i32, colour: &str) -> Result<(), String> {
        let name = self.objects.deployment_name(want.release.id);
        if self.replicas(want.release.id).await.is_some() {
            return self.set_replicas(want.release.id, replicas).await;
        }
        let image = want.spec.image.as_deref().ok_or_else(|| {
            "this deploy names an artifact and a command: it needs the local runtime, and this \
             install runs releases on Kubernetes (deploy an `image:`)"
                .to_owned()
        })?;
        let deployment = self.objects.deployment(
            want.release.id,
            want.release.version,
            image,
            &want.spec.health_path,
            replicas,
            colour,
            (&self.config.cpu, &self.config.memory),
        );
        self.apply(&name, &deployment).await?;
        self.replicas.insert(want.release.id, replicas);
        Ok(())
    }

    /// Makes what runs match `want`; see the module's comment for the order.
    pub(crate) async fn converge(
        &mut self,
        want: &[Want],
        wait: Option<Duration>,
        latest: i64,
    ) -> Result<(), String> {
        if !self.live_ready {
            self.apply(&self.objects.live_name(), &self.objects.live_service())
                .await?;
            self.live_ready = true;
        }
        let colour = |id: i64| colour_of(id, latest);
        for w in want {
            let now = self.replicas(w.release.id).await;
            let target = now
                .unwrap_or(0)
                .max(i32::try_from(w.instances).unwrap_or(i32::MAX));
            if now != Some(target) {
                self.scale(w, target, colour(w.release.id)).await?;
            }
        }
        if let Some(wait) = wait {
            self.wait_ready(want, wait).await?;
        } else {
            self.observe().await?;
        }
        // Route the wanted number of ready pods per release, routed ones first.
        let mut routed = BTreeSet::new();
        let mut keep = BTreeSet::new();
        for w in want {
            let mut mine: Vec<&PodView> = self
                .pods
                .iter()
                .filter(|p| p.release_id == w.release.id)
                .collect();
            mine.sort_by_key(|p| (!(self.routed.contains(&p.name) && p.ready), !p.ready));
            for (n, pod) in mine.iter().enumerate() {
                if (n as u32) < w.instances {
                    keep.insert(pod.name.clone());
                    if (n as u32) < w.routed && pod.ready {
                        routed.insert(pod.name.clone());
                    }
                }
            }
        }
        let leaving = self.routed.difference(&routed).count() > 0;
        self.routed = routed;
        self.write_endpoints().await?;
        // Which pods the ReplicaSets should delete first when scaled down.
        for pod in &self.pods {
            let cost = if keep.contains(&pod.name) {
                "100"
            } else {
                "-100"
            };
            if pod.cost.as_deref() == Some(cost) {
                continue;
            }
            let patch = serde_json::json!({"metadata": {"annotations": {DELETION_COST: cost}}});
            let _ = self
                .api::<Pod>()
                .patch(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
        }
        let mut shrink = Vec::new();
        for w in want {
            if self.replicas(w.release.id).await.unwrap_or(0) > w.instances as i32 {
                shrink.push((w, w.instances as i32));
            }
        }
        let wanted: Vec<i64> = want.iter().map(|w| w.release.id).collect();
        let others: Vec<i64> = self
            .pods
            .iter()
            .map(|p| p.release_id)
            .filter(|id| !wanted.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if (!shrink.is_empty() || !others.is_empty()) && leaving {
            tokio::time::sleep(self.config.scale_down_delay).await;
        }
        for (w, replicas) in shrink {
            self.scale(w, replicas, colour(w.release.id)).await?;
        }
        for id in others {
            if self.replicas(id).await != Some(0) {
                self.set_replicas(id, 0).await?;
            }
        }
        Ok(())
    }

    async fn wait_ready(&mut self, want: &[Want], wait: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            self.observe().await?;
            let short = want.iter().find_map(|w| {
                let mine: Vec<&PodView> = self
                    .pods
                    .iter()
                    .filter(|p| p.release_id == w.release.id)
                    .collect();
                let ready = mine.iter().filter(|p| p.ready).count() as u32;
                (ready < w.instances).then(|| {
                    let why = mine.iter().find_map(|p| p.waiting.clone());
                    (w, ready, why)
                })
            });
            let Some((w, ready, why)) = short else {
                return Ok(());
            };
            let fatal = why.as_deref().is_some_and(|r| {
                matches!(
                    r,
                    "ErrImagePull"
                        | "ImagePullBackOff"
                        | "InvalidImageName"
                        | "CreateContainerConfigError"
                )
            });
            if fatal || started.elapsed() >= wait {
                return Err(format!(
                    "version {} did not become ready: {ready} of {} pods ready after {}s{}",
                    w.release.version,
                    w.instances,
                    started.elapsed().as_secs(),
                    why.map(|r| format!(" ({r})")).unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Writes the routed pods to the live Service's EndpointSlice, when they changed.
    async fn write_endpoints(&mut self) -> Result<(), String> {
        let routed: Vec<(String, String, bool)> = self
            .pods
            .iter()
            .filter(|p| self.routed.contains(&p.name))
            .filter_map(|p| Some((p.name.clone(), p.ip.clone()?, p.ready)))
            .collect();
        if self.written.as_ref() == Some(&routed) {
            return Ok(());
        }
        let slice = self.objects.live_endpoints(&routed);
        self.apply(&format!("{}-routed", self.objects.live_name()), &slice)
            .await?;
        self.written = Some(routed);
        Ok(())
    }

    /// Re-reads the pods and keeps the endpoints' readiness current.
    pub(crate) async fn refresh(&mut self) {
        if self.observe().await.is_ok() {
            let _ = self.write_endpoints().await;
        }
    }

    /// The preview Service's URL, pointed at `release_id`'s pods.
    pub(crate) async fn green_url(&mut self, release_id: i64) -> Option<String> {
        let service = self.objects.preview_service(release_id);
        self.apply(&self.objects.preview_name(), &service)
            .await
            .ok()?;
        Some(self.objects.url_of(&self.objects.preview_name()))
    }

    pub(crate) fn routed_ready(&self, from_release: i64) -> u32 {
        self.pods
            .iter()
            .filter(|p| p.release_id >= from_release && p.ready && self.routed.contains(&p.name))
            .count() as u32
    }

    pub(crate) fn views(&self, latest: i64) -> Vec<InstanceView> {
        self.pods
            .iter()
            .map(|p| InstanceView {
                color: colour_of(p.release_id, latest).to_owned(),
                version: p.version,
                ready: p.ready,
                routed: p.ready && self.routed.contains(&p.name),
            })
            .collect()
    }
}
