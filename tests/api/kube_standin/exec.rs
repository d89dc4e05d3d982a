//! pods/exec on the STAND-IN, over WebSocket as kube-rs's `Api::exec` speaks it: subprotocol
//! `v5.channel.k8s.io` (or `v4.channel.k8s.io`), binary frames whose first byte is the
//! channel: 0 stdin from the client, 1 stdout, 2 stderr, 3 the exit `Status`, and on v5 the
//! client's `[255, 0]` closing stdin. Stdout and stderr are forwarded as they are read, all of
//! them before the status frame; then the socket closes.
//!
//! The command runs as a local process in the pod's directory, in a process group of its own,
//! with only `PATH` (the test's), `HOME` (the pod's `home`) and `HOSTNAME` (the pod's name) in
//! its environment. When the pod is deleted or passes its deadline, or an injected drop hits,
//! the group is killed and the socket closes with no status, as when the connection to a
//! kubelet breaks. Nothing an exec started outlives it: its group is killed when it ends.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{Message, MessageStream, Session};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::kubelet::kill_group;
use super::{Cluster, container_of, pod_path, status, status_object};

/// The subprotocols served, preferred first.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
/// v5: `[CLOSE, channel]` closes the channel.
const CLOSE: u8 = 255;

/// What the exec request asks for.
struct Request {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl Request {
    fn parse(query: &str) -> (Request, Option<String>) {
        let mut request = Request {
            command: Vec::new(),
            stdin: false,
            stdout: false,
            stderr: false,
        };
        let mut container = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let on = value == "1" || value.eq_ignore_ascii_case("true");
            match key.as_ref() {
                "command" => request.command.push(value.into_owned()),
                "container" => container = Some(value.into_owned()),
                "stdin" => request.stdin = on,
                "stdout" => request.stdout = on,
                "stderr" => request.stderr = on,
                _ => {}
            }
        }
        (request, container)
    }
}

/// One exec's process and socket.
struct Exec {
    cluster: Arc<Cluster>,
    pod_path: String,
    pod: String,
    dir: PathBuf,
    request: Request,
    session: Session,
    messages: MessageStream,
}

pub async fn serve(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    cluster: web::Data<Arc<Cluster>>,
) -> HttpResponse {
    let (namespace, name) = path.into_inner();
    let (request, container) = Request::parse(req.query_string());
    let at = pod_path(&namespace, &name);
    let Some(pod) = cluster.store().objects.get(&at).cloned() else {
        return status(404, "NotFound", format!("pods \"{name}\" not found"));
    };
    if let Err(refusal) = container_of(&pod, &name, container.as_deref()) {
        return refusal.into();
    }
    if request.command.is_empty() {
        return status(400, "BadRequest", "you must specify at least 1 command");
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    let Some(dir) = cluster.kubelet.pod_dir(&at).filter(|_| phase == "Running") else {
        return status(
            400,
            "BadRequest",
            format!("container not running (pod \"{name}\" is {phase})"),
        );
    };
    let offered = req
        .headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .any(|p| PROTOCOLS.contains(&p.trim()));
    if !offered {
        return status(
            400,
            "BadRequest",
            format!(
                "exec needs one of the subprotocols {}",
                PROTOCOLS.join(", ")
            ),
        );
    }
    let (response, session, messages) =
        match actix_ws::handle_with_protocols(&req, payload, &PROTOCOLS) {
            Ok(upgrade) => upgrade,
            Err(err) => return status(400, "BadRequest", err.to_string()),
        };
    let exec = Exec {
        cluster: cluster.get_ref().clone(),
        pod_path: at,
        pod: name,
        dir,
        request,
        session,
        messages,
    };
    actix_web::rt::spawn(exec.run());
    response
}

/// Reads what `pipe` has; 0 at its end. A closed pipe never answers.
async fn read_from(pipe: &mut Option<impl AsyncRead + Unpin>, buf: &mut [u8]) -> usize {
    match pipe {
        Some(pipe) => pipe.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

/// Writes what the client sends to the process's stdin; dropping the sender ends its input.
fn feed(mut pipe: ChildStdin) -> mpsc::UnboundedSender<Bytes> {
    let (sender, mut received) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        while let Some(chunk) = received.recv().await {
            if pipe.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    sender
}

fn frame(channel: u8, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    Bytes::from(frame)
}

/// The status channel's `Status` for how the process ended.
fn exit_status(status: ExitStatus, command: &[String]) -> Value {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// Unregisters an exec and kills what is left of its process group, however it ends.
struct Registration {
    cluster: Arc<Cluster>,
    pod_path: String,
    id: u64,
    process_group: i32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cluster.kubelet.exec_ended(&self.pod_path, self.id);
        kill_group(self.process_group);
    }
}

impl Exec {
    async fn run(mut self) {
        let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        let mut command = Command::new(&self.request.command[0]);
        command
            .args(&self.request.command[1..])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", self.cluster.kubelet.path_env())
            .env("HOME", self.dir.join("home"))
            .env("HOSTNAME", &self.pod)
            .process_group(0)
            .stdin(piped(self.request.stdin))
            .stdout(piped(self.request.stdout))
            .stderr(piped(self.request.stderr))
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                let message = format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{}\": {err}: unknown",
                    self.request.command[0]
                );
                let failed = status_object(500, "InternalError", &message);
                let _ = self
                    .session
                    .binary(frame(STATUS, failed.to_string().as_bytes()))
                    .await;
                let _ = self.session.close(None).await;
                return;
            }
        };
        let Some(process_group) = child.id().and_then(|id| i32::try_from(id).ok()) else {
            return;
        };
        let Some((id, stop)) = self
            .cluster
            .kubelet
            .exec_started(&self.pod_path, process_group)
        else {
            // The pod stopped in the meantime.
            kill_group(process_group);
            return;
        };
        let _registration = Registration {
            cluster: self.cluster.clone(),
            pod_path: self.pod_path.clone(),
            id,
            process_group,
        };
        // `None`: the connection is dropped, no status.
        if let Some(exited) = self.stream(&mut child, &stop).await {
            let status = exit_status(exited, &self.request.command);
            let _ = self
                .session
                .binary(frame(STATUS, status.to_string().as_bytes()))
                .await;
            let _ = self.session.close(None).await;
        }
    }

    /// Forwards output and input until the process has exited and its output ended; `None`
    /// when the exec is killed, dropped, or the client goes away.
    async fn stream(&mut self, child: &mut Child, stop: &CancellationToken) -> Option<ExitStatus> {
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let mut stdin = child.stdin.take().map(feed);
        let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
        // The end of the stdout sent so far, so a mark split across reads is still found.
        let mut recent: Vec<u8> = Vec::new();
        let mut client_open = true;
        let mut exited = None;
        while stdout.is_some() || stderr.is_some() || exited.is_none() {
            tokio::select! {
                () = stop.cancelled() => return None,
                status = child.wait(), if exited.is_none() => exited = Some(status.ok()?),
                n = read_from(&mut stdout, &mut out_buf) => {
                    if n == 0 {
                        stdout = None;
                        continue;
                    }
                    self.send(stop, STDOUT, &out_buf[..n]).await?;
                    recent.extend_from_slice(&out_buf[..n]);
                    if self.cluster.kubelet.take_drop_mark(&recent) {
                        return None;
                    }
                    let keep = recent.len().saturating_sub(256);
                    recent.drain(..keep);
                }
                n = read_from(&mut stderr, &mut err_buf) => {
                    if n == 0 {
                        stderr = None;
                        continue;
                    }
                    self.send(stop, STDERR, &err_buf[..n]).await?;
                }
                message = self.messages.recv(), if client_open => match message {
                    Some(Ok(Message::Binary(data))) => match (data.first(), data.get(1)) {
                        (Some(&STDIN), _) => {
                            if let Some(stdin) = &stdin {
                                let _ = stdin.send(data.slice(1..));
                            }
                        }
                        (Some(&CLOSE), Some(&STDIN)) => stdin = None,
                        _ => {}
                    },
                    Some(Ok(Message::Ping(bytes))) => {
                        let _ = self.session.pong(&bytes).await;
                    }
                    // A v4 client closes the socket at the end of its stdin, and still reads.
                    Some(Ok(Message::Close(_))) => {
                        stdin = None;
                        client_open = false;
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => return None,
                },
            }
        }
        // Killed meanwhile (the kill cancels `stop` before it signals): no status.
        if stop.is_cancelled() {
            return None;
        }
        exited
    }

    /// Sends a frame on `channel`; `None` when the client is gone or the exec is killed
    /// meanwhile (a client that stops reading holds the send up).
    async fn send(&mut self, stop: &CancellationToken, channel: u8, data: &[u8]) -> Option<()> {
        tokio::select! {
            sent = self.session.binary(frame(channel, data)) => sent.ok(),
            () = stop.cancelled() => None,
        }
    }
}
