//! What a hostile tenant tried over HTTP, each refused: a `read` token answering a gate that
//! names its creator, sign-in redirects that leave the site, sign-in forms posted from
//! another site, an open `/metrics`, Basic auth without an email riding on the token cache,
//! a `Last-Event-ID` past the end, an overlong URL without the error shape, and pages
//! without security headers.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use sluice_api::Application;
use tokio_util::sync::CancellationToken;

use crate::execution::{push, setup};
use crate::fleet::{Backend, queue, start_fleet, wait_for_run};
use crate::helpers::{Auth, TestApp, assert_error, spawn_app, spawn_app_with, test_settings};
use crate::run_logs::follow;

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn a_read_token_cannot_answer_a_gate_even_when_it_names_the_tokens_creator() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Release') {
            input {
                message 'Release?'
                submitter 'owner@example.com'
            }
            steps { echo 'released' }
        }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let read = app.create_token(&owner, "acme", &["read"]).await;
    let write = Auth::Token(app.create_token(&owner, "acme", &["write"]).await);
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["waiting", "failed"]).await;
    let id = run["waiting_for"]["id"].clone();

    for approve in [true, false] {
        let res = app
            .client
            .post(app.url(&format!("{path}/approve")))
            .bearer_auth(&read)
            .json(&json!({"id": id, "approve": approve}))
            .send()
            .await
            .unwrap();
        let body = assert_error(res, 403, "forbidden").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("write scope"),
            "{body}"
        );
    }
    let (_, run) = app.get_as(&path, &owner).await;
    assert_eq!(run["status"], "waiting", "the read token answered: {run}");

    // The same creator through a write token may: the scope was what stopped it.
    let (status, body) = app
        .post_as(
            &format!("{path}/approve"),
            &write,
            json!({"id": id, "approve": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for_run(&app, &owner, &path, &["succeeded"]).await;
}

/// Signs `email` up through the API; returns the raw session cookie value.
async fn session_cookie(app: &TestApp, email: &str) -> String {
    match app.signup(email).await {
        Auth::Session { cookie, .. } => cookie,
        _ => unreachable!(),
    }
}

fn sets_session(res: &reqwest::Response) -> bool {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("sluice_session=") && !v.starts_with("sluice_session=;"))
}

#[tokio::test]
async fn next_after_sign_in_is_only_ever_a_path_on_this_site() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app, "ada@example.com").await;
    let get_login = |query: &'static str| {
        app.client
            .get(app.url(&format!("/login?{query}")))
            .header("cookie", format!("sluice_session={cookie}"))
            .send()
    };

    // Tab, CR/LF, `//`, backslashes and absolute URLs: a 400 page, never a redirect (nor a 500).
    for query in [
        "next=/%09/evil.example",
        "next=/%0D%0ASet-Cookie:%20x=1",
        "next=/%0A/evil.example",
        "next=//evil.example",
        "next=/%5Cevil.example",
        "next=%5C%5Cevil.example",
        "next=https://evil.example/",
    ] {
        let res = get_login(query).await.unwrap();
        assert_eq!(res.status(), 400, "{query}");
        assert!(res.headers().get("location").is_none(), "{query}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{query}"
        );
    }
    // A path here is followed; none goes to the dashboard.
    let res = get_login("next=/orgs/acme/projects%3Fx%3D1").await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/orgs/acme/projects?x=1");
    let res = get_login("").await.unwrap();
    assert_eq!(res.headers()["location"], "/");

    // The sign-in form refuses a bad `next` before signing anyone in.
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("next", "/\t/evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(!sets_session(&res));
    let res = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("name", "Eve"),
            ("email", "eve@example.com"),
            ("password", PASSWORD),
            ("next", "/\r\nLocation: https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(!sets_session(&res));
}

#[tokio::test]
async fn sign_in_and_sign_up_forms_posted_from_another_site_are_refused() {
    let app = spawn_app().await;
    app.signup("ada@example.com").await;
    let here = app.url("");
    let login = [
        ("email", "ada@example.com"),
        ("password", PASSWORD),
        ("next", "/orgs"),
    ];
    let cross_site: [(&str, &str); 4] = [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ];
    for (name, value) in cross_site {
        let res = app
            .client
            .post(app.url("/login"))
            .header(name, value)
            .form(&login)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "login with {name}: {value}");
        assert!(!sets_session(&res), "login with {name}: {value}");

        let signup = [
            ("name", "Mallory"),
            ("email", "mallory@example.com"),
            ("password", PASSWORD),
        ];
        let res = app
            .client
            .post(app.url("/signup"))
            .header(name, value)
            .form(&signup)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "signup with {name}: {value}");
        assert!(!sets_session(&res), "signup with {name}: {value}");
    }
    let (status, _) = app
        .post_as(
            "/auth/login",
            &Auth::None,
            json!({"email": "mallory@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 401, "no account was made from another site");

    // This site's own form (what a browser sends), and tools that send neither header.
    let own: [&[(&str, &str)]; 3] = [
        &[("origin", here.as_str())],
        &[("sec-fetch-site", "same-origin"), ("origin", here.as_str())],
        &[],
    ];
    for headers in own {
        let mut req = app.client.post(app.url("/login")).form(&login);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 303, "{headers:?}");
        assert!(sets_session(&res), "{headers:?}");
    }
    let res = app
        .client
        .post(app.url("/signup"))
        .header("origin", here.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("name", "Grace"),
            ("email", "grace@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(sets_session(&res));
}

/// A probes-only server (what `sluice worker` serves) over `app`'s state.
async fn spawn_probes(app: &TestApp) -> (String, CancellationToken) {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = test_settings(&app.test_db, data_dir.path());
    let probes = Application::build_probes(&settings, app.state.clone()).unwrap();
    let base = format!("http://{}", probes.local_addr());
    let stop = CancellationToken::new();
    tokio::spawn(probes.run_until_stopped(stop.clone()));
    (base, stop)
}

#[tokio::test]
async fn metrics_need_the_bearer_token_when_one_is_configured() {
    let app = spawn_app_with(|s| {
        s.metrics_token = Some(SecretString::from("scrape-7f3a9c0e"));
    })
    .await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "tenant-slug").await;
    let (probes, _stop) = spawn_probes(&app).await;

    for base in [app.url(""), probes] {
        let url = format!("{base}/metrics");
        let refused = [
            app.client.get(&url),
            app.client.get(&url).bearer_auth("scrape-7f3a9c0"),
            app.client.get(&url).bearer_auth("scrape-7f3a9c0e0"),
            app.client
                .get(&url)
                .basic_auth("scrape-7f3a9c0e", None::<&str>),
            app.client
                .get(&url)
                .header("authorization", "scrape-7f3a9c0e"),
        ];
        for req in refused {
            let res = req.send().await.unwrap();
            let body = assert_error(res, 401, "unauthorized").await;
            assert!(!body.to_string().contains("tenant-slug"), "{body}");
        }
        let res = app
            .client
            .get(&url)
            .bearer_auth("scrape-7f3a9c0e")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("sluice_http_requests_total")
        );
    }
}

#[tokio::test]
async fn basic_auth_without_an_email_is_refused_even_after_the_token_was_cached() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let token = app.create_token(&owner, "acme", &["read"]).await;
    let no_email = Auth::Basic(String::new(), token.clone());

    let (status, body) = app.get_as("/api/v1/orgs/acme", &no_email).await;
    assert_eq!(status, 401, "cold cache: {body}");
    let (status, body) = app
        .get_as("/api/v1/orgs/acme", &Auth::Token(token.clone()))
        .await;
    assert_eq!(status, 200, "bearer: {body}");
    let (status, body) = app.get_as("/api/v1/orgs/acme", &no_email).await;
    assert_eq!(
        status, 401,
        "after the bearer call filled the cache: {body}"
    );
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let wrong = Auth::Basic("someone@example.com".into(), token.clone());
    let (status, _) = app.get_as("/api/v1/orgs/acme", &wrong).await;
    assert_eq!(status, 401, "another person's email");
    let (status, _) = app
        .get_as(
            "/api/v1/orgs/acme",
            &Auth::Basic("owner@example.com".into(), token),
        )
        .await;
    assert_eq!(status, 200, "the creator's email");
}

#[tokio::test]
async fn a_last_event_id_past_the_end_replays_nothing_and_a_malformed_one_is_a_400() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Build') { steps { echo 'line-a'; echo 'line-b' } }
    }
}
"#;
    let (owner, repo, secret) = setup(&app, jenkinsfile).await;
    let token = app.create_token(&owner, "acme", &["read"]).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &secret, &repo).await;
    let run = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    wait_for_run(&app, &owner, &run, &["succeeded"]).await;
    let path = format!("{run}/log");

    let (all, _) = follow(&app, &token, &path, None).await;
    assert!(all.iter().any(|(_, l)| l["text"] == "line-a"), "{all:?}");
    for last in ["9223372036854775807", "99999999999999999999999"] {
        let (events, end) = follow(&app, &token, &path, Some(last)).await;
        assert!(
            events.is_empty(),
            "Last-Event-ID {last} replayed {events:?}"
        );
        assert_eq!(end["status"], "succeeded");
    }
    for last in ["abc", "12abc", "1.5"] {
        let res = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .header("accept", "text/event-stream")
            .header("last-event-id", last)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "bad_request").await;
    }
}

#[tokio::test]
async fn an_overlong_url_gets_the_json_error_shape() {
    let app = spawn_app().await;
    let pad = "a".repeat(9 * 1024);
    for path in [
        format!("/healthz?pad={pad}"),
        format!("/api/v1/orgs/{pad}"),
        format!("/login?next=/{pad}"),
    ] {
        let res = app.get(&path).await;
        let body = assert_error(res, 414, "uri_too_long").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("8192"),
            "{body}"
        );
    }
    // Just under the limit is served as usual.
    let res = app.get(&format!("/healthz?pad={}", "a".repeat(8000))).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    let Auth::Session { cookie, .. } = &owner else {
        unreachable!()
    };
    let (probes, _stop) = spawn_probes(&app).await;
    let long = format!("/healthz?pad={}", "a".repeat(9 * 1024));
    let requests = [
        app.client.get(app.url("/")),
        app.client.get(app.url("/login")),
        app.client
            .get(app.url("/orgs"))
            .header("cookie", format!("sluice_session={cookie}")),
        app.client.get(app.url("/static/app.js")),
        app.client.get(app.url("/api/v1/user")),
        app.client.get(app.url("/no/such/route")),
        app.client.delete(app.url("/healthz")),
        app.client.get(app.url(&long)),
        app.client.get(app.url("/metrics")),
        app.client.get(format!("{probes}/healthz")),
        app.client.get(format!("{probes}/metrics")),
        app.client.get(format!("{probes}/nothing")),
    ];
    for req in requests {
        let res = req.send().await.unwrap();
        let h = res.headers();
        let what = format!("{} {}", res.url(), res.status());
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
    }
}
