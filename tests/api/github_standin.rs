//! The `github` preset, tested against a STAND-IN for github.com (which cannot run here): a
//! small server with GitHub's OAuth endpoints and the two REST resources Sluice reads. It
//! checks what GitHub checks (client secret, redirect URI, PKCE S256), and is configured as a
//! GitHub Enterprise Server would be (`SLUICE_OAUTH_GITHUB_ISSUER`, REST API under /api/v3).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use secrecy::SecretString;
use sha2::Digest;
use sluice_core::config::OAuthProviderSettings;

use crate::helpers::{Auth, spawn_app_with};

const CLIENT_ID: &str = "gh-client";
const CLIENT_SECRET: &str = "gh-secret";
const ACCESS_TOKEN: &str = "gho_standin_token";

#[derive(Default)]
struct Codes(Mutex<HashMap<String, (String, String)>>);

async fn authorize(
    codes: web::Data<Arc<Codes>>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let q = query.into_inner();
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return HttpResponse::BadRequest().body("bad client or no PKCE");
    }
    let code = format!("code-{}", codes.0.lock().unwrap().len());
    let redirect = q["redirect_uri"].clone();
    codes.0.lock().unwrap().insert(
        code.clone(),
        (q["code_challenge"].clone(), redirect.clone()),
    );
    HttpResponse::Found()
        .insert_header((
            "location",
            format!("{redirect}?code={code}&state={}", q["state"]),
        ))
        .finish()
}

async fn access_token(
    codes: web::Data<Arc<Codes>>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let f = form.into_inner();
    let Some((challenge, redirect)) = codes
        .0
        .lock()
        .unwrap()
        .remove(f.get("code").map(String::as_str).unwrap_or(""))
    else {
        return HttpResponse::Ok().json(serde_json::json!({"error": "bad_verification_code"}));
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let ok = f.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && f.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && f.get("redirect_uri") == Some(&redirect)
        && computed == challenge;
    if !ok {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({"error": "incorrect_client_credentials"}));
    }
    HttpResponse::Ok().json(serde_json::json!({"access_token": ACCESS_TOKEN, "token_type": "bearer", "scope": "read:user,user:email"}))
}

fn authorized(req: &HttpRequest) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {ACCESS_TOKEN}"))
}

async fn user(req: HttpRequest) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok().json(
        serde_json::json!({"id": 4242, "login": "octocat", "name": "The Octocat", "email": null}),
    )
}

async fn emails(req: HttpRequest) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok().json(serde_json::json!([
        {"email": "old@example.test", "primary": false, "verified": true},
        {"email": "octocat@example.test", "primary": true, "verified": true}
    ]))
}

/// Starts the stand-in; returns its base URL.
fn start_standin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let codes = web::Data::new(Arc::new(Codes::default()));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(codes.clone())
            .route("/login/oauth/authorize", web::get().to(authorize))
            .route("/login/oauth/access_token", web::post().to(access_token))
            .route("/api/v3/user", web::get().to(user))
            .route("/api/v3/user/emails", web::get().to(emails))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

#[tokio::test]
async fn github_preset_signs_in_against_a_github_stand_in() {
    let github = start_standin();
    let issuer = github.clone();
    let app = spawn_app_with(move |s| {
        s.oauth.insert(
            "github".into(),
            OAuthProviderSettings {
                issuer: Some(issuer),
                client_id: CLIENT_ID.into(),
                client_secret: SecretString::from(CLIENT_SECRET),
                label: None,
            },
        );
    })
    .await;
    let login = app.get("/login").await.text().await.unwrap();
    assert!(
        login.contains("href=\"/auth/oauth/github/start"),
        "a GitHub button"
    );
    assert!(login.contains(">GitHub</a>"));

    let start = app.get("/auth/oauth/github/start").await;
    assert_eq!(start.status(), 302);
    let flow = start.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize_url = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize_url.starts_with(&format!("{github}/login/oauth/authorize")),
        "{authorize_url}"
    );
    let back = app.client.get(&authorize_url).send().await.unwrap();
    assert_eq!(back.status(), 302, "{}", back.text().await.unwrap());
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let done = app
        .client
        .get(&callback)
        .header("cookie", flow)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
    let cookie = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .ok()?
                .strip_prefix("sluice_session=")
                .map(|v| v.split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let (status, me) = app
        .get_as(
            "/api/v1/user",
            &Auth::Session {
                cookie,
                csrf: String::new(),
            },
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "octocat@example.test", "the primary email");
    assert_eq!(me["name"], "The Octocat");
    assert_eq!(
        app.scalar("SELECT subject FROM identities")
            .await
            .as_deref(),
        Some("4242")
    );
}
