//! The real `sluice` binary: start-up on embedded defaults, config layering, migrate, and
//! graceful shutdown on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestDb;

/// A `sluice` command in `dir` with no SLUICE_* variables but those given.
pub(crate) fn sluice(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("SLUICE_") {
            cmd.env_remove(key);
        }
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

/// Reads stdout until the "listening on" banner and returns the URL and the lines so far.
fn wait_for_banner(stdout: ChildStdout) -> (String, Vec<String>, BufReader<ChildStdout>) {
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no banner: {lines:?}");
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "stdout closed early: {lines:?}"
        );
        let line = line.trim_end().to_owned();
        lines.push(line.clone());
        if let Some(url) = line.strip_prefix("Sluice is listening on ") {
            let url = url.to_owned();
            // The sign-in hint follows the URL.
            let mut hint = String::new();
            reader.read_line(&mut hint).unwrap();
            lines.push(hint.trim_end().to_owned());
            return (url, lines, reader);
        }
    }
}

fn signal(child: &Child, name: &str) {
    signal_pid(child.id(), name);
}

/// Sends signal `name` (`TERM`, `INT`…) to process `pid`.
pub(crate) fn signal_pid(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to exit, killing it after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("sluice did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// A GET from a plain (non-async) test: (status, body).
fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = reqwest::get(url).await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

fn database_env(db: &TestDb) -> Vec<(&'static str, String)> {
    if db.is_postgres() {
        vec![("SLUICE_DATABASE_URL", db.url.clone())]
    } else {
        vec![]
    }
}

#[test]
fn serve_on_defaults_creates_its_data_dir_prints_how_to_sign_in_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = sluice(dir.path(), &["serve"], &[("SLUICE_BIND", "127.0.0.1:0")])
        .spawn()
        .unwrap();
    let (url, lines, _rest) = wait_for_banner(child.stdout.take().unwrap());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        lines.iter().any(|l| l.starts_with("Sign in: open ")),
        "{lines:?}"
    );

    let data = dir.path().join("sluice-data");
    assert!(data.join("sluice.db").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("secret.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let (status, body) = get(&format!("{url}/readyz"));
    assert_eq!(status, 200, "{body}");

    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains("SIGTERM received") && err.contains("stopped cleanly"),
        "{err}"
    );
    assert!(
        err.contains("created data dir") && err.contains("generated a secret key"),
        "{err}"
    );
    assert!(
        !err.contains(
            &std::fs::read_to_string(data.join("secret.key"))
                .unwrap()
                .trim()
                .to_owned()
        )
    );
}

/// What a person sees in the terminal, with the two streams in one file (as a pipe or a log
/// collector gets them): the sign-in lines first, no migration chatter, no colour codes, and
/// a redirect to sign in is not reported as an error.
#[test]
fn serve_says_where_to_sign_in_first_without_colours_or_noise() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("output.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = sluice(dir.path(), &["serve"], &[("SLUICE_BIND", "127.0.0.1:0")])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let text = std::fs::read_to_string(&out_path).unwrap();
        if let Some(line) = text.lines().find(|l| l.starts_with("Sign in: open ")) {
            let url = line
                .trim_start_matches("Sign in: open ")
                .split("/login")
                .next()
                .unwrap()
                .to_owned();
            break url;
        }
        assert!(Instant::now() < deadline, "no banner: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // A page that needs a session answers 303 to the sign-in page.
    let (status, body) = get(&format!("{url}/orgs"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Sign in"), "{body}");
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("Sluice is listening on ") && lines[1].starts_with("Sign in: open "),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    assert!(!text.contains("Applying migration"), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
    assert!(
        text.contains("GET") || text.contains("/orgs"),
        "the request was logged: {text}"
    );
}

#[test]
fn sigint_also_stops_gracefully_on_the_test_database() {
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let env = database_env(&db);
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("SLUICE_BIND", "127.0.0.1:0"));
    let mut child = sluice(dir.path(), &["serve"], &vars).spawn().unwrap();
    let (url, _, _rest) = wait_for_banner(child.stdout.take().unwrap());
    assert_eq!(get(&format!("{url}/readyz")).0, 200);
    signal(&child, "INT");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("SIGINT received"), "{err}");
}

#[test]
fn config_file_is_read_and_environment_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        "bind = \"127.0.0.1:0\"\nlog_format = \"json\"\ndata_dir = \"from-file\"\n",
    )
    .unwrap();

    // File only: JSON logs, data dir from the file.
    let mut child = sluice(dir.path(), &["serve"], &[]).spawn().unwrap();
    let (url, _, _rest) = wait_for_banner(child.stdout.take().unwrap());
    assert_eq!(get(&format!("{url}/healthz")).0, 200);
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(15)).code(),
        Some(0)
    );
    let err = stderr_of(&mut child);
    assert!(dir.path().join("from-file/sluice.db").is_file());
    let request_line = err
        .lines()
        .find(|l| l.contains("\"http.route\":\"/healthz\""))
        .unwrap_or_else(|| panic!("no JSON access log line: {err}"));
    let entry: serde_json::Value = serde_json::from_str(request_line).unwrap();
    assert_eq!(entry["fields"]["http.status"], 200);
    assert_eq!(
        entry["span"]["request_id"].as_str().map(str::len),
        Some(36),
        "{entry}"
    );

    // Environment over file: text logs and another data dir.
    let mut child = sluice(
        dir.path(),
        &["serve"],
        &[
            ("SLUICE_LOG_FORMAT", "text"),
            ("SLUICE_DATA_DIR", "from-env"),
        ],
    )
    .spawn()
    .unwrap();
    let _ = wait_for_banner(child.stdout.take().unwrap());
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(15)).code(),
        Some(0)
    );
    let err = stderr_of(&mut child);
    assert!(dir.path().join("from-env/sluice.db").is_file());
    assert!(!err.trim_start().starts_with('{'), "{err}");
}

#[test]
fn bad_configuration_names_the_setting_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(
        dir.path(),
        &["serve"],
        &[("SLUICE_DATABASE_URL", "mysql://nope")],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database_url"), "{err}");
    assert!(
        !dir.path().join("sluice-data").exists(),
        "nothing written on bad config"
    );
}

/// `SLUICE_EXECUTOR=kubernetes` was once accepted and builds then ran on the host: without a
/// cluster to reach, the roles that run builds stop with the reason instead.
#[test]
fn the_kubernetes_executor_without_a_cluster_stops_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-kubeconfig");
    for role in ["serve", "worker"] {
        let out = sluice(
            dir.path(),
            &[role],
            &[
                ("SLUICE_EXECUTOR", "kubernetes"),
                ("KUBECONFIG", missing.to_str().unwrap()),
                ("SLUICE_BIND", "127.0.0.1:0"),
                (
                    "SLUICE_SECRET_KEY",
                    "test-secret-key-0123456789abcdef0123456789",
                ),
            ],
        )
        .output()
        .unwrap();
        assert!(!out.status.success(), "{role}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot reach Kubernetes"), "{role}: {err}");
    }
}

#[test]
fn migrate_applies_the_schema_and_exits() {
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone();
    let out = sluice(dir.path(), &["migrate"], &[("SLUICE_DATABASE_URL", &url)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("database is up to date (migrations applied: 10)"),
        "{stdout}"
    );
    // Running it again changes nothing and still succeeds.
    let again = sluice(dir.path(), &["migrate"], &[("SLUICE_DATABASE_URL", &url)])
        .output()
        .unwrap();
    assert!(again.status.success());
}

#[test]
fn scale_out_roles_require_a_shared_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(dir.path(), &["api"], &[("SLUICE_BIND", "127.0.0.1:0")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SLUICE_SECRET_KEY"), "{err}");
    assert!(
        !dir.path().join("sluice-data").exists(),
        "nothing written before refusing"
    );
}

#[test]
fn passwords_tokens_and_secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = sluice(
        dir.path(),
        &["serve"],
        &[
            ("SLUICE_BIND", "127.0.0.1:0"),
            ("SLUICE_LOG", "debug"),
            ("SLUICE_LOG_FORMAT", "json"),
        ],
    )
    .spawn()
    .unwrap();
    let (url, _, _rest) = wait_for_banner(child.stdout.take().unwrap());
    let password = "pa55word-never-logged";
    let secret = "s3cr3t-value-never-logged";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (token, cookie) = rt.block_on(async {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{url}/auth/signup"))
            .json(&serde_json::json!({"email": "logs@example.com", "password": password, "name": "Logs"}))
            .send()
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let session: serde_json::Value = res.json().await.unwrap();
        let csrf = session["csrf_token"].as_str().unwrap().to_owned();
        let post = |path: &str, body: serde_json::Value| {
            http.post(format!("{url}{path}")).header("cookie", &cookie).header("x-csrf-token", &csrf).json(&body).send()
        };
        post("/api/v1/orgs", serde_json::json!({"slug": "acme", "name": "Acme"})).await.unwrap();
        post("/api/v1/orgs/acme/projects", serde_json::json!({"slug": "web", "name": "Web", "repo_url": "https://x.example/w.git"}))
            .await
            .unwrap();
        let created: serde_json::Value = post("/api/v1/orgs/acme/tokens", serde_json::json!({"name": "t", "scopes": ["write"]}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = created["token"].as_str().unwrap().to_owned();
        let put = http
            .put(format!("{url}/api/v1/orgs/acme/projects/web/secrets/API_KEY"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"value": secret}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
        (token, cookie)
    });
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(15)).code(),
        Some(0)
    );
    let logs = stderr_of(&mut child);
    assert!(
        logs.contains("/api/v1/orgs/{org}/projects/{project}/secrets/{name}"),
        "the request was logged"
    );
    let session_id = cookie.trim_start_matches("sluice_session=");
    for (what, value) in [
        ("password", password),
        ("secret", secret),
        ("token", token.as_str()),
        ("session", session_id),
    ] {
        assert!(!logs.contains(value), "the {what} appears in the logs");
    }
}

#[test]
fn a_request_in_flight_when_sigterm_arrives_still_gets_its_answer() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let mut child = sluice(dir.path(), &["serve"], &[("SLUICE_BIND", "127.0.0.1:0")])
        .spawn()
        .unwrap();
    let (url, _, _rest) = wait_for_banner(child.stdout.take().unwrap());
    let addr = url.trim_start_matches("http://").to_owned();
    let body = r#"{"email":"nobody@example.com","password":"wrong password"}"#;
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Headers (asking for `100 Continue`) and half the body now; the rest after the stop
    // signal. The server answers `100 Continue` once it has parsed the headers and handed the
    // request to its handler: from then on the request is in flight. (A later connection
    // answering proved nothing: it may be served by another HTTP worker thread.)
    write!(
        conn,
        "POST /auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len(),
    )
    .unwrap();
    conn.flush().unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    conn.write_all(&body.as_bytes()[..10]).unwrap();
    conn.flush().unwrap();
    signal(&child, "TERM");
    // Finish the body only once the server has stopped accepting new connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server kept accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    conn.write_all(&body.as_bytes()[10..]).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "in-flight request cut off: {response:?}"
    );
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", stderr_of(&mut child));
}

#[test]
fn serve_runs_a_jenkinsfile_from_a_local_repository_end_to_end() {
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::fleet::git_repo(
        "pipeline { agent any\n stages { stage('Hello') { steps { sh 'echo hello' } } } }\n",
    );
    let env = database_env(&db);
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("SLUICE_BIND", "127.0.0.1:0"));
    let mut child = sluice(dir.path(), &["serve"], &vars).spawn().unwrap();
    let (url, _, _rest) = wait_for_banner(child.stdout.take().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{url}/auth/signup"))
            .json(&serde_json::json!({"email": "q@example.com", "password": "correct horse", "name": "Q"}))
            .send()
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let csrf = res.json::<serde_json::Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
        let post = |path: String, body: serde_json::Value| {
            http.post(format!("{url}{path}")).header("cookie", &cookie).header("x-csrf-token", &csrf).json(&body).send()
        };
        post("/api/v1/orgs".into(), serde_json::json!({"slug": "acme", "name": "Acme"})).await.unwrap();
        post("/api/v1/orgs/acme/projects".into(), serde_json::json!({"slug": "web", "name": "Web", "repo_url": repo.url}))
            .await
            .unwrap();
        let run = post("/api/v1/orgs/acme/projects/web/runs".into(), serde_json::json!({})).await.unwrap();
        assert_eq!(run.status(), 201);
        // serve's own dispatcher and worker take it from the embedded queue and run it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let run: serde_json::Value = http
                .get(format!("{url}/api/v1/orgs/acme/projects/web/runs/1"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if run["status"] == "succeeded" {
                assert_eq!(run["stages"][0]["name"], "Hello");
                break;
            }
            assert!(
                run["status"] == "queued" || run["status"] == "running",
                "{run}"
            );
            assert!(Instant::now() < deadline, "the run never finished: {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The dispatcher's and the worker's metrics are on serve's /metrics.
        loop {
            let metrics = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
            if metrics.lines().any(|l| l == "sluice_queue_depth 0")
                && metrics.lines().any(|l| l == "sluice_queue_wait_seconds_count 1")
            {
                break;
            }
            assert!(Instant::now() < deadline, "metrics never showed the run: {metrics}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(15)).code(),
        Some(0),
        "{}",
        stderr_of(&mut child)
    );
}
