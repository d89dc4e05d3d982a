//! How the Kubernetes executor fails, on the Kubernetes API STAND-IN (tests/api/kube_standin;
//! no cluster runs here), whose simulated kubelet injects what a cluster does wrong: an image
//! that cannot be pulled, a pod that cannot be scheduled, an exec stream that drops, a pod
//! deleted under a step, an API server failing deletes; and orphaned pods collected.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::fleet::{Backend, queue};
use crate::helpers::{spawn_app, wait_until};
use crate::kube_executor::{OnStandIn, client_for, kube_fleet};
use crate::kube_standin::KubeStandIn;

#[tokio::test]
async fn an_image_pull_failure_fails_the_run_within_5_s_with_the_reason_on_the_standin() {
    let jenkinsfile = "pipeline { agent { docker { image 'registry.example/no-such-image:1' } }\n stages { stage('Build') { steps { sh 'echo never' } } } }\n";
    let on = OnStandIn::start(jenkinsfile, |_| {}).await;
    let started = Instant::now();
    let run = on.ended().await;
    let took = started.elapsed();
    let log = on.log().await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("ErrImagePull") || reason.contains("ImagePullBackOff"),
        "{run}"
    );
    assert!(
        log.contains("[kubernetes] Warning Failed"),
        "the pod's events: {log}"
    );
    assert!(!log.contains("never"), "{log}");
    on.no_pods_left().await;
    let metrics = on.app.state.metrics.render().unwrap();
    assert!(
        metrics.contains("sluice_pod_failures_total{reason=\"ErrImagePull\"} 1")
            || metrics.contains("sluice_pod_failures_total{reason=\"ImagePullBackOff\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unschedulable_pod_fails_its_run_after_the_grace_on_the_standin() {
    let jenkinsfile =
        "pipeline { agent any\n stages { stage('Build') { steps { sh 'echo never' } } } }\n";
    let on = OnStandIn::start(jenkinsfile, |kube| kube.unschedulable(true)).await;
    let run = on.ended().await;
    let log = on.log().await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("nodes are available"),
        "{run}"
    );
    assert!(log.contains("Warning FailedScheduling"), "{log}");
    on.no_pods_left().await;
}

#[tokio::test]
async fn a_dropped_exec_stream_is_reattached_and_the_step_goes_on_on_the_standin() {
    let jenkinsfile = "pipeline { agent any\n stages { stage('Build') { steps { sh 'echo one; sleep 0.3; echo MARK; sleep 0.5; echo two; sleep 0.2; echo three' } } } }\n";
    let on = OnStandIn::start(jenkinsfile, |kube| {
        kube.drop_exec_when_output_contains("MARK")
    })
    .await;
    let run = on.ended().await;
    let log = on.log().await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    for line in ["one", "MARK", "two", "three"] {
        let count = log.lines().filter(|l| l.ends_with(line)).count();
        assert_eq!(count, 1, "`{line}` {count} times:\n{log}");
    }
}

#[tokio::test]
async fn a_pod_deleted_under_a_step_fails_the_run_clearly_on_the_standin() {
    let jenkinsfile = "pipeline { agent any\n stages { stage('Build') { steps { sh 'echo started; sleep 600' } } } }\n";
    let on = OnStandIn::start(jenkinsfile, |_| {}).await;
    on.logged("started").await;
    let (name, dir) = on.pod();
    assert!(
        !crate::execution::processes_under(&dir).is_empty(),
        "the step runs in the pod"
    );
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client_for(&on.kube), "sluice-t-acme");
    api.delete(&name, &Default::default()).await.unwrap();
    let run = on.ended().await;
    let log = on.log().await;
    assert_eq!(run["status"], "failed", "{run}\n{log}");
    assert!(
        log.contains("was deleted or stopped while the step ran"),
        "{log}"
    );
    // Nothing of the step outlives its pod.
    wait_until(Duration::from_secs(5), || async {
        crate::execution::processes_under(&dir).is_empty()
    })
    .await;
}

/// The pipeline's timeout stops a step that ignores TERM, and the pod goes with the attempt.
#[tokio::test]
async fn a_pipeline_timeout_ends_the_run_and_deletes_its_pod_on_the_standin() {
    let jenkinsfile = "pipeline { agent any\n options { timeout(time: 2, unit: 'SECONDS') }\n stages { stage('Slow') { steps { sh 'trap \"\" TERM; echo started; sleep 600' } } } }\n";
    let on = OnStandIn::start(jenkinsfile, |_| {}).await;
    on.logged("started").await;
    let (_, dir) = on.pod();
    let spec = &on.pods()[0]["spec"];
    assert_eq!(
        spec["activeDeadlineSeconds"], 62,
        "the timeout plus a minute: {spec}"
    );
    let started = Instant::now();
    let run = on.ended().await;
    let took = started.elapsed();
    assert_ne!(run["status"], "succeeded", "{run}");
    assert!(
        run["reason"].as_str().unwrap().contains("timed out"),
        "{run}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    on.no_pods_left().await;
    wait_until(Duration::from_secs(5), || async {
        crate::execution::processes_under(&dir).is_empty()
    })
    .await;
}

/// Deleting a finished attempt's pod is retried when the API server fails it.
#[tokio::test]
async fn a_failed_pod_delete_is_retried_on_the_standin() {
    let jenkinsfile =
        "pipeline { agent any\n stages { stage('Build') { steps { sh 'echo built' } } } }\n";
    let on = OnStandIn::start(jenkinsfile, |kube| kube.fail_next_deletes(2)).await;
    let run = on.ended().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    on.no_pods_left().await;
    // The agent's own retry deleted it, not the orphan collector (which would count it).
    let metrics = on.app.state.metrics.render().unwrap();
    assert!(
        metrics.contains("sluice_orphan_pods_deleted_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_orphaned_pod_is_collected_within_the_scan_on_the_standin() {
    let kube = KubeStandIn::start();
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sluice-t-acme"}});
    kube.insert("/api/v1/namespaces/sluice-t-acme", ns);
    let orphan = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "run-999-1", "namespace": "sluice-t-acme",
        "labels": {"app.kubernetes.io/managed-by": "sluice", "sluice.dev/org": "acme",
            "sluice.dev/run": "999", "sluice.dev/attempt": "1",
            "sluice.dev/controller": "sluice-test"}}});
    let path = "/api/v1/namespaces/sluice-t-acme/pods/run-999-1";
    kube.insert(path, orphan);
    // The first delete fails: the next scan tries again.
    kube.fail_next_deletes(1);
    let (_fleet, _agents, _shutdown) = kube_fleet(&app, &kube, q);
    // Gone, and counted (the count follows the delete's answer).
    wait_until(Duration::from_secs(60), || async {
        kube.get(path).is_none()
            && app
                .state
                .metrics
                .render()
                .unwrap()
                .contains("sluice_orphan_pods_deleted_total 1")
    })
    .await;
}
