//! Real git servers on loopback, for private repositories: git's smart HTTP protocol (`git
//! http-backend` run as CGI) behind Basic authentication, and OpenSSH's `sshd` letting in
//! the keys written to its `authorized_keys`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use tokio::io::AsyncWriteExt;

use crate::fleet::{Repo, git};
use crate::helpers::wait_until;

/// A bare copy of `repo` in a new directory; returns that directory and the copy's path.
pub fn bare_copy(repo: &Repo) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join("app.git");
    git(
        root.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            &repo.dir.path().display().to_string(),
            &bare.display().to_string(),
        ],
    );
    (root, bare)
}

struct Backend {
    root: PathBuf,
    /// The `Authorization` header every request must carry.
    expected: String,
    requests: Requests,
}

/// What the server was asked to send, one entry per `git-upload-pack` request that wanted
/// objects: whether the client said which objects it already had (`have` lines), as an
/// incremental fetch does and a full clone does not.
pub type Requests = std::sync::Arc<std::sync::Mutex<Vec<Fetch>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Full,
    Incremental,
}

async fn cgi(backend: web::Data<Backend>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if header("authorization") != backend.expected {
        return HttpResponse::Unauthorized()
            .insert_header(("www-authenticate", "Basic realm=\"git\""))
            .body("credentials required");
    }
    let path_info = req.path().strip_prefix("/git").unwrap_or("").to_owned();
    let has = |word: &[u8]| body.windows(word.len()).any(|w| w == word);
    if path_info.ends_with("/git-upload-pack") && has(b"want ") {
        let fetch = if has(b"have ") {
            Fetch::Incremental
        } else {
            Fetch::Full
        };
        backend.requests.lock().unwrap().push(fetch);
    }
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &backend.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", req.method().as_str())
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", req.query_string())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", "tester")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&body).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap().stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .unwrap();
    let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
    let mut res = HttpResponse::Ok();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value[..3].parse().unwrap();
            res.status(actix_web::http::StatusCode::from_u16(code).unwrap());
        } else {
            res.insert_header((name.trim().to_owned(), value.to_owned()));
        }
    }
    res.body(out[split.0 + split.1..].to_vec())
}

/// Serves the bare repositories under `root` at `http://127.0.0.1:<port>/git/<name>`, to
/// requests whose Basic credentials are `user:token`; returns the base URL.
pub fn start_http(root: &Path, user: &str, token: &str) -> String {
    start_http_recording(root, user, token).0
}

/// [`start_http`], also returning what each fetch asked for.
pub fn start_http_recording(root: &Path, user: &str, token: &str) -> (String, Requests) {
    let requests = Requests::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/git", listener.local_addr().unwrap());
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
    let backend = web::Data::new(Backend {
        root: root.to_owned(),
        expected: format!("Basic {encoded}"),
        requests: requests.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(backend.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .default_service(web::to(cgi))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (url, requests)
}

/// An `sshd` on loopback, as the user running the tests, letting in the keys written with
/// [`Sshd::authorize`]. Killed when dropped.
pub struct Sshd {
    pub port: u16,
    pub user: String,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Sshd {
    pub async fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("host_key");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::fs::write(dir.path().join("authorized_keys"), "").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
                key.display(),
                dir.path().join("authorized_keys").display(),
                dir.path().join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // The privilege-separation directory sshd insists on when run as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = std::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd (Debian openssh-server; scripts/test-services.sh installs it)");
        wait_until(Duration::from_secs(20), || async {
            let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return false;
            };
            let mut banner = [0u8; 7];
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut banner)
                .await
                .is_ok()
                && &banner == b"SSH-2.0"
        })
        .await;
        let user = String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_owned();
        Sshd {
            port,
            user,
            dir,
            child,
        }
    }

    /// Lets in the holder of `public_key` (one OpenSSH public key line).
    pub fn authorize(&self, public_key: &str) {
        std::fs::write(
            self.dir.path().join("authorized_keys"),
            format!("{}\n", public_key.trim()),
        )
        .unwrap();
    }

    /// The file listing the keys let in.
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.path().join("authorized_keys")
    }

    /// The `ssh://` URL of the repository at `path` on this server.
    pub fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
