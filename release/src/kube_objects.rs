//! The objects of the Kubernetes runtime of releases (see `kube_apps.rs`): each release's
//! Deployment, an app environment's live and preview Services, and the live Service's
//! EndpointSlice listing the routed pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_kube::pod::{restricted_container, runtime_default};
use sluice_kube::tenant::MANAGED_BY;

/// The port every app listens on (`PORT`).
pub const PORT: i32 = 8080;
pub const SLOT_LABEL: &str = "sluice.dev/slot";
pub const RELEASE_LABEL: &str = "sluice.dev/release";
pub const APP_LABEL: &str = "sluice.dev/app";
pub const ENV_LABEL: &str = "sluice.dev/environment";
pub const VERSION_LABEL: &str = "sluice.dev/version";

/// One app environment's objects.
#[derive(Debug, Clone)]
pub struct AppObjects {
    pub namespace: String,
    pub app: String,
    pub env: String,
    pub slot_id: i64,
}

impl AppObjects {
    pub fn deployment_name(&self, release_id: i64) -> String {
        format!("{}-r{release_id}", self.app)
    }

    pub fn live_name(&self) -> String {
        format!("{}-s{}", self.app, self.slot_id)
    }

    pub fn preview_name(&self) -> String {
        format!("{}-s{}-preview", self.app, self.slot_id)
    }

    pub fn url_of(&self, service: &str) -> String {
        format!("http://{service}.{}.svc.cluster.local", self.namespace)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (APP_LABEL.to_owned(), self.app.clone()),
            (ENV_LABEL.to_owned(), self.env.clone()),
            (SLOT_LABEL.to_owned(), self.slot_id.to_string()),
        ])
    }

    fn meta(&self, name: String, mut labels: BTreeMap<String, String>) -> ObjectMeta {
        labels.extend(self.labels());
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }

    /// The Deployment of a release: `replicas` pods of `image`, restricted, ready on
    /// `health_path`.
    #[allow(clippy::too_many_arguments)]
    pub fn deployment(
        &self,
        release_id: i64,
        version: i64,
        image: &str,
        health_path: &str,
        replicas: i32,
        colour: &str,
        limits: (&str, &str),
    ) -> Deployment {
        let selector = BTreeMap::from([
            (SLOT_LABEL.to_owned(), self.slot_id.to_string()),
            (RELEASE_LABEL.to_owned(), release_id.to_string()),
        ]);
        let mut pod_labels = self.labels();
        pod_labels.extend(selector.clone());
        pod_labels.insert(VERSION_LABEL.to_owned(), version.to_string());
        let env = [
            ("PORT", PORT.to_string()),
            ("SLUICE_APP", self.app.clone()),
            ("SLUICE_ENVIRONMENT", self.env.clone()),
            ("SLUICE_COLOR", colour.to_owned()),
            ("SLUICE_VERSION", version.to_string()),
        ]
        .into_iter()
        .map(|(name, value)| EnvVar {
            name: name.to_owned(),
            value: Some(value),
            ..EnvVar::default()
        })
        .collect();
        let quantity = |q: &str| Quantity(q.to_owned());
        let container = Container {
            name: "app".to_owned(),
            image: Some(image.to_owned()),
            ports: Some(vec![ContainerPort {
                container_port: PORT,
                name: Some("http".to_owned()),
                ..ContainerPort::default()
            }]),
            env: Some(env),
            readiness_probe: Some(Probe {
                http_get: Some(HTTPGetAction {
                    path: Some(health_path.to_owned()),
                    port: IntOrString::Int(PORT),
                    ..HTTPGetAction::default()
                }),
                period_seconds: Some(1),
                failure_threshold: Some(3),
                ..Probe::default()
            }),
            resources: Some(ResourceRequirements {
                limits: Some(BTreeMap::from([
                    ("cpu".to_owned(), quantity(limits.0)),
                    ("memory".to_owned(), quantity(limits.1)),
                ])),
                ..ResourceRequirements::default()
            }),
            security_context: Some(restricted_container()),
            ..Container::default()
        };
        Deployment {
            metadata: self.meta(
                self.deployment_name(release_id),
                BTreeMap::from([(RELEASE_LABEL.to_owned(), release_id.to_string())]),
            ),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(selector),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        automount_service_account_token: Some(false),
                        enable_service_links: Some(false),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            seccomp_profile: Some(runtime_default()),
                            ..PodSecurityContext::default()
                        }),
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn service(&self, name: String, selector: Option<BTreeMap<String, String>>) -> Service {
        Service {
            metadata: self.meta(name, BTreeMap::new()),
            spec: Some(ServiceSpec {
                selector,
                ports: Some(vec![ServicePort {
                    name: Some("http".to_owned()),
                    port: 80,
                    target_port: Some(IntOrString::Int(PORT)),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// The live Service: no selector, its endpoints are the routed pods.
    pub fn live_service(&self) -> Service {
        self.service(self.live_name(), None)
    }

    /// The preview Service: the green release's pods, for the smoke test.
    pub fn preview_service(&self, release_id: i64) -> Service {
        self.service(
            self.preview_name(),
            Some(BTreeMap::from([
                (SLOT_LABEL.to_owned(), self.slot_id.to_string()),
                (RELEASE_LABEL.to_owned(), release_id.to_string()),
            ])),
        )
    }

    /// The live Service's endpoints: `(pod, ip, ready)` of the routed pods.
    pub fn live_endpoints(&self, routed: &[(String, String, bool)]) -> EndpointSlice {
        let labels = BTreeMap::from([
            ("kubernetes.io/service-name".to_owned(), self.live_name()),
            (
                "endpointslice.kubernetes.io/managed-by".to_owned(),
                "sluice.dev/releases".to_owned(),
            ),
        ]);
        EndpointSlice {
            metadata: self.meta(format!("{}-routed", self.live_name()), labels),
            address_type: "IPv4".to_owned(),
            endpoints: routed
                .iter()
                .map(|(pod, ip, ready)| Endpoint {
                    addresses: vec![ip.clone()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*ready),
                        serving: Some(*ready),
                        terminating: Some(false),
                    }),
                    target_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                        kind: Some("Pod".to_owned()),
                        name: Some(pod.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    }),
                    ..Endpoint::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: Some("http".to_owned()),
                port: Some(PORT),
                protocol: Some("TCP".to_owned()),
                ..EndpointPort::default()
            }]),
        }
    }
}
