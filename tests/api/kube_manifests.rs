//! `sluice kube manifests --org SLUG`: an org's build-namespace objects as YAML, from the
//! org in the database and the install's tenant settings, valid for Kubernetes 1.30 and 1.37
//! by `kubernetes-validate --strict` (the official schemas, offline).

use std::process::Command;

use crate::binary::sluice;
use crate::helpers::spawn_app;

#[tokio::test]
async fn an_orgs_namespace_objects_print_as_valid_yaml() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SLUICE_DATABASE_URL", app.test_db.url.as_str()),
        (
            "SLUICE_TENANT_EGRESS_CIDRS",
            "0.0.0.0/0:443,10.20.0.0/16:3128",
        ),
        ("SLUICE_TENANT_POD_MEMORY", "2Gi"),
    ];
    let out = sluice(dir.path(), &["kube", "manifests", "--org", "acme"], &env)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
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
    assert_eq!(docs[0]["metadata"]["name"], "sluice-t-acme");
    assert_eq!(
        docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    for doc in &docs[1..] {
        assert_eq!(doc["metadata"]["namespace"], "sluice-t-acme", "{doc}");
        assert_eq!(doc["metadata"]["labels"]["sluice.dev/org"], "acme", "{doc}");
    }
    let (_, org) = app.get_as("/api/v1/orgs/acme", &owner).await;
    let runs = org["max_concurrent_runs"].as_i64().unwrap();
    assert_eq!(docs[1]["spec"]["hard"]["pods"], runs.to_string());
    assert_eq!(
        docs[1]["spec"]["hard"]["limits.memory"],
        format!("{}Gi", 2 * runs)
    );
    let egress = docs[3]["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 3, "DNS and the two ranges");
    assert!(
        egress[1]["to"][0]["ipBlock"]["except"]
            .to_string()
            .contains("169.254.169.254/32"),
        "{}",
        egress[1]
    );
    assert_eq!(docs[4]["automountServiceAccountToken"], false);

    validate(&yaml);

    let missing = sluice(dir.path(), &["kube", "manifests", "--org", "nobody"], &env)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no organisation `nobody`"));
    let bad = sluice(
        dir.path(),
        &["kube", "manifests", "--org", "acme"],
        &[
            ("SLUICE_DATABASE_URL", app.test_db.url.as_str()),
            ("SLUICE_TENANT_EGRESS_CIDRS", "10.0.0.0/8:https"),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tenant_egress_cidrs"));
}

/// Runs `kubernetes-validate --strict` on `yaml` for Kubernetes 1.30 and 1.37.
pub(crate) fn validate(yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, yaml).unwrap();
    for version in ["1.30.0", "1.37.0"] {
        let checked = Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| {
                panic!("kubernetes-validate ({e}): scripts/test-services.sh installs it")
            });
        assert!(
            checked.status.success(),
            "Kubernetes {version}: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

/// A build pod, as the Kubernetes executor will create it, is valid for both versions.
#[test]
fn a_build_pod_is_a_valid_pod() {
    let plan = sluice_kube::TenantPlan::new(&sluice_core::config::Settings::default(), 2);
    let pod = sluice_kube::pod::build_pod(&sluice_kube::pod::BuildPod {
        org: "acme",
        project: "web",
        run_id: 7,
        attempt: 1,
        controller: "worker-1",
        image: "debian:bookworm-slim".into(),
        deadline_secs: Some(3600),
        plan: &plan,
    });
    let yaml = sluice_kube::to_yaml(&[serde_json::to_value(&pod).unwrap()]).unwrap();
    assert!(yaml.contains("kind: Pod"), "{yaml}");
    validate(&yaml);
}
