//! A STAND-IN for a Kubernetes API server (no cluster can run on these machines): a real HTTP
//! server on loopback that the unchanged kube-rs client talks to, holding objects in memory,
//! with a simulated kubelet that "runs" pods. It serves what Sluice uses:
//!
//! - get, list (in a namespace or across all of them) with label and field selectors, create
//!   (POST), server-side apply (PATCH `application/apply-patch+yaml` with a field manager;
//!   fields a manager applied before and no longer applies are removed; without `force`,
//!   changing a field another manager set is a 409 conflict; `apply.rs`), merge patches, and
//!   delete (a namespace takes its objects with it): `crud.rs`, on the store in `store.rs`;
//! - Pod Security admission for namespaces labelled `restricted` or `baseline`:
//!   `admission.rs`;
//! - watches with resourceVersions, a bounded history and 410 Gone past it: `watch.rs`;
//! - pods/log, followed or not: `logs.rs`;
//! - pods/exec over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`), the command run as
//!   a local process in the pod's directory: `exec.rs`;
//! - a deployment controller keeping each Deployment's pods at its replicas (deleting the
//!   lowest `pod-deletion-cost` first): `deployments.rs`;
//! - a kubelet that moves pods to Running (or to image, configuration and scheduling
//!   failures), records Events and kills a pod's execs when it is deleted or its deadline
//!   passes: `kubelet.rs`, with failures to inject through `KubeStandIn`.
//!
//! Objects carry `resourceVersion`, `uid` and `creationTimestamp`; errors are `Status`
//! objects. It is not a full API server: no field ownership per field, no authorization, no
//! containers (the pod's command is not run; only execs are).

mod admission;
mod apply;
mod crud;
mod deployments;
mod exec;
mod kubelet;
mod lifecycle;
mod logs;
mod store;
mod watch;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

pub use store::Store;

/// What the server's handlers and the kubelet share.
pub struct Cluster {
    pub store: Arc<Mutex<Store>>,
    pub kubelet: kubelet::Kubelet,
}

impl Cluster {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }
}

/// A running stand-in: its server, kubelet and the pods' directories go with it.
pub struct KubeStandIn {
    pub url: String,
    pub store: Arc<Mutex<Store>>,
    cluster: Arc<Cluster>,
    server: actix_web::dev::ServerHandle,
    kubelet: tokio::task::JoinHandle<()>,
    deployments: tokio::task::JoinHandle<()>,
    _pods: tempfile::TempDir,
}

impl Drop for KubeStandIn {
    fn drop(&mut self) {
        self.kubelet.abort();
        self.deployments.abort();
        self.cluster.kubelet.stop_everything();
        let server = self.server.clone();
        tokio::spawn(async move { server.stop(false).await });
    }
}

impl KubeStandIn {
    /// How many changes the store remembers: a watch from further back gets 410 Gone.
    pub const HISTORY: usize = store::HISTORY;

    /// Starts the server on a free loopback port and its kubelet; needs a Tokio runtime.
    pub fn start() -> KubeStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let pods = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(Store::new()));
        let cluster = Arc::new(Cluster {
            store: store.clone(),
            kubelet: kubelet::Kubelet::new(pods.path().to_owned()),
        });
        let data = web::Data::new(cluster.clone());
        let pod = "/api/v1/namespaces/{namespace}/pods/{name}";
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                // kube-rs execs with GET, kubectl with POST.
                .route(&format!("{pod}/exec"), web::get().to(exec::serve))
                .route(&format!("{pod}/exec"), web::post().to(exec::serve))
                .route(&format!("{pod}/log"), web::get().to(logs::serve))
                .default_service(web::to(crud::handle))
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .disable_signals()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let kubelet = tokio::spawn(kubelet::run(cluster.clone()));
        let deployments = tokio::spawn(deployments::run(cluster.clone()));
        KubeStandIn {
            url,
            store,
            cluster,
            server: handle,
            kubelet,
            deployments,
            _pods: pods,
        }
    }

    /// A kubeconfig file pointing at this stand-in.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    user: sluice\ncurrent-context: standin\nusers:\n- name: sluice\n  user:\n    token: standin-token\n",
            self.url
        );
        std::fs::write(&path, config).unwrap();
        path
    }

    /// A kube-rs client for this stand-in; needs a Tokio runtime.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.store.lock().unwrap().objects.get(path).cloned()
    }

    /// Changes an object behind Sluice's back (another manager, or a person with kubectl).
    pub fn tamper(&self, path: &str, change: impl FnOnce(&mut Value)) {
        self.store.lock().unwrap().update(path, change);
    }

    /// Deletes an object behind Sluice's back (a pod's execs are killed, as on any delete).
    pub fn remove(&self, path: &str) {
        self.store.lock().unwrap().delete(path);
    }

    /// Creates an object directly, as something other than Sluice would (no admission).
    pub fn insert(&self, path: &str, object: Value) {
        self.store.lock().unwrap().put(path, object);
    }

    /// While on, new pods (and those waiting) are not scheduled: `0/3 nodes are available`.
    pub fn unschedulable(&self, on: bool) {
        self.cluster.kubelet.set_unschedulable(on);
    }

    /// The first exec whose stdout then contains `mark` loses its connection right after
    /// that output: the socket closes with no status and its process group is killed. Once
    /// per call.
    pub fn drop_exec_when_output_contains(&self, mark: &str) {
        self.cluster.kubelet.drop_exec_on(mark);
    }

    /// The next `n` pod deletes answer 500 InternalError (and delete nothing).
    pub fn fail_next_deletes(&self, n: usize) {
        self.cluster.kubelet.fail_deletes(n);
    }

    /// Execs started since the stand-in started.
    pub fn exec_count(&self) -> usize {
        self.cluster.kubelet.exec_count()
    }

    /// Execs running now in pods named `pod` (in any namespace).
    pub fn running_execs(&self, pod: &str) -> usize {
        self.cluster.kubelet.running_execs(pod)
    }

    /// The directory a running pod's execs start in (`HOME` is its `home`).
    pub fn pod_dir(&self, namespace: &str, pod: &str) -> Option<PathBuf> {
        self.cluster.kubelet.pod_dir(&pod_path(namespace, pod))
    }

    /// Writes a line to a running pod's container log, as its main process would.
    pub fn append_log(&self, namespace: &str, pod: &str, line: &str) {
        self.cluster
            .kubelet
            .append_log(&pod_path(namespace, pod), line);
    }
}

/// Where the pod `name` of `namespace` is stored.
fn pod_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{name}")
}

/// The container a log or exec request names (the pod's first when it names none).
fn container_of(pod: &Value, name: &str, wanted: Option<&str>) -> Result<String, Refusal> {
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = wanted.or(containers.first().copied()).unwrap_or_default();
    if containers.contains(&container) {
        Ok(container.to_owned())
    } else {
        Err(Refusal::new(
            400,
            "BadRequest",
            format!("container {container} is not valid for pod {name}"),
        ))
    }
}

/// A refused request, answered with a `Status`.
pub struct Refusal {
    code: u16,
    reason: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason,
            message: message.into(),
        }
    }
}

impl From<Refusal> for HttpResponse {
    fn from(refusal: Refusal) -> HttpResponse {
        status(refusal.code, refusal.reason, refusal.message)
    }
}

/// A `Status` object, the body of every error (and of exec's status channel).
fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

/// An error answer.
fn status(code: u16, reason: &str, message: impl AsRef<str>) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).json(status_object(
        code,
        reason,
        message.as_ref(),
    ))
}

/// A query string as a map (the last of repeated keys wins; exec reads its own).
fn query_map(query: &str) -> std::collections::BTreeMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// `true`, `1` or `True` in a query parameter.
fn flag(query: &std::collections::BTreeMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}
