//! The Pod of one run's attempt, for the Kubernetes executor: created in the tenant's
//! namespace for the attempt and deleted after it. Its one container idles; steps run in it
//! through the exec API, with scripts and secrets on stdin, so no secret is ever in the spec.
//! It passes Pod Security `restricted`: non-root, no privilege escalation, every capability
//! dropped, seccomp `RuntimeDefault`, a read-only root filesystem with the workspace, `HOME`
//! and `/tmp` on `emptyDir` volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sluice_core::pipeline::model::Agent;

use crate::tenant::{BUILD_ACCOUNT, MANAGED_BY, ORG_LABEL, TenantPlan, namespace_of};

/// Where the attempt's files live in the pod: the workspace is `ROOT/src`.
pub const ROOT: &str = "/sluice";
/// The build container's name (`container('build')`).
pub const CONTAINER: &str = "build";
/// The user builds run as.
pub const BUILD_UID: i64 = 1000;

/// Labels on every build pod, for selection and orphan collection.
pub const PROJECT_LABEL: &str = "sluice.dev/project";
pub const RUN_LABEL: &str = "sluice.dev/run";
pub const ATTEMPT_LABEL: &str = "sluice.dev/attempt";
pub const CONTROLLER_LABEL: &str = "sluice.dev/controller";

/// What a build pod is made from.
#[derive(Debug, Clone)]
pub struct BuildPod<'a> {
    pub org: &'a str,
    pub project: &'a str,
    pub run_id: i64,
    pub attempt: i32,
    /// The worker that owns the pod (its orphans are its to collect).
    pub controller: &'a str,
    pub image: String,
    /// The pipeline's timeout: the pod is stopped by Kubernetes past it, whatever happens to
    /// the worker.
    pub deadline_secs: Option<u64>,
    pub plan: &'a TenantPlan,
}

/// The image a pipeline's `agent` asks for: `docker { image }`, the first container of
/// `kubernetes { yaml }`, a `label` mapped to an image by `labels`, else `default`.
pub fn image_for(
    agent: &Agent,
    default: &str,
    labels: &BTreeMap<String, String>,
) -> Result<String, String> {
    match agent {
        Agent::Any | Agent::None => Ok(default.to_owned()),
        Agent::Docker { image } => Ok(image.clone()),
        Agent::Label { label } => labels.get(label).cloned().ok_or_else(|| {
            let known: Vec<&str> = labels.keys().map(String::as_str).collect();
            format!(
                "no pod template for label `{label}` (configured: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        }),
        Agent::Kubernetes { yaml } => {
            let spec: serde_json::Value =
                serde_yaml_ng::from_str(yaml).map_err(|e| format!("agent kubernetes yaml: {e}"))?;
            spec["spec"]["containers"][0]["image"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "agent kubernetes yaml: no spec.containers[0].image".to_owned())
        }
    }
}

/// The pod's name for an attempt.
pub fn pod_name(run_id: i64, attempt: i32) -> String {
    format!("run-{run_id}-{attempt}")
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

fn scratch(name: &str, limit: Option<&str>) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: limit.map(|l| Quantity(l.to_owned())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// What Pod Security `restricted` asks of every container: non-root, no privilege
/// escalation, every capability dropped, seccomp `RuntimeDefault`.
pub fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

/// The container runtime's default seccomp profile, which `restricted` requires.
pub fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

/// The Pod for `spec`.
pub fn build_pod(spec: &BuildPod<'_>) -> Pod {
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (ORG_LABEL.to_owned(), spec.org.to_owned()),
        (PROJECT_LABEL.to_owned(), spec.project.to_owned()),
        (RUN_LABEL.to_owned(), spec.run_id.to_string()),
        (ATTEMPT_LABEL.to_owned(), spec.attempt.to_string()),
        (CONTROLLER_LABEL.to_owned(), spec.controller.to_owned()),
    ]);
    let limits = BTreeMap::from([
        ("cpu".to_owned(), Quantity(spec.plan.pod_cpu.clone())),
        ("memory".to_owned(), Quantity(spec.plan.pod_memory.clone())),
        (
            "ephemeral-storage".to_owned(),
            Quantity(spec.plan.pod_ephemeral_storage.clone()),
        ),
    ]);
    let env = |name: &str, value: String| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..EnvVar::default()
    };
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(spec.image.clone()),
        // Idles until deleted; steps run through exec. `sleep` in the background keeps the
        // shell answering TERM at once.
        command: Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done".to_owned(),
        ]),
        working_dir: Some(ROOT.to_owned()),
        env: Some(vec![
            env("HOME", format!("{ROOT}/home")),
            env("WORKSPACE", format!("{ROOT}/src")),
            env("CI", "true".to_owned()),
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(limits.clone()),
            limits: Some(limits),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_user: Some(BUILD_UID),
            run_as_group: Some(BUILD_UID),
            ..restricted_container()
        }),
        volume_mounts: Some(vec![mount("sluice", ROOT), mount("tmp", "/tmp")]),
        ..Container::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(spec.run_id, spec.attempt)),
            namespace: Some(namespace_of(spec.org)),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            active_deadline_seconds: spec
                .deadline_secs
                .and_then(|s| i64::try_from(s).ok())
                .map(|s| s.max(1)),
            automount_service_account_token: Some(false),
            containers: vec![container],
            enable_service_links: Some(false),
            restart_policy: Some("Never".to_owned()),
            security_context: Some(PodSecurityContext {
                fs_group: Some(BUILD_UID),
                run_as_non_root: Some(true),
                run_as_user: Some(BUILD_UID),
                run_as_group: Some(BUILD_UID),
                seccomp_profile: Some(runtime_default()),
                ..PodSecurityContext::default()
            }),
            service_account_name: Some(BUILD_ACCOUNT.to_owned()),
            termination_grace_period_seconds: Some(5),
            volumes: Some(vec![
                scratch("sluice", Some(&spec.plan.pod_ephemeral_storage)),
                scratch("tmp", None),
            ]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> TenantPlan {
        TenantPlan::new(&sluice_core::config::Settings::default(), 2)
    }

    #[test]
    fn images_come_from_the_agent() {
        let labels = BTreeMap::from([("java".to_owned(), "eclipse-temurin:21".to_owned())]);
        let image = |agent: Agent| image_for(&agent, "debian:bookworm-slim", &labels);
        assert_eq!(image(Agent::Any).unwrap(), "debian:bookworm-slim");
        assert_eq!(
            image(Agent::Docker {
                image: "node:22".into()
            })
            .unwrap(),
            "node:22"
        );
        assert_eq!(
            image(Agent::Label {
                label: "java".into()
            })
            .unwrap(),
            "eclipse-temurin:21"
        );
        let err = image(Agent::Label {
            label: "arm".into(),
        })
        .unwrap_err();
        assert!(err.contains("`arm`") && err.contains("java"), "{err}");
        let yaml = "spec:\n  containers:\n  - name: maven\n    image: maven:3.9\n";
        assert_eq!(
            image(Agent::Kubernetes { yaml: yaml.into() }).unwrap(),
            "maven:3.9"
        );
        assert!(
            image(Agent::Kubernetes {
                yaml: "spec: {}".into()
            })
            .is_err()
        );
    }

    #[test]
    fn a_build_pod_is_restricted_labelled_and_bounded() {
        let plan = plan();
        let pod = build_pod(&BuildPod {
            org: "acme",
            project: "web",
            run_id: 42,
            attempt: 2,
            controller: "worker-a",
            image: "debian:bookworm-slim".into(),
            deadline_secs: Some(600),
            plan: &plan,
        });
        let json = serde_json::to_value(&pod).unwrap();
        assert_eq!(json["metadata"]["name"], "run-42-2");
        assert_eq!(json["metadata"]["namespace"], "sluice-t-acme");
        assert_eq!(json["metadata"]["labels"][RUN_LABEL], "42");
        assert_eq!(json["metadata"]["labels"][CONTROLLER_LABEL], "worker-a");
        let spec = &json["spec"];
        assert_eq!(spec["activeDeadlineSeconds"], 600);
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["serviceAccountName"], BUILD_ACCOUNT);
        let sc = &spec["containers"][0]["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"][0], "ALL");
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(
            spec["containers"][0]["resources"]["limits"]["memory"],
            plan.pod_memory
        );
    }
}
