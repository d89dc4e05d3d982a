//! Approval gates end to end: who may answer (`submitter`), a rejection cancelling the run
//! with `post { aborted }`, and a gate's parameters asked of the approver (API and page form).

use std::time::Duration;

use serde_json::json;

use crate::execution::{push, setup, text_log};
use crate::fleet::{Backend, queue, start_fleet, wait_for_run};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_rejected_gate_cancels_the_run_and_only_named_submitters_answer() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Release') {
            input {
                message 'Release?'
                submitter 'qa@example.com'
            }
            steps { echo 'released' }
        }
    }
    post {
        aborted { echo 'post-aborted-ran' }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let (qa, _) = app.join(&owner, "acme", "qa@example.com", "viewer").await;
    let (dev, _) = app
        .join(&owner, "acme", "dev@example.com", "developer")
        .await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["waiting", "failed"]).await;
    let id = run["waiting_for"]["id"].clone();
    let (status, body) = app
        .post_as(
            &format!("{path}/approve"),
            &dev,
            json!({"id": id, "approve": true}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .post_as(
            &format!("{path}/approve"),
            &qa,
            json!({"id": id, "approve": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = wait_for_run(&app, &owner, &path, &["cancelled", "failed", "succeeded"]).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["reason"], "rejected by qa@example.com", "{run}");
    let log = text_log(&app, &owner, number).await;
    assert!(
        log.contains("post-aborted-ran") && !log.contains("released"),
        "{log}"
    );
    let (_, audit) = app.get_as("/api/v1/orgs/acme/audit", &owner).await;
    assert!(audit.to_string().contains("run.reject"), "{audit}");
}

#[tokio::test]
async fn a_gate_asks_for_its_parameters_and_the_stage_sees_the_answers() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Release') {
            input {
                message 'Where to?'
                ok 'Release'
                parameters {
                    string(name: 'TARGET', defaultValue: 'eu-west-1', description: 'Region')
                    choice(name: 'SIZE', choices: ['small', 'large'], description: 'Fleet')
                }
            }
            steps { sh 'echo "target=$TARGET size=$SIZE"' }
        }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 2);
    let base = "/api/v1/orgs/acme/projects/web/runs";

    // Through the API: a value outside the choices is refused naming the field; then approved.
    let first = push(&app, &secret, &repo).await;
    let run = wait_for_run(&app, &owner, &format!("{base}/{first}"), &["waiting"]).await;
    let gate = run["waiting_for"].clone();
    assert_eq!(gate["parameters"][0]["name"], "TARGET", "{gate}");
    assert_eq!(
        gate["parameters"][1]["choices"],
        json!(["small", "large"]),
        "{gate}"
    );
    let approve = format!("{base}/{first}/approve");
    let (status, body) = app
        .post_as(
            &approve,
            &owner,
            json!({"id": gate["id"], "approve": true, "params": {"SIZE": "huge"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["field"], "params", "{body}");
    let (status, body) = app
        .post_as(
            &approve,
            &owner,
            json!({"id": gate["id"], "approve": true, "params": {"TARGET": "us-east-1"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for_run(&app, &owner, &format!("{base}/{first}"), &["succeeded"]).await;
    let log = text_log(&app, &owner, first).await;
    assert!(log.contains("target=us-east-1 size=small"), "{log}");

    // Through the run page's form: `param_NAME` fields.
    let second = push(&app, &secret, &repo).await;
    let run = wait_for_run(&app, &owner, &format!("{base}/{second}"), &["waiting"]).await;
    let page = format!("/orgs/acme/projects/web/runs/{second}");
    let (_, html) = app.page(&page, &owner).await;
    assert!(
        html.contains("name=\"param_TARGET\" value=\"eu-west-1\""),
        "{html}"
    );
    let id = run["waiting_for"]["id"].as_str().unwrap().to_owned();
    let (status, location, _) = app
        .submit(
            &format!("{page}/approve"),
            &owner,
            &[("id", &id), ("approve", "true"), ("param_SIZE", "large")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some(page.as_str()));
    wait_for_run(&app, &owner, &format!("{base}/{second}"), &["succeeded"]).await;
    let log = text_log(&app, &owner, second).await;
    assert!(log.contains("target=eu-west-1 size=large"), "{log}");
}

/// An `input` in matrix cells (or parallel branches): the cells ask one at a time, each gate
/// naming its cell, and each cell goes on once its own gate is answered.
#[tokio::test]
async fn matrix_cells_with_an_input_ask_one_at_a_time() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Platforms') {
            matrix {
                axes { axis { name 'OS'; values 'linux', 'mac' } }
                stages {
                    stage('Ship') {
                        input { message "Ship ${OS}?" }
                        steps { sh 'echo "shipped $OS"' }
                    }
                }
            }
        }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let mut asked = Vec::new();
    for _ in 0..2 {
        // The next gate (a new id) once the previous one was answered.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let run = loop {
            let run = wait_for_run(&app, &owner, &path, &["waiting", "failed", "succeeded"]).await;
            let id = run["waiting_for"]["id"].clone();
            if run["status"] != "waiting" || !asked.iter().any(|(seen, _)| *seen == id) {
                break run;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no second gate: {run}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(run["status"], "waiting", "{run}");
        let gate = &run["waiting_for"];
        let stage = gate["stage"].as_str().unwrap().to_owned();
        assert!(stage.starts_with("Ship in Platforms (OS="), "{gate}");
        let (status, body) = app
            .post_as(
                &format!("{path}/approve"),
                &owner,
                json!({"id": gate["id"], "approve": true}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        asked.push((
            gate["id"].clone(),
            gate["message"].as_str().unwrap().to_owned(),
        ));
    }
    let mut messages: Vec<&str> = asked.iter().map(|(_, m)| m.as_str()).collect();
    messages.sort();
    assert_eq!(messages, ["Ship linux?", "Ship mac?"]);
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed", "cancelled"]).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert!(
        log.contains("shipped linux") && log.contains("shipped mac"),
        "{log}"
    );
}
