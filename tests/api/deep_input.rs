//! Deeply nested input everywhere a tenant can send it, beyond the Jenkinsfile (lint.rs and
//! workers.rs cover that): JSON request bodies, webhook payloads and JUnit reports. Each gets
//! a clear answer and the server keeps serving.

use std::time::Duration;

use sluice_core::crypto::hmac_sha256_hex;

use crate::execution::{setup, text_log};
use crate::fleet::{Backend, queue, start_fleet, wait_for_run};
use crate::helpers::spawn_app;

const LEVELS: usize = 100_000;

#[tokio::test]
async fn deep_json_bodies_and_webhook_payloads_get_a_400() {
    let app = spawn_app().await;
    let (owner, _repo, hook) = setup(
        &app,
        "pipeline { agent any\n stages { stage('a') { steps { echo 'x' } } } }\n",
    )
    .await;
    let deep = format!("{}{}", "[".repeat(LEVELS), "]".repeat(LEVELS));
    let crate::helpers::Auth::Session { cookie, csrf } = &owner else {
        panic!("signup gives a session")
    };
    let res = app
        .client
        .post(app.url("/api/v1/orgs"))
        .header("cookie", format!("sluice_session={cookie}"))
        .header("x-csrf-token", csrf)
        .header("content-type", "application/json")
        .body(deep.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");

    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(hook.as_bytes(), deep.as_bytes())
    );
    let res = app
        .client
        .post(app.url("/hooks/github/acme/web"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", signature)
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");

    let (status, _) = app.get_as("/api/v1/orgs/acme", &owner).await;
    assert_eq!(status, 200, "the server still serves");
}

#[tokio::test]
async fn a_deeply_nested_junit_report_is_read_without_recursion() {
    let app = spawn_app().await;
    let jenkinsfile = format!(
        r#"pipeline {{
    agent any
    stages {{
        stage('Test') {{
            steps {{
                sh 'yes "<a>" | head -n {LEVELS} | tr -d "\n" > open; yes "</a>" | head -n {LEVELS} | tr -d "\n" > close; {{ printf "<testsuite><testcase/>"; cat open close; printf "</testsuite>"; }} > r.xml'
                junit 'r.xml'
                echo 'after-junit'
            }}
        }}
    }}
}}
"#
    );
    let (owner, repo, hook) = setup(&app, &jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = crate::execution::push(&app, &hook, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed", "unstable"]).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert_eq!(run["tests"]["passed"], 1, "{run}");
    assert!(log.contains("after-junit"), "{log}");
}
