//! Deeply nested input everywhere a tenant can send it, beyond the Jenkinsfile (lint.rs and
//! workers.rs cover that): JSON request bodies, webhook payloads and JUnit reports. Each gets
//! a clear answer and the server keeps serving.

use crate::execution::{Pushed, push_to_fleet, setup, text_log};
use crate::fleet::wait_for_run;
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

    let res = crate::execution::github_push(&app, &hook, deep.into_bytes()).await;
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
    let Pushed {
        fleet: _fleet,
        number,
        path,
    } = push_to_fleet(&app, &hook, &repo).await;
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed", "unstable"]).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert_eq!(run["tests"]["passed"], 1, "{run}");
    assert!(log.contains("after-junit"), "{log}");
}
