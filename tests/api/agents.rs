//! The agent conformance suite (`sluice_worker::agent::conformance`) against every agent, as
//! the queue suite runs against every queue: the local agent, a directory on this host with
//! each script under the step supervisor; then a whole pipeline on an agent that only moves
//! files as tar streams, as a remote one does.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::pipeline::model::Pipeline;
use sluice_worker::agent::local::{LocalAgent, LocalAgents};
use sluice_worker::agent::{Agent, AgentError, Agents, ByteStream, Env, Exit, Output, conformance};
use sluice_worker::{RunContext, RunEvents};
use tokio_util::sync::CancellationToken;

use crate::execution::{push, setup, text_log};
use crate::fleet::{Backend, queue, start_fleet_on, wait_for_run};
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_local_agent_passes_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let agent = LocalAgent::new(root.path(), env!("CARGO_BIN_EXE_sluice"));
    conformance::suite(&agent).await;
}

/// Agents whose root is not the worker's directory, as a Pod's is not: the checkout is cloned
/// on the worker and streamed in, and every file the interpreter reads comes out as a tar
/// stream. (A stand-in for a remote agent: the local agent with its host directory hidden.)
struct Remote {
    inner: LocalAgent,
}

#[async_trait::async_trait]
impl Agent for Remote {
    fn path_of(&self, rel: &str) -> String {
        self.inner.path_of(rel)
    }

    async fn run(
        &self,
        script: &str,
        env: &Env,
        dir: &str,
        output: Output<'_>,
        cancel: &CancellationToken,
    ) -> Result<Exit, AgentError> {
        self.inner.run(script, env, dir, output, cancel).await
    }

    async fn put(&self, dir: &str, tar: ByteStream) -> Result<(), AgentError> {
        self.inner.put(dir, tar).await
    }

    async fn get(&self, dir: &str) -> Result<ByteStream, AgentError> {
        self.inner.get(dir).await
    }

    async fn remove(&self, path: &str) -> Result<(), AgentError> {
        self.inner.remove(path).await
    }

    async fn finish(&self) -> Result<(), AgentError> {
        self.inner.remove("").await
    }
}

struct RemoteAgents {
    roots: tempfile::TempDir,
    local: LocalAgents,
}

#[async_trait::async_trait]
impl Agents for RemoteAgents {
    fn refuse(&self, pipeline: &Pipeline, file: &str) -> Option<String> {
        self.local.refuse(pipeline, file)
    }

    async fn start(
        &self,
        ctx: &RunContext,
        _pipeline: &Pipeline,
        _events: &dyn RunEvents,
        _cancel: &CancellationToken,
    ) -> Result<Box<dyn Agent>, AgentError> {
        let root = self
            .roots
            .path()
            .join(format!("run-{}-{}", ctx.run.id, ctx.run.attempt));
        Ok(Box::new(Remote {
            inner: LocalAgent::new(root, env!("CARGO_BIN_EXE_sluice")),
        }))
    }
}

#[tokio::test]
async fn a_pipeline_runs_on_an_agent_whose_files_only_stream() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Build') {
            steps {
                sh 'test -f Jenkinsfile && mkdir -p dist && echo "built $BUILD_NUMBER" > dist/app.txt'
                writeFile file: 'reports/r.xml', text: '<testsuite><testcase name="ok"/></testsuite>'
                junit 'reports/*.xml'
                stash name: 'dist', includes: 'dist/**'
                archiveArtifacts artifacts: 'dist/*.txt'
            }
        }
        stage('Use') {
            steps {
                deleteDir()
                unstash 'dist'
                sh 'cat dist/app.txt; test ! -f Jenkinsfile'
            }
        }
    }
}
"#;
    let (owner, repo, hook) = setup(&app, jenkinsfile).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let agents = Arc::new(RemoteAgents {
        roots: tempfile::tempdir().unwrap(),
        local: LocalAgents::new(env!("CARGO_BIN_EXE_sluice")),
    });
    let fleet = start_fleet_on(&app, q, 1, 1, |_| {}, agents.clone());
    let number = push(&app, &hook, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed", "unstable"]).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert_eq!(run["tests"]["passed"], 1, "{run}");
    assert!(log.contains(&format!("built {number}")), "{log}");
    let (_, artifacts) = app.get_as(&format!("{path}/artifacts"), &owner).await;
    assert!(
        artifacts.to_string().contains("dist/app.txt"),
        "{artifacts}"
    );
    // The agent was finished: its root is gone.
    let left: Vec<_> = std::fs::read_dir(agents.roots.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    drop(fleet);
}
