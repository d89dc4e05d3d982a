//! The STAND-IN's deployment controller: for every Deployment, pods from its template up to
//! `spec.replicas` (named `<deployment>-<n>`, owned by it); scaling down deletes the pods with
//! the lowest `controller.kubernetes.io/pod-deletion-cost` first (then the newest), as a
//! ReplicaSet does; a deleted Deployment takes its pods with it. `status.replicas` and
//! `readyReplicas` follow the pods, which the simulated kubelet runs and makes Ready.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Cluster;
use super::store::Resource;

const COST: &str = "controller.kubernetes.io/pod-deletion-cost";

pub async fn run(cluster: Arc<Cluster>) {
    let mut changes = cluster.store().subscribe();
    loop {
        changes.borrow_and_update();
        reconcile(&cluster);
        if changes.changed().await.is_err() {
            return;
        }
    }
}

fn is(path: &str, api: &str, plural: &str) -> Option<Resource> {
    Resource::parse(path).filter(|r| {
        r.api == api && r.plural == plural && r.name.is_some() && r.subresource.is_none()
    })
}

fn owner(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == "Deployment")?["uid"]
        .as_str()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn reconcile(cluster: &Arc<Cluster>) {
    let mut store = cluster.store();
    let deployments: Vec<(String, Resource, Value)> = store
        .objects
        .iter()
        .filter_map(|(path, d)| {
            Some((
                path.clone(),
                is(path, "/apis/apps/v1", "deployments")?,
                d.clone(),
            ))
        })
        .collect();
    let pods: Vec<(String, Value)> = store
        .objects
        .iter()
        .filter(|(path, _)| is(path, "/api/v1", "pods").is_some())
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    // Pods whose Deployment is gone.
    let uids: Vec<&str> = deployments
        .iter()
        .filter_map(|(_, _, d)| d["metadata"]["uid"].as_str())
        .collect();
    let orphans: Vec<String> = pods
        .iter()
        .filter(|(_, p)| owner(p).is_some_and(|uid| !uids.contains(&uid)))
        .map(|(path, _)| path.clone())
        .collect();
    for path in orphans {
        store.delete(&path);
    }
    for (path, resource, deployment) in deployments {
        let uid = deployment["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = resource.name.clone().unwrap_or_default();
        let namespace = resource.namespace.clone().unwrap_or_default();
        let want = deployment["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
        let mut mine: Vec<(String, Value)> = pods
            .iter()
            .filter(|(_, p)| owner(p) == Some(uid.as_str()))
            .cloned()
            .collect();
        if mine.len() > want {
            // Lowest deletion cost first, then the newest.
            mine.sort_by_key(|(_, p)| {
                let cost: i64 = p["metadata"]["annotations"][COST]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let created = p["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                (cost, std::cmp::Reverse(created))
            });
            let extra = mine.len() - want;
            for (pod_path, _) in mine.drain(..extra) {
                store.delete(&pod_path);
            }
        }
        let mut next = deployment["status"]["sluiceStandInNext"]
            .as_u64()
            .unwrap_or(0);
        while mine.len() < want {
            next += 1;
            let pod_name = format!("{name}-{next}");
            let pod_path = format!("/api/v1/namespaces/{namespace}/pods/{pod_name}");
            let template = &deployment["spec"]["template"];
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod_name, "namespace": namespace,
                    "labels": template["metadata"]["labels"].clone(),
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true}],
                },
                "spec": template["spec"].clone(),
            });
            let stored = store.put(&pod_path, pod);
            mine.push((pod_path, stored));
        }
        let ready_now = mine
            .iter()
            .filter(|(p, _)| store.objects.get(p).is_some_and(ready))
            .count();
        let status = json!({
            "replicas": mine.len(), "readyReplicas": ready_now,
            "observedGeneration": 1, "sluiceStandInNext": next,
        });
        if deployment["status"] != status {
            store.update(&path, |d| d["status"] = status);
        }
    }
}
