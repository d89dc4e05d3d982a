//! `spawn_app()` and friends: a real server on a free port over a fresh database.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use sluice_api::{AppState, Application};
use sluice_core::config::{Overrides, Settings};
use sluice_core::metrics::Metrics;
use sluice_core::startup::{Role, prepare};
use tokio_util::sync::CancellationToken;

/// The Redis used by tests that need one (`SLUICE_TEST_REDIS_URL`, default local).
pub fn redis_url() -> String {
    std::env::var("SLUICE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database that exists for one test only.
pub struct TestDb {
    pub url: String,
    /// Server URL and database name when on PostgreSQL.
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database of the kind `SLUICE_TEST_DATABASE_URL` asks for (SQLite by default).
    pub async fn create() -> TestDb {
        match std::env::var("SLUICE_TEST_DATABASE_URL") {
            Ok(server) if server.starts_with("postgres") => Self::postgres(&server).await,
            _ => Self::sqlite(),
        }
    }

    /// A fresh SQLite file in a temp dir.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        TestDb {
            url,
            postgres: None,
            _dir: Some(dir),
        }
    }

    /// A fresh database on the PostgreSQL server at `server`.
    pub async fn postgres(server: &str) -> TestDb {
        let name = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(server)
            .await
            .expect("PostgreSQL from SLUICE_TEST_DATABASE_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let (base, query) = server
            .split_once('?')
            .map_or((server, None), |(b, q)| (b, Some(q)));
        let (root, _) = base.rsplit_once('/').unwrap();
        let url = match query {
            Some(q) => format!("{root}/{name}?{q}"),
            None => format!("{root}/{name}"),
        };
        TestDb {
            url,
            postgres: Some((server.to_owned(), name)),
            _dir: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Drops a PostgreSQL database from under its users.
    pub async fn drop_now(&self) {
        if let Some((server, name)) = &self.postgres {
            let admin = Database::connect(server).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.postgres.is_none() {
            return;
        }
        let (server, name) = self.postgres.clone().unwrap();
        // Dropped from a plain thread: Drop may run inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&server).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A running Sluice API over its own database; stopped when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub test_db: TestDb,
    /// The running app's state (its cache, keys…).
    pub state: AppState,
    shutdown: CancellationToken,
    _data_dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Settings for a test: port 0, a temp data dir, a fixed secret key.
pub fn test_settings(db: &TestDb, data_dir: &std::path::Path) -> Settings {
    let overrides = Overrides {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.to_path_buf()),
    };
    let mut settings =
        Settings::load_from(None, Vec::<(String, String)>::new(), &overrides).unwrap();
    settings.database_url = Some(SecretString::from(db.url.clone()));
    settings.secret_key = Some(SecretString::from(
        "test-secret-key-0123456789abcdef0123456789",
    ));
    settings.shutdown_timeout_secs = 5;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the API with test settings changed by `customise`, and waits until it answers.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    // `SLUICE_TEST_LOG=sluice_release=debug` shows what a failing test's services logged.
    if let Ok(filter) = std::env::var("SLUICE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let test_db = TestDb::create().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&test_db, data_dir.path());
    customise(&mut settings);

    let prepared = prepare(&settings, Role::Serve).await.unwrap();
    let key = prepared.secret_key.clone().unwrap();
    let mut state = AppState::new(
        &settings,
        prepared.db.clone(),
        Metrics::new().unwrap(),
        &key,
    )
    .unwrap();
    // As `serve` does.
    state.repo_access.allow_local = settings.allow_local_repos.unwrap_or(true);
    let app = Application::build(&settings, state.clone()).unwrap();
    let addr = app.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    // Idle connections are dropped after 2 s, before the server's 5 s keep-alive closes them:
    // otherwise a request sent on a connection the server is closing fails with
    // "IncompleteMessage" (seen once under load in a release test on PostgreSQL).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let test_app = TestApp {
        addr,
        client,
        db: prepared.db,
        test_db,
        state,
        shutdown,
        _data_dir: data_dir,
    };
    wait_until(Duration::from_secs(10), || async {
        test_app
            .client
            .get(test_app.url("/healthz"))
            .send()
            .await
            .is_ok()
    })
    .await;
    test_app
}

impl TestApp {
    /// The app's data dir (its objects are under `objects/`).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Makes the database unreachable for the running app: PostgreSQL drops it from under
    /// the pool; SQLite closes the pool the app shares.
    pub async fn lose_database(&self) {
        if self.test_db.is_postgres() {
            self.test_db.drop_now().await;
        } else {
            self.db.close_by_ref().await.unwrap();
        }
    }
}

/// Polls `condition` until it holds; panics after `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < deadline,
            "condition not met within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that a response carries the API error shape with `status` and `code`.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// How a test request authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// A browser session: the cookie value and its CSRF token.
    Session {
        cookie: String,
        csrf: String,
    },
    /// `Authorization: Bearer`.
    Token(String),
    /// `Authorization: Basic email:token`.
    Basic(String, String),
}

impl TestApp {
    /// Sends `method path` with `auth` and an optional JSON body; returns status and JSON body
    /// (Null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: &Auth,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = auth.apply(self.client.request(method, self.url(path)));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, json)
    }

    pub async fn get_as(&self, path: &str, auth: &Auth) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, auth, None).await
    }

    pub async fn post_as(
        &self,
        path: &str,
        auth: &Auth,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, auth, Some(body))
            .await
    }

    /// Signs up `email` (name from the local part, a fixed password) and returns the session.
    pub async fn signup(&self, email: &str) -> Auth {
        let body = serde_json::json!({"email": email, "password": "correct horse battery", "name": email.split('@').next().unwrap()});
        let res = self
            .client
            .post(self.url("/auth/signup"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "signup of {email}");
        session_from(res).await
    }

    /// Creates an org owned by `auth`.
    pub async fn create_org(&self, auth: &Auth, slug: &str) {
        let (status, body) = self
            .post_as(
                "/api/v1/orgs",
                auth,
                serde_json::json!({"slug": slug, "name": slug}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Creates a token in `org` with `scopes`; returns the raw token.
    pub async fn create_token(&self, auth: &Auth, org: &str, scopes: &[&str]) -> String {
        let (status, body) = self
            .post_as(
                &format!("/api/v1/orgs/{org}/tokens"),
                auth,
                serde_json::json!({"name": "ci", "scopes": scopes}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a project in `org`.
    pub async fn create_project(&self, auth: &Auth, org: &str, slug: &str) -> serde_json::Value {
        let (status, body) = self
            .post_as(
                &format!("/api/v1/orgs/{org}/projects"),
                auth,
                serde_json::json!({"slug": slug, "name": slug, "repo_url": format!("https://git.example.com/{org}/{slug}.git")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Runs a scalar query against the app's database.
    pub async fn scalar(&self, sql: &str) -> Option<String> {
        use sea_orm::{ConnectionTrait, Statement};
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .unwrap()?;
        row.try_get_by_index::<Option<String>>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| Some(n.to_string())))
            .unwrap()
    }
}

/// The session cookie and CSRF token of a sign-up or sign-in response.
impl Auth {
    /// `req` carrying these credentials (and the CSRF token of a session).
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => req,
            Auth::Session { cookie, csrf } => req
                .header("cookie", format!("sluice_session={cookie}"))
                .header("x-csrf-token", csrf),
            Auth::Token(token) => req.bearer_auth(token),
            Auth::Basic(email, token) => req.basic_auth(email, Some(token)),
        }
    }
}

pub async fn session_from(res: reqwest::Response) -> Auth {
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sluice_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("session cookie");
    let body: serde_json::Value = res.json().await.unwrap();
    Auth::Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

impl TestApp {
    /// Submits a page form as a signed-in person (the CSRF field is filled in); returns the
    /// status, the `Location` header and the body.
    pub async fn submit(
        &self,
        path: &str,
        auth: &Auth,
        fields: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let Auth::Session { cookie, csrf } = auth else {
            panic!("forms need a session")
        };
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        let res = self
            .client
            .post(self.url(path))
            .header("cookie", format!("sluice_session={cookie}"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, res.text().await.unwrap())
    }

    /// Loads a page as a signed-in person; returns the status and the HTML.
    pub async fn page(&self, path: &str, auth: &Auth) -> (u16, String) {
        let Auth::Session { cookie, .. } = auth else {
            panic!("pages need a session")
        };
        let res = self
            .client
            .get(self.url(path))
            .header("cookie", format!("sluice_session={cookie}"))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
}

impl TestApp {
    /// `owner` invites `email` to `org` with `role`; the invitee signs up and accepts.
    /// Returns the invitee's session and user id.
    pub async fn join(&self, owner: &Auth, org: &str, email: &str, role: &str) -> (Auth, i64) {
        let (status, invitation) = self
            .post_as(
                &format!("/api/v1/orgs/{org}/invitations"),
                owner,
                serde_json::json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{invitation}");
        let link = invitation["accept_url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let member = self.signup(email).await;
        let (status, body) = self
            .post_as(
                &format!("/api/v1/invitations/{link}/accept"),
                &member,
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, me) = self.get_as("/api/v1/user", &member).await;
        (member, me["id"].as_i64().unwrap())
    }
}
