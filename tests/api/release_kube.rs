//! Releases on the Kubernetes runtime, against the Kubernetes API STAND-IN (no cluster runs
//! here; the stand-in's deployment controller and kubelet make Deployments' pods and mark them
//! Ready): a Deployment per release, the live Service's EndpointSlice listing the routed pods
//! (4 green and 2 blue of 6 while monitoring), the preview Service for the smoke test, and the
//! blue Deployment kept at 0 replicas after the release. The objects pass
//! `kubernetes-validate --strict`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::execution::push;
use crate::fleet::{Backend, queue, start_fleet};
use crate::helpers::spawn_app;
use crate::kube_executor::client_for;
use crate::kube_standin::KubeStandIn;
use crate::release_support::{
    Releases, bump, explain, monitoring, release_of, release_project, run_ended, web_in,
};

const NS: &str = "sluice-t-acme";

const IMAGE_PIPELINE: &str = r#"pipeline {
    agent any
    stages {
        stage('Production') {
            steps {
                deploy app: 'web', environment: 'production', image: 'registry.example.com/web:1', instances: 6, healthPath: '/healthz', smoke: 'test -n "$GREEN_URL"', monitorSeconds: 3
            }
        }
    }
}
"#;

fn replicas(kube: &KubeStandIn, deployment: &str) -> Option<u64> {
    kube.get(&format!(
        "/apis/apps/v1/namespaces/{NS}/deployments/{deployment}"
    ))
    .and_then(|d| d["spec"]["replicas"].as_u64())
}

/// The pods the live Service's endpoints name, by Deployment.
fn routed(kube: &KubeStandIn) -> Vec<String> {
    let slice = kube
        .get(&format!(
            "/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/web-s1-routed"
        ))
        .unwrap_or(Value::Null);
    let mut names: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["conditions"]["ready"] == true)
        .map(|e| {
            let pod = e["targetRef"]["name"].as_str().unwrap();
            pod.rsplit_once('-').unwrap().0.to_owned()
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn stand_in_kubernetes_runtime_releases_blue_green_by_deployment_and_endpoints() {
    let kube = KubeStandIn::start();
    kube.insert(
        &format!("/api/v1/namespaces/{NS}"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    );
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let (owner, repo, hook) = release_project(&app, IMAGE_PIPELINE, flags.path()).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let client = client_for(&kube);
    let _releases = Releases::start_with(&app, "releases-k", Duration::from_secs(10), |c| {
        c.kube = Some(sluice_release::kube_apps::KubeConfig {
            client,
            scale_down_delay: Duration::from_millis(500),
            cpu: "500m".into(),
            memory: "256Mi".into(),
        });
    });

    let first = push(&app, &hook, &repo).await;
    let run = run_ended(&app, &owner, first).await;
    assert_eq!(
        run["status"],
        "succeeded",
        "{run}\n{}",
        explain(&app, &owner, first).await
    );
    assert_eq!(replicas(&kube, "web-r1"), Some(6));
    assert_eq!(routed(&kube), vec!["web-r1"; 6]);
    let live = kube
        .get(&format!("/api/v1/namespaces/{NS}/services/web-s1"))
        .expect("the live Service");
    assert!(
        live["spec"]["selector"].is_null(),
        "its endpoints are Sluice's: {live}"
    );
    let production = web_in(&app, &owner, "production").await;
    assert_eq!(
        production["url"],
        format!("http://web-s1.{NS}.svc.cluster.local"),
        "{production}"
    );

    bump(&repo);
    let second = push(&app, &hook, &repo).await;
    let id = release_of(&app, &owner, second).await;
    monitoring(&app, &owner, id).await;
    // While monitoring: green 4, blue 2, all six routed.
    assert_eq!(replicas(&kube, "web-r2"), Some(4));
    assert_eq!(replicas(&kube, "web-r1"), Some(2));
    let mut expected = vec!["web-r1"; 2];
    expected.extend(vec!["web-r2"; 4]);
    assert_eq!(routed(&kube), expected);
    let preview = kube
        .get(&format!("/api/v1/namespaces/{NS}/services/web-s1-preview"))
        .expect("the preview Service");
    assert_eq!(
        preview["spec"]["selector"]["sluice.dev/release"],
        id.to_string()
    );

    let run = run_ended(&app, &owner, second).await;
    assert_eq!(
        run["status"],
        "succeeded",
        "{run}\n{}",
        explain(&app, &owner, second).await
    );
    assert_eq!(replicas(&kube, "web-r2"), Some(6));
    assert_eq!(
        replicas(&kube, "web-r1"),
        Some(0),
        "blue is kept, stopped, for rollback"
    );
    assert_eq!(routed(&kube), vec!["web-r2"; 6]);
    let production = web_in(&app, &owner, "production").await;
    let green = production["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["color"] == "green" && i["routed"] == true && i["version"] == second)
        .count();
    assert_eq!(green, 6, "{production}");
    let log = crate::execution::text_log(&app, &owner, second).await;
    assert!(
        log.contains(&format!(
            "smoke test against http://web-s1-preview.{NS}.svc.cluster.local"
        )),
        "{log}"
    );
}

/// The objects the Kubernetes runtime applies are valid for Kubernetes 1.30 and 1.37.
#[test]
fn the_kubernetes_runtime_objects_are_valid() {
    let objects = sluice_release::kube_apps::AppObjects {
        namespace: NS.into(),
        app: "web".into(),
        env: "production".into(),
        slot_id: 3,
    };
    let docs = [
        serde_yaml_ng::to_string(&objects.deployment(
            12,
            41,
            "registry.example.com/web:41",
            "/healthz",
            4,
            "green",
            ("500m", "256Mi"),
        ))
        .unwrap(),
        serde_yaml_ng::to_string(&objects.live_service()).unwrap(),
        serde_yaml_ng::to_string(&objects.preview_service(12)).unwrap(),
        serde_yaml_ng::to_string(&objects.live_endpoints(&[(
            "web-r12-1".into(),
            "10.0.0.7".into(),
            true,
        )]))
        .unwrap(),
    ];
    crate::kube_manifests::validate(&docs.join("---\n"));
}
