//! The tenant provisioner (`sluice kube reconcile`) against the Kubernetes API STAND-IN
//! (tests/api/kube_standin; no cluster runs here), through the unchanged kube-rs client:
//! two orgs get their namespace objects by server-side apply as `sluice`, a managed namespace
//! whose org is gone is deleted and an unmanaged one left alone, drift is repaired on the next
//! pass, and a new org gets its namespace soon after it is created.

use std::time::Duration;

use serde_json::json;

use crate::binary::sluice;
use crate::helpers::{spawn_app, wait_until};
use crate::kube_standin::KubeStandIn;

fn paths(org: &str) -> [String; 5] {
    let ns = format!("sluice-t-{org}");
    [
        format!("/api/v1/namespaces/{ns}"),
        format!("/api/v1/namespaces/{ns}/resourcequotas/sluice-quota"),
        format!("/api/v1/namespaces/{ns}/limitranges/sluice-limits"),
        format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/sluice-default-deny"),
        format!("/api/v1/namespaces/{ns}/serviceaccounts/sluice-build"),
    ]
}

#[tokio::test]
async fn tenant_namespaces_are_applied_repaired_and_collected_on_a_stand_in() {
    let kube = KubeStandIn::start();
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_org(&owner, "beta").await;
    kube.insert(
        "/api/v1/namespaces/sluice-t-gone",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sluice-t-gone",
            "labels": {"app.kubernetes.io/managed-by": "sluice", "sluice.dev/org": "gone"}}}),
    );
    kube.insert(
        "/api/v1/namespaces/default",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path()).display().to_string();
    let env = [
        ("SLUICE_DATABASE_URL", app.test_db.url.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("SLUICE_TENANT_EGRESS_CIDRS", "0.0.0.0/0:443"),
    ];
    let once = || async {
        let out = tokio::process::Command::from(sluice(
            dir.path(),
            &["kube", "reconcile", "--once"],
            &env,
        ))
        .output()
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        stdout
    };

    let summary = once().await;
    assert!(
        summary.contains("2 applied, 1 deleted (sluice-t-gone), 0 failed"),
        "{summary}"
    );
    for org in ["acme", "beta"] {
        for path in paths(org) {
            let object = kube.get(&path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!(object["metadata"]["managedFields"][0]["manager"], "sluice");
            assert_eq!(
                object["metadata"]["labels"]["sluice.dev/org"], org,
                "{path}: {object}"
            );
        }
    }
    let ns = kube.get("/api/v1/namespaces/sluice-t-acme").unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert!(kube.get("/api/v1/namespaces/sluice-t-gone").is_none());
    assert!(
        kube.get("/api/v1/namespaces/default").is_some(),
        "an unmanaged namespace is left alone"
    );

    // Drift: someone raises the quota, adds a label of their own and deletes the policy.
    let [_, quota, _, policy, _] = paths("acme");
    kube.tamper(&quota, |q| {
        q["spec"]["hard"]["pods"] = json!("99");
        q["metadata"]["labels"]["team"] = json!("ops");
    });
    kube.remove(&policy);
    once().await;
    let repaired = kube.get(&quota).unwrap();
    let (_, org) = app.get_as("/api/v1/orgs/acme", &owner).await;
    assert_eq!(
        repaired["spec"]["hard"]["pods"],
        org["max_concurrent_runs"].to_string(),
        "{repaired}"
    );
    assert_eq!(
        repaired["metadata"]["labels"]["team"], "ops",
        "fields of other managers stay"
    );
    let policy = kube.get(&policy).expect("the policy is back");
    assert_eq!(
        policy["spec"]["egress"][1]["to"][0]["ipBlock"]["except"][0],
        "169.254.169.254/32"
    );

    // The controller: a new org gets its namespace soon after it is created.
    let mut controller = tokio::process::Command::from(sluice(
        dir.path(),
        &["kube", "reconcile", "--poll-ms", "100"],
        &env,
    ));
    let mut controller = controller.kill_on_drop(true).spawn().unwrap();
    app.create_org(&owner, "gamma").await;
    wait_until(Duration::from_secs(30), || async {
        paths("gamma").iter().all(|p| kube.get(p).is_some())
    })
    .await;
    controller.start_kill().unwrap();
    let _ = controller.wait().await;
}
