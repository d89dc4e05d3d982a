//! One instance of the local runtime: the release's `command` run in its own directory (the
//! release's artifacts laid out there) with `PORT` set, under the step supervisor so nothing it
//! starts outlives it or this process. It is ready while `healthPath` answers 200, and is
//! restarted with backoff when it exits; its output goes to `<dir>.log`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use sluice_worker::supervised;
use tokio_util::sync::CancellationToken;

use crate::router::{Backend, Load};

/// How long an instance gets between SIGTERM and SIGKILL (the supervisor's own grace is 1 s).
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Consecutive failed health checks that take a ready instance out.
const UNHEALTHY_AFTER: u32 = 3;

/// What an instance runs.
#[derive(Debug, Clone)]
pub struct Launch {
    pub release_id: i64,
    pub version: i64,
    pub command: String,
    pub dir: PathBuf,
    pub health_path: String,
    /// `PORT` and the `SLUICE_*` variables besides the base environment.
    pub env: Vec<(String, String)>,
    /// A `sluice` binary (`sluice __supervise -- sh -c COMMAND`).
    pub supervisor: PathBuf,
}

#[derive(Debug, Default)]
struct State {
    ready: AtomicBool,
    exits: AtomicU32,
}

/// A running instance; dropping it without [`Instance::stop`] kills it (its lifeline closes).
#[derive(Debug)]
pub struct Instance {
    pub release_id: i64,
    pub version: i64,
    pub port: u16,
    pub routed: bool,
    pub load: Arc<Load>,
    state: Arc<State>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A free loopback port (the instance binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Instance {
    pub fn start(launch: Launch) -> std::io::Result<Instance> {
        let port = free_port()?;
        let state = Arc::new(State::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(launch.clone(), port, state.clone(), stop.clone()));
        Ok(Instance {
            release_id: launch.release_id,
            version: launch.version,
            port,
            routed: false,
            load: Arc::new(Load::default()),
            state,
            stop,
            task,
        })
    }

    pub fn ready(&self) -> bool {
        self.state.ready.load(Ordering::SeqCst)
    }

    /// How many times it exited (crashes and failed starts).
    pub fn exits(&self) -> u32 {
        self.state.exits.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn backend(&self, colour: &'static str) -> Backend {
        Backend {
            addr: SocketAddr::from(([127, 0, 0, 1], self.port)),
            colour,
            load: self.load.clone(),
        }
    }

    /// Waits (up to `drain`) for the requests in flight to it to finish, then stops it. Call
    /// after taking it out of the router's pool.
    pub async fn drain_and_stop(self, drain: Duration) {
        let deadline = Instant::now() + drain;
        while self.load.inflight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop().await;
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }
}

async fn supervise(launch: Launch, port: u16, state: Arc<State>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(launch.dir.with_extension("log"));
        let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
            Err(_) => (Stdio::null(), Stdio::null()),
        };
        let mut cmd = supervised::command(&launch.supervisor, &["-c", &launch.command]);
        cmd.current_dir(&launch.dir)
            .env("HOME", &launch.dir)
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PORT", port.to_string())
            .stdout(out)
            .stderr(err);
        let started = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(error) => {
                tracing::warn!(%error, dir = %launch.dir.display(), "cannot start an instance");
                state.exits.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let lifeline = child.stdin.take();
        let pid = supervised::pid_of(&child);
        let status = tokio::select! {
            status = child.wait() => Some(status),
            _ = health(port, &launch.health_path, &state) => None,
            _ = stop.cancelled() => None,
        };
        state.ready.store(false, Ordering::SeqCst);
        if status.is_none() {
            supervised::stop(&mut child, pid, lifeline, STOP_WAIT).await;
            return;
        }
        state.exits.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(
            dir = %launch.dir.display(),
            status = ?status,
            "an instance exited; restarting it after {backoff:?}"
        );
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(250);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Checks `healthPath` until the instance answers 200, then every second; never returns.
async fn health(port: u16, path: &str, state: &State) {
    let client = crate::router::client();
    let uri: Option<hyper::Uri> = format!("http://127.0.0.1:{port}{path}").parse().ok();
    let mut failures = 0u32;
    loop {
        let ready = state.ready.load(Ordering::SeqCst);
        tokio::time::sleep(if ready {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        })
        .await;
        let Some(uri) = uri.clone() else {
            continue;
        };
        let mut req = hyper::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri;
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(2), client.request(req)).await,
            Ok(Ok(res)) if res.status() == hyper::StatusCode::OK
        );
        if ok {
            failures = 0;
            state.ready.store(true, Ordering::SeqCst);
        } else {
            failures += 1;
            if failures >= UNHEALTHY_AFTER {
                state.ready.store(false, Ordering::SeqCst);
            }
        }
    }
}
