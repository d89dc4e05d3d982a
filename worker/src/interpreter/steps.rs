//! The steps of the supported subset (docs/JENKINSFILE.md), one arm each.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sluice_core::logs::Origin;
use sluice_core::pipeline::model::{Input, PipelineOption, Step};
use sluice_core::pipeline::syntax::Value;

use super::values::{arg, flag, named, seconds, text};
use super::walk::Body;
use super::{Env, Flow, Res, Runner, Scope, Stop, junit};
use crate::agent::{self, Exit, tar_stream};

/// A path a step names must stay inside the workspace.
pub(super) fn inside(dir: &str, sub: &str, line: u32, step: &str) -> Result<String, Stop> {
    agent::join(dir, sub).map_err(|_| {
        Stop::failure(format!(
            "line {line}: {step}('{sub}') must stay inside the workspace"
        ))
    })
}

/// An agent's failure as a step's.
pub(super) fn failed(line: u32, step: &str, err: impl std::fmt::Display) -> Stop {
    Stop::failure(format!("line {line}: {step}: {err}"))
}

/// The parent directory and file name of a relative path (`a/b/c` → `a/b`, `c`).
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

impl Runner<'_> {
    /// A new worker-side directory for files taken from the agent (removed by the caller).
    pub(crate) async fn scratch(&self, what: &str) -> std::path::PathBuf {
        let n = self
            .scratch_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = self.scratch_root.join(format!("{what}-{n}"));
        let _ = tokio::fs::remove_dir_all(&dir).await;
        dir
    }

    pub(crate) fn steps<'a>(&'a self, steps: &'a [Step], scope: &'a Scope) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            for step in steps {
                if scope.cancel.is_cancelled() {
                    return Err(Stop::aborted("cancelled"));
                }
                let exported = self.exports.lock().map(|e| e.clone()).unwrap_or_default();
                let with_exports;
                let scope = if exported.is_empty() {
                    scope
                } else {
                    let mut env = scope.env.clone();
                    env.extend(exported);
                    with_exports = Scope {
                        env,
                        ..scope.clone()
                    };
                    &with_exports
                };
                self.measured(step, Body::Steps(&step.steps), scope).await?;
            }
            Ok(())
        })
    }

    /// Runs one step, counting it in the metrics and logging why a simple step failed.
    pub(crate) async fn measured<'a>(
        &'a self,
        step: &'a Step,
        body: Body<'a>,
        scope: &'a Scope,
    ) -> Flow {
        let started = Instant::now();
        let flow = self.step(step, body, scope).await;
        self.events
            .step_finished(&step.name, flow.is_ok(), started.elapsed());
        if let Err(stop) = &flow
            && step.steps.is_empty()
            && matches!(body, Body::Steps(_))
            && step.name != "script"
        {
            let origin = Origin {
                step: Some(step.name.clone()),
                ..scope.origin.clone()
            };
            self.events
                .log_error(&origin, &format!("[sluice] {}", stop.reason));
        }
        flow
    }

    /// One step; `body` holds a block step's nested steps (or, from Groovy, its closure).
    fn step<'a>(&'a self, step: &'a Step, body: Body<'a>, scope: &'a Scope) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let line = step.pos.line;
            let (env, params) = (&scope.env, &self.params);
            let origin = Origin {
                step: Some(step.name.clone()),
                ..scope.origin.clone()
            };
            match step.name.as_str() {
                "echo" => {
                    let message = arg(step, "message", env, params).unwrap_or_default();
                    for l in message.lines() {
                        self.events.log(&origin, l);
                    }
                    Ok(())
                }
                "sh" => {
                    let Some(script) = arg(step, "script", env, params) else {
                        return Err(Stop::failure(format!("line {line}: `sh` needs a script")));
                    };
                    nul_free(line, &script, env)?;
                    self.events
                        .log(&origin, &format!("[sluice] sh (Jenkinsfile line {line})"));
                    let output = |l: &str| self.events.log(&origin, l);
                    match self
                        .agent
                        .run(&script, env, &scope.dir, &output, &scope.cancel)
                        .await
                    {
                        Ok(Exit::Code(0)) => Ok(()),
                        Ok(Exit::Code(code)) => Err(Stop::failure(format!(
                            "line {line}: script returned exit code {code}"
                        ))),
                        Ok(Exit::Stopped) => {
                            Err(Stop::aborted("stopped while a script was running"))
                        }
                        Err(err) => Err(failed(line, "sh", err)),
                    }
                }
                "sleep" => {
                    let wait = Duration::from_secs_f64(seconds(step, env, params, "SECONDS"));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => Ok(()),
                        _ = scope.cancel.cancelled() => Err(Stop::aborted("cancelled during sleep")),
                    }
                }
                "error" => Err(Stop::failure(format!(
                    "line {line}: error: {}",
                    arg(step, "message", env, params).unwrap_or_default()
                ))),
                "unstable" => {
                    let message = arg(step, "message", env, params).unwrap_or_default();
                    self.events
                        .log_error(&origin, &format!("[sluice] unstable: {message}"));
                    self.raise(Res::Unstable, &format!("line {line}: unstable: {message}"));
                    scope.raise_stage(Res::Unstable);
                    Ok(())
                }
                "checkout" => Ok(()),
                "dir" => {
                    let sub = arg(step, "path", env, params).unwrap_or_default();
                    let inner = inside(&scope.dir, &sub, line, "dir")?;
                    self.agent
                        .put(&inner, tar_stream::empty())
                        .await
                        .map_err(|e| failed(line, "dir", e))?;
                    let scope = Scope {
                        dir: inner,
                        ..scope.clone()
                    };
                    self.body(body, &scope).await
                }
                "withEnv" => {
                    let mut scope = scope.clone();
                    if let Some(Value::List(items, _)) = step.args.positional.first() {
                        for item in items {
                            if let Some((k, v)) = text(item, env, params)
                                .as_deref()
                                .and_then(|s| s.split_once('='))
                            {
                                scope.env.insert(k.to_owned(), v.to_owned());
                            }
                        }
                    }
                    self.body(body, &scope).await
                }
                "withCredentials" => self.with_credentials(step, body, scope).await,
                "timeout" => {
                    let secs = seconds(step, env, params, "MINUTES").ceil() as u64;
                    let options = [PipelineOption::Timeout {
                        seconds: secs.max(1),
                    }];
                    self.guarded(&options, body, scope).await
                }
                "retry" => {
                    let count = arg(step, "count", env, params)
                        .and_then(|c| c.parse::<f64>().ok())
                        .map_or(1, |c| c.clamp(1.0, 100.0) as u32);
                    let options = [PipelineOption::Retry { count }];
                    self.guarded(&options, body, scope).await
                }
                "catchError" | "warnError" => self.catch(step, body, scope, &origin).await,
                "script" => self.script(step, scope).await,
                "writeFile" => {
                    let file = named(step, "file", env, params).unwrap_or_default();
                    let body = named(step, "text", env, params).unwrap_or_default();
                    let path = inside(&scope.dir, &file, line, "writeFile")?;
                    let (parent, name) = split(&path);
                    if name.is_empty() || path == scope.dir {
                        return Err(Stop::failure(format!(
                            "line {line}: writeFile needs a file name"
                        )));
                    }
                    let tar = tar_stream::single_file(name, body.as_bytes())
                        .map_err(|e| failed(line, "writeFile", e))?;
                    self.agent
                        .put(parent, tar)
                        .await
                        .map_err(|e| failed(line, "writeFile", e))
                }
                "deleteDir" => {
                    self.agent
                        .remove(&scope.dir)
                        .await
                        .map_err(|e| failed(line, "deleteDir", e))?;
                    self.agent
                        .put(&scope.dir, tar_stream::empty())
                        .await
                        .map_err(|e| failed(line, "deleteDir", e))
                }
                "stash" => self.stash(step, scope, &origin).await,
                "unstash" => {
                    let name = arg(step, "name", env, params).unwrap_or_default();
                    let from = self.stashes.join(stash_dir(&name));
                    if !from.is_dir() {
                        return Err(Stop::failure(format!(
                            "line {line}: unstash: no stash named `{name}`"
                        )));
                    }
                    let count = walkdir::WalkDir::new(&from)
                        .into_iter()
                        .flatten()
                        .filter(|e| e.file_type().is_file())
                        .count();
                    self.agent
                        .put(&scope.dir, tar_stream::pack_dir(from))
                        .await
                        .map_err(|e| failed(line, "unstash", e))?;
                    self.events.log(
                        &origin,
                        &format!("[sluice] unstashed {count} files from `{name}`"),
                    );
                    Ok(())
                }
                "archiveArtifacts" | "archive" => self.archive(step, scope, &origin).await,
                "milestone" => {
                    self.events.log(
                        &origin,
                        "[sluice] milestone: runs of this project are ordered by disableConcurrentBuilds() here; nothing to do",
                    );
                    Ok(())
                }
                "ansiColor" | "timestamps" => self.body(body, scope).await,
                "lock" => self.lock(step, body, scope, &origin).await,
                "publishHTML" => self.publish_html(step, scope, &origin).await,
                "deploy" => self.deploy(step, scope, &origin).await,
                "junit" => self.junit(step, scope, &origin).await,
                "input" => {
                    let input = Input {
                        message: arg(step, "message", env, params).unwrap_or_default(),
                        ok: named(step, "ok", env, params),
                        submitter: named(step, "submitter", env, params),
                        parameters: Vec::new(),
                    };
                    let scope = Scope {
                        origin,
                        ..scope.clone()
                    };
                    self.gate(&input, scope.origin.stage.as_deref(), &scope)
                        .await
                        .map(|_| ())
                }
                other => Err(Stop::failure(format!(
                    "line {line}: step `{other}` is not supported by the local executor"
                ))),
            }
        })
    }

    async fn with_credentials(&self, step: &Step, body: Body<'_>, scope: &Scope) -> Flow {
        let line = step.pos.line;
        let mut inner = scope.clone();
        let mut files = Vec::new();
        let bindings = match step.args.positional.first() {
            Some(Value::List(items, _)) => items.clone(),
            Some(one @ Value::Call { .. }) => vec![one.clone()],
            _ => Vec::new(),
        };
        for binding in &bindings {
            let Value::Call { name, args, .. } = binding else {
                return Err(Stop::failure(format!(
                    "line {line}: withCredentials takes bindings such as string(credentialsId: 'id', variable: 'V')"
                )));
            };
            let get = |key: &str| {
                args.named(key)
                    .and_then(|v| text(v, &scope.env, &self.params))
                    .unwrap_or_default()
            };
            let id = get("credentialsId");
            let Some(secret) = self.ctx.secrets.get(&id) else {
                return Err(Stop::failure(format!(
                    "line {line}: withCredentials: {}",
                    self.ctx.missing_secret(&id)
                )));
            };
            match name.as_str() {
                "string" | "usernameColonPassword" => {
                    inner.env.insert(get("variable"), secret.clone());
                }
                "usernamePassword" => {
                    let (user, password) = secret.split_once(':').unwrap_or(("", secret));
                    inner.env.insert(get("usernameVariable"), user.to_owned());
                    inner
                        .env
                        .insert(get("passwordVariable"), password.to_owned());
                }
                "file" | "sshUserPrivateKey" => {
                    let name = format!("{}-{}", files.len(), id.replace('/', "_"));
                    let tar = tar_stream::private_file(&name, secret.as_bytes())
                        .map_err(|e| failed(line, "withCredentials", e))?;
                    self.agent
                        .put(SECRET_FILES, tar)
                        .await
                        .map_err(|e| failed(line, "withCredentials", e))?;
                    let path = format!("{SECRET_FILES}/{name}");
                    let var = if binding_name(binding) == "file" {
                        "variable"
                    } else {
                        "keyFileVariable"
                    };
                    inner.env.insert(get(var), self.agent.path_of(&path));
                    files.push(path);
                }
                other => {
                    return Err(Stop::failure(format!(
                        "line {line}: withCredentials: `{other}` bindings are not supported (string, usernamePassword, usernameColonPassword, file, sshUserPrivateKey)"
                    )));
                }
            }
        }
        let flow = self.body(body, &inner).await;
        for f in files {
            let _ = self.agent.remove(&f).await;
        }
        flow
    }

    /// `catchError(buildResult:, stageResult:, message:)` and `warnError(message)`: an error
    /// inside sets the results and the pipeline goes on. An abort is not caught.
    async fn catch(&self, step: &Step, body: Body<'_>, scope: &Scope, origin: &Origin) -> Flow {
        let (env, params) = (&scope.env, &self.params);
        let warn = step.name == "warnError";
        let (build, stage) = if warn {
            (Res::Unstable, Res::Unstable)
        } else {
            let pick = |key: &str, default: Res| {
                named(step, key, env, params)
                    .and_then(|w| Res::parse(&w))
                    .unwrap_or(default)
            };
            (
                pick("buildResult", Res::Failure),
                pick("stageResult", Res::Success),
            )
        };
        match self.body(body, scope).await {
            Err(stop) if stop.res == Res::Failure => {
                let message = arg(step, "message", env, params).unwrap_or_default();
                let note = if message.is_empty() {
                    stop.reason.clone()
                } else {
                    format!("{message}: {}", stop.reason)
                };
                self.events
                    .log_error(origin, &format!("[sluice] {} caught: {note}", step.name));
                if build > Res::Success {
                    self.raise(build, &note);
                }
                scope.raise_stage(stage);
                Ok(())
            }
            other => other,
        }
    }

    async fn stash(&self, step: &Step, scope: &Scope, origin: &Origin) -> Flow {
        let line = step.pos.line;
        let (env, params) = (&scope.env, &self.params);
        let name = arg(step, "name", env, params).unwrap_or_default();
        if name.is_empty() {
            return Err(Stop::failure(format!("line {line}: stash needs a name")));
        }
        let includes = named(step, "includes", env, params).unwrap_or_else(|| "**".into());
        let excludes = named(step, "excludes", env, params);
        let dest = self.stashes.join(stash_dir(&name));
        let _ = tokio::fs::remove_dir_all(&dest).await;
        let tree = self
            .agent
            .get(&scope.dir)
            .await
            .map_err(|e| failed(line, "stash", e))?;
        let files = tar_stream::select(tree, &includes, excludes.as_deref(), dest)
            .await
            .map_err(|e| failed(line, "stash", e))?;
        if files.is_empty() && !flag(step, "allowEmpty") {
            return Err(Stop::failure(format!(
                "line {line}: stash `{name}`: no files match `{includes}`"
            )));
        }
        self.events.log(
            origin,
            &format!("[sluice] stashed {} files as `{name}`", files.len()),
        );
        Ok(())
    }

    async fn archive(&self, step: &Step, scope: &Scope, origin: &Origin) -> Flow {
        let line = step.pos.line;
        let (env, params) = (&scope.env, &self.params);
        let key = if step.name == "archive" {
            "includes"
        } else {
            "artifacts"
        };
        let Some(pattern) = arg(step, key, env, params) else {
            return Err(Stop::failure(format!(
                "line {line}: {} needs `{key}`",
                step.name
            )));
        };
        let excludes = named(step, "excludes", env, params);
        let picked = self.scratch("archive").await;
        let tree = self
            .agent
            .get(&scope.dir)
            .await
            .map_err(|e| failed(line, "archiveArtifacts", e))?;
        let files = tar_stream::select(tree, &pattern, excludes.as_deref(), picked.clone())
            .await
            .map_err(|e| failed(line, "archiveArtifacts", e))?;
        if files.is_empty() && !flag(step, "allowEmptyArchive") {
            return Err(Stop::failure(format!(
                "line {line}: archiveArtifacts: no files match `{pattern}`"
            )));
        }
        let uploaded = self.upload(&files, &picked, line, origin).await;
        let _ = tokio::fs::remove_dir_all(&picked).await;
        uploaded
    }

    async fn upload(
        &self,
        files: &[String],
        picked: &std::path::Path,
        line: u32,
        origin: &Origin,
    ) -> Flow {
        self.upload_as(files, picked, "", line, origin).await
    }

    async fn junit(&self, step: &Step, scope: &Scope, origin: &Origin) -> Flow {
        let line = step.pos.line;
        let (env, params) = (&scope.env, &self.params);
        let pattern = arg(step, "testResults", env, params).unwrap_or_default();
        let picked = self.scratch("junit").await;
        let tree = self
            .agent
            .get(&scope.dir)
            .await
            .map_err(|e| failed(line, "junit", e))?;
        let files = tar_stream::select(tree, &pattern, None, picked.clone())
            .await
            .map_err(|e| failed(line, "junit", e))?;
        if files.is_empty() && !flag(step, "allowEmptyResults") {
            let _ = tokio::fs::remove_dir_all(&picked).await;
            return Err(Stop::failure(format!(
                "line {line}: junit: no test reports match `{pattern}`"
            )));
        }
        let mut found = sluice_core::store::artifacts::TestSummary::default();
        for rel in &files {
            let read = tokio::fs::read_to_string(picked.join(rel)).await;
            let summary = read
                .map_err(|e| e.to_string())
                .and_then(|xml| junit::parse(&xml));
            match summary {
                Ok(summary) => found.add(summary),
                Err(e) => {
                    let _ = tokio::fs::remove_dir_all(&picked).await;
                    return Err(Stop::failure(format!("line {line}: junit: {rel}: {e}")));
                }
            }
        }
        let _ = tokio::fs::remove_dir_all(&picked).await;
        self.events.log(
            origin,
            &format!(
                "[sluice] tests: {} passed, {} failed, {} skipped",
                found.passed, found.failed, found.skipped
            ),
        );
        let failed = found.failed;
        let total = {
            let mut tests = self.tests.lock().await;
            tests.add(found);
            tests.clone()
        };
        self.events.tests(&total).await;
        if failed > 0 {
            let note = format!("{failed} tests failed");
            self.raise(Res::Unstable, &note);
            scope.raise_stage(Res::Unstable);
        }
        Ok(())
    }
}

/// Where `withCredentials` file bindings are written on the agent: beside the workspace, not
/// in it, so a build that archives its whole workspace does not archive them.
const SECRET_FILES: &str = "tmp/secrets";

/// Stash names become directory names; anything odd is replaced.
/// A NUL character cannot reach a process (in its arguments, script or environment): refuse
/// the step, naming what holds one, instead of an obscure failure to start it.
pub(crate) fn nul_free(line: u32, script: &str, env: &Env) -> Result<(), Stop> {
    if script.contains('\0') {
        return Err(Stop::failure(format!(
            "line {line}: the script contains a NUL character (a `\\0` escape?), which no process can receive"
        )));
    }
    if let Some((name, _)) = env
        .iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(Stop::failure(format!(
            "line {line}: the environment variable `{}` contains a NUL character, which no process can receive",
            name.replace('\0', "\\0")
        )));
    }
    Ok(())
}

fn stash_dir(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The kind of a `withCredentials` binding (`file`, `string`…).
fn binding_name(binding: &Value) -> &str {
    match binding {
        Value::Call { name, .. } => name,
        _ => "",
    }
}
