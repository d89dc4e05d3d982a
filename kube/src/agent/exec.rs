//! The Kubernetes agent: one build pod, reached only through the exec API of its `build`
//! container, as Jenkins' kubernetes plugin runs `container()` steps. Scripts and secrets go
//! in on stdin ([`shell::payload`]); trees go in and out as tar streams on stdin and stdout.
//!
//! A step survives its exec stream: it runs detached in the pod and the stream follows its
//! output file ([`shell::LAUNCH`], [`shell::FOLLOW`]). When the stream drops, the agent
//! re-attaches with backoff from the byte it reached; when the pod is gone, or the stream
//! cannot be re-attached, the step fails with the reason. It never hangs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess, DeleteParams};
use sluice_worker::agent::{Agent, AgentError, ByteStream, Env, Exit, Output, clean};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::shell;
use super::streams::{Lines, Streams, exit_code};
use crate::pod::CONTAINER;

/// Re-attaching to a step whose stream dropped: waits between tries.
const REATTACH_BACKOFF: [u64; 6] = [100, 200, 400, 800, 1600, 3200];

/// A running build pod.
pub struct KubeAgent {
    pods: Api<Pod>,
    name: String,
    /// The pod's root directory (its container's working directory).
    root: String,
    steps: AtomicU64,
    /// Ends the heartbeat when the agent finishes.
    pub(super) done: CancellationToken,
}

/// How an exec ended.
enum Ended {
    /// With this exit status.
    Code(i32),
    /// The stream closed without a status: the connection dropped or the pod went away.
    Dropped,
}

impl KubeAgent {
    pub(super) fn new(pods: Api<Pod>, name: String) -> KubeAgent {
        KubeAgent {
            pods,
            name,
            root: String::new(),
            steps: AtomicU64::new(0),
            done: CancellationToken::new(),
        }
    }

    /// The agent of the running pod `name` (its `build` container), ready for steps.
    pub async fn attach(pods: Api<Pod>, name: &str) -> Result<KubeAgent, AgentError> {
        let mut agent = KubeAgent::new(pods, name.to_owned());
        agent.init().await?;
        Ok(agent)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts `script` (with `args` as `$1`...) in the build container.
    async fn exec(
        &self,
        script: &str,
        args: &[&str],
        stdin: bool,
    ) -> Result<AttachedProcess, kube::Error> {
        let mut command = vec!["sh", "-c", script, "sluice"];
        command.extend_from_slice(args);
        let params = AttachParams::default()
            .container(CONTAINER)
            .stdin(stdin)
            .stdout(true)
            .stderr(true);
        self.pods.exec(&self.name, command, &params).await
    }

    /// Runs `script` to its end, feeding it `input`; its stdout, or an error with its stderr.
    async fn call(
        &self,
        what: &str,
        script: &str,
        args: &[&str],
        input: Option<ByteStream>,
    ) -> Result<Vec<u8>, AgentError> {
        let mut process = self
            .exec(script, args, input.is_some())
            .await
            .map_err(|e| AgentError::Failed(format!("{what}: {e}")))?;
        let streams = Streams::of(&mut process);
        let feed = async {
            if let (Some(mut input), Some(mut stdin)) = (input, process.stdin()) {
                tokio::io::copy(&mut input, &mut stdin).await?;
                stdin.shutdown().await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let mut out = Vec::new();
        let (fed, (status, err)) =
            tokio::join!(feed, streams.finish(|chunk| out.extend_from_slice(chunk)));
        fed.map_err(|e| AgentError::Failed(format!("{what}: sending input: {e}")))?;
        match status.as_ref().map(exit_code) {
            Some(0) => Ok(out),
            Some(code) => {
                let detail = status
                    .as_ref()
                    .and_then(|s| s.message.clone())
                    .unwrap_or_default();
                Err(AgentError::Failed(format!(
                    "{what} failed (exit {code}): {}",
                    if err.is_empty() { detail } else { err }
                )))
            }
            None => Err(AgentError::Failed(format!(
                "{what}: the exec stream to pod {} closed without a status",
                self.name
            ))),
        }
    }

    /// Learns the root (the container's working directory) and makes the agent's directories.
    pub(super) async fn init(&mut self) -> Result<(), AgentError> {
        let out = self
            .call("preparing the pod", shell::INIT, &[], None)
            .await?;
        let root = String::from_utf8_lossy(&out).trim().to_owned();
        if !root.starts_with('/') {
            return Err(AgentError::Failed(format!(
                "the pod's working directory is `{root}`, not an absolute path"
            )));
        }
        self.root = root;
        Ok(())
    }

    /// Follows a launched (or re-attached) step's stream until it ends or drops.
    async fn follow(
        &self,
        mut process: AttachedProcess,
        lines: &mut Lines<'_>,
        got: &mut u64,
    ) -> Ended {
        let streams = Streams::of(&mut process);
        let (status, err) = streams
            .finish(|chunk| {
                *got += chunk.len() as u64;
                lines.push(chunk);
            })
            .await;
        if !err.is_empty() {
            tracing::debug!(pod = %self.name, stderr = %err, "step stream");
        }
        match status {
            Some(status) => Ended::Code(exit_code(&status)),
            None => Ended::Dropped,
        }
    }

    /// Whether the pod still exists and has not ended.
    async fn alive(&self) -> Result<bool, AgentError> {
        match self.pods.get_opt(&self.name).await {
            Ok(Some(pod)) => Ok(pod.metadata.deletion_timestamp.is_none()
                && !matches!(
                    pod.status.and_then(|s| s.phase).as_deref(),
                    Some("Succeeded") | Some("Failed")
                )),
            Ok(None) => Ok(false),
            Err(err) => Err(AgentError::Failed(format!(
                "cannot read pod {}: {err}",
                self.name
            ))),
        }
    }

    fn gone(&self) -> AgentError {
        AgentError::Failed(format!(
            "the build pod {} was deleted or stopped while the step ran",
            self.name
        ))
    }

    /// Stops a launched step (TERM, then KILL a second later) in the background.
    fn stop(&self, dir: &str) {
        let pods = self.pods.clone();
        let name = self.name.clone();
        let dir = dir.to_owned();
        tokio::spawn(async move {
            let agent = KubeAgent::new(pods, name);
            if let Err(err) = agent
                .call("stopping a step", shell::STOP, &[&dir], None)
                .await
            {
                tracing::debug!(error = %err, "stopping a step in its pod");
            }
        });
    }

    /// Deletes the pod now (no grace: the attempt is over).
    pub(super) async fn delete(&self) -> Result<(), AgentError> {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let mut last = None;
        for wait in [0u64, 200, 1000] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            match self.pods.delete(&self.name, &params).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
                Err(err) => last = Some(err),
            }
        }
        Err(AgentError::Failed(format!(
            "cannot delete pod {}: {}",
            self.name,
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}

#[async_trait::async_trait]
impl Agent for KubeAgent {
    fn path_of(&self, rel: &str) -> String {
        match clean(rel) {
            Ok(rel) if !rel.is_empty() => format!("{}/{rel}", self.root),
            _ => self.root.clone(),
        }
    }

    async fn run(
        &self,
        script: &str,
        env: &Env,
        dir: &str,
        output: Output<'_>,
        cancel: &CancellationToken,
    ) -> Result<Exit, AgentError> {
        let dir = clean(dir)?;
        let payload = shell::payload(script, env, &self.root, &dir)?;
        let id = self.steps.fetch_add(1, Ordering::Relaxed);
        let step = format!("{}/{id}", shell::STEPS);
        let mut lines = Lines::new(output);
        let mut got = 0u64;
        let launched = async {
            let mut process = self
                .exec(shell::LAUNCH, &[&step, shell::FOLLOW], true)
                .await
                .map_err(|e| {
                    AgentError::Failed(format!("starting the step in pod {}: {e}", self.name))
                })?;
            if let Some(mut stdin) = process.stdin() {
                stdin.write_all(payload.as_bytes()).await?;
                stdin.shutdown().await?;
            }
            Ok::<_, AgentError>(process)
        };
        let process = tokio::select! {
            _ = cancel.cancelled() => return Ok(Exit::Stopped),
            process = launched => process?,
        };
        let mut process = Some(process);
        let mut tries = 0usize;
        loop {
            let ended = match process.take() {
                Some(process) => {
                    tokio::select! {
                        _ = cancel.cancelled() => {
                            self.stop(&step);
                            lines.finish();
                            return Ok(Exit::Stopped);
                        }
                        ended = self.follow(process, &mut lines, &mut got) => ended,
                    }
                }
                None => Ended::Dropped,
            };
            match ended {
                Ended::Code(code) => {
                    lines.finish();
                    // A step killed with its pod says so, not just "exit 137".
                    if code != 0 && !self.alive().await.unwrap_or(true) {
                        return Err(self.gone());
                    }
                    return Ok(Exit::Code(code));
                }
                Ended::Dropped => {
                    let Some(wait) = REATTACH_BACKOFF.get(tries) else {
                        lines.finish();
                        return Err(AgentError::Failed(format!(
                            "lost the step's output stream from pod {} and could not re-attach after {tries} tries",
                            self.name
                        )));
                    };
                    tries += 1;
                    tokio::select! {
                        _ = cancel.cancelled() => {
                            self.stop(&step);
                            lines.finish();
                            return Ok(Exit::Stopped);
                        }
                        _ = tokio::time::sleep(Duration::from_millis(*wait)) => {}
                    }
                    if !self.alive().await.unwrap_or(true) {
                        lines.finish();
                        return Err(self.gone());
                    }
                    let offset = got.to_string();
                    match self.exec(shell::FOLLOW, &[&step, &offset], false).await {
                        Ok(p) => {
                            tracing::info!(pod = %self.name, offset = got, "re-attached to a step after its stream dropped");
                            process = Some(p);
                        }
                        Err(err) => {
                            tracing::warn!(pod = %self.name, error = %err, "re-attaching to a step failed");
                        }
                    }
                }
            }
        }
    }

    async fn put(&self, dir: &str, tar: ByteStream) -> Result<(), AgentError> {
        let dir = clean(dir)?;
        let dir = if dir.is_empty() { ".".to_owned() } else { dir };
        self.call("copying files into the pod", shell::PUT, &[&dir], Some(tar))
            .await
            .map(|_| ())
    }

    async fn get(&self, dir: &str) -> Result<ByteStream, AgentError> {
        let dir = clean(dir)?;
        let dir = if dir.is_empty() { ".".to_owned() } else { dir };
        let what = format!("copying {dir} out of the pod");
        let mut process = self
            .exec(shell::GET, &[&dir], false)
            .await
            .map_err(|e| AgentError::Failed(format!("{what}: {e}")))?;
        let mut streams = Streams::of(&mut process);
        // The first bytes, or the end: a missing directory fails here rather than mid-stream.
        let Some(first) = streams.next().await else {
            let (status, err) = streams.finish(|_| {}).await;
            return match status.as_ref().map(exit_code) {
                Some(0) => Ok(Box::pin(std::io::Cursor::new(Vec::new()))),
                _ => Err(AgentError::Failed(format!("{what}: {err}"))),
            };
        };
        // The exec stays alive (`process`) until its stream is read whole; its status decides
        // whether the stream ends cleanly or with an error.
        let rest = futures_util::stream::unfold(Some((streams, process)), |state| async move {
            let (mut streams, process) = state?;
            match streams.next().await {
                Some(chunk) => Some((Ok(chunk), Some((streams, process)))),
                None => {
                    let (status, err) = streams.finish(|_| {}).await;
                    drop(process);
                    match status.as_ref().map(exit_code) {
                        Some(0) => None,
                        Some(code) => Some((
                            Err(std::io::Error::other(format!(
                                "tar in the pod exited with {code}: {err}"
                            ))),
                            None,
                        )),
                        None => Some((
                            Err(std::io::Error::other(
                                "the exec stream closed before the archive ended",
                            )),
                            None,
                        )),
                    }
                }
            }
        });
        let body = futures_util::stream::once(async move { Ok(first) }).chain(rest);
        Ok(Box::pin(tokio_util::io::StreamReader::new(body)))
    }

    async fn remove(&self, path: &str) -> Result<(), AgentError> {
        let path = clean(path)?;
        if path.is_empty() {
            return Err(AgentError::Failed(
                "refusing to remove the pod's whole root".into(),
            ));
        }
        self.call("removing files in the pod", shell::REMOVE, &[&path], None)
            .await
            .map(|_| ())
    }

    async fn finish(&self) -> Result<(), AgentError> {
        self.done.cancel();
        self.delete().await
    }
}
