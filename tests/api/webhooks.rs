//! GitHub and GitLab webhooks with payloads in the providers' real formats: GitHub's from its
//! published examples (npm `@octokit/webhooks-examples`, installed in tests/support/webhooks),
//! GitLab's as its documentation shows them.

use std::path::PathBuf;

use serde_json::{Value, json};
use sluice_core::crypto::hmac_sha256_hex;

use crate::helpers::{TestApp, spawn_app};

/// GitHub's example payloads for `event`.
fn github_examples(event: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "tests/support/webhooks/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
    );
    let all: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "run `npm ci` in tests/support/webhooks ({} missing)",
                path.display()
            )
        }))
        .unwrap();
    all.into_iter().find(|e| e["name"] == event).unwrap()["examples"]
        .as_array()
        .unwrap()
        .clone()
}

/// A project `web` in org `acme` whose default branch is `master` (as in GitHub's examples);
/// returns the app and the webhook secret.
async fn project() -> (TestApp, String) {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let (status, project) = app
        .post_as(
            "/api/v1/orgs/acme/projects",
            &owner,
            json!({"slug": "web", "name": "Web", "repo_url": "https://github.com/acme/web.git", "default_branch": "master"}),
        )
        .await;
    assert_eq!(status, 201);
    (
        app,
        project["webhook"]["secret"].as_str().unwrap().to_owned(),
    )
}

async fn github(
    app: &TestApp,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (u16, Value) {
    let signature = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body));
    let res = app
        .client
        .post(app.url("/hooks/github/acme/web"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn gitlab(app: &TestApp, token: &str, event: &str, uuid: &str, body: &Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/hooks/gitlab/acme/web"))
        .header("x-gitlab-token", token)
        .header("x-gitlab-event", event)
        .header("x-gitlab-event-uuid", uuid)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn github_push_tag_and_pull_request_examples_queue_runs_once() {
    let (app, secret) = project().await;
    let pushes = github_examples("push");
    let branch_push = pushes
        .iter()
        .find(|p| p["ref"] == "refs/heads/master")
        .unwrap();
    let body = serde_json::to_vec(branch_push).unwrap();
    let (status, answer) = github(&app, &secret, "push", "delivery-1", &body).await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(1)), "{answer}");
    let (status, answer) = github(&app, &secret, "push", "delivery-1", &body).await;
    assert_eq!(
        (status, answer["ignored"].as_str()),
        (200, Some("duplicate delivery")),
        "retried delivery"
    );

    let tag_push = pushes
        .iter()
        .find(|p| p["ref"] == "refs/tags/simple-tag" && p["deleted"] == false)
        .unwrap();
    let (status, answer) = github(
        &app,
        &secret,
        "push",
        "delivery-2",
        &serde_json::to_vec(tag_push).unwrap(),
    )
    .await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(2)), "{answer}");
    let deleted = pushes.iter().find(|p| p["deleted"] == true).unwrap();
    let (status, answer) = github(
        &app,
        &secret,
        "push",
        "delivery-3",
        &serde_json::to_vec(deleted).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        answer["ignored"].as_str().unwrap().contains("deleted"),
        "{answer}"
    );

    let prs = github_examples("pull_request");
    let opened = prs.iter().find(|p| p["action"] == "opened").unwrap();
    let (status, answer) = github(
        &app,
        &secret,
        "pull_request",
        "delivery-4",
        &serde_json::to_vec(opened).unwrap(),
    )
    .await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(3)), "{answer}");
    let closed = prs.iter().find(|p| p["action"] == "closed").unwrap();
    let (status, _) = github(
        &app,
        &secret,
        "pull_request",
        "delivery-5",
        &serde_json::to_vec(closed).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let ping = &github_examples("ping")[0];
    assert_eq!(
        github(
            &app,
            &secret,
            "ping",
            "delivery-6",
            &serde_json::to_vec(ping).unwrap()
        )
        .await
        .0,
        200
    );

    let (_, run) = app
        .get_as(
            "/api/v1/orgs/acme/projects/web/runs/1",
            &app_owner(&app).await,
        )
        .await;
    assert_eq!(run["trigger"], "github");
    assert_eq!(run["ref"], "master");
    assert_eq!(run["ref_type"], "branch");
    assert_eq!(run["commit"], branch_push["head_commit"]["id"]);
    assert_eq!(run["commit_message"], branch_push["head_commit"]["message"]);
    assert_eq!(
        run["commit_author"].as_str().unwrap(),
        format!(
            "{} <{}>",
            branch_push["head_commit"]["author"]["name"]
                .as_str()
                .unwrap(),
            branch_push["head_commit"]["author"]["email"]
                .as_str()
                .unwrap()
        )
    );
    let (_, tag_run) = app
        .get_as(
            "/api/v1/orgs/acme/projects/web/runs/2",
            &app_owner(&app).await,
        )
        .await;
    assert_eq!(
        (tag_run["ref"].as_str(), tag_run["ref_type"].as_str()),
        (Some("simple-tag"), Some("tag"))
    );
    let (_, pr_run) = app
        .get_as(
            "/api/v1/orgs/acme/projects/web/runs/3",
            &app_owner(&app).await,
        )
        .await;
    // A change request: its head ref in the base repository, described as Jenkins does.
    let number = opened["pull_request"]["number"].as_u64().unwrap();
    assert_eq!(pr_run["ref"], format!("refs/pull/{number}/head"));
    assert_eq!(pr_run["ref_type"], "change_request");
    assert_eq!(pr_run["commit"], opened["pull_request"]["head"]["sha"]);
    assert_eq!(pr_run["change"]["id"], number);
    assert_eq!(pr_run["change"]["provider"], "github");
    assert_eq!(
        pr_run["change"]["branch"],
        opened["pull_request"]["head"]["ref"]
    );
    assert_eq!(
        pr_run["change"]["target"],
        opened["pull_request"]["base"]["ref"]
    );
    assert_eq!(pr_run["change"]["title"], opened["pull_request"]["title"]);
    assert_eq!(
        pr_run["change"]["author"],
        opened["pull_request"]["user"]["login"]
    );
    assert_eq!(pr_run["change"]["url"], opened["pull_request"]["html_url"]);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM runs").await.as_deref(),
        Some("3")
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"sluice_webhooks_total{outcome="queued",provider="github"} 3"#),
        "{metrics}"
    );
}

async fn app_owner(app: &TestApp) -> crate::helpers::Auth {
    let res = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"email": "owner@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    crate::helpers::session_from(res).await
}

#[tokio::test]
async fn github_signatures_bodies_and_sizes_are_checked() {
    let (app, secret) = project().await;
    let body = serde_json::to_vec(&github_examples("push")[4]).unwrap();
    let (status, err) = github(&app, "not-the-secret", "push", "d1", &body).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // The answer speaks of the signature and the secret, not of Bearer tokens.
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("X-Hub-Signature-256") && message.contains("webhook secret"),
        "{message}"
    );
    assert!(!message.contains("Bearer"), "{message}");
    let res = app
        .client
        .post(app.url("/hooks/github/acme/web"))
        .header("x-github-event", "push")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("www-authenticate").is_none());
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("missing X-Hub-Signature-256"),
        "{err}"
    );
    let (status, _) = github(&app, &secret, "push", "d2", b"{not json").await;
    assert_eq!(status, 400);
    let big = vec![b' '; 1024 * 1024 + 10];
    let (status, _) = github(&app, &secret, "push", "d3", &big).await;
    assert_eq!(status, 413);
    let res = app
        .client
        .post(app.url("/hooks/github/acme/nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM runs").await.as_deref(),
        Some("0"),
        "nothing queued"
    );
}

#[tokio::test]
async fn gitlab_push_tag_and_merge_request_hooks() {
    let (app, secret) = project().await;
    let push = json!({
        "object_kind": "push", "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "ref": "refs/heads/master",
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "user_name": "John Smith",
        "project": {"id": 15, "name": "Diaspora", "default_branch": "master"},
        "commits": [], "total_commits_count": 0
    });
    let (status, answer) = gitlab(&app, &secret, "Push Hook", "uuid-1", &push).await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(1)), "{answer}");
    let (status, answer) = gitlab(&app, &secret, "Push Hook", "uuid-1", &push).await;
    assert_eq!(
        (status, answer["ignored"].as_str()),
        (200, Some("duplicate delivery"))
    );

    // Every branch builds, not only the default one.
    let mut other = push.clone();
    other["ref"] = json!("refs/heads/feature");
    let (status, answer) = gitlab(&app, &secret, "Push Hook", "uuid-2", &other).await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(2)), "{answer}");

    let tag = json!({"object_kind": "tag_push", "ref": "refs/tags/v1.0.0", "before": "0000000000000000000000000000000000000000",
        "after": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", "checkout_sha": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"});
    let (status, answer) = gitlab(&app, &secret, "Tag Push Hook", "uuid-3", &tag).await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(3)), "{answer}");
    let mut removed = tag.clone();
    removed["after"] = json!("0000000000000000000000000000000000000000");
    assert_eq!(
        gitlab(&app, &secret, "Tag Push Hook", "uuid-4", &removed)
            .await
            .0,
        200
    );

    let mr = json!({"object_kind": "merge_request", "event_type": "merge_request",
        "user": {"username": "root"},
        "object_attributes": {"iid": 1, "action": "open", "source_branch": "ms-viewport", "target_branch": "master",
            "source_project_id": 14, "target_project_id": 14, "title": "MS-Viewport",
            "url": "http://example.com/diaspora/merge_requests/1",
            "last_commit": {"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "message": "fixed readme",
                "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"}}}});
    let (status, answer) = gitlab(&app, &secret, "Merge Request Hook", "uuid-5", &mr).await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(4)), "{answer}");
    assert_eq!(
        gitlab(&app, "wrong-token", "Push Hook", "uuid-6", &push)
            .await
            .0,
        401
    );

    let (_, run) = app
        .get_as(
            "/api/v1/orgs/acme/projects/web/runs/4",
            &app_owner(&app).await,
        )
        .await;
    assert_eq!(
        (
            run["ref"].as_str(),
            run["trigger"].as_str(),
            run["ref_type"].as_str()
        ),
        (
            Some("refs/merge-requests/1/head"),
            Some("gitlab"),
            Some("change_request")
        )
    );
    assert_eq!(run["change"]["branch"], "ms-viewport");
    assert_eq!(run["change"]["fork"], Value::Null);
    assert_eq!(run["commit_message"], "fixed readme");
    assert_eq!(
        run["commit_author"],
        "GitLab dev user <gitlabdev@dv6700.(none)>"
    );
}
