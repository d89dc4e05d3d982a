use crate::helpers::{Auth, spawn_app};

#[tokio::test]
async fn landing_page_says_what_sluice_is_and_links_to_sign_in() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("Jenkinsfile"));
    assert!(html.contains("href=\"/login\""));
    assert!(html.contains("href=\"/static/app.css\""));
}

#[tokio::test]
async fn static_assets_are_served_from_the_binary() {
    let app = spawn_app().await;
    let res = app.get("/static/app.css").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(res.text().await.unwrap().contains("--accent"));
    let res = app.get("/static/favicon.svg").await;
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn signup_form_shows_errors_next_to_fields_and_signs_in_on_success() {
    let app = spawn_app().await;
    let (status, html) = (
        app.get("/signup").await.status(),
        app.get("/signup").await.text().await.unwrap(),
    );
    assert_eq!(status, 200);
    assert!(html.contains("name=\"password\""));

    let res = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("name", "Alice"),
            ("email", "not-an-email"),
            ("password", "correct horse"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"e-email\""), "{html}");
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(html.contains("value=\"Alice\""), "entered values are kept");

    let res = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("name", "Alice"),
            ("email", "alice@example.com"),
            ("password", "correct horse"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("sluice_session=")
    );
}

#[tokio::test]
async fn pages_need_a_session_and_forms_need_their_csrf_field() {
    let app = spawn_app().await;
    let res = app.get("/orgs/acme/projects").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=/orgs/acme/projects");

    let alice = app.signup("alice@example.com").await;
    let Auth::Session { cookie, .. } = &alice else {
        unreachable!()
    };
    let res = app
        .client
        .post(app.url("/orgs"))
        .header("cookie", format!("sluice_session={cookie}"))
        .form(&[("name", "Acme"), ("slug", "acme"), ("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orgs").await.unwrap(), "0");

    let (status, location, _) = app
        .submit("/orgs", &alice, &[("name", "Acme"), ("slug", "acme")])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/orgs/acme/projects"))
    );
    let (status, html) = app.page("/orgs/acme/projects", &alice).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<meta name=\"csrf-token\""),
        "pages carry the CSRF token"
    );
    assert!(html.contains("Switch organisation"));
}

#[tokio::test]
async fn project_form_validates_and_settings_page_shows_webhooks() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let fields = [
        ("name", "Web"),
        ("slug", "web"),
        ("repo_url", "ftp://nope"),
        ("default_branch", "main"),
        ("pipeline_path", "Jenkinsfile"),
    ];
    let (status, _, html) = app.submit("/orgs/acme/projects", &alice, &fields).await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"e-repo_url\""), "{html}");
    assert!(html.contains("value=\"Web\""));

    let fields = [
        ("name", "Web"),
        ("slug", "web"),
        ("repo_url", "https://git.example.com/web.git"),
        ("default_branch", ""),
        ("pipeline_path", ""),
    ];
    let (status, location, _) = app.submit("/orgs/acme/projects", &alice, &fields).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/orgs/acme/projects/web"))
    );
    let (status, html) = app.page("/orgs/acme/projects/web", &alice).await;
    assert_eq!(status, 200);
    assert!(html.contains(&app.url("/hooks/gitlab/acme/web")));
    assert!(html.contains("id=\"webhook-secret\""));
}

#[tokio::test]
async fn a_token_created_on_the_page_is_shown_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let (status, _, html) = app
        .submit(
            "/orgs/acme/tokens",
            &alice,
            &[("name", "deploy"), ("scope_read", "on")],
        )
        .await;
    assert_eq!(status, 201);
    let start = html.find("slc_").unwrap();
    let token: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert!(token.len() >= 47, "{token}");
    let (_, again) = app.page("/orgs/acme/tokens", &alice).await;
    assert!(!again.contains(&token), "the token is shown only once");
    assert!(again.contains(&token[..12]), "its prefix stays listed");
    let (status, _) = app
        .get_as("/api/v1/orgs/acme/projects", &Auth::Token(token))
        .await;
    assert_eq!(status, 200);

    let (status, _, html) = app
        .submit("/orgs/acme/tokens", &alice, &[("name", "")])
        .await;
    assert_eq!(status, 400);
    assert!(
        html.contains("id=\"e-name\"") || html.contains("field-error"),
        "{html}"
    );
}

/// Browsers get HTML error pages with their own header; API clients keep JSON.
#[tokio::test]
async fn browsers_get_html_error_pages_with_their_header_and_api_clients_json() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let owner = app.signup("ada@example.com").await;
    app.create_org(&owner, "acme").await;
    let Auth::Session { cookie, .. } = &owner else {
        unreachable!()
    };
    let get = |path: &str, accept: &str, signed_in: bool| {
        let mut req = app
            .client
            .get(app.url(path))
            .header("accept", accept.to_owned());
        if signed_in {
            req = req.header("cookie", format!("sluice_session={cookie}"));
        }
        req.send()
    };
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    // An unknown address and another org's page: HTML with the signed-in header.
    for path in ["/no/such/page", "/orgs/nobody/projects/web"] {
        let res = get(path, html, true).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = res.text().await.unwrap();
        assert!(body.contains("Page not found"), "{path}: {body}");
        assert!(
            body.contains("Sign out") && body.contains(">ada<"),
            "{path}: {body}"
        );
    }
    // Signed out: the same page without a session's header.
    let body = get("/no/such/page", html, false)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("Page not found") && !body.contains("Sign out"),
        "{body}"
    );
    // Programs keep JSON.
    for (path, accept) in [
        ("/no/such/page", "application/json"),
        ("/api/v1/no/such/thing", html),
        ("/jenkins/acme/job/nope/api/json", html),
    ] {
        let res = get(path, accept, true).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    // A page that fails on the server: a 500 page, still with the header.
    app.db
        .execute_unprepared("DROP TABLE audit_log")
        .await
        .unwrap();
    let res = get("/orgs/acme/settings", html, true).await.unwrap();
    assert_eq!(res.status(), 500);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("Something went wrong") && body.contains("Sign out"),
        "{body}"
    );
}

/// Admins see pending invitations and revoke them; a revoked link leads nowhere.
#[tokio::test]
async fn admins_list_and_revoke_pending_invitations() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let mut links = Vec::new();
    for email in ["one@example.com", "two@example.com"] {
        let (status, invitation) = app
            .post_as(
                "/api/v1/orgs/acme/invitations",
                &owner,
                serde_json::json!({"email": email, "role": "viewer"}),
            )
            .await;
        assert_eq!(status, 201, "{invitation}");
        let url = invitation["accept_url"].as_str().unwrap();
        links.push(url[url.find("/invitations/").unwrap()..].to_owned());
    }
    let (status, html) = app.page("/orgs/acme/settings", &owner).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("one@example.com") && html.contains("two@example.com"),
        "{html}"
    );
    // Signed out, the link names the org and the role.
    let res = app.get(&links[0]).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("as <strong>viewer</strong>"), "{body}");
    assert!(body.contains("Sign up to accept"), "{body}");
    let id: i64 = app
        .scalar("SELECT CAST(id AS BIGINT) FROM invitations WHERE email = 'one@example.com'")
        .await
        .unwrap()
        .parse()
        .unwrap();
    // A developer may not revoke.
    let (dev, _) = app
        .join(&owner, "acme", "dev@example.com", "developer")
        .await;
    let (status, _, _) = app
        .submit(&format!("/orgs/acme/invitations/{id}/revoke"), &dev, &[])
        .await;
    assert_eq!(status, 403);
    let (status, location, _) = app
        .submit(&format!("/orgs/acme/invitations/{id}/revoke"), &owner, &[])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/orgs/acme/settings#pending"))
    );
    let (_, html) = app.page("/orgs/acme/settings", &owner).await;
    assert!(
        !html.contains("one@example.com") && html.contains("two@example.com"),
        "{html}"
    );
    assert_eq!(app.get(&links[0]).await.status(), 404);
    assert_eq!(app.get(&links[1]).await.status(), 200);
}
