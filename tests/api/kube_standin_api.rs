//! The Kubernetes API STAND-IN itself (tests/api/kube_standin/; no cluster runs here), through
//! the unchanged kube-rs client: objects are created, admitted or refused by Pod Security
//! `restricted`, listed and watched with selectors (with the runtime watcher and with
//! `Api::watch`, resuming and expiring past the history), and its kubelet runs pods to Ready
//! or into the failures Sluice must report, recording Events.

use std::time::Duration;

use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::{Client, Error};
use serde_json::json;
use sluice_core::config::Settings;
use sluice_kube::TenantPlan;
use sluice_kube::pod::{BuildPod, build_pod};
use sluice_kube::pod_status::{PodState, pod_state};

use crate::helpers::wait_until;
use crate::kube_standin::KubeStandIn;

/// The tenant namespace the tests' build pods go to.
pub const NS: &str = "sluice-t-acme";
/// Long enough for a loaded CI machine; the stand-in answers in milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// `pod_state`'s grace for an unschedulable pod.
const GRACE: Duration = Duration::from_secs(60);

/// A stand-in and a kube-rs client for it.
pub fn standin() -> (KubeStandIn, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube = KubeStandIn::start();
    let client = kube.client();
    (kube, client)
}

/// Applies the namespace `name`, enforcing Pod Security `restricted` as Sluice's tenant
/// namespaces do.
pub async fn restricted_namespace(client: &Client, name: &str) {
    let namespace: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::apply("test"), &Patch::Apply(&namespace))
        .await
        .unwrap();
}

/// Sluice's build pod `run-RUN-1` in `NS`.
pub fn build_pod_for(run: i64, image: &str, deadline_secs: Option<u64>) -> Pod {
    let plan = TenantPlan::new(&Settings::default(), 2);
    build_pod(&BuildPod {
        org: "acme",
        project: "web",
        run_id: run,
        attempt: 1,
        controller: "w1",
        image: image.to_owned(),
        deadline_secs,
        plan: &plan,
    })
}

/// Polls the pod `name` until `pod_state` satisfies `wanted`; returns it then.
pub async fn wait_for_state(
    pods: &Api<Pod>,
    name: &str,
    wanted: impl Fn(&PodState) -> bool,
) -> Pod {
    let started = std::time::Instant::now();
    loop {
        let pod = pods.get(name).await.unwrap();
        let state = pod_state(&pod, Utc::now(), GRACE);
        if wanted(&state) {
            return pod;
        }
        assert!(started.elapsed() < DEADLINE, "{name} is still {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates the build pod `run-RUN-1` in `NS` and waits until it is Ready.
pub async fn ready_pod(client: &Client, run: i64) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod = build_pod_for(run, "debian:bookworm-slim", None);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for_state(&pods, &format!("run-{run}-1"), |s| *s == PodState::Ready).await;
    pods
}

fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> Box<kube::core::Status> {
    match result {
        Err(Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_created_build_pod_runs_and_the_runtime_watcher_sees_it_ready_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let config = watcher::Config::default().fields("metadata.name=run-1-1");
    let mut events = watcher(pods.clone(), config).boxed();
    // The watcher has listed (nothing yet) before the pod is created.
    loop {
        match events.try_next().await.unwrap() {
            Some(watcher::Event::InitDone) => break,
            Some(watcher::Event::Init) => {}
            other => panic!("{other:?}"),
        }
    }

    let created = pods
        .create(
            &PostParams::default(),
            &build_pod_for(1, "debian:bookworm-slim", None),
        )
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some(), "{created:?}");
    assert!(created.metadata.resource_version.is_some());
    let created_at = created.metadata.creation_timestamp.clone().unwrap().0;
    let age = Utc::now().timestamp() - created_at.as_second();
    assert!(age.abs() < 60, "{age}");

    let mut states = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(event) = events.try_next().await.unwrap() {
            if let watcher::Event::Apply(pod) = event {
                states.push(pod_state(&pod, Utc::now(), GRACE));
                if states.last() == Some(&PodState::Ready) {
                    break;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not ready; states seen: {states:?}"));
    assert_eq!(states.first(), Some(&PodState::Starting), "{states:?}");

    let pod = pods.get("run-1-1").await.unwrap();
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(status.pod_ip.is_some() && status.start_time.is_some());
    let container = &status.container_statuses.unwrap()[0];
    assert_eq!(container.name, "build");
    assert!(container.ready);
    let running = container.state.as_ref().unwrap().running.as_ref().unwrap();
    assert!(running.started_at.is_some());
    let dir = kube.pod_dir(NS, "run-1-1").unwrap();
    assert!(dir.join("home").is_dir(), "{dir:?}");

    let again = pods
        .create(
            &PostParams::default(),
            &build_pod_for(1, "debian:bookworm-slim", None),
        )
        .await;
    let status = api_error(again);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );

    // A created object takes its namespace from the path.
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let config: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}})).unwrap();
    let config = configs
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
    assert_eq!(config.metadata.namespace.as_deref(), Some(NS));

    // Its deletion reaches the watcher too.
    pods.delete("run-1-1", &Default::default()).await.unwrap();
    let deleted = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(watcher::Event::Delete(pod)) = events.try_next().await.unwrap() {
                return pod;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(deleted.metadata.name.as_deref(), Some("run-1-1"));
}

#[tokio::test]
async fn restricted_admission_refuses_a_privileged_pod_and_admits_the_build_pod_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let privileged: Pod = serde_json::from_value(json!({
        "metadata": {"name": "root"},
        "spec": {"hostNetwork": true,
            "containers": [{"name": "shell", "image": "debian", "securityContext": {"privileged": true}}],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}]},
    }))
    .unwrap();

    let status = api_error(pods.create(&PostParams::default(), &privileged).await);
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    let message = &status.message;
    assert!(
        message.starts_with(
            "pods \"root\" is forbidden: violates PodSecurity \"restricted:latest\": "
        ),
        "{message}"
    );
    for check in [
        "host namespaces (hostNetwork=true)",
        "privileged (container \"shell\"",
        "hostPath volumes (volume \"host\")",
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
        "runAsNonRoot != true",
        "seccompProfile",
    ] {
        assert!(message.contains(check), "{check} missing from: {message}");
    }
    // Applied rather than created, it is refused just the same.
    let applied = pods
        .patch(
            "root",
            &PatchParams::apply("test"),
            &Patch::Apply(&privileged),
        )
        .await;
    assert_eq!(api_error(applied).code, 403);
    assert!(
        kube.get(&format!("/api/v1/namespaces/{NS}/pods/root"))
            .is_none()
    );

    let build = build_pod_for(2, "debian:bookworm-slim", Some(600));
    pods.create(&PostParams::default(), &build).await.unwrap();

    // A namespace that does not exist takes no pods.
    let mut elsewhere = build.clone();
    elsewhere.metadata.namespace = None;
    let nowhere: Api<Pod> = Api::namespaced(client.clone(), "nowhere");
    let status = api_error(nowhere.create(&PostParams::default(), &elsewhere).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "namespaces \"nowhere\" not found");

    // A namespace without a Pod Security level admits anything.
    let open: Namespace = serde_json::from_value(json!({"metadata": {"name": "open"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &open)
        .await
        .unwrap();
    Api::<Pod>::namespaced(client.clone(), "open")
        .create(&PostParams::default(), &privileged)
        .await
        .unwrap();
}

#[tokio::test]
async fn api_watch_resumes_filters_and_expires_past_the_history_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    for (name, team) in [("a", "red"), ("b", "blue")] {
        let config: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}}))
                .unwrap();
        configs
            .create(&PostParams::default(), &config)
            .await
            .unwrap();
    }
    let listed = configs
        .list(&ListParams::default().labels("team=red"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let version = listed.metadata.resource_version.clone().unwrap();

    // From "0": the current objects first, only those the selector picks; at its timeout a
    // bookmark says where to resume.
    let params = WatchParams::default().labels("team=red").timeout(1);
    let mut from_start = configs.watch(&params, "0").await.unwrap().boxed();
    match from_start.try_next().await.unwrap() {
        Some(WatchEvent::Added(config)) => assert_eq!(config.metadata.name.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
    match from_start.try_next().await.unwrap() {
        Some(WatchEvent::Bookmark(mark)) => assert_eq!(mark.metadata.resource_version, version),
        other => panic!("{other:?}"),
    }
    assert!(from_start.try_next().await.unwrap().is_none());
    // A streaming list (the initial events, then a bookmark ending them) serves the watcher.
    let config = watcher::Config::default()
        .labels("team=red")
        .streaming_lists();
    let streamed: Vec<_> = watcher(configs.clone(), config)
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(&streamed[..], [watcher::Event::Init, watcher::Event::InitApply(a), watcher::Event::InitDone]
            if a.metadata.name.as_deref() == Some("a")),
        "{streamed:?}"
    );

    // From the list's version: only what changed since, as it leaves or joins the selection.
    let params = WatchParams::default().labels("team=red");
    let mut resumed = configs.watch(&params, &version).await.unwrap().boxed();
    let path = |name: &str| format!("/api/v1/namespaces/{NS}/configmaps/{name}");
    kube.tamper(&path("a"), |c| {
        c["metadata"]["labels"]["team"] = json!("blue")
    });
    kube.tamper(&path("b"), |c| {
        c["metadata"]["labels"]["team"] = json!("red")
    });
    let mut seen = Vec::new();
    for _ in 0..2 {
        match resumed.try_next().await.unwrap() {
            Some(WatchEvent::Deleted(c)) => {
                seen.push(format!("deleted {}", c.metadata.name.unwrap()))
            }
            Some(WatchEvent::Added(c)) => seen.push(format!("added {}", c.metadata.name.unwrap())),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, ["deleted a", "added b"]);

    // A field selector on a plain list.
    let by_name = configs
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    // Past the history the watch is told its version expired, and ends.
    for n in 0..=KubeStandIn::HISTORY {
        kube.insert(
            &path(&format!("filler-{n}")),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("filler-{n}"), "namespace": NS}}),
        );
    }
    let mut expired = configs
        .watch(&WatchParams::default(), &version)
        .await
        .unwrap()
        .boxed();
    match expired.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("{other:?}"),
    }
    assert!(expired.try_next().await.unwrap().is_none());
}

#[tokio::test]
async fn image_and_configuration_errors_fail_the_pod_with_the_reason_on_the_standin() {
    let (_kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let missing = build_pod_for(4, "registry.example/no-such-image:1", None);
    pods.create(&PostParams::default(), &missing).await.unwrap();
    let failed = |wanted: &'static str| move |s: &PodState| matches!(s, PodState::Failed { reason, .. } if reason == wanted);
    let pod = wait_for_state(&pods, "run-4-1", failed("ErrImagePull")).await;
    match pod_state(&pod, Utc::now(), GRACE) {
        PodState::Failed { message, .. } => assert!(
            message.contains("`build`") && message.contains("no-such-image:1: not found"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    let pod = wait_for_state(&pods, "run-4-1", failed("ImagePullBackOff")).await;
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let warnings: Vec<String> = events
        .list(&ListParams::default().fields("involvedObject.name=run-4-1"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        warnings.contains(&"Failed".to_owned()) && warnings.contains(&"BackOff".to_owned()),
        "{warnings:?}"
    );

    let bad_config = build_pod_for(5, "registry.example/bad-config:1", None);
    pods.create(&PostParams::default(), &bad_config)
        .await
        .unwrap();
    wait_for_state(&pods, "run-5-1", failed("CreateContainerConfigError")).await;
}

#[tokio::test]
async fn unschedulable_pods_wait_pending_until_nodes_free_up_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    kube.unschedulable(true);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.create(
        &PostParams::default(),
        &build_pod_for(6, "debian:bookworm-slim", None),
    )
    .await
    .unwrap();
    let scheduled_false = |pod: &Pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
            })
    };
    wait_until(DEADLINE, || async {
        scheduled_false(&pods.get("run-6-1").await.unwrap())
    })
    .await;
    let pod = pods.get("run-6-1").await.unwrap();
    assert_eq!(pod_state(&pod, Utc::now(), GRACE), PodState::Starting);
    match pod_state(&pod, Utc::now() + chrono::Duration::minutes(2), GRACE) {
        PodState::Failed { reason, message } => {
            assert_eq!(reason, "Unschedulable");
            assert!(
                message.contains("0/3 nodes are available: 3 Insufficient cpu."),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let reasons: Vec<String> = events
        .list(&ListParams::default().fields("involvedObject.name=run-6-1"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert_eq!(reasons, ["FailedScheduling"]);

    // A pod asking for a node no one has stays unschedulable when the others free up.
    let mut stuck = build_pod_for(7, "debian:bookworm-slim", None);
    stuck.spec.as_mut().unwrap().node_selector =
        Some([("sluice.test/unschedulable".to_owned(), "yes".to_owned())].into());
    pods.create(&PostParams::default(), &stuck).await.unwrap();
    kube.unschedulable(false);
    wait_for_state(&pods, "run-6-1", |s| *s == PodState::Ready).await;
    wait_until(DEADLINE, || async {
        scheduled_false(&pods.get("run-7-1").await.unwrap())
    })
    .await;
}

#[tokio::test]
async fn a_pods_events_are_listed_and_watched_by_involved_object_on_the_standin() {
    let (_kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods = ready_pod(&client, 8).await;
    ready_pod(&client, 9).await;
    let uid = pods.get("run-8-1").await.unwrap().metadata.uid.unwrap();

    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let listed = events
        .list(&ListParams::default().fields("involvedObject.name=run-8-1"))
        .await
        .unwrap();
    let reasons: Vec<&str> = listed
        .items
        .iter()
        .filter_map(|e| e.reason.as_deref())
        .collect();
    assert_eq!(reasons, ["Scheduled", "Pulled", "Created", "Started"]);
    for event in &listed.items {
        assert_eq!(event.involved_object.name.as_deref(), Some("run-8-1"));
        assert_eq!(event.involved_object.uid.as_deref(), Some(uid.as_str()));
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        assert_eq!(event.count, Some(1));
        assert!(event.first_timestamp.is_some() && event.last_timestamp.is_some());
    }
    let kubelet = listed
        .items
        .iter()
        .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("kubelet"));
    assert_eq!(kubelet.count(), 3);

    // Across namespaces, with two fields.
    let everywhere: Api<Event> = Api::all(client.clone());
    let fields = format!("involvedObject.name=run-9-1,metadata.namespace={NS}");
    let listed = everywhere
        .list(&ListParams::default().fields(&fields))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 4);

    // A new pod's events arrive on a watch as they are recorded.
    let version = listed.metadata.resource_version.unwrap();
    let params = WatchParams::default().fields("involvedObject.name=run-10-1");
    let mut watched = events.watch(&params, &version).await.unwrap().boxed();
    ready_pod(&client, 10).await;
    let mut reasons = Vec::new();
    while reasons.len() < 4 {
        match watched.try_next().await.unwrap() {
            Some(WatchEvent::Added(event)) => reasons.push(event.reason.unwrap()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(reasons, ["Scheduled", "Pulled", "Created", "Started"]);
}
