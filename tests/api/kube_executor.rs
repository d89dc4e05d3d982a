//! The Kubernetes executor end to end on the Kubernetes API STAND-IN (tests/api/kube_standin;
//! no cluster runs on these machines): the unchanged kube-rs client creates a pod per run in
//! the tenant's namespace, watches it, runs steps through `pods/exec` (the stand-in runs them
//! as local processes in a per-pod directory) and deletes it after. The stand-in's simulated
//! kubelet injects what a cluster does wrong: image pull failures, unschedulable pods, dropped
//! exec streams, pods deleted under a step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use sluice_core::config::Settings;
use sluice_kube::TenantPlan;
use sluice_kube::agent::{KubeAgent, KubeAgents};
use sluice_kube::pod::{BuildPod, build_pod};
use sluice_kube::pod_status::{PodState, pod_state};
use sluice_kube::provisioner::Provisioner;
use sluice_worker::agent::{Agent, conformance};
use tokio_util::sync::CancellationToken;

use crate::execution::{SECRET, push, setup, text_log};
use crate::fleet::{Backend, Fleet, queue, start_fleet_on, wait_for_run};
use crate::helpers::{TestApp, spawn_app, wait_until};
use crate::kube_standin::KubeStandIn;

/// A kube-rs client for the stand-in.
pub fn client_for(kube: &KubeStandIn) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(kube.url.parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

/// Settings of a Kubernetes worker in these tests: quick orphan scans and a short grace for
/// unschedulable pods.
pub fn kube_settings() -> Settings {
    Settings {
        kube_orphan_scan_secs: 1,
        kube_unschedulable_secs: 1,
        kube_controller: "sluice-test".into(),
        ..Settings::default()
    }
}

/// A worker fleet whose agents are pods on the stand-in; the provisioner and the orphan
/// collector run until the returned token is cancelled (or dropped with the fleet).
pub fn kube_fleet(
    app: &TestApp,
    kube: &KubeStandIn,
    q: Arc<dyn sluice_core::queue::Queue>,
) -> (Fleet, Arc<KubeAgents>, CancellationToken) {
    let shutdown = CancellationToken::new();
    let agents = sluice_kube::executor::start_with(
        client_for(kube),
        &kube_settings(),
        app.db.clone(),
        app.state.metrics.clone(),
        shutdown.clone(),
    )
    .unwrap();
    let fleet = start_fleet_on(app, q, 1, 2, |_| {}, agents.clone());
    (fleet, agents, shutdown)
}

/// Every pod in the stand-in's store, as JSON.
fn pods(kube: &KubeStandIn) -> Vec<Value> {
    let store = kube.store.lock().unwrap();
    store
        .objects
        .iter()
        .filter(|(path, _)| path.contains("/pods/") && !path.ends_with("/log"))
        .map(|(_, object)| object.clone())
        .collect()
}

#[tokio::test]
async fn the_kube_agent_passes_the_conformance_suite_on_the_standin() {
    let kube = KubeStandIn::start();
    let client = client_for(&kube);
    let settings = kube_settings();
    Provisioner::new(client.clone(), settings.clone())
        .apply_org("acme", 2)
        .await
        .unwrap();
    let plan = TenantPlan::new(&settings, 2);
    let pod = build_pod(&BuildPod {
        org: "acme",
        project: "web",
        run_id: 1,
        attempt: 1,
        controller: "sluice-test",
        image: "debian:bookworm-slim".into(),
        deadline_secs: None,
        plan: &plan,
    });
    let api: Api<Pod> = Api::namespaced(client, "sluice-t-acme");
    api.create(&PostParams::default(), &pod).await.unwrap();
    wait_until(Duration::from_secs(20), || async {
        let pod = api.get("run-1-1").await.unwrap();
        pod_state(&pod, chrono::Utc::now(), Duration::from_secs(60)) == PodState::Ready
    })
    .await;
    let agent = KubeAgent::attach(api.clone(), "run-1-1").await.unwrap();
    conformance::suite(&agent).await;
    agent.finish().await.unwrap();
    assert!(
        api.get_opt("run-1-1").await.unwrap().is_none(),
        "the pod was deleted"
    );
}

/// Two orgs' runs, each in its own namespace with a restricted pod and no secret in any spec;
/// the run's parallel branches, matrix cells, credentials, gate, artifact and JUnit report all
/// work in the pod, which is deleted afterwards.
#[tokio::test]
async fn two_orgs_runs_land_in_their_own_restricted_namespaces_on_the_standin() {
    let kube = KubeStandIn::start();
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Build') {
            parallel {
                stage('A') { steps { sh 'echo branch-a on $HOSTNAME' } }
                stage('B') { steps { sh 'echo branch-b' } }
            }
        }
        stage('Cells') {
            matrix {
                axes { axis { name 'OS'; values 'linux', 'mac' } }
                stages { stage('Cell') { steps { sh 'echo cell-$OS' } } }
            }
        }
        stage('Test') {
            steps {
                withCredentials([string(credentialsId: 'DEPLOY_TOKEN', variable: 'TOKEN')]) {
                    sh 'test -n "$TOKEN" && echo "token is $TOKEN"'
                }
                sh 'mkdir -p out reports && echo built > out/app.txt'
                writeFile file: 'reports/r.xml', text: '<testsuite><testcase name="ok"/><testcase name="also"/></testsuite>'
                junit 'reports/*.xml'
                archiveArtifacts artifacts: 'out/*.txt'
            }
        }
        stage('Ship') {
            input { message 'Ship it?' }
            steps { sh 'echo shipped' }
        }
    }
}
"#;
    let (owner, repo, hook) = setup(&app, jenkinsfile).await;
    app.create_org(&owner, "beta").await;
    crate::fleet::project_for(&app, &owner, "beta", "api", &repo).await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/beta/projects/api/secrets/DEPLOY_TOKEN",
            &owner,
            Some(json!({"value": SECRET})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let (fleet, _agents, shutdown) = kube_fleet(&app, &kube, q);

    let number = push(&app, &hook, &repo).await;
    let (status, beta_run) = app
        .post_as("/api/v1/orgs/beta/projects/api/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201, "{beta_run}");
    let acme = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let beta = format!("/api/v1/orgs/beta/projects/api/runs/{}", beta_run["number"]);
    for path in [&acme, &beta] {
        let run = wait_for_run(&app, &owner, path, &["waiting", "failed", "succeeded"]).await;
        assert_eq!(run["status"], "waiting", "{run}");
    }
    // Both namespaces have their objects, and each run's pod is in its org's namespace.
    for org in ["acme", "beta"] {
        let ns = format!("/api/v1/namespaces/sluice-t-{org}");
        let namespace = kube.get(&ns).expect("namespace applied");
        assert_eq!(
            namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        assert!(
            kube.get(&format!("{ns}/resourcequotas/sluice-quota"))
                .is_some()
        );
        assert!(
            kube.get(&format!("{ns}/serviceaccounts/sluice-build"))
                .is_some()
        );
    }
    let live = pods(&kube);
    assert_eq!(live.len(), 2, "{live:?}");
    for pod in &live {
        let org = pod["metadata"]["labels"]["sluice.dev/org"]
            .as_str()
            .unwrap();
        assert_eq!(pod["metadata"]["namespace"], format!("sluice-t-{org}"));
        let container = &pod["spec"]["containers"][0]["securityContext"];
        assert_eq!(container["allowPrivilegeEscalation"], false, "{pod}");
        assert_eq!(container["runAsNonRoot"], true, "{pod}");
        assert_eq!(container["capabilities"]["drop"], json!(["ALL"]), "{pod}");
        assert_eq!(
            container["seccompProfile"]["type"], "RuntimeDefault",
            "{pod}"
        );
        assert!(
            !pod.to_string().contains(SECRET),
            "a secret in the pod spec: {pod}"
        );
    }
    // Approve both gates; the runs succeed and their pods are deleted.
    for path in [&acme, &beta] {
        let (_, run) = app.get_as(path, &owner).await;
        let id = run["waiting_for"]["id"].clone();
        let (status, body) = app
            .post_as(
                &format!("{path}/approve"),
                &owner,
                json!({"id": id, "approve": true}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let run = wait_for_run(
        &app,
        &owner,
        &acme,
        &["succeeded", "failed", "unstable", "cancelled"],
    )
    .await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    for line in [
        "branch-a on run-",
        "branch-b",
        "cell-linux",
        "cell-mac",
        "token is ****",
        "shipped",
    ] {
        assert!(log.contains(line), "`{line}` missing:\n{log}");
    }
    assert!(!log.contains(SECRET), "{log}");
    assert!(
        log.contains("[sluice] starting pod sluice-t-acme/run-"),
        "{log}"
    );
    assert_eq!(run["tests"]["passed"], 2, "{run}");
    let (_, artifacts) = app.get_as(&format!("{acme}/artifacts"), &owner).await;
    assert!(artifacts.to_string().contains("out/app.txt"), "{artifacts}");
    let run = wait_for_run(
        &app,
        &owner,
        &beta,
        &["succeeded", "failed", "unstable", "cancelled"],
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    wait_until(Duration::from_secs(10), || async { pods(&kube).is_empty() }).await;
    let metrics = app.state.metrics.render().unwrap();
    assert!(
        metrics.contains("sluice_pod_start_seconds_count 2"),
        "{metrics}"
    );
    shutdown.cancel();
    drop(fleet);
}

/// A project's run pushed to a Kubernetes fleet on a fresh stand-in (prepared by `prepare`).
pub struct OnStandIn {
    pub kube: KubeStandIn,
    pub app: TestApp,
    pub owner: crate::helpers::Auth,
    pub number: i64,
    pub path: String,
    _repo: crate::fleet::Repo,
    _fleet: Fleet,
    _shutdown: tokio_util::sync::DropGuard,
}

impl OnStandIn {
    pub async fn start(jenkinsfile: &str, prepare: impl FnOnce(&KubeStandIn)) -> OnStandIn {
        let kube = KubeStandIn::start();
        prepare(&kube);
        let app = spawn_app().await;
        let (owner, repo, hook) = setup(&app, jenkinsfile).await;
        let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
        let (fleet, _agents, shutdown) = kube_fleet(&app, &kube, q);
        let number = push(&app, &hook, &repo).await;
        let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
        OnStandIn {
            kube,
            app,
            owner,
            number,
            path,
            _repo: repo,
            _fleet: fleet,
            _shutdown: shutdown.drop_guard(),
        }
    }

    /// The run once it ended.
    pub async fn ended(&self) -> Value {
        wait_for_run(
            &self.app,
            &self.owner,
            &self.path,
            &["failed", "succeeded", "cancelled", "unstable"],
        )
        .await
    }

    pub async fn log(&self) -> String {
        text_log(&self.app, &self.owner, self.number).await
    }

    /// Waits until the run's log holds `text`.
    pub async fn logged(&self, text: &str) {
        wait_until(Duration::from_secs(30), || async {
            self.log().await.contains(text)
        })
        .await;
    }

    pub fn pods(&self) -> Vec<Value> {
        pods(&self.kube)
    }

    /// The one build pod's name and its directory on the stand-in.
    pub fn pod(&self) -> (String, std::path::PathBuf) {
        let pods = self.pods();
        assert_eq!(pods.len(), 1, "{pods:?}");
        let name = pods[0]["metadata"]["name"].as_str().unwrap().to_owned();
        let dir = self.kube.pod_dir("sluice-t-acme", &name).unwrap();
        (name, dir)
    }

    /// Waits until no pod is left.
    pub async fn no_pods_left(&self) {
        wait_until(Duration::from_secs(5), || async { self.pods().is_empty() }).await;
    }
}

#[tokio::test]
async fn a_cancelled_runs_pod_is_deleted_and_the_run_cancelled_within_2_s_on_the_standin() {
    let jenkinsfile = "pipeline { agent any\n stages { stage('Slow') { steps { sh 'trap \"\" TERM; echo started; sleep 600' } } } }\n";
    let on = OnStandIn::start(jenkinsfile, |_| {}).await;
    on.logged("started").await;
    assert_eq!(on.pods().len(), 1);
    let asked = Instant::now();
    let (status, body) = on
        .app
        .post_as(&format!("{}/cancel", on.path), &on.owner, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let run = on.ended().await;
    let took = asked.elapsed();
    assert_eq!(run["status"], "cancelled", "{run}");
    assert!(took < Duration::from_secs(2), "cancel took {took:?}");
    wait_until(Duration::from_secs(2), || async { on.pods().is_empty() }).await;
}

/// A `sluice worker` process on the Kubernetes executor is killed mid-run: the worker process
/// that takes the run over deletes the dead attempt's pod (and so its processes) before starting
/// its own, finishes the run, and leaves no pod behind.
#[tokio::test]
async fn a_worker_killed_mid_run_leaves_no_pod_behind_on_the_standin() {
    let kube = KubeStandIn::start();
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("started");
    let repo = crate::fleet::git_repo(&format!(
        "pipeline {{ agent any\n stages {{ stage('Slow') {{ steps {{ sh 'echo started >> {0}; if [ $(wc -l < {0}) -eq 1 ]; then sleep 120; else echo second-attempt; fi' }} }} }} }}\n",
        marker.display()
    ));
    crate::fleet::project_for(&app, &owner, "acme", "web", &repo).await;
    let kubeconfig = kube.kubeconfig(scratch.path()).display().to_string();
    let env = [
        ("SLUICE_EXECUTOR", "kubernetes"),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("SLUICE_KUBE_CONTROLLER", "sluice-test"),
    ];
    let worker = || {
        crate::worker_processes::worker_with(
            &app,
            Backend::Embedded,
            "unused",
            scratch.path(),
            &env,
        )
    };
    let mut first = worker();
    let (status, _) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201);
    let lines = || {
        std::fs::read_to_string(&marker)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(60), || async { lines() == 1 }).await;
    let first_pod = pods(&kube)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first_pod, "run-1-1");
    let first_dir = kube.pod_dir("sluice-t-acme", &first_pod).unwrap();
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    // The dead worker's pod is still there, its step still running.
    assert!(
        kube.get("/api/v1/namespaces/sluice-t-acme/pods/run-1-1")
            .is_some()
    );

    let mut second = worker();
    let path = "/api/v1/orgs/acme/projects/web/runs/1";
    let run = wait_for_run(&app, &owner, path, &["succeeded", "failed", "cancelled"]).await;
    let log = text_log(&app, &owner, 1).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert_eq!(run["attempt"], 2, "{run}");
    assert!(log.contains("second-attempt"), "{log}");
    assert_eq!(lines(), 2);
    wait_until(Duration::from_secs(5), || async { pods(&kube).is_empty() }).await;
    wait_until(Duration::from_secs(5), || async {
        crate::execution::processes_under(&first_dir).is_empty()
    })
    .await;
    second.start_kill().unwrap();
}
