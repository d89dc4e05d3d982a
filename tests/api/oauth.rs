//! OpenID Connect sign-in against a real provider: `oidc-provider` from npm, started on
//! loopback by the test (tests/support/oidc). Nothing here is a stand-in.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use secrecy::SecretString;
use sluice_core::config::OAuthProviderSettings;

use crate::helpers::{Auth, TestApp, spawn_app_with};

pub const CLIENT_ID: &str = "sluice-test";
const CLIENT_SECRET: &str = "sluice-test-client-secret";

/// A running OpenID provider; stopped when dropped.
pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    /// Starts the provider with one client allowed to return to `redirect`.
    /// Starts the provider and waits for its readiness line: at most 30 s per attempt, and a
    /// provider that never gets to listen is started again (twice at most) instead of
    /// hanging the suite.
    pub fn start(redirect: &str) -> OidcProvider {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "run `npm ci` in {}",
            dir.display()
        );
        for attempt in 1..=3 {
            let mut child = Command::new("node")
                .arg("provider.mjs")
                .current_dir(&dir)
                .env("PORT", "0")
                .env("CLIENT_ID", CLIENT_ID)
                .env("CLIENT_SECRET", CLIENT_SECRET)
                .env("REDIRECT_URIS", redirect)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("node on PATH");
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(line) if !line.trim().is_empty() => {
                    let ready: serde_json::Value = serde_json::from_str(&line)
                        .unwrap_or_else(|_| panic!("provider said {line:?}"));
                    return OidcProvider {
                        issuer: ready["issuer"].as_str().unwrap().to_owned(),
                        child,
                    };
                }
                _ => {
                    eprintln!("the OpenID provider did not start (attempt {attempt}); again");
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("the OpenID provider never said it was listening");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Sluice with provider `corp` pointing at a fresh OpenID provider.
pub async fn app_with_provider() -> (TestApp, OidcProvider) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("http://127.0.0.1:{port}/auth/oauth/corp/callback");
    let provider = OidcProvider::start(&redirect);
    let issuer = provider.issuer.clone();
    let app = spawn_app_with(move |s| {
        s.bind = SocketAddr::from(([127, 0, 0, 1], port));
        s.oauth.insert(
            "corp".into(),
            OAuthProviderSettings {
                issuer: Some(issuer),
                client_id: CLIENT_ID.into(),
                client_secret: SecretString::from(CLIENT_SECRET),
                label: Some("Corp SSO".into()),
            },
        );
    })
    .await;
    (app, provider)
}

/// The end of a provider sign-in as Sluice answered it.
struct Finished {
    status: u16,
    location: Option<String>,
    session: Option<String>,
    body: String,
}

/// Walks the authorization-code flow as a browser would, logging in as `login`.
async fn sign_in(
    app: &TestApp,
    provider: &OidcProvider,
    login: &str,
    tamper_state: bool,
) -> Finished {
    let start = app
        .client
        .get(app.url("/auth/oauth/corp/start?next=/orgs"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let flow_cookie = start.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut next = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(next.starts_with(&provider.issuer), "{next}");
    assert!(
        next.contains("code_challenge_method=S256") && next.contains("nonce="),
        "{next}"
    );

    // A provider that stops answering fails the test instead of hanging the suite.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let callback = app.url("/auth/oauth/corp/callback");
    for _ in 0..10 {
        if next.starts_with(&callback) {
            break;
        }
        let url = if next.starts_with('/') {
            format!("{}{next}", provider.issuer)
        } else {
            next.clone()
        };
        let res = if url.contains("/interaction/") {
            browser
                .post(&url)
                .form(&[("prompt", "login"), ("login", login)])
                .send()
                .await
                .unwrap()
        } else {
            browser.get(&url).send().await.unwrap()
        };
        next = res.headers()["location"].to_str().unwrap().to_owned();
    }
    assert!(next.starts_with(&callback), "never came back: {next}");
    if tamper_state {
        next = next.replace("state=", "state=x");
    }
    let res = app
        .client
        .get(&next)
        .header("cookie", flow_cookie)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("sluice_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .find(|v| !v.is_empty());
    Finished {
        status,
        location,
        session,
        body: res.text().await.unwrap(),
    }
}

fn session(cookie: &str) -> Auth {
    Auth::Session {
        cookie: cookie.to_owned(),
        csrf: String::new(),
    }
}

#[tokio::test]
async fn first_sign_in_creates_the_account_and_later_ones_reuse_it() {
    let (app, provider) = app_with_provider().await;
    let done = sign_in(&app, &provider, "alice", false).await;
    assert_eq!(
        (done.status, done.location.as_deref()),
        (303, Some("/orgs")),
        "{}",
        done.body
    );
    let (status, me) = app
        .get_as("/api/v1/user", &session(&done.session.unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "alice@example.test");
    assert_eq!(me["name"], "Alice Example");
    let again = sign_in(&app, &provider, "alice", false).await;
    let (_, me_again) = app
        .get_as("/api/v1/user", &session(&again.session.unwrap()))
        .await;
    assert_eq!(me_again["id"], me["id"]);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        app.scalar("SELECT subject FROM identities")
            .await
            .as_deref(),
        Some("sub-alice")
    );
}

#[tokio::test]
async fn a_verified_email_links_to_the_existing_account() {
    let (app, provider) = app_with_provider().await;
    let local = app.signup("bob@example.test").await;
    let (_, local_me) = app.get_as("/api/v1/user", &local).await;
    let done = sign_in(&app, &provider, "bob", false).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (_, me) = app
        .get_as("/api/v1/user", &session(&done.session.unwrap()))
        .await;
    assert_eq!(me["id"], local_me["id"], "linked, not duplicated");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users").await.as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn an_unverified_email_never_links() {
    let (app, provider) = app_with_provider().await;
    app.signup("mallory@example.test").await;
    let done = sign_in(&app, &provider, "mallory", false).await;
    assert_eq!(done.status, 409);
    assert!(done.session.is_none());
    assert!(done.body.contains("cannot be linked"), "{}", done.body);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM identities")
            .await
            .as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn a_callback_with_the_wrong_state_signs_nobody_in() {
    let (app, provider) = app_with_provider().await;
    let done = sign_in(&app, &provider, "alice", true).await;
    assert_eq!(done.status, 400);
    assert!(done.session.is_none());
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users").await.as_deref(),
        Some("0")
    );
    let res = app
        .get("/auth/oauth/corp/callback?code=abc&state=def")
        .await;
    assert_eq!(res.status(), 400, "no flow cookie");
    assert_eq!(app.get("/auth/oauth/nope/start").await.status(), 404);
}

#[tokio::test]
async fn browser_signs_in_through_the_provider_pages() {
    let (app, provider) = app_with_provider().await;
    let result =
        crate::browser::run_flow("oidc-login.mjs", vec![app.url(""), provider.issuer.clone()])
            .await;
    assert_eq!(result["signed_in_as"], "Alice Example");
    assert_eq!(
        app.scalar("SELECT email FROM users").await.as_deref(),
        Some("alice@example.test")
    );
}
