//! What the STAND-IN's kubelet (and scheduler) does to one pod, from creation to Running, or
//! to the failure an injection asks for, and at its deadline. Every write checks that the pod
//! is still there, the same pod (uid), so a deleted pod is never brought back.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::Cluster;
use super::store::{Resource, Store, now};

/// The node every pod lands on.
const NODE: &str = "standin-node";
const HOST_IP: &str = "10.0.0.10";
/// A node selector key no node has.
const UNSCHEDULABLE_KEY: &str = "sluice.test/unschedulable";
const UNSCHEDULABLE: &str = "0/3 nodes are available: 3 Insufficient cpu.";
/// How long an image pull error stays `ErrImagePull` before `ImagePullBackOff`.
const PULL_BACK_OFF: Duration = Duration::from_millis(100);
const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// One pod as its lifecycle task writes it: every write checks it is still the same pod.
pub struct PodHandle {
    cluster: Arc<Cluster>,
    path: String,
    uid: String,
    namespace: String,
    name: String,
}

fn condition(kind: &str, status: &str, at: &str) -> Value {
    json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": at})
}

impl PodHandle {
    pub fn new(cluster: Arc<Cluster>, path: String, uid: String) -> PodHandle {
        let resource = Resource::parse(&path);
        let namespace = resource.as_ref().and_then(|r| r.namespace.clone());
        let name = resource.and_then(|r| r.name);
        PodHandle {
            cluster,
            path,
            uid,
            namespace: namespace.unwrap_or_default(),
            name: name.unwrap_or_default(),
        }
    }

    /// The pod in `store`, if it is still this one.
    fn find<'s>(&self, store: &'s Store) -> Option<&'s Value> {
        let pod = store.objects.get(&self.path)?;
        (pod["metadata"]["uid"] == self.uid.as_str()).then_some(pod)
    }

    fn object(&self) -> Option<Value> {
        self.find(&self.cluster.store()).cloned()
    }

    /// Changes the pod's status, if it is still there.
    fn set_status(&self, change: impl FnOnce(&mut Value)) {
        let mut store = self.cluster.store();
        if self.find(&store).is_some() {
            store.update(&self.path, |pod| change(&mut pod["status"]));
        }
    }

    /// Sets one container's state in the status.
    fn set_container(&self, container: &str, state: Value) {
        self.set_status(|status| {
            for entry in status["containerStatuses"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                if entry["name"] == container {
                    entry["state"] = state.clone();
                }
            }
        });
    }

    /// Records an Event about the pod, if it is still there.
    fn event(&self, kind: &str, reason: &str, message: &str, component: &str) {
        let mut store = self.cluster.store();
        let Some(pod) = self.find(&store) else {
            return;
        };
        let version = pod["metadata"]["resourceVersion"].clone();
        let name = format!("{}.{:08x}", self.name, store.version() + 1);
        let at = now();
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": self.namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": self.name,
                "namespace": self.namespace, "uid": self.uid, "resourceVersion": version},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": at, "lastTimestamp": at,
            "source": {"component": component, "host": NODE},
            "reportingComponent": component, "reportingInstance": NODE,
        });
        store.put(
            &format!("/api/v1/namespaces/{}/events/{name}", self.namespace),
            event,
        );
    }

    /// Schedules and starts the pod, or fails it as injected; then waits for its deadline.
    pub async fn lifecycle(self) {
        let Some(pod) = self.object() else {
            return;
        };
        let spec = &pod["spec"];
        if !self.schedule(spec).await {
            return;
        }
        let containers: Vec<&Value> = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let image = |c: &&Value| c["image"].as_str().unwrap_or_default().to_owned();
        if let Some(c) = containers
            .iter()
            .find(|c| image(c).contains("no-such-image"))
        {
            return self
                .pull_fails(c["name"].as_str().unwrap_or_default(), &image(c))
                .await;
        }
        if let Some(c) = containers.iter().find(|c| image(c).contains("bad-config")) {
            let message = "configmap \"bad-config\" not found";
            let name = c["name"].as_str().unwrap_or_default();
            self.set_container(
                name,
                json!({"waiting": {"reason": "CreateContainerConfigError", "message": message}}),
            );
            return self.event("Warning", "Failed", &format!("Error: {message}"), "kubelet");
        }
        if !self.start(&containers) {
            return;
        }
        if let Some(seconds) = spec["activeDeadlineSeconds"].as_u64() {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            self.deadline_passed();
        }
    }

    /// Waits while the pod cannot be scheduled; false when it is gone.
    async fn schedule(&self, spec: &Value) -> bool {
        let kubelet = &self.cluster.kubelet;
        let mut changed = kubelet.subscribe();
        let mut reported = false;
        loop {
            changed.borrow_and_update();
            if self.object().is_none() {
                return false;
            }
            let held =
                kubelet.unschedulable() || !spec["nodeSelector"][UNSCHEDULABLE_KEY].is_null();
            if !held {
                break;
            }
            if !reported {
                self.set_status(|status| {
                    *status = json!({"phase": "Pending", "qosClass": "Guaranteed", "conditions": [{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": UNSCHEDULABLE, "lastProbeTime": null, "lastTransitionTime": now()}]});
                });
                self.event(
                    "Warning",
                    "FailedScheduling",
                    UNSCHEDULABLE,
                    "default-scheduler",
                );
                reported = true;
            }
            if changed.changed().await.is_err() {
                return false;
            }
        }
        let at = now();
        let statuses: Vec<Value> = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                    "restartCount": 0, "started": false,
                    "state": {"waiting": {"reason": "ContainerCreating"}}})
            })
            .collect();
        self.set_status(|status| {
            *status = json!({"phase": "Pending", "qosClass": "Guaranteed", "hostIP": HOST_IP,
                "startTime": at, "containerStatuses": statuses, "conditions": [
                    condition("PodScheduled", "True", &at), condition("Initialized", "True", &at),
                    condition("ContainersReady", "False", &at), condition("Ready", "False", &at)]});
        });
        let message = format!(
            "Successfully assigned {}/{} to {NODE}",
            self.namespace, self.name
        );
        self.event("Normal", "Scheduled", &message, "default-scheduler");
        true
    }

    async fn pull_fails(&self, container: &str, image: &str) {
        let why = format!(
            "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        );
        self.event(
            "Normal",
            "Pulling",
            &format!("Pulling image \"{image}\""),
            "kubelet",
        );
        self.set_container(
            container,
            json!({"waiting": {"reason": "ErrImagePull", "message": why}}),
        );
        let failed = format!("Failed to pull image \"{image}\": {why}");
        self.event("Warning", "Failed", &failed, "kubelet");
        self.event("Warning", "Failed", "Error: ErrImagePull", "kubelet");
        tokio::time::sleep(PULL_BACK_OFF).await;
        let back_off = format!("Back-off pulling image \"{image}\"");
        self.set_container(
            container,
            json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("{back_off}: ErrImagePull: {why}")}}),
        );
        self.event("Warning", "BackOff", &back_off, "kubelet");
        self.event("Warning", "Failed", "Error: ImagePullBackOff", "kubelet");
    }

    /// Starts the containers and marks the pod Running; false when it is gone.
    fn start(&self, containers: &[&Value]) -> bool {
        let kubelet = &self.cluster.kubelet;
        for c in containers {
            let name = c["name"].as_str().unwrap_or_default();
            let image = c["image"].as_str().unwrap_or_default();
            let pulled = format!("Container image \"{image}\" already present on machine");
            self.event("Normal", "Pulled", &pulled, "kubelet");
            self.event(
                "Normal",
                "Created",
                &format!("Created container: {name}"),
                "kubelet",
            );
            self.event(
                "Normal",
                "Started",
                &format!("Started container {name}"),
                "kubelet",
            );
        }
        let names: Vec<&str> = containers
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let Some(ip) = kubelet.pod_started(&self.path, &self.uid, &names) else {
            return false;
        };
        let at = now();
        self.set_status(|status| {
            status["phase"] = json!("Running");
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
            status["conditions"] = json!(
                ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
                    .iter()
                    .map(|kind| condition(kind, "True", &at))
                    .collect::<Vec<_>>()
            );
            for entry in status["containerStatuses"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                let image = entry["image"].as_str().unwrap_or_default().to_owned();
                entry["ready"] = json!(true);
                entry["started"] = json!(true);
                entry["imageID"] = json!(format!("{image}@sha256:{}", "0".repeat(64)));
                entry["containerID"] =
                    json!(format!("containerd://{}", uuid::Uuid::new_v4().simple()));
                entry["state"] = json!({"running": {"startedAt": at}});
            }
        });
        true
    }

    /// `activeDeadlineSeconds` passed: the pod fails and its execs are killed.
    fn deadline_passed(&self) {
        if !self.cluster.kubelet.pod_ended(&self.path, &self.uid) {
            return;
        }
        let at = now();
        self.set_status(|status| {
            status["phase"] = json!("Failed");
            status["reason"] = json!("DeadlineExceeded");
            status["message"] = json!(DEADLINE_MESSAGE);
            for entry in status["conditions"].as_array_mut().into_iter().flatten() {
                if entry["type"] == "Ready" || entry["type"] == "ContainersReady" {
                    *entry = condition(entry["type"].as_str().unwrap_or_default(), "False", &at);
                }
            }
            for entry in status["containerStatuses"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                let started = entry["state"]["running"]["startedAt"].clone();
                entry["ready"] = json!(false);
                entry["started"] = json!(false);
                entry["state"] = json!({"terminated": {"exitCode": 137, "reason": "Error",
                    "startedAt": started, "finishedAt": at}});
            }
        });
        self.event("Warning", "DeadlineExceeded", DEADLINE_MESSAGE, "kubelet");
    }
}
