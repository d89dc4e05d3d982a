//! Runs: queued by the API with race-free numbers, listed and read back.

use std::collections::BTreeSet;

use serde_json::json;

use crate::helpers::{Auth, spawn_app};

#[tokio::test]
async fn a_manual_run_is_queued_with_its_outbox_entry() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    app.create_project(&alice, "acme", "web").await;
    let (status, run) = app
        .post_as(
            "/api/v1/orgs/acme/projects/web/runs",
            &alice,
            json!({"params": {"VERSION": "1.2.3"}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["number"], 1);
    assert_eq!(run["status"], "queued");
    assert_eq!(run["ref"], "main", "the default branch");
    assert_eq!(run["trigger"], "api");
    assert_eq!(run["params"]["VERSION"], "1.2.3");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM run_outbox WHERE published_at IS NULL")
            .await
            .as_deref(),
        Some("1")
    );

    let (status, shown) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs/1", &alice)
        .await;
    assert_eq!((status, shown["number"].as_i64()), (200, Some(1)));
    let (status, listed) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs?status=queued", &alice)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"][0]["number"], 1);
    let (_, none) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs?status=failed", &alice)
        .await;
    assert_eq!(none["items"], json!([]));
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects/web/runs/2", &alice)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn concurrent_triggers_get_distinct_consecutive_numbers() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    app.create_project(&alice, "acme", "web").await;
    let token = Auth::Token(app.create_token(&alice, "acme", &["write"]).await);
    let calls =
        (0..20).map(|_| app.post_as("/api/v1/orgs/acme/projects/web/runs", &token, json!({})));
    let results = futures_util::future::join_all(calls).await;
    let numbers: BTreeSet<i64> = results
        .iter()
        .map(|(status, run)| {
            assert_eq!(*status, 201, "{run}");
            run["number"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(numbers, (1..=20).collect::<BTreeSet<i64>>());
}

#[tokio::test]
async fn run_input_is_validated_and_scopes_apply() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    app.create_project(&alice, "acme", "web").await;
    for (body, field) in [
        (json!({"commit": "not-a-sha!"}), "commit"),
        (json!({"ref": "a b"}), "ref"),
        (json!({"params": {"bad-name": "x"}}), "params"),
    ] {
        let (status, err) = app
            .post_as("/api/v1/orgs/acme/projects/web/runs", &alice, body)
            .await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["details"]["field"], field);
    }
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects/web/runs?status=nope", &alice)
            .await
            .0,
        400
    );
    let read = Auth::Token(app.create_token(&alice, "acme", &["read"]).await);
    assert_eq!(
        app.post_as("/api/v1/orgs/acme/projects/web/runs", &read, json!({}))
            .await
            .0,
        403
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM runs").await.as_deref(),
        Some("0"),
        "nothing written"
    );
    let (status, run) = app
        .post_as(
            "/api/v1/orgs/acme/projects/web/runs",
            &alice,
            json!({"ref": "release/1.x", "commit": "ABCDEF1234"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        (run["ref"].as_str(), run["commit"].as_str()),
        (Some("release/1.x"), Some("abcdef1234"))
    );
}
