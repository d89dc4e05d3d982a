//! A secret printed into run data other than the log: JUnit failure names and messages, an
//! `input` gate's message and button, and what the audit log copies from the gate. Each is
//! masked before it is stored, so the run JSON, the Jenkins API, the run page and the audit
//! log never show it to a viewer or a read token.

use serde_json::json;

use crate::execution::{Pushed, SECRET, push_to_fleet, setup, text_log};
use crate::fleet::wait_for_run;
use crate::helpers::{Auth, spawn_app};

const JENKINSFILE: &str = r#"pipeline {
    agent any
    environment {
        DEPLOY_TOKEN = credentials('DEPLOY_TOKEN')
    }
    stages {
        stage('Test') {
            steps {
                writeFile file: 'r.xml', text: "<testsuite name='suite-${DEPLOY_TOKEN}'><testcase classname='c' name='case-${DEPLOY_TOKEN}'><failure message='boom-${DEPLOY_TOKEN}'/></testcase></testsuite>"
                junit 'r.xml'
            }
        }
        stage('Ship') {
            steps {
                input message: "Ship with ${DEPLOY_TOKEN}?", ok: "Go ${DEPLOY_TOKEN}"
                echo 'shipped'
            }
        }
    }
}
"#;

#[tokio::test]
async fn secrets_in_test_results_gates_and_the_audit_log_are_masked() {
    let app = spawn_app().await;
    let (owner, repo, hook) = setup(&app, JENKINSFILE).await;
    let (viewer, _) = app
        .join(&owner, "acme", "viewer@example.com", "viewer")
        .await;
    let read_token = app.create_token(&owner, "acme", &["read"]).await;
    let reader = Auth::Basic("owner@example.com".into(), read_token);
    let Pushed {
        fleet: _fleet,
        number,
        path,
    } = push_to_fleet(&app, &hook, &repo).await;
    let run = wait_for_run(&app, &owner, &path, &["waiting", "failed", "succeeded"]).await;
    assert_eq!(run["status"], "waiting", "{run}");
    assert_eq!(run["waiting_for"]["message"], "Ship with ****?", "{run}");
    assert_eq!(run["waiting_for"]["ok"], "Go ****", "{run}");
    let failure = &run["tests"]["failures"][0];
    assert_eq!(failure["suite"], "suite-****", "{run}");
    assert_eq!(failure["name"], "c.case-****", "{run}");
    assert_eq!(failure["message"], "boom-****", "{run}");

    for auth in [&owner, &viewer, &reader] {
        let (status, run) = app.get_as(&path, auth).await;
        assert_eq!(status, 200);
        assert!(!run.to_string().contains(SECRET), "{run}");
        let (status, build) = app
            .get_as(&format!("/jenkins/acme/job/web/{number}/api/json"), auth)
            .await;
        assert_eq!(status, 200, "{build}");
        assert!(!build.to_string().contains(SECRET), "{build}");
    }
    let (status, page) = app
        .page(&format!("/orgs/acme/projects/web/runs/{number}"), &viewer)
        .await;
    assert_eq!(status, 200);
    assert!(!page.contains(SECRET));
    assert!(page.contains("Ship with ****?"), "{page}");

    let id = run["waiting_for"]["id"].clone();
    let (status, body) = app
        .post_as(
            &format!("{path}/approve"),
            &owner,
            json!({"id": id, "approve": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = wait_for_run(&app, &owner, &path, &["unstable", "failed", "succeeded"]).await;
    assert_eq!(run["status"], "unstable", "{run}");
    assert!(!run.to_string().contains(SECRET), "{run}");
    let (_, audit) = app.get_as("/api/v1/orgs/acme/audit", &owner).await;
    let audit = audit.to_string();
    assert!(
        audit.contains("run.approve") && audit.contains("Ship with ****?"),
        "{audit}"
    );
    assert!(!audit.contains(SECRET), "{audit}");
    let log = text_log(&app, &owner, number).await;
    assert!(log.contains("shipped") && !log.contains(SECRET), "{log}");
}
