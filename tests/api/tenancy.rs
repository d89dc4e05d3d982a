//! Tenant isolation: every org-scoped route in the route table, called by a principal of
//! another org, answers 404 and changes nothing. New routes are walked automatically.

use serde_json::json;

use crate::helpers::{Auth, TestApp, spawn_app};

/// A valid body for each route that takes one, so a refusal cannot come from validation.
fn body_for(method: &str, path: &str) -> Option<serde_json::Value> {
    let body = match (method, path) {
        ("PATCH", "/api/v1/orgs/{org}") => json!({"name": "Pwned"}),
        ("PATCH", p) if p.ends_with("/members/{user_id}") => json!({"role": "viewer"}),
        ("POST", p) if p.ends_with("/invitations") => {
            json!({"email": "x@example.com", "role": "viewer"})
        }
        ("POST", p) if p.ends_with("/tokens") => json!({"name": "t", "scopes": ["admin"]}),
        ("POST", p) if p.ends_with("/projects") => {
            json!({"slug": "stolen", "name": "Stolen", "repo_url": "https://git.example.com/x.git"})
        }
        ("PATCH", p) if p.ends_with("/projects/{project}") => json!({"name": "Pwned"}),
        ("PUT", p) if p.ends_with("/secrets/{name}") => json!({"value": "overwritten"}),
        ("PUT", p) if p.ends_with("/repository/credential") => {
            json!({"kind": "token", "token": "stolen"})
        }
        ("POST", p) if p.ends_with("/approve") => json!({"id": "1-1", "approve": true}),
        ("POST", p) if p.ends_with("/environments") => json!({"name": "stolen"}),
        ("PATCH", p) if p.ends_with("/environments/{name}") => json!({"protected": false}),
        ("GET" | "DELETE", _) => return None,
        _ => json!({}),
    };
    Some(body)
}

/// Valid form fields for each page form, so a refusal cannot come from validation.
fn page_fields(path: &str) -> Vec<(&'static str, &'static str)> {
    if path.ends_with("/invitations") {
        vec![("email", "x@example.com"), ("role", "viewer")]
    } else if path.ends_with("/role") {
        vec![("role", "viewer")]
    } else if path.ends_with("/projects") {
        vec![
            ("slug", "stolen"),
            ("name", "Stolen"),
            ("repo_url", "https://git.example.com/x.git"),
        ]
    } else if path.ends_with("/tokens") {
        vec![("name", "t"), ("scope_admin", "on")]
    } else {
        vec![]
    }
}

struct Victim {
    member_id: i64,
    token_id: i64,
}

async fn victim(app: &TestApp) -> Victim {
    let owner = app.signup("victim@example.com").await;
    app.create_org(&owner, "victim").await;
    app.create_project(&owner, "victim", "web").await;
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/victim/projects/web/secrets/API_KEY",
            &owner,
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, created) = app
        .post_as(
            "/api/v1/orgs/victim/tokens",
            &owner,
            json!({"name": "t", "scopes": ["read"]}),
        )
        .await;
    let (status, _) = app
        .post_as("/api/v1/orgs/victim/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201, "the victim has a run 1");
    let (status, _) = app
        .post_as(
            "/api/v1/orgs/victim/projects/web/environments",
            &owner,
            json!({"name": "api-key", "protected": true, "deployers": ["admin"]}),
        )
        .await;
    assert_eq!(status, 201, "the victim has an environment");
    let (_, me) = app.get_as("/api/v1/user", &owner).await;
    Victim {
        member_id: me["id"].as_i64().unwrap(),
        token_id: created["id"].as_i64().unwrap(),
    }
}

#[tokio::test]
async fn every_org_scoped_route_answers_404_to_another_org() {
    let app = spawn_app().await;
    let victim = victim(&app).await;
    let attacker = app.signup("attacker@example.com").await;
    app.create_org(&attacker, "evil").await;
    // The attacker's own org has the same kinds of things, so 404 cannot mean "absent route".
    app.create_project(&attacker, "evil", "web").await;
    let attacker_token = Auth::Token(app.create_token(&attacker, "evil", &["admin"]).await);
    let before = app.scalar("SELECT COUNT(*) FROM audit_log").await;

    let routes = sluice_api::route_table();
    let scoped: Vec<_> = routes
        .iter()
        // Webhooks authenticate by the project's secret, not a principal (tests/api/webhooks.rs).
        .filter(|(_, path)| {
            path.contains("{org}")
                && !path.starts_with("/hooks/")
                && !path.ends_with("/project/{project}")
        })
        .collect();
    assert!(scoped.len() >= 18, "route table shrank: {}", scoped.len());
    for (method, template) in scoped {
        let path = template
            .replace("{org}", "victim")
            .replace("{project}", "web")
            .replace("{user_id}", &victim.member_id.to_string())
            .replace("{id}", &victim.token_id.to_string())
            .replace("{number}", "1")
            .replace(
                "{name}",
                if template.contains("/environments/") {
                    "api-key"
                } else {
                    "API_KEY"
                },
            )
            .replace("{path:.*}", "dist/app.tar.gz");
        assert!(
            !path.contains('{'),
            "unknown placeholder in {template}: teach this test about it"
        );
        if !(template.starts_with("/api/") || template.starts_with("/jenkins/")) {
            // Pages take the session cookie only; forms carry their CSRF field.
            let status = if method.as_str() == "GET" {
                app.page(&path, &attacker).await.0
            } else {
                app.submit(&path, &attacker, &page_fields(template)).await.0
            };
            assert_eq!(status, 404, "page {method} {template} answered {status}");
            continue;
        }
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
        for auth in [&attacker, &attacker_token] {
            let (status, body) = app
                .call(
                    method.clone(),
                    &path,
                    auth,
                    body_for(method.as_str(), template),
                )
                .await;
            assert_eq!(
                status, 404,
                "{method} {template} as {auth:?} answered {status}: {body}"
            );
            assert_eq!(body["error"]["code"], "not_found");
        }
    }
    // The attacker's own org in the path with the victim's row ids: still nothing to find.
    for (method, template) in routes
        .iter()
        .filter(|(_, p)| p.contains("{user_id}") || p.contains("{id}"))
    {
        let path = template
            .replace("{org}", "evil")
            .replace("{project}", "web")
            .replace("{user_id}", &victim.member_id.to_string())
            .replace("{id}", &victim.token_id.to_string());
        let (status, body) = if template.starts_with("/api/") || template.starts_with("/jenkins/") {
            let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
            let body = body_for(method.as_str(), template);
            let (status, body) = app.call(method, &path, &attacker, body).await;
            (status, body.to_string())
        } else if method.as_str() == "GET" {
            app.page(&path, &attacker).await
        } else {
            let (status, _, body) = app.submit(&path, &attacker, &page_fields(template)).await;
            (status, body)
        };
        assert_eq!(
            status, 404,
            "{method} {path} with a foreign id answered {status}: {body}"
        );
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log").await,
        before,
        "a foreign call changed something"
    );
    assert_eq!(
        app.scalar("SELECT name FROM orgs WHERE slug = 'victim'")
            .await
            .as_deref(),
        Some("victim")
    );
}

#[tokio::test]
async fn route_table_matches_what_the_server_answers() {
    let app = spawn_app().await;
    for (method, template) in sluice_api::route_table() {
        let path = template
            .replace("{org}", "none")
            .replace("{project}", "none")
            .replace("{user_id}", "1")
            .replace("{id}", "1")
            .replace("{number}", "1")
            .replace("{name}", "NONE")
            .replace("{token}", "none")
            .replace("{provider}", "none")
            .replace("{file}", "app.css");
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
        let (status, _) = app.call(method.clone(), &path, &Auth::None, None).await;
        assert_ne!(
            status, 405,
            "{method} {template} is in the table but not routed"
        );
    }
}
