//! Releases end to end on the local runtime: a pipeline builds a small HTTP app, deploys it
//! to staging, waits at a QA gate and releases it blue-green to production while a load
//! generator hits `APP_URL`; a failed smoke test, a green that breaks after `shift`, and a
//! manual rollback each put blue back without a failed request.

use std::time::Duration;

use serde_json::Value;

use crate::execution::push;
use crate::fleet::{Backend, queue, start_fleet};
use crate::helpers::spawn_app;
use crate::release_support::{
    Load, Releases, approve, bump, failures, newest_release, release_project, run_ended, step,
    web_in,
};

const FULL: &str = r#"pipeline {
    agent any
    stages {
        stage('Build') {
            steps {
                sh 'mkdir -p dist && cp app.py dist/app.py'
                archiveArtifacts artifacts: 'dist/**'
            }
        }
        stage('Staging') {
            steps {
                deploy app: 'web', environment: 'staging', artifact: 'dist/**', command: 'python3 dist/app.py', instances: 1, healthPath: '/healthz', monitorSeconds: 1
                sh 'curl -fsS "$APP_URL/" | grep "hello from"'
            }
        }
        stage('QA') {
            input { message 'Release to production?' }
            steps { echo 'approved for production' }
        }
        stage('Production') {
            steps {
                deploy app: 'web', environment: 'production', artifact: 'dist/**', command: 'python3 dist/app.py', instances: 6, healthPath: '/healthz', smoke: 'curl -fsS "$GREEN_URL/healthz"', monitorSeconds: 8
            }
        }
    }
}
"#;

fn versions(instances: &Value, colour: &str, routed: bool) -> usize {
    instances
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["color"] == colour && i["routed"] == routed && i["ready"] == true)
        .count()
}

#[tokio::test]
async fn a_full_release_goes_staging_qa_production_blue_green_without_a_failed_request() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let (owner, repo, hook) = release_project(&app, FULL, flags.path()).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 2);
    let _releases = Releases::start(&app, "releases-a", Duration::from_secs(10));

    // Version 1: the first deploy to each environment starts its instances.
    let first = push(&app, &hook, &repo).await;
    approve(&app, &owner, first).await;
    let run = run_ended(&app, &owner, first).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let production = web_in(&app, &owner, "production").await;
    assert_eq!(production["version"], first, "{production}");
    let url = production["url"].as_str().unwrap().to_owned();
    let staging = web_in(&app, &owner, "staging").await;
    assert_ne!(
        staging["url"], production["url"],
        "each app environment has its own port"
    );

    // Version 2, blue-green under load.
    bump(&repo);
    let load = Load::start(&url, 8);
    let second = push(&app, &hook, &repo).await;
    approve(&app, &owner, second).await;
    let run = run_ended(&app, &owner, second).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    load.until(10_000).await;
    let hits = load.finish().await;

    let release = newest_release(&app, &owner).await;
    assert_eq!(release["status"], "succeeded", "{release}");
    assert_eq!(release["environment"], "production", "{release}");
    assert_eq!(release["strategy"], "blueGreen", "{release}");
    let names: Vec<&str> = release["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["start-green", "smoke", "shift", "monitor", "complete"]
    );
    assert!(hits.len() >= 10_000, "only {} requests", hits.len());
    let failed = failures(&hits);
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}\nrelease: {release:#}",
        failed.len(),
        hits.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, first: {:?}",
        failed.len(),
        hits.len(),
        failed.first()
    );

    // While `monitor` ran, green (version 2) took 4 of 6 shares.
    let monitor = step(&release, "monitor");
    let from: chrono::DateTime<chrono::Utc> =
        monitor["started_at"].as_str().unwrap().parse().unwrap();
    let to: chrono::DateTime<chrono::Utc> =
        monitor["finished_at"].as_str().unwrap().parse().unwrap();
    let during: Vec<_> = hits.iter().filter(|h| h.at > from && h.at < to).collect();
    assert!(
        during.len() > 500,
        "only {} requests while monitoring",
        during.len()
    );
    let green = during
        .iter()
        .filter(|h| h.version.as_deref() == Some(second.to_string().as_str()))
        .count();
    let share = green as f64 / during.len() as f64;
    assert!(
        (share - 2.0 / 3.0).abs() <= 0.05,
        "green share while monitoring: {share:.3}"
    );

    // The analysis kept per-colour figures while it monitored.
    let green_figures = &release["analysis"]["green"];
    assert!(
        green_figures["requests"].as_u64().unwrap() > 100,
        "{release}"
    );
    assert_eq!(green_figures["success_rate"], 1.0, "{release}");
    assert!(
        release["analysis"]["blue"]["requests"].as_u64().unwrap() > 50,
        "{release}"
    );

    // At the end: 6 green instances, none of blue routed.
    let production = web_in(&app, &owner, "production").await;
    assert_eq!(production["version"], second, "{production}");
    assert_eq!(
        versions(&production["instances"], "green", true),
        6,
        "{production}"
    );
    assert_eq!(
        versions(&production["instances"], "blue", true),
        0,
        "{production}"
    );
    assert_eq!(
        production["url"],
        url.as_str(),
        "APP_URL stays the same across releases"
    );

    // The metrics count the release, its steps and the routed requests by colour.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"sluice_releases_total{env="production",result="succeeded"} 2"#,
        r#"sluice_release_steps_total{env="production",outcome="succeeded"} 6"#,
        r#"sluice_route_requests_total{app="web",code="2xx",color="green",env="production"}"#,
        r#"sluice_route_requests_total{app="web",code="2xx",color="blue",env="production"}"#,
    ] {
        assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
    }

    // The run's log follows the plan.
    let log = crate::execution::text_log(&app, &owner, second).await;
    let shifted = format!("release {}: shift succeeded", release["id"]);
    for line in [
        "smoke test against http://127.0.0.1:",
        shifted.as_str(),
        "APP_URL=http://",
    ] {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }
}
