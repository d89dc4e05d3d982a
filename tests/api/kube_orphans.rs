//! Orphaned build pods (`sluice_kube::orphans`) on the Kubernetes API STAND-IN: a worker's
//! pods whose run ended, is unknown, moved to another attempt or went silent are deleted;
//! a live one and another worker's are left alone.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr};
use serde_json::json;
use sluice_core::entities::run;

use crate::helpers::spawn_app;
use crate::kube_standin::KubeStandIn;

fn pod(name: &str, controller: &str, run: i64, attempt: i32, heartbeat: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": "sluice-t-acme",
        "labels": {"app.kubernetes.io/managed-by": "sluice", "sluice.dev/org": "acme",
            "sluice.dev/run": run.to_string(), "sluice.dev/attempt": attempt.to_string(),
            "sluice.dev/controller": controller},
        "annotations": {"sluice.dev/heartbeat": heartbeat}}})
}

#[tokio::test]
async fn a_workers_orphaned_pods_are_collected_and_live_ones_kept() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube = KubeStandIn::start();
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "web").await;
    for _ in 1..=3 {
        let (status, body) = app
            .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let ids: Vec<i64> = run::Entity::find()
        .order_by_asc(run::Column::Number)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let (ended, live, moved) = (ids[0], ids[1], ids[2]);
    let set = |id: i64, status: &'static str, attempt: i32| {
        run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(status))
            .col_expr(run::Column::Attempt, Expr::value(attempt))
            .filter(run::Column::Id.eq(id))
            .exec(&app.db)
    };
    set(ended, "succeeded", 1).await.unwrap();
    set(live, "running", 1).await.unwrap();
    set(moved, "running", 2).await.unwrap();

    let fresh = chrono::Utc::now().to_rfc3339();
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    let at = |name: &str| format!("/api/v1/namespaces/sluice-t-acme/pods/{name}");
    for (name, controller, run, attempt, heartbeat) in [
        ("ended", "w1", ended, 1, fresh.as_str()),
        ("live", "w1", live, 1, fresh.as_str()),
        ("moved", "w1", moved, 1, fresh.as_str()),
        ("unknown", "w1", 999_999, 1, fresh.as_str()),
        ("silent", "w1", live, 1, old.as_str()),
        ("theirs", "w2", 999_999, 1, fresh.as_str()),
    ] {
        kube.insert(&at(name), pod(name, controller, run, attempt, heartbeat));
    }

    let config = kube::Config::new(kube.url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let collect = || {
        sluice_kube::orphans::collect(
            &client,
            &app.db,
            "w1",
            Duration::from_secs(120),
            &app.state.metrics,
        )
    };
    let deleted = collect().await.unwrap();
    let mut deleted: Vec<&str> = deleted
        .iter()
        .map(|d| d.trim_start_matches("sluice-t-acme/"))
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["ended", "moved", "silent", "unknown"]);
    assert!(kube.get(&at("live")).is_some(), "a live run's pod stays");
    assert!(
        kube.get(&at("theirs")).is_some(),
        "another worker's pod stays"
    );
    assert_eq!(app.state.metrics.orphan_pods_deleted.get(), 4);
    // A second pass finds nothing more to do.
    let again = collect().await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}
