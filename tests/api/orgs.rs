//! Organisations, roles, invitations, the last-owner rule and the audit log.

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{Auth, spawn_app};

#[tokio::test]
async fn creating_an_org_makes_the_caller_owner_and_slugs_follow_the_rules() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    let (status, org) = app
        .post_as(
            "/api/v1/orgs",
            &alice,
            json!({"slug": "acme", "name": "Acme Inc"}),
        )
        .await;
    assert_eq!(status, 201, "{org}");
    assert_eq!(org["role"], "owner");
    assert_eq!(org["max_concurrent_runs"], 5);

    let (status, err) = app
        .post_as(
            "/api/v1/orgs",
            &alice,
            json!({"slug": "Acme!", "name": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["details"]["field"], "slug");
    let bob = app.signup("bob@example.com").await;
    let (status, _) = app
        .post_as(
            "/api/v1/orgs",
            &bob,
            json!({"slug": "acme", "name": "Other"}),
        )
        .await;
    assert_eq!(status, 409, "slugs are unique across orgs");

    let (_, me) = app.get_as("/api/v1/user", &alice).await;
    assert_eq!(
        me["orgs"],
        json!([{"slug": "acme", "name": "Acme Inc", "role": "owner"}])
    );
    let (_, list) = app.get_as("/api/v1/orgs", &bob).await;
    assert_eq!(list["items"], json!([]), "bob sees no org of alice");
}

#[tokio::test]
async fn invitations_add_members_with_their_role() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let (status, inv) = app
        .post_as(
            "/api/v1/orgs/acme/invitations",
            &alice,
            json!({"email": "bob@example.com", "role": "developer"}),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    let url = inv["accept_url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap();
    assert!(url.starts_with(&app.url("/invitations/")), "{url}");

    let mallory = app.signup("mallory@example.com").await;
    let (status, _) = app
        .post_as(
            &format!("/api/v1/invitations/{token}/accept"),
            &mallory,
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "the link is for bob's email only");

    let bob = app.signup("bob@example.com").await;
    let (status, accepted) = app
        .post_as(
            &format!("/api/v1/invitations/{token}/accept"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["org"]["role"], "developer");
    let (status, _) = app
        .post_as(
            &format!("/api/v1/invitations/{token}/accept"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "a link works once");

    let (_, members) = app.get_as("/api/v1/orgs/acme/members", &bob).await;
    let roles: Vec<(String, String)> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alice@example.com".into(), "owner".into()),
            ("bob@example.com".into(), "developer".into())
        ]
    );
}

#[tokio::test]
async fn expired_invitations_are_refused() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let (_, inv) = app
        .post_as(
            "/api/v1/orgs/acme/invitations",
            &alice,
            json!({"email": "bob@example.com", "role": "viewer"}),
        )
        .await;
    let token = inv["accept_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    app.db
        .execute_unprepared("UPDATE invitations SET expires_at = '2000-01-01T00:00:00Z'")
        .await
        .unwrap();
    let bob = app.signup("bob@example.com").await;
    let (status, err) = app
        .post_as(
            &format!("/api/v1/invitations/{token}/accept"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(app.get_as("/api/v1/orgs/acme", &bob).await.0, 404);
}

async fn org_with_member(app: &crate::helpers::TestApp, role: &str) -> (Auth, Auth, i64) {
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let (member, member_id) = app.join(&owner, "acme", "member@example.com", role).await;
    (owner, member, member_id)
}

#[tokio::test]
async fn roles_gate_admin_actions_and_the_last_owner_is_protected() {
    let app = spawn_app().await;
    let (owner, member, member_id) = org_with_member(&app, "developer").await;
    let (status, err) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme",
            &member,
            Some(json!({"name": "Hijacked"})),
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(app.get_as("/api/v1/orgs/acme/audit", &member).await.0, 403);

    let (_, me) = app.get_as("/api/v1/user", &owner).await;
    let owner_id = me["id"].as_i64().unwrap();
    let (status, err) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/orgs/acme/members/{owner_id}"),
            &owner,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("last owner")
    );
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/orgs/acme/members/{owner_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 409);

    // Promote the member to admin: they may now change the org, but not touch the owner.
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/orgs/acme/members/{member_id}"),
            &owner,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!((status, body["role"].as_str()), (200, Some("admin")));
    let (status, org) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme",
            &member,
            Some(json!({"max_concurrent_runs": 9})),
        )
        .await;
    assert_eq!(
        (status, org["max_concurrent_runs"].as_i64()),
        (200, Some(9))
    );
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/orgs/acme/members/{owner_id}"),
            &member,
            None,
        )
        .await;
    assert_eq!(status, 403, "an admin cannot remove an owner");

    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/orgs/acme/members/{member_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.get_as("/api/v1/orgs/acme", &member).await.0, 404);
}

#[tokio::test]
async fn admin_actions_are_audited_with_actor_and_target() {
    let app = spawn_app().await;
    let (owner, _member, member_id) = org_with_member(&app, "viewer").await;
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/orgs/acme/members/{member_id}"),
        &owner,
        Some(json!({"role": "developer"})),
    )
    .await;
    app.create_token(&owner, "acme", &["read"]).await;
    let (status, log) = app.get_as("/api/v1/orgs/acme/audit", &owner).await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.create",
            "member.role",
            "invitation.accept",
            "invitation.create",
            "org.create"
        ]
    );
    let role_change = &log["items"][1];
    assert_eq!(role_change["target_type"], "user");
    assert_eq!(role_change["target_id"], member_id.to_string());
    assert_eq!(
        role_change["details"],
        json!({"from": "viewer", "to": "developer"})
    );
    assert!(role_change["actor_user_id"].is_i64());
    assert!(role_change["created_at"].is_string());
}
