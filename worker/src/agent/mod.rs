//! Where a run's steps execute. The Jenkins interpreter drives an [`Agent`]: it runs shell
//! scripts and moves files in and out as tar streams, and knows nothing else of the place.
//! The local agent ([`local::LocalAgent`]) is a directory on the worker's host with each
//! script under the step supervisor; a Kubernetes agent is a Pod in the tenant's namespace,
//! reached through the exec API.
//!
//! Paths are relative to the agent's root, `/`-separated, and never leave it (`..` and
//! absolute paths are refused). The build's workspace is [`WORKSPACE`] below the root; other
//! directories (secret files) sit beside it, out of the build's tree.

pub mod conformance;
pub mod local;
pub mod tar_stream;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;

use sluice_core::pipeline::model::Pipeline;

use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;

use crate::executor::{RunContext, RunEvents};

/// The workspace directory below an agent's root.
pub const WORKSPACE: &str = "src";

/// Environment variables, by name.
pub type Env = BTreeMap<String, String>;

/// A stream of bytes: a tar archive going in or out, or a file's contents.
pub type ByteStream = Pin<Box<dyn AsyncRead + Send>>;

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status (`128 + n` when killed by signal `n`).
    Code(i32),
    /// It was stopped by the cancel token; nothing it started is left running.
    Stopped,
}

/// Why an agent could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("`{0}` is outside the workspace")]
    Outside(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

/// Receives a script's output, one line at a time (stdout and stderr interleaved as they
/// arrive; a very long line arrives in pieces).
pub type Output<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Starts the agent of each attempt, and says what its kind of agent cannot run.
#[async_trait::async_trait]
pub trait Agents: Send + Sync {
    /// Why `pipeline` (from `file`) cannot run on these agents, before any step runs: for
    /// example a container agent asked of the host.
    fn refuse(&self, pipeline: &Pipeline, file: &str) -> Option<String>;

    /// Where the worker checks out `ctx`'s commit when the agent's root is a directory of this
    /// host (the agent's workspace); `None` when the tree must be streamed in.
    fn checkout_dir(&self, _ctx: &RunContext) -> Option<PathBuf> {
        None
    }

    /// The agent for `ctx`'s attempt of `pipeline`, with an empty workspace (or the checkout,
    /// for a host directory). Starting may take a while (a Pod is scheduled and its image
    /// pulled): what happens meanwhile goes to `events`' log, and `cancel` abandons it.
    /// [`Agent::finish`] ends it.
    async fn start(
        &self,
        ctx: &RunContext,
        pipeline: &Pipeline,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn Agent>, AgentError>;
}

#[async_trait::async_trait]
pub trait Agent: Send + Sync {
    /// The absolute path of `rel` as the build's processes see it (`WORKSPACE`, secret files).
    fn path_of(&self, rel: &str) -> String;

    /// The root, when it is a directory of this host: a checkout goes straight there instead
    /// of being streamed in.
    fn host_dir(&self) -> Option<PathBuf> {
        None
    }

    /// Runs `script` with `sh -e` in `dir`, with exactly `env` (plus what a shell needs, such
    /// as `PATH`), streaming its output. When `cancel` fires, everything the script started is
    /// stopped and [`Exit::Stopped`] comes back promptly; when the script ends, whatever it
    /// left running is stopped too.
    async fn run(
        &self,
        script: &str,
        env: &Env,
        dir: &str,
        output: Output<'_>,
        cancel: &CancellationToken,
    ) -> Result<Exit, AgentError>;

    /// Unpacks a tar stream below `dir`, which is created when missing (an empty archive just
    /// creates it).
    async fn put(&self, dir: &str, tar: ByteStream) -> Result<(), AgentError>;

    /// The files below `dir` as a tar stream, with names relative to `dir`; symbolic links are
    /// archived as links, never followed.
    async fn get(&self, dir: &str) -> Result<ByteStream, AgentError>;

    /// Removes a file or a whole tree; a missing one is fine.
    async fn remove(&self, path: &str) -> Result<(), AgentError>;

    /// Ends the agent after the attempt (a Pod is deleted). A local directory is left to the
    /// worker, which owns it.
    async fn finish(&self) -> Result<(), AgentError> {
        Ok(())
    }
}

/// Checks that `rel` stays below the root (no `..`, not absolute) and joins its parts with
/// `/`; `""` and `"."` are the root itself.
pub fn clean(rel: &str) -> Result<String, AgentError> {
    let mut parts = Vec::new();
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return Err(AgentError::Outside(rel.to_owned())),
        }
    }
    Ok(parts.join("/"))
}

/// `base/sub`, checked: what a step's relative path means in the scope's directory.
pub fn join(base: &str, sub: &str) -> Result<String, AgentError> {
    let sub = clean(sub)?;
    Ok(match (base.is_empty(), sub.is_empty()) {
        (_, true) => base.to_owned(),
        (true, false) => sub,
        (false, false) => format!("{base}/{sub}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_the_root() {
        assert_eq!(clean("a/./b/").unwrap(), "a/b");
        assert_eq!(clean("").unwrap(), "");
        assert_eq!(clean(".").unwrap(), "");
        assert!(clean("../x").is_err());
        assert!(clean("a/../../x").is_err());
        assert!(clean("/etc").is_err());
        assert_eq!(join("src", "dist").unwrap(), "src/dist");
        assert_eq!(join("src", "").unwrap(), "src");
        assert!(join("src", "../tmp").is_err());
    }
}
