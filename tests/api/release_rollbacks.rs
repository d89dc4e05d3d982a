//! Rollbacks on the local runtime: a failed smoke test, a green that answers 5xx after
//! `shift` (caught by the analysis), a manual rollback after success, and a release controller
//! killed mid-release whose release another controller resumes.

use std::time::Duration;

use serde_json::Value;

use crate::execution::push;
use crate::fleet::{Backend, queue, start_fleet};
use crate::helpers::{Auth, TestApp, spawn_app};
use crate::release_support::{
    Load, Releases, bump, explain, failures, monitoring, newest_release, pipeline, release_of,
    release_project, run_ended, step, wait_release, web_in,
};

/// Version 1 deployed to production with `production`'s arguments; returns the owner, the
/// repository, the webhook secret, and the app's URL.
async fn first_version(
    app: &TestApp,
    production: &str,
    flags: &std::path::Path,
) -> (Auth, crate::fleet::Repo, String, String) {
    let (owner, repo, hook) = release_project(app, &pipeline(production), flags).await;
    let first = push(app, &hook, &repo).await;
    let run = run_ended(app, &owner, first).await;
    assert_eq!(
        run["status"],
        "succeeded",
        "{run}\n{}",
        explain(app, &owner, first).await
    );
    let url = web_in(app, &owner, "production").await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    bump(&repo);
    (owner, repo, hook, url)
}

fn routed_versions(web: &Value) -> Vec<i64> {
    let mut versions: Vec<i64> = web["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["routed"] == true)
        .map(|i| i["version"].as_i64().unwrap())
        .collect();
    versions.sort();
    versions
}

#[tokio::test]
async fn a_failed_smoke_test_rolls_back_without_a_failed_request() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let _releases = Releases::start(&app, "releases-a", Duration::from_secs(10));
    let args = r#"instances: 3, smoke: 'curl -fsS "$GREEN_URL/no-such-page"', monitorSeconds: 2"#;
    let (owner, repo, hook, url) = first_version(&app, args, flags.path()).await;

    let load = Load::start(&url, 4);
    let second = push(&app, &hook, &repo).await;
    let run = run_ended(&app, &owner, second).await;
    load.until(load.count() + 500).await;
    let hits = load.finish().await;

    assert_eq!(run["status"], "failed", "{run}");
    let release = newest_release(&app, &owner).await;
    assert_eq!(release["status"], "rolled_back", "{release}");
    let reason = release["reason"].as_str().unwrap();
    assert!(reason.starts_with("smoke test failed: "), "{reason}");
    assert_eq!(step(&release, "smoke")["status"], "failed", "{release}");
    assert_eq!(step(&release, "shift")["status"], "pending", "{release}");
    assert_eq!(
        step(&release, "rollback")["status"],
        "succeeded",
        "{release}"
    );
    assert!(
        run["reason"].as_str().unwrap().contains("rolled back"),
        "{run}"
    );
    let failed = failures(&hits);
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        hits.iter().all(|h| h.version.as_deref() == Some("1")),
        "green was never routed"
    );
    let web = web_in(&app, &owner, "production").await;
    assert_eq!(web["version"], 1, "{web}");
    assert_eq!(routed_versions(&web), [1, 1, 1], "{web}");
    let log = crate::execution::text_log(&app, &owner, second).await;
    assert!(
        log.contains("curl: (22)") && log.contains("smoke failed"),
        "{log}"
    );
}

#[tokio::test]
async fn a_green_answering_5xx_after_shift_is_rolled_back_by_the_analysis_within_5_s() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let _releases = Releases::start(&app, "releases-a", Duration::from_secs(10));
    let (owner, repo, hook, url) =
        first_version(&app, "instances: 3, monitorSeconds: 60", flags.path()).await;

    let load = Load::start(&url, 4);
    let second = push(&app, &hook, &repo).await;
    let id = release_of(&app, &owner, second).await;
    monitoring(&app, &owner, id).await;
    // Green starts failing its requests (its health check still passes).
    std::fs::write(flags.path().join(format!("break-{second}")), "").unwrap();
    let breach = chrono::Utc::now();
    let release = wait_release(&app, &owner, id, "its end", |r| {
        r["status"] != "in_progress"
    })
    .await;
    load.until(load.count() + 500).await;
    let hits = load.finish().await;

    assert_eq!(release["status"], "rolled_back", "{release}");
    let reason = release["reason"].as_str().unwrap();
    assert!(reason.starts_with("green: success rate"), "{reason}");
    let rollback = step(&release, "rollback");
    let back: chrono::DateTime<chrono::Utc> =
        rollback["finished_at"].as_str().unwrap().parse().unwrap();
    let took = (back - breach).to_std().unwrap();
    // docs/BENCHMARKS.md records this figure (`-- --nocapture` shows it).
    eprintln!("breach to all traffic on blue: {} ms", took.as_millis());
    assert!(
        took < Duration::from_secs(5),
        "all traffic on blue {took:?} after the breach"
    );
    // Only green failed, only between the breach and the rollback; blue took everything after.
    for hit in failures(&hits) {
        assert_eq!(
            hit.version.as_deref(),
            Some(second.to_string().as_str()),
            "{hit:?}"
        );
        assert!(hit.at >= breach && hit.at <= back, "{hit:?}");
    }
    assert!(
        hits.iter()
            .filter(|h| h.at > back)
            .all(|h| h.version.as_deref() == Some("1") && h.status == Some(200))
    );
    let run = run_ended(&app, &owner, second).await;
    assert_eq!(run["status"], "failed", "{run}");
    let web = web_in(&app, &owner, "production").await;
    assert_eq!(routed_versions(&web), [1, 1, 1], "{web}");
}

#[tokio::test]
async fn a_manual_rollback_after_success_brings_the_previous_version_back() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let _releases = Releases::start(&app, "releases-a", Duration::from_secs(10));
    let (owner, repo, hook, url) =
        first_version(&app, "instances: 3, monitorSeconds: 1", flags.path()).await;
    let second = push(&app, &hook, &repo).await;
    let run = run_ended(&app, &owner, second).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let release = newest_release(&app, &owner).await;
    let id = release["id"].as_i64().unwrap();
    let first_id = release["id"].as_i64().unwrap() - 1;
    assert_eq!(
        routed_versions(&web_in(&app, &owner, "production").await),
        [2, 2, 2]
    );

    let load = Load::start(&url, 4);
    load.until(300).await;
    let path = format!("/api/v1/orgs/acme/projects/web/releases/{id}/rollback");
    let (status, body) = app.post_as(&path, &owner, serde_json::json!({})).await;
    assert_eq!(status, 202, "{body}");
    let release = wait_release(&app, &owner, id, "rolled back", |r| {
        r["status"] == "rolled_back"
    })
    .await;
    let back: chrono::DateTime<chrono::Utc> = step(&release, "rollback")["finished_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    load.until(load.count() + 500).await;
    let hits = load.finish().await;
    let failed = failures(&hits);
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        hits.iter()
            .filter(|h| h.at > back)
            .all(|h| h.version.as_deref() == Some("1"))
    );
    let web = web_in(&app, &owner, "production").await;
    assert_eq!(web["version"], 1, "{web}");
    assert_eq!(routed_versions(&web), [1, 1, 1], "{web}");
    assert_eq!(release["reason"], "rolled back on request", "{release}");

    // Nothing is left to roll back: this one was, and the first had nothing before it.
    let (status, body) = app.post_as(&path, &owner, serde_json::json!({})).await;
    assert_eq!(status, 409, "{body}");
    let first = format!("/api/v1/orgs/acme/projects/web/releases/{first_id}/rollback");
    let (status, body) = app.post_as(&first, &owner, serde_json::json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app.get_as("/api/v1/orgs/acme/audit", &owner).await;
    assert_eq!(status, 200);
    assert!(body.to_string().contains("release.rollback"), "{body}");
}

#[tokio::test]
async fn a_release_controller_killed_mid_release_is_resumed_by_another() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let mut a = Releases::start(&app, "releases-a", Duration::from_secs(2));
    let (owner, repo, hook, url) =
        first_version(&app, "instances: 3, monitorSeconds: 4", flags.path()).await;
    let second = push(&app, &hook, &repo).await;
    let id = release_of(&app, &owner, second).await;
    monitoring(&app, &owner, id).await;
    a.kill();
    let _b = Releases::start(&app, "releases-b", Duration::from_secs(2));
    let run = run_ended(&app, &owner, second).await;
    assert_eq!(
        run["status"],
        "succeeded",
        "{run}\n{}",
        explain(&app, &owner, second).await
    );
    let release = newest_release(&app, &owner).await;
    assert_eq!(release["status"], "succeeded", "{release}");
    assert_eq!(step(&release, "complete")["status"], "succeeded");
    let web = web_in(&app, &owner, "production").await;
    assert_eq!(routed_versions(&web), [2, 2, 2], "{web}");
    assert_eq!(
        web["url"],
        url.as_str(),
        "the new controller serves the same URL"
    );
    let answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.headers()["x-app-version"], "2");
    let holder = app
        .scalar("SELECT lease_holder FROM app_slots WHERE app = 'web' AND lease_holder IS NOT NULL LIMIT 1")
        .await;
    assert_eq!(holder.as_deref(), Some("releases-b"));
}
