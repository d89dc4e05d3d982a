//! The minimal executor: enough to run real Jenkinsfiles end to end while the full local
//! executor (logs, credentials, artifacts, gates, parallel branches) is being built.
//!
//! It checks out the run's commit, parses the Jenkinsfile (a file that does not lint fails
//! the run before any step), records what it declares, checks the run's parameters, then runs
//! stages in order, nested and parallel branches one after another, honouring `when`. Steps:
//! `sh` (`sh -e`, in its own process group, killed whole on cancel), `echo`, `sleep`, `error`,
//! `dir`, `withEnv` and `checkout scm` (a no-op: the commit is already checked out). `post`
//! runs `always`, `success`, `failure` and `cleanup`. Any other step fails the run naming
//! the step and its line: nothing is skipped silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sluice_core::pipeline::lexer::Part;
use sluice_core::pipeline::model::{
    EnvValue, EnvVar, Pipeline, PipelineOption, Post, PostCondition, Stage, StageBody, Step, When,
};
use sluice_core::pipeline::syntax::Value;
use sluice_core::store::execution::Declared;
use sluice_core::store::params;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::checkout::{CheckoutError, checkout};
use crate::executor::{Executor, Outcome, RunContext, RunEvents};

pub struct MinimalExecutor;

/// Where the walk through the pipeline stands.
struct Walk<'a> {
    events: &'a dyn RunEvents,
    cancel: &'a CancellationToken,
    branch: String,
    tag: Option<String>,
}

type Env = BTreeMap<String, String>;

#[async_trait::async_trait]
impl Executor for MinimalExecutor {
    async fn execute(
        &self,
        ctx: &RunContext,
        events: &dyn RunEvents,
        cancel: CancellationToken,
    ) -> Outcome {
        let src = ctx.workspace.join("src");
        let git_ref = ctx.run.git_ref.clone().unwrap_or_else(|| "main".into());
        events
            .log(&format!(
                "checking out {} at {git_ref}",
                ctx.project.repo_url
            ))
            .await;
        let is_tag = match checkout(
            &ctx.project.repo_url,
            &git_ref,
            ctx.run.commit_sha.as_deref(),
            &src,
            ctx.allow_local_repos,
            &cancel,
        )
        .await
        {
            Ok(is_tag) => is_tag,
            Err(CheckoutError::Cancelled) => {
                return Outcome::Cancelled("cancelled during checkout".into());
            }
            Err(other) => return Outcome::Failed(other.to_string()),
        };
        let file = &ctx.project.pipeline_path;
        let source = match tokio::fs::read_to_string(src.join(file)).await {
            Ok(source) => source,
            Err(err) => return Outcome::Failed(format!("cannot read {file}: {err}")),
        };
        let lint = sluice_core::pipeline::lint(&source);
        let Some(pipeline) = lint.pipeline.as_ref().filter(|_| lint.is_valid()) else {
            let errors: Vec<String> = lint
                .diagnostics
                .iter()
                .filter(|d| d.severity == sluice_core::pipeline::Severity::Error)
                .take(5)
                .map(|d| format!("{file}:{}:{}: {}", d.pos.line, d.pos.col, d.message))
                .collect();
            return Outcome::Failed(errors.join("\n"));
        };
        events.declared(declared(pipeline)).await;
        let given: BTreeMap<String, String> =
            serde_json::from_str(&ctx.run.params).unwrap_or_default();
        let specs: Vec<params::ParamSpec> = pipeline
            .parameters
            .iter()
            .map(params::ParamSpec::from)
            .collect();
        let run_params = match params::check(&specs, &given) {
            Ok(values) => values,
            Err(err) => return Outcome::Failed(format!("{file}: {err}")),
        };
        events.params(&run_params).await;

        let mut env = Env::new();
        env.insert("BUILD_NUMBER".into(), ctx.run.number.to_string());
        env.insert("BUILD_ID".into(), ctx.run.number.to_string());
        env.insert("JOB_NAME".into(), ctx.project.slug.clone());
        // Jenkins names a tag build's ref TAG_NAME and a branch build's BRANCH_NAME.
        let ref_var = if is_tag { "TAG_NAME" } else { "BRANCH_NAME" };
        env.insert(ref_var.into(), git_ref.clone());
        env.insert("WORKSPACE".into(), src.display().to_string());
        env.insert("CI".into(), "true".into());
        if let Some(sha) = &ctx.run.commit_sha {
            env.insert("GIT_COMMIT".into(), sha.clone());
        }
        for (k, v) in &run_params {
            env.insert(k.clone(), v.clone());
        }
        let walk = Walk {
            events,
            cancel: &cancel,
            tag: is_tag.then(|| git_ref.clone()),
            branch: git_ref,
        };
        let env = match walk.environment(&env, &pipeline.environment, &run_params) {
            Ok(env) => env,
            Err(outcome) => return outcome,
        };
        let mut outcome = walk.stages(&pipeline.stages, &env, &run_params, &src).await;
        outcome = walk
            .post(&pipeline.post, outcome, &env, &run_params, &src)
            .await;
        outcome
    }
}

/// What the Jenkinsfile declares that outlives the run.
pub fn declared(pipeline: &Pipeline) -> Declared {
    Declared {
        params: params::to_json(&pipeline.parameters),
        cron: (!pipeline.triggers.is_empty()).then(|| pipeline.triggers.join("\n")),
        concurrent_builds: !pipeline
            .options
            .contains(&PipelineOption::DisableConcurrentBuilds),
    }
}

fn lookup(expr: &str, env: &Env, params: &Env) -> String {
    let expr = expr.trim();
    if let Some(name) = expr.strip_prefix("params.") {
        return params.get(name).cloned().unwrap_or_default();
    }
    let name = expr.strip_prefix("env.").unwrap_or(expr);
    env.get(name).cloned().unwrap_or_default()
}

fn render(parts: &[Part], env: &Env, params: &Env) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.clone(),
            Part::Var(v) => lookup(v, env, params),
        })
        .collect()
}

fn text(value: &Value, env: &Env, params: &Env) -> Option<String> {
    match value {
        Value::Str(s, _) | Value::Word(s, _) => Some(s.clone()),
        Value::GStr(parts, _) => Some(render(parts, env, params)),
        Value::Num(n, _) => Some(n.to_string()),
        Value::Bool(b, _) => Some(b.to_string()),
        _ => None,
    }
}

/// The step's main argument: the first positional one or the named `key`.
fn arg(step: &Step, key: &str, env: &Env, params: &Env) -> Option<String> {
    step.args
        .positional
        .first()
        .or_else(|| step.args.named(key))
        .and_then(|v| text(v, env, params))
}

/// `*` matches any run of characters, `?` one character (Jenkins' branch/tag patterns).
fn glob(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

impl Walk<'_> {
    fn when(&self, when: &When, env: &Env) -> bool {
        match when {
            When::Branch { pattern } => self.tag.is_none() && glob(pattern, &self.branch),
            When::Tag { pattern } => self.tag.as_deref().is_some_and(|t| glob(pattern, t)),
            When::Environment { name, value } => env.get(name) == Some(value),
            When::ChangeRequest => false,
            When::Not { condition } => !self.when(condition, env),
            When::AllOf { conditions } => conditions.iter().all(|c| self.when(c, env)),
            When::AnyOf { conditions } => conditions.iter().any(|c| self.when(c, env)),
        }
    }

    fn environment(&self, base: &Env, vars: &[EnvVar], params: &Env) -> Result<Env, Outcome> {
        let mut env = base.clone();
        for var in vars {
            match &var.value {
                EnvValue::Text { value } => {
                    let v = render(&value.0, &env, params);
                    env.insert(var.name.clone(), v);
                }
                EnvValue::Credentials { id } => {
                    return Err(Outcome::Failed(format!(
                        "{}: credentials('{id}') needs the local executor, which is not built yet",
                        var.name
                    )));
                }
            }
        }
        Ok(env)
    }

    async fn stages(&self, stages: &[Stage], env: &Env, params: &Env, dir: &Path) -> Outcome {
        let mut outcome = Outcome::Succeeded;
        for stage in stages {
            let seq = self.events.stage_started(&stage.name).await;
            if outcome != Outcome::Succeeded {
                self.events.stage_finished(seq, "skipped").await;
                continue;
            }
            let stage_env = match self.environment(env, &stage.environment, params) {
                Ok(e) => e,
                Err(failed) => {
                    self.events.stage_finished(seq, "failed").await;
                    outcome = failed;
                    continue;
                }
            };
            if let Some(when) = &stage.when
                && !self.when(when, &stage_env)
            {
                self.events
                    .log(&format!(
                        "stage {} skipped: its `when` is false",
                        stage.name
                    ))
                    .await;
                self.events.stage_finished(seq, "skipped").await;
                continue;
            }
            let result = if stage.input.is_some() {
                Outcome::Failed(format!(
                    "line {}: stage `input` gates need the local executor, which is not built yet",
                    stage.pos.line
                ))
            } else {
                match &stage.body {
                    StageBody::Steps { steps } => self.steps(steps, &stage_env, params, dir).await,
                    StageBody::Parallel { stages } | StageBody::Stages { stages } => {
                        Box::pin(self.stages(stages, &stage_env, params, dir)).await
                    }
                    StageBody::Matrix { .. } => Outcome::Failed(format!(
                        "line {}: `matrix` needs the local executor, which is not built yet",
                        stage.pos.line
                    )),
                }
            };
            let result = self
                .post(&stage.post, result, &stage_env, params, dir)
                .await;
            self.events.stage_finished(seq, status_word(&result)).await;
            outcome = result;
        }
        outcome
    }

    async fn post(
        &self,
        post: &Post,
        outcome: Outcome,
        env: &Env,
        params: &Env,
        dir: &Path,
    ) -> Outcome {
        let mut outcome = outcome;
        let order = [
            PostCondition::Always,
            PostCondition::Success,
            PostCondition::Failure,
            PostCondition::Aborted,
            PostCondition::Cleanup,
        ];
        for wanted in order {
            for (condition, steps) in post.conditions.iter().filter(|(c, _)| *c == wanted) {
                let applies = match condition {
                    PostCondition::Always | PostCondition::Cleanup => true,
                    PostCondition::Success => outcome == Outcome::Succeeded,
                    PostCondition::Failure => matches!(outcome, Outcome::Failed(_)),
                    PostCondition::Aborted => matches!(outcome, Outcome::Cancelled(_)),
                    _ => false,
                };
                if applies {
                    let result = self.steps(steps, env, params, dir).await;
                    if outcome == Outcome::Succeeded && result != Outcome::Succeeded {
                        outcome = result;
                    }
                }
            }
        }
        outcome
    }

    async fn steps(&self, steps: &[Step], env: &Env, params: &Env, dir: &Path) -> Outcome {
        for step in steps {
            if self.cancel.is_cancelled() {
                return Outcome::Cancelled("cancelled".into());
            }
            let outcome = self.step(step, env, params, dir).await;
            if outcome != Outcome::Succeeded {
                return outcome;
            }
        }
        Outcome::Succeeded
    }

    async fn step(&self, step: &Step, env: &Env, params: &Env, dir: &Path) -> Outcome {
        let line = step.pos.line;
        match step.name.as_str() {
            "echo" => {
                let message = arg(step, "message", env, params).unwrap_or_default();
                self.events.log(&message).await;
                Outcome::Succeeded
            }
            "sh" => match arg(step, "script", env, params) {
                Some(script) => self.sh(&script, env, dir, line).await,
                None => Outcome::Failed(format!("line {line}: `sh` needs a script")),
            },
            "sleep" => {
                let seconds: f64 = arg(step, "time", env, params)
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0.0);
                let unit = step
                    .args
                    .named("unit")
                    .and_then(|u| text(u, env, params))
                    .unwrap_or_else(|| "SECONDS".into());
                let factor = match unit.as_str() {
                    "MILLISECONDS" => 0.001,
                    "MINUTES" => 60.0,
                    "HOURS" => 3600.0,
                    _ => 1.0,
                };
                let wait = std::time::Duration::from_secs_f64((seconds * factor).max(0.0));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => Outcome::Succeeded,
                    _ = self.cancel.cancelled() => Outcome::Cancelled("cancelled during sleep".into()),
                }
            }
            "error" => Outcome::Failed(format!(
                "line {line}: error: {}",
                arg(step, "message", env, params).unwrap_or_default()
            )),
            "checkout" => Outcome::Succeeded,
            "dir" => {
                let sub = arg(step, "path", env, params).unwrap_or_default();
                if Path::new(&sub)
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    return Outcome::Failed(format!(
                        "line {line}: dir('{sub}') must stay inside the workspace"
                    ));
                }
                let inner: PathBuf = dir.join(sub);
                if let Err(err) = tokio::fs::create_dir_all(&inner).await {
                    return Outcome::Failed(format!("line {line}: dir: {err}"));
                }
                Box::pin(self.steps(&step.steps, env, params, &inner)).await
            }
            "withEnv" => {
                let mut inner = env.clone();
                if let Some(Value::List(items, _)) = step.args.positional.first() {
                    for item in items {
                        if let Some((k, v)) = text(item, env, params)
                            .as_deref()
                            .and_then(|s| s.split_once('='))
                        {
                            inner.insert(k.to_owned(), v.to_owned());
                        }
                    }
                }
                Box::pin(self.steps(&step.steps, &inner, params, dir)).await
            }
            other => Outcome::Failed(format!(
                "line {line}: step `{other}` needs the local executor, which is not built yet"
            )),
        }
    }

    /// `sh -e -c script` in its own process group; cancel kills the whole group.
    async fn sh(&self, script: &str, env: &Env, dir: &Path, line: u32) -> Outcome {
        let mut cmd = Command::new("sh");
        cmd.arg("-e")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env_clear()
            .envs(crate::host_env::base())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => return Outcome::Failed(format!("line {line}: sh: {err}")),
        };
        let pgid = child.id();
        let out = child.stdout.take().map(|s| BufReader::new(s).lines());
        let err = child.stderr.take().map(|s| BufReader::new(s).lines());
        let pump = async {
            if let Some(mut out) = out {
                while let Ok(Some(l)) = out.next_line().await {
                    self.events.log(&l).await;
                }
            }
        };
        let pump_err = async {
            if let Some(mut err) = err {
                while let Ok(Some(l)) = err.next_line().await {
                    self.events.log(&l).await;
                }
            }
        };
        let waited = async {
            tokio::join!(pump, pump_err);
            child.wait().await
        };
        tokio::select! {
            status = waited => match status {
                Ok(s) if s.success() => Outcome::Succeeded,
                Ok(s) => Outcome::Failed(format!(
                    "line {line}: script returned exit code {}",
                    s.code().map_or_else(|| "signal".to_owned(), |c| c.to_string())
                )),
                Err(err) => Outcome::Failed(format!("line {line}: sh: {err}")),
            },
            _ = self.cancel.cancelled() => {
                kill_group(pgid);
                Outcome::Cancelled("cancelled while a script was running".into())
            }
        }
    }
}

fn kill_group(pgid: Option<u32>) {
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn status_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed(_) => "failed",
        Outcome::Cancelled(_) => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_patterns_glob_like_jenkins() {
        assert!(glob("main", "main"));
        assert!(glob("release/*", "release/1.2"));
        assert!(glob("feature-?", "feature-a"));
        assert!(!glob("release/*", "main"));
        assert!(!glob("main", "mainline"));
    }
}
