//! Local accounts: sign-up, sign-in, sessions, CSRF and rate limiting.

use serde_json::json;

use crate::helpers::{Auth, assert_error, session_from, spawn_app, spawn_app_with};

#[tokio::test]
async fn signup_starts_a_hashed_session_and_stores_an_argon2id_hash() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/auth/signup"))
        .json(&json!({"email": "Alice@Example.com", "password": "correct horse battery", "name": "Alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cookie_header = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie_header.contains("HttpOnly"), "{cookie_header}");
    assert!(cookie_header.contains("SameSite=Lax"), "{cookie_header}");
    assert!(
        !cookie_header.contains("Secure"),
        "plain http public URL: no Secure flag"
    );
    let session = session_from(res).await;
    let Auth::Session { cookie, .. } = &session else {
        unreachable!()
    };

    let (status, me) = app.get_as("/api/v1/user", &session).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "alice@example.com", "emails are normalised");
    assert_eq!(me["orgs"], json!([]));

    let hash = app.scalar("SELECT password_hash FROM users").await.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let stored = app.scalar("SELECT token_hash FROM sessions").await.unwrap();
    assert_ne!(&stored, cookie, "session id stored in clear");
    assert_eq!(stored.len(), 64);
}

#[tokio::test]
async fn bad_signups_name_the_field_and_write_nothing() {
    let app = spawn_app().await;
    for (body, field) in [
        (
            json!({"email": "nope", "password": "correct horse", "name": "A"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "correct horse", "name": "  "}),
            "name",
        ),
        (json!({"email": "a@example.com", "name": "A"}), "password"),
    ] {
        let (status, err) = app.post_as("/auth/signup", &Auth::None, body).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["details"]["field"], field, "{err}");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM users").await.unwrap(), "0");

    app.signup("a@example.com").await;
    let (status, err) = app
        .post_as(
            "/auth/signup",
            &Auth::None,
            json!({"email": "A@example.com", "password": "another password", "name": "B"}),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM users").await.unwrap(), "1");
}

#[tokio::test]
async fn login_checks_the_password_and_logout_ends_the_session() {
    let app = spawn_app().await;
    app.signup("bob@example.com").await;
    let (status, err) = app
        .post_as(
            "/auth/login",
            &Auth::None,
            json!({"email": "bob@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["error"]["code"], "bad_credentials");
    let (status, _) = app
        .post_as(
            "/auth/login",
            &Auth::None,
            json!({"email": "nobody@example.com", "password": "whatever1"}),
        )
        .await;
    assert_eq!(status, 401);

    let res = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"email": "BOB@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let session = session_from(res).await;
    assert_eq!(app.get_as("/api/v1/user", &session).await.0, 200);

    let (status, _) = app
        .call(reqwest::Method::POST, "/auth/logout", &session, None)
        .await;
    assert_eq!(status, 204);
    let (status, err) = app.get_as("/api/v1/user", &session).await;
    assert_eq!(status, 401, "{err}");
}

#[tokio::test]
async fn unsafe_cookie_requests_need_the_csrf_token() {
    let app = spawn_app().await;
    let session = app.signup("carol@example.com").await;
    let Auth::Session { cookie, .. } = &session else {
        unreachable!()
    };
    let forged = Auth::Session {
        cookie: cookie.clone(),
        csrf: "0".repeat(64),
    };
    let (status, err) = app
        .post_as(
            "/api/v1/orgs",
            &forged,
            json!({"slug": "acme", "name": "Acme"}),
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["error"]["code"], "csrf_failed");
    let res = app
        .client
        .post(app.url("/api/v1/orgs"))
        .header("cookie", format!("sluice_session={cookie}"))
        .json(&json!({"slug": "acme", "name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 403, "csrf_failed").await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orgs").await.unwrap(), "0");
    // Reads need no token; with the right token the write goes through.
    assert_eq!(app.get_as("/api/v1/orgs", &forged).await.0, 200);
    assert_eq!(
        app.post_as(
            "/api/v1/orgs",
            &session,
            json!({"slug": "acme", "name": "Acme"})
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_with_retry_after() {
    let app = spawn_app_with(|s| s.auth_attempts_per_minute = 3).await;
    for _ in 0..3 {
        let (status, _) = app
            .post_as(
                "/auth/login",
                &Auth::None,
                json!({"email": "x@example.com", "password": "whatever1"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let res = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"email": "x@example.com", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_error(res, 429, "rate_limited").await;
}

#[tokio::test]
async fn sessions_expire_when_idle() {
    let app = spawn_app().await;
    let session = app.signup("dan@example.com").await;
    assert_eq!(app.get_as("/api/v1/user", &session).await.0, 200);
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00Z'")
        .await
        .unwrap();
    assert_eq!(app.get_as("/api/v1/user", &session).await.0, 401);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions").await.unwrap(),
        "0",
        "expired session deleted"
    );
}

#[tokio::test]
async fn sessions_end_at_their_absolute_expiry_however_active() {
    let app = spawn_app().await;
    let session = app.signup("erin@example.com").await;
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z'")
        .await
        .unwrap();
    assert_eq!(app.get_as("/api/v1/user", &session).await.0, 401);
}

#[tokio::test]
async fn local_accounts_can_be_switched_off() {
    let app = spawn_app_with(|s| s.local_accounts = false).await;
    let (status, err) = app
        .post_as(
            "/auth/signup",
            &Auth::None,
            json!({"email": "e@example.com", "password": "correct horse", "name": "E"}),
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM users").await.unwrap(), "0");
}

#[tokio::test]
async fn api_routes_without_credentials_answer_401() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/user").await;
    assert!(res.headers().contains_key("www-authenticate"));
    assert_error(res, 401, "unauthorized").await;
    let (status, _) = app
        .get_as(
            "/api/v1/orgs",
            &Auth::Token("slc_notarealtoken0000000000000000000000000000".into()),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn cookies_are_secure_behind_an_https_public_url() {
    let app = spawn_app_with(|s| s.public_url = Some("https://ci.example.com".into())).await;
    let res = app
        .client
        .post(app.url("/auth/signup"))
        .json(&json!({"email": "f@example.com", "password": "correct horse", "name": "F"}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
}
