//! The local agent: a directory on the worker's host, each script under the step supervisor.
//!
//! Each script runs `sh -e -c` with a clean environment below a supervisor
//! ([`crate::supervisor`]) that no process of the script can leave: when the script ends,
//! whatever it left running (`cmd &`, `setsid cmd &`) is killed, as Jenkins does; on cancel or
//! timeout everything gets SIGTERM, then SIGKILL a second later; and when the worker dies, the
//! supervisor sees its lifeline pipe close and does the same. Output is read in blocks and cut
//! into lines (a line longer than the log's limit is split), so a script printing without
//! newlines still streams.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sluice_core::logs::MAX_LINE_BYTES;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use sluice_core::pipeline::model::{Agent as AgentSpec, Pipeline, Stage, StageBody};

use super::{
    Agent, AgentError, Agents, ByteStream, Env, Exit, Output, WORKSPACE, clean, tar_stream,
};
use crate::executor::{RunContext, RunEvents};
use crate::supervised;

/// Runs steps in `root` on this host, each script below `supervisor` (a `sluice` binary).
#[derive(Debug, Clone)]
pub struct LocalAgent {
    root: PathBuf,
    supervisor: PathBuf,
}

impl LocalAgent {
    pub fn new(root: impl Into<PathBuf>, supervisor: impl Into<PathBuf>) -> LocalAgent {
        LocalAgent {
            root: root.into(),
            supervisor: supervisor.into(),
        }
    }

    fn local(&self, rel: &str) -> Result<PathBuf, AgentError> {
        let rel = clean(rel)?;
        Ok(if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        })
    }
}

/// Local agents: each attempt's directory on this host (the worker's attempt directory), with
/// every script under `supervisor`.
#[derive(Debug, Clone)]
pub struct LocalAgents {
    supervisor: PathBuf,
}

impl LocalAgents {
    /// `supervisor` is a `sluice` binary (it runs as `sluice __supervise -- …`).
    pub fn new(supervisor: impl Into<PathBuf>) -> LocalAgents {
        LocalAgents {
            supervisor: supervisor.into(),
        }
    }
}

#[async_trait::async_trait]
impl Agents for LocalAgents {
    fn refuse(&self, pipeline: &Pipeline, file: &str) -> Option<String> {
        fn kind(agent: &AgentSpec) -> Option<&'static str> {
            match agent {
                AgentSpec::Docker { .. } => Some("docker"),
                AgentSpec::Kubernetes { .. } => Some("kubernetes"),
                _ => None,
            }
        }
        fn in_stages(list: &[Stage], file: &str) -> Option<String> {
            list.iter().find_map(|st| {
                if let Some(kind) = st.agent.as_ref().and_then(kind) {
                    return Some(format!(
                        "{file}:{}: stage `{}` asks for a {kind} agent; the local executor runs steps on the host and has no container runtime (use the Kubernetes executor)",
                        st.pos.line, st.name
                    ));
                }
                match &st.body {
                    StageBody::Steps { .. } => None,
                    StageBody::Parallel { stages: s, .. }
                    | StageBody::Stages { stages: s }
                    | StageBody::Matrix { stages: s, .. } => in_stages(s, file),
                }
            })
        }
        if let Some(kind) = kind(&pipeline.agent) {
            return Some(format!(
                "{file}: the pipeline asks for a {kind} agent; the local executor runs steps on the host and has no container runtime (use the Kubernetes executor)"
            ));
        }
        in_stages(&pipeline.stages, file)
    }

    fn checkout_dir(&self, ctx: &RunContext) -> Option<PathBuf> {
        Some(ctx.workspace.join(WORKSPACE))
    }

    async fn start(
        &self,
        ctx: &RunContext,
        _pipeline: &Pipeline,
        _events: &dyn RunEvents,
        _cancel: &CancellationToken,
    ) -> Result<Box<dyn Agent>, AgentError> {
        tokio::fs::create_dir_all(ctx.workspace.join(WORKSPACE)).await?;
        Ok(Box::new(LocalAgent::new(
            ctx.workspace.clone(),
            self.supervisor.clone(),
        )))
    }
}

#[async_trait::async_trait]
impl Agent for LocalAgent {
    fn host_dir(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }

    fn path_of(&self, rel: &str) -> String {
        self.local(rel)
            .unwrap_or_else(|_| self.root.clone())
            .display()
            .to_string()
    }

    async fn run(
        &self,
        script: &str,
        env: &Env,
        dir: &str,
        output: Output<'_>,
        cancel: &CancellationToken,
    ) -> Result<Exit, AgentError> {
        let dir = self.local(dir)?;
        tokio::fs::create_dir_all(&dir).await?;
        sh(&self.supervisor, script, env, &dir, output, cancel).await
    }

    async fn put(&self, dir: &str, tar: ByteStream) -> Result<(), AgentError> {
        let dest = self.local(dir)?;
        tar_stream::unpack(tar, dest).await?;
        Ok(())
    }

    async fn get(&self, dir: &str) -> Result<ByteStream, AgentError> {
        let src = self.local(dir)?;
        if !tokio::fs::metadata(&src).await?.is_dir() {
            return Err(AgentError::Failed(format!("`{dir}` is not a directory")));
        }
        Ok(tar_stream::pack_dir(src))
    }

    async fn remove(&self, path: &str) -> Result<(), AgentError> {
        let target = self.local(path)?;
        let removed = match tokio::fs::symlink_metadata(&target).await {
            Ok(meta) if meta.is_dir() => tokio::fs::remove_dir_all(&target).await,
            Ok(_) => tokio::fs::remove_file(&target).await,
            Err(err) => Err(err),
        };
        match removed {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

/// How long the output pumps may go on after the supervisor ended.
const PUMP_DRAIN: Duration = Duration::from_millis(500);

/// Runs `script` under the step supervisor; its output goes to `output` line by line.
async fn sh(
    supervisor: &Path,
    script: &str,
    env: &Env,
    dir: &Path,
    output: Output<'_>,
    cancel: &CancellationToken,
) -> Result<Exit, AgentError> {
    let mut cmd = supervised::command(supervisor, &["-e", "-c", script]);
    cmd.current_dir(dir)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => return Err(AgentError::Failed(format!("cannot start sh: {err}"))),
    };
    let lifeline = child.stdin.take();
    let pid = supervised::pid_of(&child);
    let out = child.stdout.take();
    let err = child.stderr.take();
    let ended = CancellationToken::new();
    let waiter = async {
        let status = tokio::select! {
            status = child.wait() => Some(status),
            _ = cancel.cancelled() => None,
        };
        let status = match status {
            Some(status) => status.map(Some),
            None => {
                supervised::stop(&mut child, pid, lifeline, STOP_WAIT).await;
                Ok(None)
            }
        };
        ended.cancel();
        status
    };
    let pumps = async {
        let both = async {
            tokio::join!(pump(out, output), pump(err, output));
        };
        // The pipes close when the supervisor has ended the step's last process; the deadline
        // only guards against a holder outside the tree, which the supervisor rules out.
        tokio::select! {
            _ = both => {}
            () = async {
                ended.cancelled().await;
                tokio::time::sleep(PUMP_DRAIN).await;
            } => {}
        }
    };
    let (status, ()) = tokio::join!(waiter, pumps);
    match status {
        Ok(Some(s)) => Ok(Exit::Code(s.code().unwrap_or(128))),
        Ok(None) => Ok(Exit::Stopped),
        Err(err) => Err(err.into()),
    }
}

/// How long a cancelled step's supervisor may take to stop its processes (it gives them one
/// second) before it is killed itself.
const STOP_WAIT: Duration = Duration::from_millis(1500);

async fn pump<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>, output: Output<'_>) {
    let Some(mut reader) = reader else {
        return;
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut block = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut block).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&block[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            output(&String::from_utf8_lossy(&line[..line.len() - 1]));
        }
        if pending.len() >= MAX_LINE_BYTES {
            output(&String::from_utf8_lossy(&pending));
            pending.clear();
        }
    }
    if !pending.is_empty() {
        output(&String::from_utf8_lossy(&pending));
    }
}
