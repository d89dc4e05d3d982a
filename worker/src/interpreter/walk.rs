//! Walking stages: order, `parallel` and `matrix` at once, `input`, stage options,
//! environments with credentials, and `post` with Jenkins' conditions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use sluice_core::logs::Origin;
use sluice_core::pipeline::model::{
    Axis, EnvValue, EnvVar, Input, PipelineOption, Post, PostCondition, Stage, StageBody, Step,
};
use sluice_core::store::gates::WaitingFor;

use super::values::render;
use super::{Env, Flow, Res, Runner, Scope, Stop};
use crate::executor::GateAnswer;

/// What `guarded` runs under its options.
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    Steps(&'a [Step]),
    /// Top-level or nested stages, in order.
    Stages(&'a [Stage]),
    /// One stage's gate and body (its options wrap both).
    Stage(&'a Stage, i32),
    /// The body of a block step called from Groovy (`dir('x') { … }` in a `script`).
    Closure(&'a dyn RunBody),
    /// A body inside block steps given as options (`options { withCredentials([…]) }`),
    /// outermost first.
    Wrapped(&'a [Step], &'a Body<'a>),
}

/// A block step's body given as code rather than steps: a Groovy closure.
pub(crate) trait RunBody: Send + Sync {
    fn run(&self, scope: Scope) -> BoxFuture<'_, Flow>;
}

/// Jenkins' order for `post` blocks.
const POST_ORDER: [PostCondition; 11] = [
    PostCondition::Always,
    PostCondition::Changed,
    PostCondition::Fixed,
    PostCondition::Regression,
    PostCondition::Aborted,
    PostCondition::Failure,
    PostCondition::Success,
    PostCondition::Unstable,
    PostCondition::Unsuccessful,
    PostCondition::NotBuilt,
    PostCondition::Cleanup,
];

pub(crate) fn human(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 && s > 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

impl Runner<'_> {
    /// The environment of `scope` with `vars` added; `credentials('id')` reads the project
    /// secret, and a Groovy value is computed with the variables before it.
    pub(crate) async fn environment(&self, scope: &Scope, vars: &[EnvVar]) -> Result<Env, Stop> {
        let mut env = scope.env.clone();
        for var in vars {
            match &var.value {
                EnvValue::Computed { expr } => {
                    let at = Scope {
                        env: env.clone(),
                        ..scope.clone()
                    };
                    let v = self.computed(&expr.0, &at).await.map_err(|stop| Stop {
                        reason: format!("environment {}: {}", var.name, stop.reason),
                        ..stop
                    })?;
                    env.insert(var.name.clone(), v);
                }
                EnvValue::Text { value } => {
                    let v = render(&value.0, &env, &self.params);
                    env.insert(var.name.clone(), v);
                }
                EnvValue::Credentials { id } => {
                    let Some(secret) = self.ctx.secrets.get(id) else {
                        return Err(Stop::failure(format!(
                            "{}: credentials('{id}'): {}",
                            var.name,
                            self.ctx.missing_secret(id)
                        )));
                    };
                    // Jenkins' username/password credentials also set NAME_USR and NAME_PSW.
                    if let Some((user, password)) = secret.split_once(':') {
                        env.insert(format!("{}_USR", var.name), user.to_owned());
                        env.insert(format!("{}_PSW", var.name), password.to_owned());
                    }
                    env.insert(var.name.clone(), secret.clone());
                }
            }
        }
        Ok(env)
    }

    /// Runs `body` under `options`: `retry(n)` around `timeout(…)` around the body.
    pub(crate) fn guarded<'a>(
        &'a self,
        options: &'a [PipelineOption],
        body: Body<'a>,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let timeout = options.iter().find_map(|o| match o {
                PipelineOption::Timeout { seconds } => Some(*seconds),
                _ => None,
            });
            let tries = options
                .iter()
                .find_map(|o| match o {
                    PipelineOption::Retry { count } => Some(*count),
                    _ => None,
                })
                .unwrap_or(1)
                .max(1);
            let wrappers = options.iter().find_map(|o| match o {
                PipelineOption::Wrappers { steps } => Some(steps.as_slice()),
                _ => None,
            });
            let wrapped;
            let body = match wrappers {
                Some(steps) => {
                    wrapped = body;
                    Body::Wrapped(steps, &wrapped)
                }
                None => body,
            };
            self.retrying(tries, scope, |scope| self.timed(timeout, body, scope))
                .await
        })
    }

    /// Runs `attempt` up to `tries` times while it fails (not when aborted).
    pub(crate) async fn retrying<'s, F>(&self, tries: u32, scope: &'s Scope, attempt: F) -> Flow
    where
        F: Fn(&'s Scope) -> BoxFuture<'s, Flow>,
    {
        let mut n = 1;
        loop {
            match attempt(scope).await {
                Err(stop)
                    if stop.res == Res::Failure && n < tries && !scope.cancel.is_cancelled() =>
                {
                    n += 1;
                    self.events.log(
                        &scope.origin,
                        &format!("[sluice] {}; retrying ({n} of {tries})", stop.reason),
                    );
                }
                other => return other,
            }
        }
    }

    /// Runs `body`, stopping it (its processes killed) after `timeout` seconds: a failure.
    pub(crate) fn timed<'a>(
        &'a self,
        timeout: Option<u64>,
        body: Body<'a>,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let Some(seconds) = timeout else {
                return self.body(body, scope).await;
            };
            let inner = Scope {
                cancel: scope.cancel.child_token(),
                ..scope.clone()
            };
            let run = self.body(body, &inner);
            tokio::pin!(run);
            tokio::select! {
                flow = &mut run => flow,
                _ = tokio::time::sleep(Duration::from_secs(seconds)) => {
                    inner.cancel.cancel();
                    let _ = run.await;
                    let reason = format!("timed out after {}", human(seconds));
                    self.events.log_error(&scope.origin, &format!("[sluice] {reason}"));
                    Err(Stop::failure(reason))
                }
            }
        })
    }

    pub(crate) fn body<'a>(&'a self, body: Body<'a>, scope: &'a Scope) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            match body {
                Body::Steps(steps) => self.steps(steps, scope).await,
                Body::Closure(body) => body.run(scope.clone()).await,
                Body::Wrapped([], inner) => self.body(*inner, scope).await,
                Body::Wrapped([outer, rest @ ..], inner) => {
                    self.measured(outer, Body::Wrapped(rest, inner), scope)
                        .await
                }
                Body::Stages(stages) => self.stages(stages, scope, None).await,
                Body::Stage(stage, seq) => {
                    // A gate's parameters are variables for the rest of the stage.
                    let gated;
                    let scope = match &stage.input {
                        Some(input) => {
                            let values = self.gate(input, Some(&stage.name), scope).await?;
                            let mut env = scope.env.clone();
                            env.extend(values);
                            gated = Scope {
                                env,
                                ..scope.clone()
                            };
                            &gated
                        }
                        None => scope,
                    };
                    match &stage.body {
                        StageBody::Steps { steps } => self.steps(steps, scope).await,
                        StageBody::Stages { stages } => self.stages(stages, scope, Some(seq)).await,
                        StageBody::Parallel { stages, fail_fast } => {
                            if *fail_fast || self.fail_fast_all {
                                self.fail_fast(stages, scope, seq).await
                            } else {
                                let branches =
                                    stages.iter().map(|b| self.stage(b, scope, Some(seq)));
                                worst(join_all(branches).await)
                            }
                        }
                        StageBody::Matrix {
                            axes,
                            excludes,
                            stages,
                        } => self.matrix(stage, seq, axes, excludes, stages, scope).await,
                    }
                }
            }
        })
    }

    /// Parallel branches where the first failure stops the others (their steps are killed and
    /// the branches end aborted); the stage fails with that first failure's reason.
    async fn fail_fast(&self, stages: &[Stage], scope: &Scope, seq: i32) -> Flow {
        let scopes: Vec<Scope> = stages
            .iter()
            .map(|_| Scope {
                cancel: scope.cancel.child_token(),
                ..scope.clone()
            })
            .collect();
        let first: Mutex<Option<Stop>> = Mutex::new(None);
        let runs = stages.iter().zip(&scopes).map(|(branch, branch_scope)| {
            let (scopes, first) = (&scopes, &first);
            async move {
                let flow = self.stage(branch, branch_scope, Some(seq)).await;
                if let Err(stop) = &flow
                    && !branch_scope.cancel.is_cancelled()
                {
                    if let Ok(mut first) = first.lock()
                        && first.is_none()
                    {
                        *first = Some(stop.clone());
                    }
                    for other in scopes {
                        other.cancel.cancel();
                    }
                }
                flow
            }
        });
        let flows = join_all(runs).await;
        match first.into_inner().ok().flatten() {
            Some(stop) if !scope.cancel.is_cancelled() => Err(stop),
            _ => worst(flows),
        }
    }

    /// Stages in order; after a failure the rest are recorded as skipped.
    pub(crate) fn stages<'a>(
        &'a self,
        stages: &'a [Stage],
        scope: &'a Scope,
        parent: Option<i32>,
    ) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let mut flow = Ok(());
            for stage in stages {
                if flow.is_err() || scope.cancel.is_cancelled() {
                    let seq = self.events.stage_started(&stage.name, parent).await;
                    self.events.stage_finished(seq, "skipped").await;
                    if flow.is_ok() {
                        flow = Err(Stop::aborted("cancelled"));
                    }
                    continue;
                }
                let unstable = self.skip_after_unstable
                    && self.build.lock().is_ok_and(|b| *b >= Res::Unstable);
                if unstable {
                    let seq = self.events.stage_started(&stage.name, parent).await;
                    self.events.log(
                        &scope.origin,
                        &format!(
                            "[sluice] stage `{}` skipped: the build is unstable (skipStagesAfterUnstable)",
                            stage.name
                        ),
                    );
                    self.events.stage_finished(seq, "skipped").await;
                    continue;
                }
                flow = self.stage(stage, scope, parent).await;
            }
            flow
        })
    }

    /// One stage: its environment, `when`, options around gate and body, then its `post`.
    pub(crate) fn stage<'a>(
        &'a self,
        stage: &'a Stage,
        outer: &'a Scope,
        parent: Option<i32>,
    ) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let seq = self.events.stage_started(&stage.name, parent).await;
            let origin = Origin {
                stage: Some(match &outer.cell {
                    Some(cell) => format!("{cell} / {}", stage.name),
                    None => stage.name.clone(),
                }),
                step: None,
            };
            let at_stage = Scope {
                origin: origin.clone(),
                ..outer.clone()
            };
            let checked = async {
                let env = self.environment(&at_stage, &stage.environment).await?;
                let runs = match &stage.when {
                    Some(when) => {
                        let scope = Scope {
                            env: env.clone(),
                            ..at_stage.clone()
                        };
                        self.when(when, &scope).await?
                    }
                    None => true,
                };
                Ok::<_, Stop>((env, runs))
            };
            let (env, runs) = match checked.await {
                Ok(found) => found,
                Err(stop) => {
                    self.events
                        .log_error(&origin, &format!("[sluice] {}", stop.reason));
                    self.events.stage_finished(seq, "failed").await;
                    return Err(stop);
                }
            };
            if !runs {
                self.events.log(
                    &origin,
                    &format!(
                        "[sluice] stage `{}` skipped: its `when` is false",
                        stage.name
                    ),
                );
                self.events.stage_finished(seq, "skipped").await;
                return Ok(());
            }
            let scope = Scope {
                env,
                dir: outer.dir.clone(),
                origin,
                stage_res: Arc::new(Mutex::new(Res::Success)),
                cancel: outer.cancel.clone(),
                cell: outer.cell.clone(),
            };
            let flow = self
                .guarded(&stage.options, Body::Stage(stage, seq), &scope)
                .await;
            let flow = self.finish_flow(flow, &scope, &stage.post).await;
            if let Err(stop) = &flow {
                scope.raise_stage(stop.res);
            }
            self.events
                .stage_finished(seq, scope.stage_result().stage_word())
                .await;
            flow
        })
    }

    /// Applies a finished block's result to its scope, then runs `post`; a failing post step
    /// fails a block that had not failed.
    pub(crate) async fn finish_flow(&self, flow: Flow, scope: &Scope, post: &Post) -> Flow {
        if post.conditions.is_empty() {
            return flow;
        }
        let current = match &flow {
            Err(stop) => stop.res.max(scope.stage_result()),
            Ok(()) => scope.stage_result(),
        };
        // The pipeline's post looks at the build result, a stage's at the stage's.
        let current = if scope.origin.stage.is_none() {
            current.max(self.result())
        } else {
            current
        };
        let previous = self.ctx.previous.as_deref().and_then(Res::of_status);
        // Post steps run even when the run is being cancelled, but not forever. Their output
        // gets its own log section: "Post" for the pipeline's, "<stage> (post)" for a stage's.
        let post_scope = Scope {
            cancel: tokio_util::sync::CancellationToken::new(),
            origin: Origin {
                stage: Some(match &scope.origin.stage {
                    Some(stage) => format!("{stage} (post)"),
                    None => "Post".to_owned(),
                }),
                step: None,
            },
            ..scope.clone()
        };
        let mut post_flow = Ok(());
        for wanted in POST_ORDER {
            for (_, steps) in post.conditions.iter().filter(|(c, _)| *c == wanted) {
                let applies = match wanted {
                    PostCondition::Always | PostCondition::Cleanup => true,
                    PostCondition::Success => current == Res::Success,
                    PostCondition::Unstable => current == Res::Unstable,
                    PostCondition::Failure => current == Res::Failure,
                    PostCondition::Aborted => current == Res::Aborted,
                    PostCondition::Unsuccessful => current != Res::Success,
                    PostCondition::NotBuilt => false,
                    PostCondition::Changed => previous.is_some_and(|p| p != current),
                    PostCondition::Fixed => {
                        current == Res::Success
                            && matches!(previous, Some(Res::Failure | Res::Unstable))
                    }
                    PostCondition::Regression => {
                        current > Res::Success && previous == Some(Res::Success)
                    }
                };
                if !applies {
                    continue;
                }
                self.events.log(
                    &post_scope.origin,
                    &format!("[sluice] post {{ {} }}", condition_word(wanted)),
                );
                let run = self.steps(steps, &post_scope);
                let limited = tokio::time::timeout(Duration::from_secs(300), run);
                let scope_cancel = scope.cancel.clone();
                let result = tokio::select! {
                    r = limited => r.unwrap_or_else(|_| Err(Stop::failure("post steps timed out after 5 min"))),
                    // A cancel during post: give post steps 10 s more, then stop them.
                    _ = async {
                        scope_cancel.cancelled().await;
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    } => {
                        post_scope.cancel.cancel();
                        Err(Stop::aborted("post steps stopped after the run was cancelled"))
                    }
                };
                if let Err(stop) = result
                    && post_flow.is_ok()
                {
                    post_flow = Err(stop);
                }
            }
        }
        match (flow, post_flow) {
            (Err(stop), _) => Err(stop),
            (Ok(()), Err(stop)) => Err(stop),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// Parks the run at a gate; a rejection aborts. Returns the gate's parameters' values.
    pub(crate) async fn gate(
        &self,
        input: &Input,
        stage: Option<&str>,
        scope: &Scope,
    ) -> Result<Env, Stop> {
        // A run waits at one gate at a time: parallel branches and matrix cells with an
        // `input` ask in turn.
        let _turn = tokio::select! {
            turn = self.gate_turn.lock() => turn,
            _ = scope.cancel.cancelled() => {
                return Err(Stop::aborted("cancelled while waiting for approval"));
            }
        };
        let n = self.gates.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // In a matrix cell the gate names the cell (`Test in Platforms (OS=linux)`).
        let stage = match (stage, &scope.cell) {
            (Some(stage), Some(cell)) => Some(format!("{stage} in {cell}")),
            (stage, _) => stage.map(str::to_owned),
        };
        let gate = WaitingFor {
            id: format!("{}-{}", self.ctx.run.attempt, n + 1),
            message: render_text(&input.message, &scope.env, &self.params),
            ok: input.ok.clone().unwrap_or_else(|| "Proceed".into()),
            stage,
            submitter: input.submitter.clone(),
            since: chrono::Utc::now(),
            parameters: input
                .parameters
                .iter()
                .map(sluice_core::store::params::ParamSpec::from)
                .collect(),
        };
        self.events.log(
            &scope.origin,
            &format!("[sluice] waiting for approval: {}", gate.message),
        );
        match self.events.gate(gate, &scope.cancel).await {
            GateAnswer::Approved { by, params } => {
                self.events
                    .log(&scope.origin, &format!("[sluice] approved by {by}"));
                if let Ok(mut approvers) = self.approvers.lock() {
                    approvers.push(by.clone());
                }
                Ok(params.into_iter().collect())
            }
            GateAnswer::Rejected { by } => {
                let reason = format!("rejected by {by}");
                self.events
                    .log_error(&scope.origin, &format!("[sluice] {reason}"));
                Err(Stop::aborted(reason))
            }
            GateAnswer::Stopped => Err(Stop::aborted("cancelled while waiting for approval")),
        }
    }

    async fn matrix(
        &self,
        stage: &Stage,
        seq: i32,
        axes: &[Axis],
        excludes: &[Vec<Axis>],
        stages: &[Stage],
        scope: &Scope,
    ) -> Flow {
        let cells: Vec<Vec<(String, String)>> = cells(axes)
            .into_iter()
            .filter(|cell| {
                !excludes.iter().any(|exclude| {
                    exclude.iter().all(|axis| {
                        cell.iter().any(|(k, v)| {
                            *k == axis.name && axis.values.contains(v) != axis.negated
                        })
                    })
                })
            })
            .collect();
        let runs = cells.iter().map(|cell| async move {
            let label: Vec<String> = cell.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let name = format!("{} ({})", stage.name, label.join(", "));
            let cell_seq = self.events.stage_started(&name, Some(seq)).await;
            let mut env = scope.env.clone();
            env.extend(cell.iter().cloned());
            let cell_scope = Scope {
                env,
                origin: Origin {
                    stage: Some(name.clone()),
                    step: None,
                },
                stage_res: Arc::new(Mutex::new(Res::Success)),
                cell: Some(name.clone()),
                ..scope.clone()
            };
            let flow = self.stages(stages, &cell_scope, Some(cell_seq)).await;
            if let Err(stop) = &flow {
                cell_scope.raise_stage(stop.res);
            }
            self.events
                .stage_finished(cell_seq, cell_scope.stage_result().stage_word())
                .await;
            flow
        });
        worst(join_all(runs).await)
    }
}

fn render_text(text: &str, env: &Env, params: &super::values::Params) -> String {
    // Gate messages were parsed as plain text; `${…}` in them is filled in like a GString.
    let parts = super::values::interpolate(text);
    render(&parts, env, params)
}

fn condition_word(c: PostCondition) -> &'static str {
    match c {
        PostCondition::Always => "always",
        PostCondition::Success => "success",
        PostCondition::Failure => "failure",
        PostCondition::Unstable => "unstable",
        PostCondition::Aborted => "aborted",
        PostCondition::Changed => "changed",
        PostCondition::Fixed => "fixed",
        PostCondition::Regression => "regression",
        PostCondition::Unsuccessful => "unsuccessful",
        PostCondition::NotBuilt => "notBuilt",
        PostCondition::Cleanup => "cleanup",
    }
}

/// Every combination of the axes' values, in order.
fn cells(axes: &[Axis]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|cell| {
                axis.values.iter().map(move |v| {
                    let mut c = cell.clone();
                    c.push((axis.name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    out
}

/// Branches that ran at once: the worst stop, if any.
fn worst(flows: Vec<Flow>) -> Flow {
    flows
        .into_iter()
        .filter_map(Result::err)
        .max_by_key(|s| s.res)
        .map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_cells_cover_every_combination() {
        let axes = vec![
            Axis {
                name: "OS".into(),
                values: vec!["linux".into(), "mac".into()],
                negated: false,
            },
            Axis {
                name: "V".into(),
                values: vec!["1".into(), "2".into()],
                negated: false,
            },
        ];
        let all = cells(&axes);
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[1],
            vec![("OS".into(), "linux".into()), ("V".into(), "2".into())]
        );
    }

    #[test]
    fn the_worst_branch_wins() {
        let flows = vec![Ok(()), Err(Stop::failure("a")), Err(Stop::aborted("b"))];
        assert_eq!(worst(flows).unwrap_err().res, Res::Aborted);
        assert!(worst(vec![Ok(()), Ok(())]).is_ok());
    }
}
