//! The objects of one tenant's build namespace, from the org and the install's settings:
//!
//! - the Namespace `sluice-t-<org>`, labelled with the org, Pod Security `restricted` enforced;
//! - a ResourceQuota (the org's concurrent runs × each build pod's limits) and a LimitRange
//!   whose defaults let pods that set nothing in;
//! - a NetworkPolicy denying all ingress and all egress but DNS and the configured ranges,
//!   never the cloud metadata addresses;
//! - the build ServiceAccount, with no token mounted and no RoleBinding.
//!
//! Pure functions: the provisioner applies them with server-side apply, `sluice kube
//! manifests` prints them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_core::addresses::EgressRule;
use sluice_core::config::Settings;

/// The label every object Sluice manages carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "sluice");
/// The label naming the org a tenant object belongs to.
pub const ORG_LABEL: &str = "sluice.dev/org";
/// The build pods' ServiceAccount in each tenant namespace.
pub const BUILD_ACCOUNT: &str = "sluice-build";

/// Addresses no build pod may reach, even inside a configured range.
const METADATA: [&str; 3] = [
    "169.254.169.254/32",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
];

/// What one org may use, from the install's settings and the org's concurrent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPlan {
    /// Build pods at once: the org's `max_concurrent_runs`.
    pub pods: u32,
    /// One build pod's limits (`tenant_pod_*`).
    pub pod_cpu: String,
    pub pod_memory: String,
    pub pod_ephemeral_storage: String,
    /// Ranges build pods may reach besides DNS.
    pub egress: Vec<EgressRule>,
}

impl TenantPlan {
    /// The plan of an org allowed `max_concurrent_runs` runs at once.
    pub fn new(settings: &Settings, max_concurrent_runs: i32) -> TenantPlan {
        TenantPlan {
            pods: u32::try_from(max_concurrent_runs).unwrap_or(1).max(1),
            pod_cpu: settings.tenant_pod_cpu.clone(),
            pod_memory: settings.tenant_pod_memory.clone(),
            pod_ephemeral_storage: settings.tenant_pod_ephemeral_storage.clone(),
            egress: sluice_core::addresses::parse_egress(&settings.tenant_egress_cidrs)
                .unwrap_or_default(),
        }
    }
}

/// The namespace of `org`'s builds.
pub fn namespace_of(org: &str) -> String {
    format!("sluice-t-{org}")
}

fn labels(org: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (ORG_LABEL.to_owned(), org.to_owned()),
    ])
}

fn meta(name: &str, namespace: Option<&str>, org: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels(org)),
        ..ObjectMeta::default()
    }
}

/// `value` times `n`, for a quota: the number scaled, the suffix kept (`2` × 3 = `6`,
/// `512Mi` × 3 = `1536Mi`, `1.5` × 2 = `3`).
fn times(value: &str, n: u32) -> Quantity {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    let scaled = number.parse::<f64>().unwrap_or(0.0) * f64::from(n);
    let number = if scaled.fract() == 0.0 {
        format!("{scaled:.0}")
    } else {
        format!("{scaled}")
    };
    Quantity(format!("{number}{suffix}"))
}

fn quantities(pairs: &[(&str, Quantity)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// The NetworkPolicy peer for a configured range, with the metadata addresses cut out.
fn peer(net: IpNet) -> NetworkPolicyPeer {
    let except: Vec<String> = METADATA
        .iter()
        .filter_map(|m| m.parse::<IpNet>().ok())
        .filter(|m| {
            matches!(
                (net.addr(), m.addr()),
                (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
            ) && net.contains(m)
                && net != *m
        })
        .map(|m| m.to_string())
        .collect();
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: net.to_string(),
            except: (!except.is_empty()).then_some(except),
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn port(protocol: &str, number: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(i32::from(number))),
        ..NetworkPolicyPort::default()
    }
}

/// The objects of one tenant namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantObjects {
    pub namespace: Namespace,
    pub quota: ResourceQuota,
    pub limits: LimitRange,
    pub policy: NetworkPolicy,
    pub account: ServiceAccount,
}

impl TenantObjects {
    /// In the order to apply them (the namespace first), as JSON with `apiVersion` and `kind`.
    pub fn to_values(&self) -> Vec<serde_json::Value> {
        [
            serde_json::to_value(&self.namespace),
            serde_json::to_value(&self.quota),
            serde_json::to_value(&self.limits),
            serde_json::to_value(&self.policy),
            serde_json::to_value(&self.account),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The tenant objects of `org` under `plan`, as JSON values in the order to apply them.
pub fn manifests(org: &str, plan: &TenantPlan) -> Vec<serde_json::Value> {
    objects(org, plan).to_values()
}

/// The tenant objects of `org` under `plan`.
pub fn objects(org: &str, plan: &TenantPlan) -> TenantObjects {
    let ns = namespace_of(org);
    let mut ns_labels = labels(org);
    for mode in ["enforce", "audit", "warn"] {
        ns_labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".to_owned(),
        );
        ns_labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_owned(),
        );
    }
    let namespace = Namespace {
        metadata: ObjectMeta {
            labels: Some(ns_labels),
            ..meta(&ns, None, org)
        },
        ..Namespace::default()
    };

    let n = plan.pods;
    let quota = ResourceQuota {
        metadata: meta("sluice-quota", Some(&ns), org),
        spec: Some(ResourceQuotaSpec {
            hard: Some(quantities(&[
                ("pods", Quantity(n.to_string())),
                ("requests.cpu", times(&plan.pod_cpu, n)),
                ("limits.cpu", times(&plan.pod_cpu, n)),
                ("requests.memory", times(&plan.pod_memory, n)),
                ("limits.memory", times(&plan.pod_memory, n)),
                (
                    "requests.ephemeral-storage",
                    times(&plan.pod_ephemeral_storage, n),
                ),
                (
                    "limits.ephemeral-storage",
                    times(&plan.pod_ephemeral_storage, n),
                ),
            ])),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    };

    // A container that sets nothing gets the whole pod's share as its limit and request, so
    // it is admitted under the quota; one that sets more than that is refused.
    let per_pod = quantities(&[
        ("cpu", Quantity(plan.pod_cpu.clone())),
        ("memory", Quantity(plan.pod_memory.clone())),
        (
            "ephemeral-storage",
            Quantity(plan.pod_ephemeral_storage.clone()),
        ),
    ]);
    let limits = LimitRange {
        metadata: meta("sluice-limits", Some(&ns), org),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_owned(),
                default: Some(per_pod.clone()),
                default_request: Some(per_pod.clone()),
                max: Some(per_pod),
                ..LimitRangeItem::default()
            }],
        }),
    };

    let mut egress = vec![NetworkPolicyEgressRule {
        // The cluster's DNS, wherever it runs, on port 53 only.
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "k8s-app".to_owned(),
                    "kube-dns".to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
    }];
    for rule in &plan.egress {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![peer(rule.net)]),
            ports: rule.port.map(|p| vec![port("TCP", p)]),
        });
    }
    let policy = NetworkPolicy {
        metadata: meta("sluice-default-deny", Some(&ns), org),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: None,
            egress: Some(egress),
        }),
    };

    let account = ServiceAccount {
        metadata: meta(BUILD_ACCOUNT, Some(&ns), org),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };

    TenantObjects {
        namespace,
        quota,
        limits,
        policy,
        account,
    }
}

/// YAML documents, one per object, each starting with `---`.
pub fn to_yaml(objects: &[serde_json::Value]) -> Result<String, String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(object).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(egress: &str) -> TenantPlan {
        let settings = Settings {
            tenant_egress_cidrs: egress.to_owned(),
            ..Settings::default()
        };
        TenantPlan::new(&settings, 3)
    }

    #[test]
    fn quotas_scale_with_concurrent_runs() {
        assert_eq!(times("2", 3).0, "6");
        assert_eq!(times("512Mi", 3).0, "1536Mi");
        assert_eq!(times("1.5", 3).0, "4.5");
        assert_eq!(times("250m", 4).0, "1000m");
        let objects = manifests("acme", &plan(""));
        let quota = &objects[1];
        assert_eq!(quota["kind"], "ResourceQuota");
        assert_eq!(quota["metadata"]["namespace"], "sluice-t-acme");
        assert_eq!(quota["spec"]["hard"]["pods"], "3");
        assert_eq!(quota["spec"]["hard"]["limits.memory"], "12Gi");
    }

    #[test]
    fn the_namespace_enforces_restricted_and_nothing_reaches_metadata() {
        let objects = manifests("acme", &plan("0.0.0.0/0:443, 10.0.0.0/8"));
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ResourceQuota",
                "LimitRange",
                "NetworkPolicy",
                "ServiceAccount"
            ]
        );
        let labels = &objects[0]["metadata"]["labels"];
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
        assert_eq!(labels[ORG_LABEL], "acme");
        let policy = &objects[3]["spec"];
        assert_eq!(
            policy["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
        assert!(
            policy.get("ingress").is_none(),
            "no ingress allowed: {policy}"
        );
        let egress = policy["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 3);
        assert_eq!(egress[0]["ports"][0]["port"], 53);
        let everywhere = &egress[1]["to"][0]["ipBlock"];
        assert_eq!(everywhere["cidr"], "0.0.0.0/0");
        assert_eq!(
            everywhere["except"],
            serde_json::json!(["169.254.169.254/32", "100.100.100.200/32"])
        );
        assert_eq!(egress[1]["ports"][0]["port"], 443);
        assert!(egress[2]["to"][0]["ipBlock"].get("except").is_none());
        assert!(egress[2].get("ports").is_none(), "all ports: {}", egress[2]);
        assert_eq!(objects[4]["automountServiceAccountToken"], false);
        let yaml = to_yaml(&objects).unwrap();
        assert_eq!(yaml.matches("---\n").count(), 5);
        assert!(yaml.contains("kind: NetworkPolicy"), "{yaml}");
    }
}
