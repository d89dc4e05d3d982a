//! Run logs through the API: live SSE followers see every line once and in order and resume
//! with `Last-Event-ID`; lines arrive while the run goes on; a log past its cap ends with a
//! marker while the build goes on.

use std::time::Duration;

use serde_json::{Value, json};

use crate::execution::{push, setup, text_log};
use crate::fleet::{Backend, queue, start_fleet, wait_for_run};
use crate::helpers::{TestApp, spawn_app};

/// Reads a server-sent event stream until its `end` event: (id, data) of each line event.
/// `last` is sent as `Last-Event-ID`.
pub(crate) async fn follow(
    app: &TestApp,
    auth_token: &str,
    path: &str,
    last: Option<&str>,
) -> (Vec<(i64, Value)>, Value) {
    let mut req = app
        .client
        .get(app.url(path))
        .bearer_auth(auth_token)
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(60));
    if let Some(last) = last {
        req = req.header("last-event-id", last);
    }
    let mut res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    let mut events = Vec::new();
    loop {
        let chunk = res
            .chunk()
            .await
            .unwrap()
            .expect("the stream ended without an end event");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = if v == "end" { "end" } else { "other" };
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if event == "end" {
                return (events, serde_json::from_str(&data).unwrap());
            }
            if let Some(id) = id {
                events.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
}

#[tokio::test]
async fn followers_see_the_log_live_completely_and_resume_with_last_event_id() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Count') {
            steps {
                sh 'for i in $(seq 1 60); do echo line-$i; sleep 0.02; done'
            }
        }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let token = app.create_token(&owner, "acme", &["read"]).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}/log");
    let followers = (0..3).map(|_| follow(&app, &token, &path, None));
    let results = futures_util::future::join_all(followers).await;
    for (events, end) in &results {
        assert_eq!(end["status"], "succeeded");
        // Every line, once, in order, numbered without gaps.
        let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, (0..ids.len() as i64).collect::<Vec<_>>());
        let counted: Vec<String> = events
            .iter()
            .filter_map(|(_, l)| {
                l["text"]
                    .as_str()
                    .filter(|t| t.starts_with("line-"))
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(
            counted,
            (1..=60).map(|i| format!("line-{i}")).collect::<Vec<_>>()
        );
        let first = events.iter().find(|(_, l)| l["text"] == "line-1").unwrap();
        assert_eq!(first.1["stage"], "Count");
        assert_eq!(first.1["step"], "sh");
        assert!(first.1["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(events.last().unwrap().1["text"], "Finished: SUCCESS");
    }
    // Resuming after line-25's event sends what follows it, nothing before.
    let (all, _) = &results[0];
    let at = all.iter().find(|(_, l)| l["text"] == "line-25").unwrap().0;
    let (rest, end) = follow(&app, &token, &path, Some(&at.to_string())).await;
    assert_eq!(end["status"], "succeeded");
    assert_eq!(rest[0].0, at + 1);
    assert_eq!(rest[0].1["text"], "line-26");
    assert_eq!(rest.len(), all.len() - at as usize - 1);
}

#[tokio::test]
async fn a_follower_receives_lines_while_the_run_is_still_going() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Wait') {
            steps {
                sh 'echo first-line'
                input { message 'Go on?' }
            }
        }
    }
}
"#;
    // `input` as a step, not a section, inside steps.
    let jenkinsfile = jenkinsfile.replace("input { message 'Go on?' }", "input message: 'Go on?'");
    let (owner, repo, secret) = setup(&app, &jenkinsfile).await;
    let token = app.create_token(&owner, "acme", &["write"]).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let run_path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let mut res = app
        .client
        .get(app.url(&format!("{run_path}/log")))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("first-line") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), res.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (_, run) = app.get_as(&run_path, &owner).await;
    assert!(
        run["status"] == "running" || run["status"] == "waiting",
        "the line arrived while the run was going: {run}"
    );
    let run = wait_for_run(&app, &owner, &run_path, &["waiting"]).await;
    let (status, _) = app
        .post_as(
            &format!("{run_path}/approve"),
            &owner,
            json!({"id": run["waiting_for"]["id"], "approve": true}),
        )
        .await;
    assert_eq!(status, 200);
    while !seen.contains("event: end") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), res.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("approved by owner@example.com"), "{seen}");
    assert!(seen.contains("\"status\":\"succeeded\""), "{seen}");
}

#[tokio::test]
async fn a_log_past_its_cap_is_truncated_with_a_marker_and_the_build_goes_on() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Loud') {
            steps {
                sh 'for i in $(seq 1 500); do echo "noise-$i-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; done'
                sh 'echo still-running > proof.txt'
                archiveArtifacts 'proof.txt'
            }
        }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = crate::fleet::start_fleet_with(&app, q, 1, 1, |c| c.log_max_bytes = 4000);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let log = text_log(&app, &owner, number).await;
    assert!(
        log.contains("log truncated: this run printed more than 4000 bytes"),
        "{log}"
    );
    assert!(!log.contains("noise-500"), "{log}");
    assert!(log.len() < 12_000, "{} bytes", log.len());
    assert!(log.ends_with("Finished: SUCCESS\n"), "{log}");
    let (_, artifacts) = app.get_as(&format!("{path}/artifacts"), &owner).await;
    assert_eq!(artifacts[0]["path"], "proof.txt");
}
