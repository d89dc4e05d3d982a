//! API tokens: shown once, stored hashed, scoped to one org, capped by scopes and the
//! creator's current role, revoked at once.

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{Auth, spawn_app};

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_work_as_bearer_and_basic() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let (status, created) = app
        .post_as(
            "/api/v1/orgs/acme/tokens",
            &alice,
            json!({"name": "deploy bot", "scopes": ["write"], "expires_in_days": 30}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("slc_") && token.len() >= 4 + 43,
        "{token}"
    );
    assert_eq!(created["prefix"].as_str().unwrap(), &token[..12]);
    assert!(created["expires_at"].is_string());

    let (_, list) = app.get_as("/api/v1/orgs/acme/tokens", &alice).await;
    assert!(list["items"][0].get("token").is_none(), "{list}");
    assert!(!list.to_string().contains(&token[12..]));
    let stored = app
        .scalar("SELECT token_hash FROM api_tokens")
        .await
        .unwrap();
    assert!(!stored.contains(&token[12..]));

    let (status, projects) = app
        .get_as("/api/v1/orgs/acme/projects", &Auth::Token(token.clone()))
        .await;
    assert_eq!(status, 200, "{projects}");
    let basic = Auth::Basic("alice@example.com".into(), token.clone());
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects", &basic).await.0,
        200
    );
    let wrong_user = Auth::Basic("bob@example.com".into(), token.clone());
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects", &wrong_user)
            .await
            .0,
        401
    );
    let used = "SELECT COUNT(*) FROM api_tokens WHERE last_used_at IS NOT NULL";
    assert_eq!(app.scalar(used).await.as_deref(), Some("1"));

    let id = created["id"].as_i64().unwrap();
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/orgs/acme/tokens/{id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects", &Auth::Token(token))
            .await
            .0,
        401,
        "revoked at once"
    );
}

#[tokio::test]
async fn scopes_cap_what_a_token_may_do() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let read = Auth::Token(app.create_token(&alice, "acme", &["read"]).await);
    let write = Auth::Token(app.create_token(&alice, "acme", &["write"]).await);
    let project =
        json!({"slug": "web", "name": "Web", "repo_url": "https://git.example.com/web.git"});

    assert_eq!(app.get_as("/api/v1/orgs/acme/projects", &read).await.0, 200);
    let (status, err) = app
        .post_as("/api/v1/orgs/acme/projects", &read, project.clone())
        .await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(
        app.post_as("/api/v1/orgs/acme/projects", &write, project)
            .await
            .0,
        201
    );
    let (status, _) = app
        .post_as(
            "/api/v1/orgs/acme/tokens",
            &write,
            json!({"name": "x", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(status, 403, "tokens need the admin scope");
    let (status, _) = app
        .post_as(
            "/api/v1/orgs",
            &write,
            json!({"slug": "other", "name": "Other"}),
        )
        .await;
    assert_eq!(status, 403, "tokens do not create orgs");
}

#[tokio::test]
async fn a_token_acts_in_its_own_org_only() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    app.create_org(&alice, "globex").await;
    let token = Auth::Token(app.create_token(&alice, "acme", &["admin"]).await);
    assert_eq!(app.get_as("/api/v1/orgs/acme", &token).await.0, 200);
    assert_eq!(
        app.get_as("/api/v1/orgs/globex", &token).await.0,
        404,
        "alice is a member, the token is not"
    );
    let (_, orgs) = app.get_as("/api/v1/orgs", &token).await;
    let slugs: Vec<&str> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme"]);
}

#[tokio::test]
async fn demoting_the_creator_demotes_the_token_and_expiry_ends_it() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let (admin, admin_id) = app.join(&owner, "acme", "admin@example.com", "admin").await;
    let token = Auth::Token(app.create_token(&admin, "acme", &["admin"]).await);
    assert_eq!(app.get_as("/api/v1/orgs/acme/tokens", &token).await.0, 200);

    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/orgs/acme/members/{admin_id}"),
        &owner,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/tokens", &token).await.0,
        403,
        "creator is a viewer now"
    );
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects", &token).await.0,
        200
    );

    app.db
        .execute_unprepared("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00Z'")
        .await
        .unwrap();
    // Written behind the app's back: tell its read cache, as any write through the API does.
    app.state.cache.bump();
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects", &token).await.0,
        401
    );
}

#[tokio::test]
async fn cached_project_lists_show_a_write_on_the_next_request() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let token = Auth::Token(app.create_token(&owner, "acme", &["write"]).await);
    let count = |body: &serde_json::Value| body["items"].as_array().unwrap().len();
    let (_, first) = app.get_as("/api/v1/orgs/acme/projects", &token).await;
    let (_, again) = app.get_as("/api/v1/orgs/acme/projects", &token).await;
    assert_eq!((count(&first), count(&again)), (0, 0));
    app.create_project(&token, "acme", "web").await;
    let (_, after) = app.get_as("/api/v1/orgs/acme/projects", &token).await;
    assert_eq!(count(&after), 1, "the write is visible at once");
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/orgs/acme/projects/web",
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, gone) = app.get_as("/api/v1/orgs/acme/projects", &token).await;
    assert_eq!(count(&gone), 0, "a write by another principal too");
}
