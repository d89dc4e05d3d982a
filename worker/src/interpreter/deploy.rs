//! The `deploy` step (API.md, "Releases"): it starts a release of an app to an environment,
//! follows its plan's steps in the log, runs the smoke test on this run's agent when the
//! controller asks (with `GREEN_URL` set to the green instance), and ends with the release:
//! success exports `APP_URL` to the steps after it; a rollback or failure fails the step with
//! the release's reason. Cancelling the run aborts the release.

use std::time::Duration;

use sluice_core::logs::Origin;
use sluice_core::pipeline::deploy::{self, Strategy, Workload};
use sluice_core::pipeline::model::Step;
use sluice_core::release::plan::{ReleaseStatus, StepStatus};
use sluice_core::store::releases::{self, NewRelease, SmokeState, Spec, Started};

use super::values::render;
use super::{Env, Runner, Scope, Stop};
use crate::agent::Exit;

/// How often the step looks at its release.
const POLL: Duration = Duration::from_millis(100);

impl Runner<'_> {
    pub(crate) async fn deploy(
        &self,
        step: &Step,
        scope: &Scope,
        origin: &Origin,
    ) -> Result<(), Stop> {
        let line = step.pos.line;
        let (env, params) = (&scope.env, &self.params);
        let parsed = deploy::parse(&step.args, step.pos).map_err(|errors| {
            let all: Vec<String> = errors
                .into_iter()
                .map(|(pos, message)| format!("line {}:{}: deploy: {message}", pos.line, pos.col))
                .collect();
            Stop::failure(all.join("; "))
        })?;
        let (artifact, command, image) = match &parsed.workload {
            Workload::Artifact { artifact, command } => (
                Some(artifact.clone()),
                Some(render(&command.0, env, params)),
                None,
            ),
            Workload::Image { image } => (None, None, Some(image.clone())),
        };
        let new = NewRelease {
            run: self.ctx.run.clone(),
            step_key: format!(
                "{}:{}{}",
                step.pos.line,
                step.pos.col,
                scope
                    .cell
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default()
            ),
            app: parsed.app.clone(),
            environment: parsed.environment.clone(),
            strategy: parsed.strategy.map(|s| match s {
                Strategy::BlueGreen => "blueGreen".to_owned(),
                Strategy::Recreate => "recreate".to_owned(),
            }),
            spec: Spec {
                artifact,
                command,
                image,
                instances: parsed.instances,
                health_path: parsed.health_path.clone(),
                smoke: parsed.smoke.as_ref().map(|t| render(&t.0, env, params)),
                monitor_secs: parsed.monitor_secs,
            },
            people: self.approvers.lock().map(|a| a.clone()).unwrap_or_default(),
        };
        let fail = |e: String| Stop::failure(format!("line {line}: deploy: {e}"));
        let mut waited_for = None;
        let release = loop {
            match self.events.release_start(new.clone()).await.map_err(fail)? {
                Started::Release(model) => break model,
                Started::Busy { release_id } => {
                    if waited_for != Some(release_id) {
                        self.events.log(
                            origin,
                            &format!(
                                "[sluice] waiting for release {release_id} of {} to {} to end",
                                parsed.app, parsed.environment
                            ),
                        );
                        waited_for = Some(release_id);
                    }
                    tokio::select! {
                        _ = scope.cancel.cancelled() => return Err(Stop::aborted("cancelled while waiting for another release")),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        self.events.log(
            origin,
            &format!(
                "[sluice] release {}: version {} of {} to {} ({}, {} instances)",
                release.id,
                release.version,
                release.app,
                parsed.environment,
                release.strategy,
                parsed.instances
            ),
        );
        self.follow(release.id, &new.spec, line, scope, origin)
            .await
    }

    /// Follows the release to its end, running the smoke test when asked.
    async fn follow(
        &self,
        id: i64,
        spec: &Spec,
        line: u32,
        scope: &Scope,
        origin: &Origin,
    ) -> Result<(), Stop> {
        let mut seen: Vec<(StepStatus, Option<String>)> = Vec::new();
        let mut smoked: Option<String> = None;
        loop {
            let (model, url) = match self.events.release(id).await {
                Ok(state) => state,
                Err(err) => {
                    tracing::warn!(release = id, error = %err, "reading the release failed");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            for (k, s) in releases::steps_of(&model).into_iter().enumerate() {
                let now = (s.status, s.detail.clone());
                if seen.get(k) == Some(&now) {
                    continue;
                }
                if s.status != StepStatus::Pending {
                    let detail = s
                        .detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default();
                    let status = s.status.as_str();
                    self.events.log(
                        origin,
                        &format!(
                            "[sluice] release {id}: {} {status}{detail}",
                            s.name.as_str()
                        ),
                    );
                }
                if k < seen.len() {
                    seen[k] = now;
                } else {
                    seen.push(now);
                }
            }
            if let Some(smoke) = releases::smoke_of(&model)
                && smoke.state == SmokeState::Requested
                && smoked.as_deref() != Some(smoke.green_url.as_str())
                && let Some(script) = &spec.smoke
            {
                smoked = Some(smoke.green_url.clone());
                let (passed, detail) = self.smoke(script, &smoke.green_url, scope, origin).await;
                self.events.smoke_answered(id, passed, &detail).await;
            }
            match releases::status_of(&model) {
                ReleaseStatus::InProgress => {}
                ReleaseStatus::Succeeded => {
                    if let Some(url) = url {
                        self.events.log(
                            origin,
                            &format!("[sluice] release {id} succeeded: APP_URL={url}"),
                        );
                        if let Ok(mut exports) = self.exports.lock() {
                            exports.insert("APP_URL".into(), url);
                        }
                    }
                    return Ok(());
                }
                status => {
                    let reason = model.reason.unwrap_or_default();
                    return Err(Stop::failure(format!(
                        "line {line}: deploy: release {id} {}: {reason}",
                        status.as_str().replace('_', " ")
                    )));
                }
            }
            tokio::select! {
                _ = scope.cancel.cancelled() => {
                    self.events.release_abort(id).await;
                    return Err(Stop::aborted(format!("cancelled during release {id}; the release was aborted")));
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Runs the smoke test with `GREEN_URL`; returns whether it passed and how it ended.
    async fn smoke(
        &self,
        script: &str,
        green_url: &str,
        scope: &Scope,
        origin: &Origin,
    ) -> (bool, String) {
        self.events
            .log(origin, &format!("[sluice] smoke test against {green_url}"));
        let mut env: Env = scope.env.clone();
        env.insert("GREEN_URL".into(), green_url.to_owned());
        if let Err(stop) = super::steps::nul_free(0, script, &env) {
            return (false, stop.reason);
        }
        let output = |l: &str| self.events.log(origin, l);
        match self
            .agent
            .run(script, &env, &scope.dir, &output, &scope.cancel)
            .await
        {
            Ok(Exit::Code(0)) => (true, "exit code 0".into()),
            Ok(Exit::Code(code)) => (false, format!("the smoke script returned exit code {code}")),
            Ok(Exit::Stopped) => (false, "the smoke script was stopped".into()),
            Err(err) => (false, format!("the smoke script could not run: {err}")),
        }
    }
}
